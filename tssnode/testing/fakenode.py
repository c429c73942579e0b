"""TEST DOUBLE of one node's HTTP control API (docs/api.md). Not a node.

It stands in for the node daemon only where a live node cannot run yet (`tssnode run`
is being built): it answers every route the console uses, with the JSON shapes of
docs/api.md (`tssnode.schema`), from the frozen data in `fixtures/node1/` (made by
`fixtures/make_fixtures.py`), and streams server-sent events. The console talks to it
through the real `tssnode.api.client.AsyncApiClient`; only the HTTP transport is
swapped (`httpx.MockTransport`), so request building, bearer auth, error mapping and
SSE parsing are the real client's.

Scripted behaviour, for the tests: `go_down()` / `come_back()` (connection refused,
streams reset), `publish()` an event, `complete_keygen()` / `complete_signature()` and
`fail_keygen()` / `fail_signature()`, `confirm_deposit()` / `sign_deposit()` and
`mine_release()` / `settle_release()` for the bridge (`bridge = None`: a node that runs no
bridge, 404; `bridge_not_set_up()`: one whose settings are not agreed yet, 409 on its
lists, until `bridge_set_up()`; `before_releases()`: a node from before releases, no
`release` in GET /bridge and 404 on /bridge/releases), and
`auto=True` to finish keygen and signing by itself a moment after the request (so the
live scenarios of `live_scenarios.py` can be exercised against it). Blocks carry `time` and
`commit_latency_ms` (and `block.committed` events `latency_ms`) as docs/api.md has them;
`block_times=False` leaves them out, as `tssnode run` does today. Signatures are real
(coincurve, with the fixtures' test keys) and the digest comes from the node's own
`tssnode.protocol.hashing`, as the real node's would; a mint signature signs the
deposit's sigHash with the bridge key, as the signers do.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from coincurve import PrivateKey
from pydantic import TypeAdapter

from tssnode import schema
from tssnode.api.client import AsyncApiClient
from tssnode.crypto.addresses import btc_p2wpkh, eth_address
from tssnode.crypto.derivation import DerivationError, derive
from tssnode.crypto.group import Point, Q
from tssnode.protocol.hashing import message_digest

FIXTURES = Path(__file__).parent / "fixtures" / "node1"
URL = "http://127.0.0.1:3001"
TOKEN = "fixture-token"


def load(name: str, fixtures: Path = FIXTURES) -> Any:
    return json.loads((fixtures / f"{name}.json").read_text())


class FakeNode:
    """The test double. `client(url, token)` is a console `ClientFactory`."""

    def __init__(
        self,
        fixtures: Path = FIXTURES,
        *,
        auto: bool = False,
        new_key_ids: bool = False,
        block_times: bool = True,
    ) -> None:
        self.status: dict[str, Any] = load("status", fixtures)
        self.validators: list[dict[str, Any]] = load("validators", fixtures)
        self.peers: list[dict[str, Any]] = load("peers", fixtures)
        self.keys: dict[str, dict[str, Any]] = {k["key_id"]: k for k in load("keys", fixtures)}
        self.sessions: list[dict[str, Any]] = load("sessions", fixtures)
        self.blocks: list[dict[str, Any]] = load("blocks", fixtures)
        self.blocks_full: dict[str, dict[str, Any]] = load("blocks_full", fixtures)
        self.signatures: dict[str, dict[str, Any]] = {
            s["signature_id"]: s for s in load("signatures", fixtures)
        }
        # GET /bridge (None: the node's ledger runs no bridge), its addresses and deposits
        # (oldest first, as the node lists them) and releases (by burn nonce)
        self.fixtures = fixtures
        self.bridge: dict[str, Any] | None = load("bridge", fixtures)
        self.bridge_addresses: list[dict[str, Any]] = load("bridge_addresses", fixtures)
        self.bridge_deposits: list[dict[str, Any]] = load("bridge_deposits", fixtures)
        self.bridge_releases: list[dict[str, Any]] = load("bridge_releases", fixtures)
        self.shows_releases = True  # False: a node from before releases
        double = load("_double", fixtures)
        self.clock: float = double["clock"]
        self.secrets: dict[str, dict[str, str]] = double["keys"]
        self.script: list[dict[str, Any]] = load("events", fixtures)  # sent to the first stream
        self.history: list[dict[str, Any]] = []
        self.seq = len(self.script)
        self.auto = auto
        # like `tssnode run` today: a keygen request's id (its tx hash) is not the id of
        # the key it makes; GET /keys/<request id> answers with the key
        self.new_key_ids = new_key_ids
        self.block_times = block_times
        self.became: dict[str, str] = {}
        self.up = True
        self.token = TOKEN
        self.requests: list[tuple[str, str, Any]] = []
        self.streams_opened = 0
        self.since: list[int | None] = []  # `since` of every stream opened
        self.broken_routes: dict[str, tuple[int, Any]] = {}  # path → (status, JSON answer)
        self.held: dict[str, asyncio.Event] = {}  # path → answered once the event is set
        self.garble_stream = False  # send a line that is not JSON
        #: the children derived through it, by key (a node lists none: derivation is public)
        self.derived: dict[str, list[dict[str, Any]]] = {}
        # every answer validates as the node's own response model (a node validates each on
        # the way out): False for a test that plays a node sending what no model takes
        self.checks_shapes = True
        self._listeners: set[asyncio.Queue[dict[str, Any] | None]] = set()

    # -- what the console is given ---------------------------------------------------------
    def client(self, base_url: str, token: str) -> AsyncApiClient:
        return AsyncApiClient(
            base_url, token, timeout=5.0, transport=httpx.MockTransport(self.handle)
        )

    # -- scripted behaviour ----------------------------------------------------------------
    def go_down(self) -> None:
        """The node stops: connections are refused and open streams reset."""
        self.up = False
        for queue in self._listeners:
            queue.put_nowait(None)

    def come_back(self) -> None:
        self.up = True

    def publish(self, kind: str, *, malformed: bool = False, **fields: Any) -> dict[str, Any]:
        """Stream one event; it must be one the node's schema takes (a real node's are
        validated on the way out) unless `malformed` says the test sends a broken one, or
        the double plays a node from before block times (no `latency_ms`)."""
        if kind == "block.committed" and not self.block_times:
            fields.pop("latency_ms", None)
            malformed = True
        self.seq += 1
        event = {"seq": self.seq, "kind": kind, "time": self.clock, **fields}
        if not malformed and kind in schema.event_models():
            schema.parse_event(event)
        self.history.append(event)
        for queue in self._listeners:
            queue.put_nowait(event)
        return event

    def set_peer(self, peer_id: str, connected: bool) -> None:
        for peer in self.peers:
            if peer["peer_id"] == peer_id:
                peer["status"] = "connected" if connected else "disconnected"
        for v in self.validators:
            if v["peer_id"] == peer_id:
                v["status"] = "online" if connected else "offline"
        detail = "ready" if connected else "disconnected"
        self.publish("peer.up" if connected else "peer.down", peer_id=peer_id, detail=detail)

    def complete_keygen(self, key_id: str) -> None:
        key = self.keys[key_id]
        ssid = _h(f"ssid {key_id}")
        for s in self.sessions:
            if s["session_id"] == ssid:  # as tssnode lists a finished session: round 1
                s.update(status="done", round=1, elapsed_s=2.0, finished=self.clock)
                self.publish("session.done", ssid=ssid, phase="keygen", seconds=2.0)
        secret, chain = _h(f"fake secret {key_id}"), _h(f"fake chain {key_id}")
        self.secrets[key_id] = {"secret": secret, "chain_code": chain}
        point = Point(PrivateKey.from_hex(secret).public_key)
        key.update(
            status="active",
            public_key=point.to_bytes().hex(),
            addresses=_addresses(point),
            height=self.status["height"] + 1,
        )
        request = key_id
        if self.new_key_ids:
            del self.keys[key_id]
            new_id = _h(f"key of request {key_id}")[:32]
            self.became[key_id] = new_id
            self.secrets[new_id] = self.secrets[key_id]
            key["key_id"] = key_id = new_id
            self.keys[new_id] = key
        self._commit(1)
        # (as a node says it: the request settled in a block; `key.active` is reserved)
        self._settled(request, "keygen", "done", key_id)

    def fail_keygen(self, key_id: str, error: str) -> None:
        """The keygen's session aborts (`error`, blaming node4) and the ledger fails it."""
        key = self.keys[key_id]
        key.update(status="failed", error=error)
        ssid = _h(f"ssid {key_id}")
        culprit = str(self.validators[-1]["index"])  # (sessions name parties by index, as text)
        self.publish(
            "session.failed", ssid=ssid, phase="keygen", round=2, culprits=[4], check=error
        )
        self._commit(1)
        self._settled(key_id, "keygen", "failed", "")
        for s in self.sessions:
            if s["session_id"] == ssid:
                s.update(
                    status="failed", round=1, culprits=[culprit], error=error, finished=self.clock
                )

    def fail_signature(self, signature_id: str, check: str) -> None:
        """The signing aborts, blaming node4 (a blame names parties by index)."""
        sig = self.signatures[signature_id]
        culprit = self.validators[-1]["index"]
        sig.update(status="failed", blame={"culprits": [culprit], "check": check, "round": 1})
        self._commit(1)
        self._settled(signature_id, "sign", "failed", sig["key_id"])

    def complete_signature(self, signature_id: str) -> None:
        sig = self.signatures[signature_id]
        key = self.keys[sig["key_id"]]
        secret = int(self.secrets[key["key_id"]]["secret"], 16)
        if sig["path"]:
            secret = (secret + int(self._derive(key, sig["path"]).shift)) % Q
        raw = PrivateKey.from_int(secret).sign_recoverable(bytes.fromhex(sig["digest"]), None)
        sig.update(
            status="done",
            r=raw[:32].hex(),
            s=raw[32:64].hex(),
            v=27 + raw[64],
            signers=key["parties"][: key["threshold"] + 1],
            height=self.status["height"] + 1,
        )
        self._commit(1)
        self.publish("signature.ready", signature_id=signature_id, key_id=key["key_id"])
        self._settled(signature_id, "sign", "done", key["key_id"])

    def _settled(self, request: str, kind: str, status: str, key_id: str) -> None:
        """`request.settled`, as every node publishes it for the block that settles a
        request (the block `_commit` just made)."""
        self.publish(
            "request.settled",
            request=request,
            request_kind=kind,
            status=status,
            key_id=key_id,
            height=self.status["height"],
        )

    def bridge_not_set_up(self, proposals: int = 1) -> None:
        """The bridge's settings are not agreed yet: GET /bridge says so, its lists 409."""
        watch = load("bridge", self.fixtures)["watch"]
        self.bridge = {"set_up": False, "proposals": proposals, "watch": watch}
        self.bridge_addresses, self.bridge_deposits, self.bridge_releases = [], [], []

    def bridge_set_up(self) -> None:
        """The last matching vote for the settings is in a block: they are in force (the
        frozen ones), with no address, deposit or burn yet, and the release side's not
        voted yet (`release` null)."""
        frozen = load("bridge", self.fixtures)
        self.bridge = {**frozen, "height": self.status["height"] + 1, "release": None}
        self.bridge_addresses, self.bridge_deposits, self.bridge_releases = [], [], []
        self._commit(1)

    def before_releases(self) -> None:
        """A node from before releases: no `release` in GET /bridge, and GET
        /bridge/releases is no route (404)."""
        assert self.bridge is not None
        self.bridge.pop("release", None)
        self.shows_releases = False

    def release(self, burn_nonce: int) -> dict[str, Any]:
        return next(r for r in self.bridge_releases if r["burn_nonce"] == burn_nonce)

    def _paying(self, burn_nonce: int) -> list[dict[str, Any]]:
        """The burns the release of burn `burn_nonce` pays (every one of them)."""
        seq = self.release(burn_nonce)["release"]
        assert seq is not None, f"burn {burn_nonce} has no release"
        return [r for r in self.bridge_releases if r["release"] == seq]

    def mine_release(self, burn_nonce: int, confirmations: int) -> None:
        """A Bitcoin block holds (and deepens) the release paying the burn: its depth on
        this node's Bitcoin view, for every burn it pays (no ledger event: the console
        polls)."""
        for rel in self._paying(burn_nonce):
            rel["confirmations"] = confirmations

    def settle_release(self, burn_nonce: int) -> None:
        """2f+1 validators saw the release paying the burn at depth: in a block, its
        burns are confirmed (paid), its newest attempt confirmed; the group's coins lose
        its input and gain its change, so its holdings lose what the burns' tokens were."""
        assert self.bridge is not None and self.bridge.get("release") is not None
        paying = self._paying(burn_nonce)
        for rel in paying:
            attempts = [{**a} for a in rel["attempts"]]
            attempts[-1]["status"] = "confirmed"
            rel.update(status="confirmed", attempts=attempts)
        info = self.bridge["release"]
        info["holdings_sats"] -= sum(r["amount"] for r in paying)
        info["coins"] += 1 - paying[0]["attempts"][-1]["inputs"]
        self._commit(1)

    def deposit(self, outpoint: str) -> dict[str, Any]:
        txid, vout = outpoint.rsplit(":", 1)
        return next(d for d in self.bridge_deposits if (d["txid"], d["vout"]) == (txid, int(vout)))

    def confirm_deposit(self, outpoint: str, confirmations: int) -> None:
        """A Bitcoin block deepens the deposit (no ledger event: the console polls)."""
        self.deposit(outpoint).update(status="confirming", confirmations=confirmations)

    def sign_deposit(self, outpoint: str) -> dict[str, Any]:
        """The deposit is final and its mint authorisation signed by the bridge key (over
        its sigHash, low s), in a block of two transactions (`MintSigned`, `SignResult`)
        after the sign request settled, as the node publishes them."""
        dep = self.deposit(outpoint)
        assert self.bridge is not None
        key_id = self.bridge["key_id"]
        secret = PrivateKey.from_hex(self.secrets[key_id]["secret"])
        raw = secret.sign_recoverable(bytes.fromhex(dep["sigHash"].removeprefix("0x")), None)
        height = self.status["height"] + 1
        signature = {"r": "0x" + raw[:32].hex(), "s": "0x" + raw[32:64].hex(), "v": 27 + raw[64]}
        dep.update(status="signed", height=dep["height"] or height, signature=signature)
        request = _h(f"mint {outpoint}")
        self.publish(
            "request.settled",
            request=request,
            request_kind="sign",
            status="done",
            key_id=key_id,
            height=height,
        )
        self._commit(2)
        return signature

    # -- HTTP ------------------------------------------------------------------------------
    async def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused (test double is down)", request=request)
        path = request.url.path
        if path in ("/health", "/health/live"):
            return _json({"ok": True})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _json({"error": "missing or wrong bearer token"}, 401)
        body: Any = None
        if request.method == "POST":
            raw = await request.aread()
            body = json.loads(raw) if raw else None
        self.requests.append((request.method, path, body))
        if path in self.held:  # a slow node: this route answers when the test says so
            await self.held[path].wait()
        if path in self.broken_routes:
            status, answer = self.broken_routes[path]
            return _json(answer, status)
        if path == "/events":
            since = request.url.params.get("since")
            self.since.append(None if since is None else int(since))
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=self._sse(None if since is None else int(since)),
            )
        try:
            _check_ids(path)
            if request.method == "GET":
                answer = self._get(path, request.url.params)
            else:
                answer = self._post(path, body if isinstance(body, dict) else {})
        except _Refuse as exc:
            return _json({"error": exc.message}, exc.status)
        # (a node from before block times sends blocks no model of today takes)
        if self.checks_shapes and (self.block_times or not path.startswith("/blocks")):
            _check_shape(request.method, path, answer)
        return answer

    def _get(self, path: str, params: httpx.QueryParams) -> httpx.Response:
        parts = path.strip("/").split("/")
        simple = {
            "status": self.status,
            "validators": self.validators,
            "peers": self.peers,
            "keys": list(self.keys.values()),
            "sessions": self.sessions,
        }
        if len(parts) == 1 and parts[0] in simple:
            return _json(simple[parts[0]])
        if parts[0] == "bridge":
            return self._bridge_get(parts[1:], params)
        if parts == ["blocks"]:
            start, limit = int(params.get("from", 0)), int(params.get("limit", 20))
            chosen = [b for b in self.blocks if start <= b["height"] < start + limit]
            return _json([self._times(b) for b in chosen])
        if len(parts) == 2:
            table: dict[str, Any] = {
                "keys": self.keys,
                "signatures": self.signatures,
                "blocks": self.blocks_full,
                "sessions": {s["session_id"]: s for s in self.sessions},
            }.get(parts[0], {})
            if parts[0] == "keys" and parts[1] in self.became:
                return _json(self.keys[self.became[parts[1]]])
            if parts[0] == "blocks" and parts[1] in table:
                return _json(self._times(table[parts[1]]))
            if parts[1] in table:
                return _json(table[parts[1]])
            raise _Refuse(404, f"unknown {parts[0].rstrip('s')}")
        raise _Refuse(404, "Not Found")

    def _bridge_get(self, parts: list[str], params: httpx.QueryParams) -> httpx.Response:
        """GET /bridge, /bridge/addresses, /bridge/deposits[/{txid}:{vout}] (`?to=0x…`),
        /bridge/releases[/{burn_nonce}]."""
        if parts[:1] == ["releases"] and not self.shows_releases:
            raise _Refuse(404, "Not Found")  # (no such route before releases)
        if self.bridge is None:
            raise _Refuse(404, "this node's ledger runs no bridge")
        if not parts:
            return _json(self.bridge)
        if not self.bridge["set_up"]:
            raise _Refuse(409, "the bridge is not set up (POST /bridge/setup)")
        if parts == ["releases"]:
            return _json(self.bridge_releases)
        if len(parts) == 2 and parts[0] == "releases":
            if not parts[1].isdigit():
                raise _Refuse(400, "a burn nonce is a whole number below 2^64")
            try:
                return _json(self.release(int(parts[1])))
            except StopIteration:
                raise _Refuse(404, "unknown burn nonce") from None
        to = params.get("to")
        table = {"addresses": self.bridge_addresses, "deposits": self.bridge_deposits}
        if len(parts) == 1 and parts[0] in table:
            listed = table[parts[0]]
            return _json([d for d in listed if to is None or d["to"].lower() == to.lower()])
        if len(parts) == 2 and parts[0] == "deposits":
            try:
                return _json(self.deposit(parts[1]))
            except (StopIteration, ValueError):
                raise _Refuse(404, "unknown deposit") from None
        raise _Refuse(404, "Not Found")

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        parts = path.strip("/").split("/")
        if parts == ["keygen"]:
            return self._keygen(body)
        if parts == ["sign"]:
            return self._sign(body)
        if len(parts) == 3 and parts[0] == "keys":
            key = self.keys.get(parts[1])
            if key is None:
                raise _Refuse(404, "unknown key id")
            if key["status"] != "active":
                raise _Refuse(409, f"key {parts[1]} is {key['status']}")
            tx = _h(f"tx {parts[2]} {self.seq}")
            if parts[2] == "refresh":
                key["epoch"] += 1
                key["presignatures"] = 0
                return _json({"key_id": parts[1], "tx": tx}, 202)
            if parts[2] == "presign":
                key["presignatures"] += int(body.get("count", 1))
                return _json({"key_id": parts[1], "tx": tx}, 202)
            if parts[2] == "derive":
                derived = self._derive(key, str(body.get("path", "")))
                child = {
                    "path": body["path"],
                    "public_key": derived.public_key.to_bytes().hex(),
                    "addresses": _addresses(derived.public_key),
                }
                self.derived.setdefault(parts[1], []).append(child)  # (never in an answer)
                return _json(child)
        raise _Refuse(404, "Not Found")

    def _keygen(self, body: dict[str, Any]) -> httpx.Response:
        parties = body.get("parties") or [v["peer_id"] for v in self.validators]
        threshold = body.get("threshold")
        if not isinstance(threshold, int) or not 0 <= threshold < len(parties):
            raise _Refuse(422, "threshold: must be below the number of parties")
        key_id = _h(f"keygen {self.seq} {threshold} {parties}")  # (the request's tx hash)
        self.keys[key_id] = {
            "key_id": key_id,
            "status": "pending",
            "public_key": None,
            "threshold": threshold,
            "parties": parties,
            "epoch": 0,
            "tier": "standard",
            "addresses": None,
            "presignatures": 0,
            "height": None,
            "error": None,
        }
        ssid = _h(f"ssid {key_id}")
        self.sessions.append(  # as tssnode lists it: `request` is the request's id
            {
                "session_id": ssid,
                "phase": "keygen",
                "key_id": "",
                "request": key_id,
                "parties": [str(v["index"]) for v in self.validators if v["peer_id"] in parties],
                "status": "running",
                "round": 1,
                "rounds": 4,
                "waiting_for": [],
                "started": self.clock,
                "finished": None,
                "elapsed_s": 0.0,
                "culprits": [],
                "error": None,
            }
        )
        self.publish("session.started", ssid=ssid, phase="keygen", parties=[1])
        if self.auto:
            asyncio.get_running_loop().call_later(0.05, self.complete_keygen, key_id)
        return _json({"key_id": key_id, "tx": _h(f"tx {key_id}")}, 202)

    def _sign(self, body: dict[str, Any]) -> httpx.Response:
        key = self.keys.get(str(body.get("key_id")))
        if key is None:
            raise _Refuse(404, "unknown key id")
        if key["status"] != "active":
            raise _Refuse(409, f"key {key['key_id']} is {key['status']}")
        if ("message" in body) == ("message_hex" in body):
            raise _Refuse(422, "body: give exactly one of message and message_hex")
        message = (
            body["message"].encode()
            if "message" in body
            else bytes.fromhex(str(body["message_hex"]).removeprefix("0x"))
        )
        digest = message_digest(message, str(body.get("hash", "sha256"))).hex()
        sig_id = _h(f"signature {self.seq} {digest}")
        self.signatures[sig_id] = {
            "signature_id": sig_id,
            "status": "pending",
            "key_id": key["key_id"],
            "path": body.get("path"),
            "digest": digest,
            "r": None,
            "s": None,
            "v": None,
            "signers": [],
            "height": None,
            "blame": None,
        }
        if self.auto:
            asyncio.get_running_loop().call_later(0.05, self.complete_signature, sig_id)
        return _json({"signature_id": sig_id, "tx": _h(f"tx {sig_id}"), "digest": digest}, 202)

    async def _sse(self, since: int | None) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._listeners.add(queue)
        self.streams_opened += 1
        try:
            if self.garble_stream:
                yield b"event: log\ndata: {not json\n\n"
            backlog = [e for e in self.history if since is not None and e["seq"] > since]
            if self.script:  # the frozen events, as if they happened just after attaching
                backlog += self.script
                self.history = self.script + self.history
                self.script = []
            for event in backlog:
                yield _frame(event)
            while True:
                item = await queue.get()
                if item is None:
                    raise httpx.ReadError("connection reset (test double went down)")
                yield _frame(item)
        finally:
            self._listeners.discard(queue)

    # -- helpers ---------------------------------------------------------------------------
    def _times(self, block: dict[str, Any]) -> dict[str, Any]:
        if self.block_times:
            return block
        return {k: v for k, v in block.items() if k not in ("time", "commit_latency_ms")}

    def _derive(self, key: dict[str, Any], path: str) -> Any:
        chain = bytes.fromhex(self.secrets[key["key_id"]]["chain_code"])
        try:
            return derive(Point.from_bytes(bytes.fromhex(key["public_key"])), chain, path)
        except DerivationError as exc:
            raise _Refuse(400, str(exc)) from None

    def _commit(self, txs: int) -> None:
        height = self.status["height"] + 1
        self.status["height"] = height
        block = {
            "height": height,
            "hash": _h(f"block {height}"),
            "prev_hash": _h(f"block {height - 1}"),
            "proposer": self.status["primary"],
            "view": self.status["view"],
            "time": self.clock,
            "txs": [],
            "commit_latency_ms": 40,
            "certificate": {
                "view": self.status["view"],
                "signers": [v["peer_id"] for v in self.validators[:3]],
                "quorum": 3,
            },
        }
        self.blocks.append(block)
        self.blocks_full[str(height)] = block
        self.publish("block.committed", height=height, hash=block["hash"], txs=txs, latency_ms=40)


