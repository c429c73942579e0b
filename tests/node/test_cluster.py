"""Four `tssnode run` processes on loopback: real LevelDB, real libp2p, the HTTP API."""

from __future__ import annotations

import time

import pytest
from ecdsa import SECP256k1, VerifyingKey
from eth_keys import keys as eth_keys

from tssnode.api.client import ApiError
from tssnode.protocol.hashing import message_digest
from tssnode.testing.cluster import add_node, running_cluster, wait_for

#: No block of this module's cluster can be older than this.
IMPORTED = time.time()


@pytest.fixture
def cluster(tmp_path, request):
    # a test may shorten the round timeout (how long a session waits for a silent party)
    marker = request.node.get_closest_marker("round_timeout")
    timeout = marker.args[0] if marker else 120.0
    with running_cluster(tmp_path, 4, round_timeout=timeout) as nodes:
        yield nodes


def _signature(api, out, what, timeout):
    """The signature of a sign request `out` once done (read at `api`)."""
    return wait_for(
        lambda: (
            (s := _get(api, f"/signatures/{out['signature_id']}")) and s["status"] == "done" and s
        ),
        what,
        timeout,
    )


def _get(api, path):
    """The resource, or None while the node does not know it yet (404)."""
    try:
        return api.get(path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def test_keygen_at_node2_sign_via_node4_read_at_node1(cluster):
    clients = [node.client() for node in cluster]
    try:
        _keygen_and_sign(*clients)
        # each node's passphrase came in TSSNODE_PASSPHRASE: nothing to warn of, and
        # neither it nor the vault key file is anywhere to be seen
        assert all(c.get("/status")["warnings"] == [] for c in clients)
    finally:
        for c in clients:
            c.http.close()
    for node in cluster:
        assert node.passphrase and node.passphrase not in node.log.read_text()
        assert not (node.data_dir / "vault.key").exists()


def _keygen_and_sign(n1, n2, n3, n4):
    # all four see each other
    wait_for(
        lambda: all(c.get("/status")["peers_connected"] == 3 for c in (n1, n2, n3, n4)), "peers"
    )
    req = n2.post("/keygen", {"threshold": 2, "parties": None})
    key = wait_for(
        lambda: (k := _get(n1, f"/keys/{req['key_id']}")) and k["status"] == "active" and k,
        "key",
        180,
    )
    assert key["threshold"] == 2 and len(key["parties"]) == 4
    assert key["addresses"]["btc_p2wpkh"].startswith("bcrt1q")
    out = n4.post("/sign", {"key_id": key["key_id"], "message": "gm", "hash": "keccak256"})
    sig = _signature(n1, out, "signature", 180)
    digest = message_digest(b"gm", "keccak256")
    assert sig["digest"] == digest.hex() == out["digest"]
    pub = bytes.fromhex(key["public_key"])
    rs = bytes.fromhex(sig["r"] + sig["s"])
    assert VerifyingKey.from_string(pub, curve=SECP256k1).verify_digest(rs, digest)
    recovered = eth_keys.Signature(vrs=(sig["v"] - 27, int(sig["r"], 16), int(sig["s"], 16)))
    assert (
        recovered.recover_public_key_from_msg_hash(digest).to_checksum_address()
        == key["addresses"]["eth"]
    )
    # the id POST /keygen returned signs too (issue 14), at every node: no retry was made
    for c in (n2, n1):
        out2 = c.post("/sign", {"key_id": req["key_id"], "message": "by request id"})
        sig2 = _signature(c, out2, "a signature asked by the keygen's request id", 180)
        assert sig2["key_id"] == key["key_id"]
        digest2 = message_digest(b"by request id", "sha256")
        assert VerifyingKey.from_string(pub, curve=SECP256k1).verify_digest(
            bytes.fromhex(sig2["r"] + sig2["s"]), digest2
        )
    # every node's chain is identical
    height = min(c.get("/status")["height"] for c in (n1, n2, n3, n4))
    chains = [
        [b["hash"] for b in c.get("/blocks", **{"from": 1, "limit": height})]
        for c in (n1, n2, n3, n4)
    ]
    assert len(chains[0]) == height and all(ch == chains[0] for ch in chains)
    # each node's note on each block: when it committed it and how long that took
    for b in n1.get("/blocks", **{"from": 1, "limit": height}):
        assert IMPORTED <= b["time"] <= time.time()
        assert b["commit_latency_ms"] is None or 0 <= b["commit_latency_ms"] < 600_000
    assert any(
        isinstance(b["commit_latency_ms"], int)
        for b in n1.get("/blocks", **{"from": 1, "limit": height})
    )


def test_bad_requests_get_clear_4xx(cluster):
    node = cluster[0]
    with node.client() as api:
        cases = [
            (lambda: api.post("/keygen", {"threshold": "two"}), 422),
            (lambda: api.post("/keygen", {"threshold": 9}), 422),
            (lambda: api.post("/keygen", {"threshold": 1, "extra": 1}), 422),
            (lambda: api.post("/sign", {"key_id": "nope", "message": "x"}), 404),
            (lambda: api.post("/sign", {"key_id": "nope"}), 422),
            (lambda: api.post("/sign", {"key_id": "k", "message": "x", "message_hex": "00"}), 422),
            (lambda: api.get("/keys/ffff"), 400),  # not a key id's shape
            (lambda: api.get("/keys/" + "ab" * 16), 404),
            (lambda: api.get("/signatures/zz"), 400),
            (lambda: api.get("/signatures/" + "ab" * 32), 404),
            (lambda: api.get("/blocks", limit="many"), 400),
            (lambda: api.get("/blocks/abc"), 400),
            (lambda: api.get("/tx/1234"), 400),
            (lambda: api.get("/nowhere"), 404),
            (lambda: api.post("/keys/ffff/refresh"), 400),
            (lambda: api.post(f"/keys/{'ab' * 16}/refresh"), 404),
            (lambda: api.post(f"/keys/{'ab' * 16}/refresh", {"parties": []}), 422),
            (lambda: api.post(f"/keys/{'ab' * 16}/refresh", {"threshold": -1}), 422),
            (lambda: api.post("/validators/join", {"request": "zz"}), 422),
            (lambda: api.post("/validators/join", {"request": "00ff"}), 400),
            (lambda: api.post("/validators/join", {}), 422),
        ]
        for call, status in cases:
            with pytest.raises(ApiError) as info:
                call()
            assert info.value.status == status, (info.value, status)
            assert info.value.message
        # a keygen that is still pending cannot sign
        req = api.post("/keygen", {"threshold": 1, "parties": None})
        with pytest.raises(ApiError) as info:
            api.post("/sign", {"key_id": req["key_id"], "message": "too early"})
        assert info.value.status == 409 and "pending" in info.value.message
        with pytest.raises(ApiError) as info:  # nor be refreshed
            api.post(f"/keys/{req['key_id']}/refresh")
        assert info.value.status == 409 and "pending" in info.value.message
        assert api.get("/status")["height"] >= 0  # the node is still fine
    import httpx

    r = httpx.get(f"{node.api_url}/status")
    assert r.status_code == 401 and "token" in r.json()["error"]
    r = httpx.get(f"{node.api_url}/status", headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert httpx.get(f"{node.api_url}/health").json() == {"ok": True}


@pytest.mark.slow  # four processes, two kills, a restart, retries: 40 s alone
def test_a_signer_killed_during_signing_the_signature_still_completes(cluster):
    """t = 2 of 4: kill one node after keygen; the signature completes with the other
    three (retried without the silent node if it was chosen), and the killed node,
    restarted, catches up and still holds a share that signs."""
    clients = [node.client() for node in cluster]
    try:
        n1, n2, _n3, _n4 = clients
        wait_for(lambda: all(c.get("/status")["peers_connected"] == 3 for c in clients), "peers")
        req = n1.post("/keygen", {"threshold": 2, "parties": None})
        key = wait_for(
            lambda: (k := _get(n2, f"/keys/{req['key_id']}")) and k["status"] == "active" and k,
            "key",
            180,
        )
        wait_for(
            lambda: all(
                (_get(c, f"/keys/{key['key_id']}") or {}).get("status") == "active" for c in clients
            ),
            "key everywhere",
        )
        cluster[2].kill()  # node 3 dies
        out = n1.post("/sign", {"key_id": key["key_id"], "message": "still works"})
        sig = _signature(n1, out, "signature with a node down", 240)
        assert cluster[2].peer_id not in sig["signers"]
        digest = message_digest(b"still works", "sha256")
        vk = VerifyingKey.from_string(bytes.fromhex(key["public_key"]), curve=SECP256k1)
        assert vk.verify_digest(bytes.fromhex(sig["r"] + sig["s"]), digest)
        # restart node 3: it catches up and its share (sealed in its LevelDB) still signs
        cluster[2].start()
        cluster[2].wait_api()
        with cluster[2].client() as n3b:
            target = n1.get("/status")["height"]
            wait_for(lambda: n3b.get("/status")["height"] >= target, "catch up", 120)
            assert n3b.get(f"/keys/{key['key_id']}")["status"] == "active"
        cluster[0].kill()  # now node 1 is down: nodes 2, 3, 4 must sign
        out2 = n2.post("/sign", {"key_id": key["key_id"], "message": "after restart"})
        sig2 = _signature(n2, out2, "signature including the restarted node", 240)
        assert cluster[2].peer_id in sig2["signers"]
        assert vk.verify_digest(
            bytes.fromhex(sig2["r"] + sig2["s"]), message_digest(b"after restart", "sha256")
        )
    finally:
        for c in clients:
            c.http.close()


# (Slow tier: about 45 s on 2 cores, and `make test` must stay under 20 minutes; the
# fast tier keeps the in-process join tests of tests/ledger/test_state_transfer.py.)
@pytest.mark.slow
def test_a_fifth_node_joins_and_takes_part_in_a_refresh(cluster, tmp_path):
    """A node that knows only a bootstrap peer learns the genesis, the validators and the
    chain; voted in by three validators it becomes one (on an otherwise idle chain), a
    refresh moves the key onto all five, and a signature then needs it."""
    clients = [node.client() for node in cluster]
    fifth = add_node(tmp_path, 5, bootstrap=cluster[0])
    try:
        n1, n2, _n3, _n4 = clients
        wait_for(lambda: all(c.get("/status")["peers_connected"] == 3 for c in clients), "peers")
        req = n1.post("/keygen", {"threshold": 1, "parties": None})
        key = wait_for(
            lambda: (
                all(
                    (_get(c, f"/keys/{req['key_id']}") or {}).get("status") == "active"
                    for c in clients
                )
                and n2.get(f"/keys/{req['key_id']}")
            ),
            "key everywhere",
            180,
        )
        key_id = key["key_id"]

        fifth.start()
        fifth.wait_api()
        c5 = fifth.client()
        clients.append(c5)
        height = n1.get("/status")["height"]
        wait_for(lambda: c5.get("/status")["height"] >= height, "the newcomer to catch up", 60)
        assert (fifth.data_dir / "genesis.toml").exists()  # learnt from its bootstrap peer
        assert c5.get("/status")["chain_id"] == n1.get("/status")["chain_id"]
        assert len(c5.get("/validators")) == 4
        assert c5.get(f"/keys/{key_id}")["public_key"] == key["public_key"]
        join = c5.get("/join-request")
        assert join["peer_id"] == fifth.peer_id and not join["is_validator"]

        with pytest.raises(ApiError) as info:  # not a join request: 400, nothing submitted
            n1.post("/validators/join", {"request": "00ff"})
        assert info.value.status == 400
        for c in clients[:3]:  # 2f + 1 of the four vote it in
            c.post("/validators/join", {"request": join["request"]})
        wait_for(
            lambda: all(
                fifth.peer_id in {v["peer_id"] for v in c.get("/validators")} for c in clients
            ),
            "five validators everywhere",
            60,
        )
        assert c5.get("/join-request")["is_validator"]
        # the links to the newcomer turn from chain-sync into validator links (a reconnect)
        wait_for(
            lambda: all(c.get("/status")["validators_online"] == 5 for c in clients),
            "five validators online everywhere",
            60,
        )

        parties = [v["peer_id"] for v in n1.get("/validators")]
        change = {"parties": parties, "threshold": 3}
        vote = n2.post(f"/keys/{key_id}/refresh", change)
        wait_for(lambda: _get(n2, f"/tx/{vote['tx']}"), "the first vote in a block", 30)
        with pytest.raises(ApiError) as info:  # one vote is not a change
            n2.post(f"/keys/{key_id}/refresh", change)
        assert info.value.status == 409 and "already voted" in info.value.message
        for c in (n1, clients[2], c5):  # 2f+1 = 4 of the 5 validators ask for it
            c.post(f"/keys/{key_id}/refresh", change)
        moved = wait_for(
            lambda: (
                all(
                    (k := c.get(f"/keys/{key_id}"))["epoch"] == 1 and len(k["parties"]) == 5
                    for c in clients
                )
                and c5.get(f"/keys/{key_id}")
            ),
            "the key on five parties",
            180,
        )
        assert moved["public_key"] == key["public_key"] and moved["threshold"] == 3
        assert fifth.peer_id in moved["parties"]

        # t = 3: any 4 of 5 sign; with node 1 down the newcomer must be one of them
        cluster[0].kill()
        out = n2.post("/sign", {"key_id": key_id, "message": "signed with the newcomer"})
        sig = _signature(n2, out, "a signature with the newcomer", 240)
        assert fifth.peer_id in sig["signers"] and cluster[0].peer_id not in sig["signers"]
        digest = message_digest(b"signed with the newcomer", "sha256")
        vk = VerifyingKey.from_string(bytes.fromhex(key["public_key"]), curve=SECP256k1)
        assert vk.verify_digest(bytes.fromhex(sig["r"] + sig["s"]), digest)
        signature = eth_keys.Signature(vrs=(sig["v"] - 27, int(sig["r"], 16), int(sig["s"], 16)))
        recovered = signature.recover_public_key_from_msg_hash(digest)
        assert recovered.to_compressed_bytes().hex() == key["public_key"]
    finally:
        for c in clients:
            c.http.close()
        fifth.stop()


@pytest.mark.round_timeout(300.0)
def test_a_node_restarted_mid_keygen_fails_it_cleanly_and_it_is_retried(cluster):
    """Node 3 is killed while the keygen runs and restarted: it withdraws from the session
    it lost, so the request fails at once (the round timeout, 300 s here, plays no part)
    and the other parties' sessions stop; the node that asked retries it, now that node 3
    is back, and the retry makes the key."""
    clients = [node.client() for node in cluster]
    try:
        n1, n2, n3, _n4 = clients
        wait_for(lambda: all(c.get("/status")["peers_connected"] == 3 for c in clients), "peers")
        req = n1.post("/keygen", {"threshold": 1, "parties": None})
        wait_for(
            lambda: any(s["status"] == "running" for s in n3.get("/sessions")),
            "node 3 in the keygen",
            30,
            every=0.02,
        )
        cluster[2].kill()
        cluster[2].start()
        cluster[2].wait_api()
        key = wait_for(
            lambda: (k := _get(n1, f"/keys/{req['key_id']}")) and k["status"] == "active" and k,
            "the retried keygen",
            120,
        )
        assert key["key_id"] != req["key_id"]  # the request id turned into the key's id
        # node 2 did not ask, yet follows node 1's retry through the ledger (its nonce
        # names the first try) and says why the first try failed
        seen = wait_for(
            lambda: (k := _get(n2, f"/keys/{req['key_id']}")) and k["status"] == "active" and k,
            "the retry, followed at node 2",
            60,
        )
        assert seen["key_id"] == key["key_id"]
        (first,) = seen["previous"]
        assert first["request"] == req["key_id"] and first["status"] == "failed", first
        assert first["blame"]["check"].startswith("withdrawn"), first
        stopped = [s for s in n2.get("/sessions") if s["status"] == "stopped"]
        assert stopped and all(s["phase"] in ("keygen", "aux") for s in stopped)
        assert "withdrawn: this node restarted" in cluster[2].log.read_text()
        with cluster[2].client() as n3b:
            wait_for(
                lambda: (_get(n3b, f"/keys/{key['key_id']}") or {}).get("status") == "active",
                "the restarted node to hold the key",
                60,
            )
        out = n2.post("/sign", {"key_id": key["key_id"], "message": "after the retry"})
        sig = _signature(n2, out, "a signature with the retried key", 120)
        vk = VerifyingKey.from_string(bytes.fromhex(key["public_key"]), curve=SECP256k1)
        digest = message_digest(b"after the retry", "sha256")
        assert vk.verify_digest(bytes.fromhex(sig["r"] + sig["s"]), digest)
    finally:
        for c in clients:
            c.http.close()
