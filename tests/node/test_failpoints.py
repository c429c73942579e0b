"""Kill a node at every failpoint (`tssnode.failpoints`), restart it, and check that
nothing committed was lost and that the network goes on: four `tssnode run` processes,
node 2 armed with `TSSNODE_FAILPOINT`, a workload of keygen → pooled presignatures →
sign → refresh → sign. When node 2 dies at its point (exit status 86, as abruptly as
SIGKILL) it is restarted unarmed. The point was hit; node 2 came back with every block it
had reported committed; every node holds the same blocks; and node 2 signs again after
everything (its signatures verified with `ecdsa` and eth-keys)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ecdsa import SECP256k1, VerifyingKey
from eth_keys import keys as eth_keys

from tssnode import failpoints
from tssnode.api.client import ApiError, ApiUnavailable
from tssnode.ledger.chain import Tip
from tssnode.protocol.hashing import message_digest
from tssnode.store import LevelStore, layout
from tssnode.testing.cluster import NodeProc, make_cluster, wait_for

#: Points `make test` runs (a signature share and a block); the slow tier runs every point,
#: the keygen's share among them (tests/node/test_restart_recovery.py restarts a party that
#: stored its share in the fast tier too).
FAST = ("sign.share-written", "block.committed")
#: Later hits, in the slow tier: the refresh's share (the keygen's is the first), a
#: pooled presignature after the first refills, a block well into the workload.
LATER = ("share.written@2", "presign.stored@3", "block.committed@30")
#: A view change is not part of the workload: its point has a test of its own below.
WORKLOAD_POINTS = tuple(p for p in failpoints.POINTS if p != "pbft.view-change")


class Crashy:
    """Node 2 with a failpoint armed; restarted (unarmed) once it died at the point."""

    def __init__(self, node: NodeProc, point: str) -> None:
        self.node, self.point = node, point
        self.hits = 0
        #: the highest height node 2 reported while it ran: it must have them all after
        #: a restart (what it committed is on its disk before it says so)
        self.height_before = 0
        self._api: Any = None  # (node 2's API client, once it has written its token)
        node.extra_env = {failpoints.ENV: point}
        #: restart the dead node only once this holds (a test may let the others go on)
        self.restart_when: Callable[[], bool] = lambda: True
        self._down = False

    def check(self) -> None:
        proc = self.node.proc
        if proc is None or proc.poll() is None:
            if proc is not None and self._api is None:
                self._api = self.node.client(timeout=2)
            st = _get(self._api, "/status") if self._api is not None else None
            if st is not None:
                self.height_before = max(self.height_before, st["height"])
            return
        if not self._down:
            assert proc.returncode == failpoints.EXIT_CODE, (
                f"node 2 died with {proc.returncode}:\n{self.node.log.read_text()[-3000:]}"
            )
            name = self.point.partition("@")[0]  # (`name@N`: its N-th hit)
            assert f"failpoint {name} hit" in self.node.log.read_text()
            self.hits += 1
            self._down = True
        if not self.restart_when():
            return
        # what it said it had committed is on its disk (read there, before the restart,
        # so that no block fetched back from the peers can hide a loss)
        store = LevelStore(self.node.data_dir / "ledger.db")
        try:
            stored = Tip.from_bytes(store.get(layout.meta("tip")) or b"").height
        finally:
            store.close()
        assert stored >= self.height_before, (
            f"node 2 reported height {self.height_before}, its disk holds {stored}"
        )
        self._down = False
        self.node.extra_env = {}
        self.node.start()
        self.node.wait_api()
        if self._api is not None:
            self._api.http.close()
        self._api = self.node.client(timeout=2)
        st = _until(self, lambda: _get(self._api, "/status"), "node 2's status", 60)
        assert st["height"] >= self.height_before, (
            f"node 2 restarted at height {st['height']}, below the {self.height_before} it "
            f"had committed"
        )

    def close(self) -> None:
        """Close the client it watches node 2 with."""
        if self._api is not None:
            self._api.http.close()
            self._api = None


def _get(api, path) -> Any:
    try:
        return api.get(path)
    except ApiError as exc:
        if exc.status in (404, 503):
            return None
        raise
    except ApiUnavailable:
        return None


def _until(crashy: Crashy, fn, what: str, timeout: float = 300) -> Any:
    def step():
        crashy.check()
        return fn()

    return wait_for(step, what, timeout, every=0.5)


def _post(crashy: Crashy, api, path, body) -> Any:
    """POST at a live node; 503 (a quorum not seen yet, e.g. node 2 restarting) waits."""

    def attempt():
        try:
            return api.post(path, body)
        except ApiError as exc:
            if exc.status == 503:
                return None
            raise

    return _until(crashy, attempt, f"POST {path} accepted", 120)


def _signed(crashy: Crashy, api, key: dict[str, Any], message: bytes) -> dict[str, Any]:
    out = _post(crashy, api, "/sign", {"key_id": key["key_id"], "message": message.decode(),
                                      "hash": "sha256"})  # fmt: skip
    sig = _until(
        crashy,
        lambda: (
            (s := _get(api, f"/signatures/{out['signature_id']}")) and s["status"] == "done" and s
        ),
        f"signature of {message!r}",
    )
    digest = message_digest(message, "sha256")
    pub = bytes.fromhex(key["public_key"])
    rs = bytes.fromhex(sig["r"] + sig["s"])
    assert VerifyingKey.from_string(pub, curve=SECP256k1).verify_digest(rs, digest)
    rec = eth_keys.Signature(vrs=(sig["v"] - 27, int(sig["r"], 16), int(sig["s"], 16)))
    assert (
        rec.recover_public_key_from_msg_hash(digest).to_checksum_address()
        == (key["addresses"]["eth"])
    )
    return sig


def _run(tmp_path, point: str) -> None:
    nodes = make_cluster(tmp_path, 4, presign_pool=2, round_timeout=20)
    crashy = Crashy(nodes[1], point)
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_api()
        apis = [node.client() for node in nodes]
        a1, a2, _a3, a4 = apis
        _until(crashy, lambda: a1.get("/status")["peers_connected"] == 3, "peers", 60)
        req = _post(crashy, a1, "/keygen", {"threshold": 1, "parties": None})
        # (asked at the node that accepted it: it follows its own retry if node 2's crash
        # failed the first try)
        key = _until(
            crashy,
            lambda: (k := _get(a1, f"/keys/{req['key_id']}")) and k["status"] == "active" and k,
            "key active",
        )
        key_id = key["key_id"]
        _until(crashy, lambda: (k := _get(a4, f"/keys/{key_id}")) and k["presignatures"] >= 1,
               "a pooled presignature")  # fmt: skip
        # signer sets are drawn from the key's parties: sign until node 2 has been one
        # (a point of signing is hit then), eight times at most
        for i in range(8):
            _signed(crashy, apis[(i + 2) % 4], key, b"after keygen %d" % i)
            if crashy.hits:
                break
        _post(crashy, a4, f"/keys/{key_id}/refresh", {})
        _until(crashy, lambda: (k := _get(a1, f"/keys/{key_id}")) and k["epoch"] >= 1,
               "refreshed")  # fmt: skip
        _signed(crashy, a4, key, b"after refresh")
        if not crashy.hits:
            # the point may be one that fires on any block: give it blocks to fire on
            _until(crashy, lambda: crashy.hits > 0, f"failpoint {point} hit", 60)
        assert crashy.hits == 1
        # nothing committed was lost, and every node holds the same chain
        statuses = [_until(crashy, lambda a=a: _get(a, "/status"), "status") for a in apis]
        height = min(st["height"] for st in statuses)
        chains = [
            [b["hash"] for b in a.get("/blocks", **{"from": 1, "limit": height})] for a in apis
        ]
        assert len(chains[0]) == height and all(ch == chains[0] for ch in chains)
        # the restarted node signs again: sign through it until it is one of the signers
        # (signer sets are drawn from the key's parties; eight tries at most)
        for i in range(8):
            sig = _signed(crashy, a2, key, b"at the end, via the restarted node %d" % i)
            if nodes[1].peer_id in sig["signers"]:
                break
        else:
            raise AssertionError("node 2 was never a signer again after its restart")
        for a in apis:
            a.http.close()
        # the restarted node never looked like an equivocator (its gossip seqnos go on)
        for node in nodes:
            assert "Equivocation detected" not in node.log.read_text()
    finally:
        crashy.close()
        for node in nodes:
            node.stop()


@pytest.mark.parametrize("point", FAST)
def test_a_node_killed_at_a_failpoint_loses_nothing(tmp_path, point):
    _run(tmp_path, point)


@pytest.mark.slow
@pytest.mark.parametrize("point", [p for p in WORKLOAD_POINTS if p not in FAST])
def test_a_node_killed_at_every_other_failpoint_loses_nothing(tmp_path, point):
    _run(tmp_path, point)


@pytest.mark.slow
@pytest.mark.parametrize("point", LATER)
def test_a_node_killed_at_a_later_hit_of_a_failpoint_loses_nothing(tmp_path, point):
    _run(tmp_path, point)


def _named_in_the_code(call: str) -> set[str]:
    """Every name the product passes to `failpoints.<call>("...")`."""
    root = Path(failpoints.__file__).parent
    pattern = rf'failpoints\.{call}\("([^"]+)"\)'
    return {m for path in root.rglob("*.py") for m in re.findall(pattern, path.read_text())}


def test_every_failpoint_is_in_the_code():
    """POINTS is the list the suite runs: each name is hit somewhere, and nothing else is."""
    assert _named_in_the_code("hit") == set(failpoints.POINTS)


def test_every_corrupting_point_is_in_the_code_and_inert_unless_armed():
    assert _named_in_the_code("corrupting") == set(failpoints.CORRUPT_POINTS)
    try:
        failpoints.arm(None)
        assert not failpoints.corrupting("sign.result")
        failpoints.arm("corrupt:sign.result")
        assert failpoints.corrupting("sign.result") and failpoints.corrupting("sign.result")
        assert not failpoints.corrupting("other")
    finally:
        failpoints.arm(None)
