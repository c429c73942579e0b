"""A restarted node takes up what its disk allows and gives up the rest at once (issue 12).

Four `tssnode run` processes with a long round timeout (300 s), so that only the node's
own recovery, not the other parties' timeouts, can end a session it lost:

- killed after writing its signature share and before sending it, a signer restarts,
  withdraws, and the sign request fails at once with a "withdrawn" blame naming it; the
  other signer's session stops; the request is retried without it and signs;
- killed after storing its key share and before voting for the key, a party restarts and
  votes then: the ledger counts it among the key's holders;
- killed before storing its key share, a party is left out of the holders (it is never
  chosen to sign), and the next refresh gives it a share again.
"""

from __future__ import annotations

from tests.node.test_failpoints import Crashy, _get, _post, _signed, _until
from tssnode.testing.cluster import make_cluster


def _cluster(tmp_path, point: str, *, pool: int = 0):
    nodes = make_cluster(tmp_path, 4, presign_pool=pool, round_timeout=300)
    crashy = Crashy(nodes[2], point)  # node 3 armed
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_api()
    apis = [node.client() for node in nodes]
    _until(crashy, lambda: apis[0].get("/status")["peers_connected"] == 3, "peers", 60)
    return nodes, crashy, apis


def _keygen(crashy, api, threshold: int = 1):
    req = _post(crashy, api, "/keygen", {"threshold": threshold, "parties": None})
    return _until(
        crashy,
        lambda: (k := _get(api, f"/keys/{req['key_id']}")) and k["status"] == "active" and k,
        "key active",
    )


def _stop(nodes, apis, crashy=None) -> None:
    if crashy is not None:
        crashy.close()
    for a in apis:
        a.http.close()
    for node in nodes:
        node.stop()


def test_a_signer_that_restarts_mid_session_withdraws_and_the_request_is_retried(tmp_path):
    nodes, crashy, apis = _cluster(tmp_path, "sign.share-written", pool=2)
    try:
        a1 = apis[0]
        key = _keygen(crashy, a1)
        key_id = key["key_id"]
        node3 = nodes[2].peer_id
        # sign through node 1 until node 3 is a signer (and dies at its point)
        for i in range(10):
            _until(crashy, lambda: (k := _get(a1, f"/keys/{key_id}")) and k["presignatures"] >= 1,
                   "a pooled presignature")  # fmt: skip
            out = _post(crashy, a1, "/sign", {"key_id": key_id, "message": f"m{i}",
                                              "hash": "sha256"})  # fmt: skip
            first = out["tx"]
            _signed_or_crashed = _until(
                crashy,
                lambda o=out: (
                    crashy.hits
                    or (
                        (s := _get(a1, f"/signatures/{o['signature_id']}"))
                        and s["status"] == "done"
                    )
                ),
                "signature or crash",
                120,
            )
            assert _signed_or_crashed
            if crashy.hits:
                break
        assert crashy.hits == 1, "node 3 was never chosen to sign"
        # its request failed at once with node 3's withdrawal, not a 300 s timeout
        tx = _until(
            crashy,
            lambda: (
                (t := _get(a1, f"/tx/{first}"))
                and (r := _get(a1, f"/signatures/{first}"))
                and r["status"] == "done"
                and t
            ),
            "the request retried and signed",
            150,
        )
        assert tx["height"] is not None
        done = _get(a1, f"/signatures/{first}")
        # node 2 made no retry, but follows node 1's through the ledger (the retry's nonce
        # names the first try) to the same signature, and says why the first try failed
        seen = _until(
            crashy,
            lambda: (s := _get(apis[1], f"/signatures/{first}")) and s["status"] == "done" and s,
            "the retry, followed at node 2",
        )
        assert (seen["r"], seen["s"], seen["attempts"]) == (done["r"], done["s"], 2)
        (tried,) = seen["previous"]
        assert tried["signature_id"] == first and tried["status"] == "failed", tried
        assert tried["blame"]["check"].startswith("withdrawn"), tried
        assert [key["parties"][j - 1] for j in tried["blame"]["culprits"]] == [node3]
        # the other signer's session of the first try stopped when the ledger failed it
        stopped = [
            s
            for a in apis
            for s in (_get(a, "/sessions") or [])
            if s["status"] == "stopped" and s["phase"] == "sign"
        ]
        assert stopped, "no session was stopped"
        _signed(crashy, apis[2], key, b"through the restarted node")
    finally:
        _stop(nodes, apis, crashy)


def test_a_party_that_stored_its_share_votes_after_a_restart(tmp_path):
    nodes, crashy, apis = _cluster(tmp_path, "share.written")
    try:
        key = _keygen(crashy, apis[0])
        _until(crashy, lambda: crashy.hits, "node 3 died at share.written", 120)
        # the others' quorum made the key active; node 3's replayed vote makes it a holder
        holders = _until(
            crashy,
            lambda: (
                (k := _get(apis[0], f"/keys/{key['key_id']}"))
                and len(k["holders"]) == 4
                and k["holders"]
            ),
            "node 3 among the holders",
            120,
        )
        assert sorted(holders) == sorted(key["parties"])
        assert "voted again after a restart" in nodes[2].log.read_text()
    finally:
        _stop(nodes, apis, crashy)


def test_a_party_without_a_share_is_left_out_until_a_refresh_gives_it_one(tmp_path):
    nodes, crashy, apis = _cluster(tmp_path, "keygen.share-computed")
    try:
        a1 = apis[0]
        # node 3 comes back only once the others made the key without it: back earlier, it
        # withdraws from the keygen, which then fails and is retried with all four (also
        # right, but not what this test is about)
        crashy.restart_when = lambda: any(k["status"] == "active" for k in a1.get("/keys"))
        key = _keygen(crashy, a1)
        key_id = key["key_id"]
        _until(crashy, lambda: crashy.hits, "node 3 died before storing its share", 120)
        node3 = nodes[2].peer_id
        k = _until(crashy, lambda: _get(a1, f"/keys/{key_id}"), "key")
        assert node3 not in k["holders"] and len(k["holders"]) == 3
        for i in range(4):  # never chosen to sign, so every signature completes
            _signed(crashy, apis[i % 4], key, b"without node 3: %d" % i)
        _post(crashy, apis[3], f"/keys/{key_id}/refresh", {})
        k = _until(
            crashy,
            lambda: (
                (k := _get(a1, f"/keys/{key_id}"))
                and k["epoch"] == 1
                and len(k["holders"]) == 4
                and k
            ),
            "refreshed, with node 3 holding a share again",
            180,
        )
        assert k["public_key"] == key["public_key"]
        _signed(crashy, apis[2], key, b"node 3 may sign again")
    finally:
        _stop(nodes, apis, crashy)