class _Refuse(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


#: (method, route) → the node's response model of a 2xx answer, as `tssnode.api.app` has it
_SHAPES: tuple[tuple[str, re.Pattern[str], Any], ...] = tuple(
    (method, re.compile(f"^{route}$"), model)
    for method, route, model in (
        ("GET", "/status", schema.Status),
        ("GET", "/validators", list[schema.Validator]),
        ("GET", "/peers", list[schema.Peer]),
        ("GET", "/keys", list[schema.Key]),
        ("GET", "/keys/[^/]+", schema.Key),
        ("GET", "/sessions", list[schema.Session]),
        ("GET", "/sessions/[^/]+", schema.Session),
        ("GET", "/blocks", list[schema.Block]),
        ("GET", "/blocks/[^/]+", schema.Block),
        ("GET", "/signatures/[^/]+", schema.Signature),
        ("GET", "/bridge", schema.BridgeInfo),
        ("GET", "/bridge/addresses", list[schema.DepositAddress]),
        ("GET", "/bridge/deposits", list[schema.Deposit]),
        ("GET", "/bridge/deposits/[^/]+", schema.Deposit),
        ("GET", "/bridge/releases", list[schema.Release]),
        ("GET", "/bridge/releases/[^/]+", schema.Release),
        ("POST", "/keygen", schema.KeyAccepted),
        ("POST", "/sign", schema.SignAccepted),
        ("POST", "/keys/[^/]+/(refresh|presign)", schema.KeyAccepted),
        ("POST", "/keys/[^/]+/derive", schema.Derived),
    )
)


#: the ids a node's routes take (`tssnode.api.app.PATH_ID`): 32 or 64 hex characters
_ID_ROUTES = {"keys": "a key id", "signatures": "a signature id", "sessions": "a session id"}
_PATH_ID = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{64})$")


def _check_ids(path: str) -> None:
    """Refuse an id a node's route refuses (400), before looking it up."""
    parts = path.strip("/").split("/")
    what = _ID_ROUTES.get(parts[0])
    if what is not None and len(parts) >= 2 and not _PATH_ID.match(parts[1]):
        raise _Refuse(400, f"{what} is 32 or 64 hex characters")


def _check_shape(method: str, path: str, answer: httpx.Response) -> None:
    """Raise if a 2xx answer is not what the node's model for its route takes."""
    if not answer.is_success:
        return
    for m, route, model in _SHAPES:
        if m == method and route.match(path):
            TypeAdapter(model).validate_python(json.loads(answer.content))
            return
    raise AssertionError(f"the double answers {method} {path}, which has no shape here")


def _json(data: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=data)


def _frame(event: dict[str, Any]) -> bytes:
    return f"id: {event['seq']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n".encode()


def _h(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def _addresses(point: Point) -> dict[str, str]:
    return {"eth": eth_address(point), "btc_p2wpkh": btc_p2wpkh(point)}
