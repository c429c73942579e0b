"""The control API under hostile input (issue 13), in process: the real Starlette app and
middleware, served over httpx's ASGI transport on trio, with a stub node behind it (the
routes' own checks are what is tested here; `tests/node/test_api_fuzz.py` fuzzes a real
`tssnode run` process).

Every probe that once crashed a route with a 500 now gets a 4xx with a JSON reason; a
body over 1 MiB is refused before it is read; a client over its rate or the API's
concurrency gets 429 with Retry-After, while /health still answers."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from tssnode.api.app import MAX_BODY, Limits, build_app
from tssnode.api.facade import RequestRejected
from tssnode.node.events import EventBus

pytestmark = pytest.mark.trio

TOKEN = "t0ken"
AUTH = {"authorization": f"Bearer {TOKEN}"}
PEER = "12D3KooWQWodj612BazQAtqu7374ADvAk9YEDmVN99y4p3dJd4bQ"
#: what the stub's node answers (every response goes through its `tssnode.schema` model)
STATUS: dict[str, Any] = {
    "peer_id": PEER,
    "validator_key": "da" * 32,
    "chain_id": "93" * 32,
    "height": 3,
    "view": 0,
    "primary": PEER,
    "is_primary": True,
    "validators": 4,
    "version": "0.1.0",
    "uptime_s": 1.5,
    "last_block_age_s": 0.5,
    "pending_requests": 0,
    "view_change": False,
    "validators_online": 4,
    "quorum": 3,
    "stalled": False,
    "below_quorum": False,
    "liveness": None,
    "network": "local",
    "peers_connected": 3,
    "addrs": [f"/ip4/127.0.0.1/tcp/4101/p2p/{PEER}"],
    "warnings": [],
    "admission": {
        "open": False,
        "validators": 4,
        "followers": 0,
        "joiners": 0,
        "newcomers": [],
        "newcomer_slots": 4,
        "newcomer_seconds": 300.0,
        "refused_at_handshake": 0,
        "refused_peers": 0,
        "drops": {},
    },
    "buffers": {"early": {"sessions": 0}},
}
BLOCK_3: dict[str, Any] = {
    "height": 3,
    "hash": "ab" * 32,
    "prev_hash": "cd" * 32,
    "proposer": PEER,
    "view": 0,
    "time": 1764100000.5,
    "commit_latency_ms": 41,
    "txs": [],
    "certificate": {"view": 0, "signers": [PEER], "quorum": 3},
}


class StubNode:
    """Just enough of `NodeFacade` to reach every route; it records what reached it."""

    def __init__(self) -> None:
        self.events = EventBus()
        self.calls: list[tuple[str, Any]] = []
        self.slow = trio.Event()

    def health(self) -> tuple[bool, str | None]:
        return True, None

    def status(self, api_refused: dict[str, int]) -> dict[str, Any]:
        return {**STATUS, "api_refused": api_refused}

    def validators(self) -> list[dict[str, Any]]:
        return []

    def peers(self) -> list[dict[str, Any]]:
        return []

    def keys(self) -> list[dict[str, Any]]:
        return []

    def key(self, key_id: str) -> dict[str, Any] | None:
        self.calls.append(("key", key_id))
        return None

    def signature(self, signature_id: str) -> dict[str, Any] | None:
        self.calls.append(("signature", signature_id))
        return None

    def sessions(self) -> list[dict[str, Any]]:
        return []

    def session(self, session_id: str) -> dict[str, Any] | None:
        return None

    def blocks(self, start: int, limit: int) -> list[dict[str, Any]]:
        return []

    def block(self, height: int) -> dict[str, Any] | None:
        self.calls.append(("block", height))
        return BLOCK_3 if height == 3 else None

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        return None

    async def request_keygen(
        self, threshold: int, parties: list[str] | None, purpose: str = ""
    ) -> dict[str, Any]:
        self.calls.append(("keygen", (threshold, parties, purpose)))
        return {"key_id": "ab" * 32, "tx": "ab" * 32}

    async def request_refresh(
        self, key_id: str, parties: list[str] | None = None, threshold: int | None = None
    ) -> dict[str, Any]:
        self.calls.append(("refresh", (key_id, parties, threshold)))
        return {"key_id": key_id, "tx": "cd" * 32}

    def join_request(self) -> dict[str, Any]:
        return {
            "peer_id": PEER,
            "validator_key": "da" * 32,
            "address": "/ip4/127.0.0.1/tcp/4101",
            "is_validator": True,
            "request": "ab" * 40,
        }

    async def vote_join(self, request_hex: str) -> dict[str, Any]:
        raise RequestRejected(400, "not a join request")

    def derive(self, key_id: str, path: str) -> dict[str, Any]:
        raise RuntimeError("a bug in a route")  # the catch-all's test

    async def request_sign(
        self, key_id: str, message: bytes, hash_name: str, path: str | None
    ) -> dict[str, Any]:
        self.calls.append(("sign", key_id))
        await self.slow.wait()
        return {"signature_id": "ef" * 32, "tx": "ef" * 32, "digest": "01" * 32}

    async def request_presign(self, key_id: str, count: int) -> dict[str, Any]:
        return {"key_id": key_id, "tx": "12" * 32}

    async def legacy_broadcast(self, body: bytes) -> dict[str, Any]:
        return {"sent": True, "seq": 1}

    async def legacy_direct(self, peer_id: str, body: bytes) -> dict[str, Any]:
        return {"sent": True, "seq": 2}

    def legacy_messages(self, round_id: str, direct: bool) -> list[dict[str, Any]]:
        return []


def client(node: StubNode, limits: Limits | None = None) -> httpx.AsyncClient:
    app = build_app(node, TOKEN, limits)  # type: ignore[arg-type]
    return httpx.AsyncClient(
        # (Starlette re-raises a route's exception after its 500 so the server logs it;
        # hypercorn does, the test transport must not raise it into the test instead)
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://node",
        headers=AUTH,
    )


async def test_the_probes_that_crashed_routes_get_a_4xx_with_a_reason() -> None:
    node = StubNode()
    async with client(node) as c:
        probes = [
            ("GET", "/blocks/99999999999999999999999999", None, 400),
            ("GET", "/blocks/\u0663", None, 400),  # an Arabic-Indic 3 is not block 3
            ("GET", "/blocks/-1", None, 400),
            ("GET", "/blocks?from=\u0663", None, 400),
            ("GET", "/signatures/%2e%2e%2f", None, 404),  # (no redirect)
            ("GET", "/signatures/%2e%2e", None, 400),
            ("GET", "/keys/zz", None, 400),
            ("POST", "/keygen", b'{"threshold": 1, "parties": ["\\ud800"]}', 400),
            ("POST", "/keygen", b"[" * 100_000, 400),
            ("POST", "/keygen", b'{"threshold": ' + b"[" * 100_000, 400),
            ("POST", "/keygen", b"\xff\xfe", 400),
            ("POST", "/keygen", b'{"threshold": "2"}', 422),  # strict: a string is no int
            ("POST", "/keygen", b'{"threshold": true}', 422),
            ("POST", "/keygen", b'{"threshold": 0}', 422),  # a 1-of-n key only when asked
            ("POST", "/keygen", b'{"threshold": 1, "parties": ["not a peer id!"]}', 422),
            ("POST", "/keygen", b'{"threshold": 1, "purpose": "mint"}', 422),
            ("POST", "/keys/" + "ab" * 16 + "/refresh", b'{"threshold": 0}', 422),
            ("POST", "/sign", b'{"key_id": "k", "message": "\\udfff"}', 400),
        ]
        for method, path, body, want in probes:
            r = await c.request(method, path, content=body)
            assert r.status_code == want, (path, body and body[:40], r.status_code, r.text)
            assert r.json()["error"], path
            assert "Traceback" not in r.text
        assert ("block", 3) not in node.calls  # "٣" never reached the node as 3
        r = await c.get("/blocks/3")
        assert r.status_code == 200 and r.json() == BLOCK_3
        # threshold 0 asked for explicitly goes through
        r = await c.post("/keygen", json={"threshold": 0, "single_signer": True})
        assert r.status_code == 202 and ("keygen", (0, None, "")) in node.calls
        # a key for the bridge is asked for by name
        r = await c.post("/keygen", json={"threshold": 1, "purpose": "bridge"})
        assert r.status_code == 202 and ("keygen", (1, None, "bridge")) in node.calls


async def test_a_deep_body_is_refused_before_parsing_whatever_the_recursion_limit() -> None:
    """py_ecc (imported by web3) raises the recursion limit to 100,000: a body 100,000
    brackets deep then overflowed the C stack in the JSON parser and killed the test
    process (a segfault) instead of raising RecursionError. It is refused unparsed."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        node = StubNode()
        async with client(node) as c:
            for body in (b"[" * 100_000, b'{"threshold": ' + b"{" * 50_000):
                r = await c.post("/keygen", content=body)
                assert r.status_code == 400 and "nested too deeply" in r.json()["error"]
            # brackets inside strings are text, not nesting
            deep_text = {"threshold": 1, "parties": None, "purpose": "[" * 40}
            r = await c.post("/keygen", json=deep_text)
            assert r.status_code == 422 and "purpose" in r.json()["error"]
        assert not any(call[0] == "keygen" for call in node.calls)
    finally:
        sys.setrecursionlimit(limit)


