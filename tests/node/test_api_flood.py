"""An API flood at one node slows only the flooder (issue 13): four `tssnode run`
processes; 1,000 requests from 20 threads at node 1's API (reads of the heaviest routes
and refused writes); meanwhile a keygen asked at node 2 needs node 1's part in consensus
and in the protocol. Node 1 stays healthy and connected to its three peers throughout,
the keygen completes, a signature made after it verifies, and the flood's 429s are
counted by the client and by node 1's `/status`."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from ecdsa import SECP256k1, VerifyingKey

from tssnode.api.client import get_or_none
from tssnode.protocol.hashing import message_digest
from tssnode.testing.cluster import make_cluster, wait_for

FLOOD = [
    ("GET", "/status", None),
    ("GET", "/blocks?limit=500", None),
    ("GET", "/keys", None),
    ("GET", "/validators", None),
    ("POST", "/sign", {"key_id": "00" * 16, "message": "x"}),  # refused: no such key
]


@pytest.mark.slow  # (a load test of about 35 s; the fast tier keeps the API fuzz test)
def test_an_api_flood_at_one_node_leaves_it_in_the_network(tmp_path):
    nodes = make_cluster(tmp_path, 4)
    # node 1 with tighter limits than the defaults (100/s, bursts of 200), so that a
    # 1,000-request flood from one machine is sure to pass them
    config = nodes[0].config.read_text()
    nodes[0].config.write_text(config.replace("[api]\n", "[api]\nrate = 20\nburst = 50\n", 1))
    try:
        for n in nodes:
            n.start()
        for n in nodes:
            n.wait_api()
        _flood(nodes)
    finally:
        for n in nodes:
            n.stop()


def _flood(nodes) -> None:
    apis = [n.client(timeout=30) for n in nodes]
    wait_for(lambda: all(a.get("/status")["peers_connected"] == 3 for a in apis), "peers")
    token = (nodes[0].data_dir / "api.token").read_text().strip()
    codes: Counter[int] = Counter()
    done = threading.Event()

    def flood(i: int) -> None:
        method, path, body = FLOOD[i % len(FLOOD)]
        with httpx.Client(
            base_url=nodes[0].api_url,
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        ) as c:
            r = c.request(method, path, json=body)
        codes[r.status_code] += 1

    samples: list[tuple[int, int]] = []  # (node 1 health, node 1 seen by node 2)

    def watch() -> None:
        with httpx.Client(base_url=nodes[0].api_url, timeout=10) as c:
            while not done.is_set():
                health = c.get("/health").status_code
                seen = sum(
                    p["peer_id"] == nodes[0].peer_id and p["status"] == "connected"
                    for p in apis[1].get("/peers")
                )
                samples.append((health, seen))
                time.sleep(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        req = apis[1].post("/keygen", {"threshold": 1, "parties": None})
        with ThreadPoolExecutor(20) as ex:
            list(ex.map(flood, range(1000)))
        key = wait_for(
            lambda: (
                (k := get_or_none(apis[1], f"/keys/{req['key_id']}"))
                and k["status"] == "active"
                and k
            ),
            "the keygen asked during the flood",
            180,
        )
    finally:
        done.set()
        watcher.join()
    assert sum(codes.values()) == 1000 and not [c for c in codes if c >= 500], codes
    assert codes[429] > 0, codes  # the flood was throttled ...
    refused = apis[0].get("/status")["api_refused"]
    assert sum(refused.values()) >= codes[429] > 0, refused
    # ... and node 1 stayed healthy and connected while it lasted
    assert samples and all(h == 200 and seen == 1 for h, seen in samples), samples
    assert apis[0].get("/status")["peers_connected"] == 3
    out = apis[0].post("/sign", {"key_id": key["key_id"], "message": "after the flood"})
    sig = wait_for(
        lambda: (
            (s := get_or_none(apis[0], f"/signatures/{out['signature_id']}"))
            and s["status"] == "done"
            and s
        ),
        "a signature after the flood",
        120,
    )
    pub = VerifyingKey.from_string(bytes.fromhex(key["public_key"]), curve=SECP256k1)
    digest = message_digest(b"after the flood", "sha256")
    assert pub.verify_digest(bytes.fromhex(sig["r"] + sig["s"]), digest)
    for a in apis:
        a.http.close()