async def test_a_bug_in_a_route_is_a_logged_500_without_a_traceback(caplog) -> None:
    async with client(StubNode()) as c:
        with caplog.at_level(logging.ERROR, logger="tssnode.api"):
            r = await c.post("/keys/" + "ab" * 16 + "/derive", json={"path": "m/1"})
    assert r.status_code == 500 and r.json() == {"error": "internal error (logged by the node)"}
    assert "a bug in a route" not in r.text
    assert any("a bug in a route" in str(rec.exc_info) for rec in caplog.records)


# the server stops reading: httpx's own iterator over the test's body is left unfinished
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_large_body_is_refused_before_it_is_read() -> None:
    pulled = 0

    async def body(chunks: int) -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(chunks):
            pulled += 1
            yield b" " * 65536

    node = StubNode()
    async with client(node) as c:
        # declared too large: refused on the header, nothing read
        r = await c.post("/keygen", content=body(160), headers={"content-length": str(160 * 65536)})
        assert r.status_code == 413 and pulled <= 1
        # chunked (no length): reading stops at the limit
        pulled = 0
        r = await c.post("/keygen", content=body(160))
        assert r.status_code == 413
        assert pulled <= MAX_BODY // 65536 + 2
        r = await c.post("/keygen", content=b"x", headers={"content-length": "1x"})
        assert r.status_code == 400
    assert not [call for call in node.calls if call[0] == "keygen"]


async def test_a_client_over_its_rate_gets_429_and_health_still_answers() -> None:
    async with client(StubNode(), Limits(rate=2.0, burst=5)) as c:
        codes = [(await c.get("/status")).status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and set(codes[5:]) == {429}
        r = await c.get("/status")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "rate limit" in r.json()["error"]
        assert (await c.get("/health")).status_code == 200
        await trio.sleep(1.1)  # two more tokens
        assert (await c.get("/status")).status_code == 200


async def test_requests_over_the_concurrency_limit_get_429_not_a_queue() -> None:
    node = StubNode()
    async with client(node, Limits(max_concurrent=2, queue_wait=0.2)) as c:
        results: list[int] = []

        async def sign() -> None:
            r = await c.post("/sign", json={"key_id": "k", "message": "m"})
            results.append(r.status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(sign)
            await trio.sleep(0.5)  # two are in the node, three waited 0.2 s and were refused
            assert sorted(results) == [429, 429, 429]
            assert (await c.get("/health")).status_code == 200
            node.slow.set()
        assert sorted(results) == [202, 202, 429, 429, 429]
        assert [call[0] for call in node.calls].count("sign") == 2
