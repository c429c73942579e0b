"""A burst of sign requests on four `tssnode run` processes (issue 12): every request is
ordered, every signature completes and verifies, the views do not storm, a request made
after the burst is still ordered, the nodes' memory does not run away, and once all is
done the nodes rest (idle CPU)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from ecdsa import SECP256k1, VerifyingKey

from tssnode.api.client import get_or_none
from tssnode.protocol.hashing import message_digest
from tssnode.testing.cluster import new_key, running_cluster, wait_for


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: An idle node (nothing to order, no session running) may use at most this share
#: of a core: heartbeats, pings and the liveness watch. Issue 12 found nodes at ~50 % with
#: nothing to do after a burst.
IDLE_CPU_MAX = 0.10
IDLE_WINDOW = 5.0


def _idle_cpu(api, nodes) -> list[float]:
    """Once nothing is left to do anywhere, each node's share of a core over a window."""

    def quiet() -> bool:
        for c in api:
            if c.get("/status")["pending_requests"]:
                return False
            if any(s["status"] == "running" for s in c.get("/sessions")):
                return False
        return True

    def work_done() -> tuple[int, float]:  # the height, and the newest session's start
        sessions = api[0].get("/sessions")
        return api[0].get("/status")["height"], max((s["started"] for s in sessions), default=0)

    for _ in range(5):
        # (twice, 2 s apart: the pools' refill starts its sessions a block after the last)
        wait_for(lambda: quiet() and not time.sleep(2.0) and quiet(), "quiet", 300)
        done = work_done()
        before = [_cpu_s(n.proc.pid) for n in nodes]
        time.sleep(IDLE_WINDOW)
        after = [_cpu_s(n.proc.pid) for n in nodes]
        if work_done() == done:  # nothing was committed or started meanwhile: it was idle
            return [(b - a) / IDLE_WINDOW for a, b in zip(before, after, strict=True)]
    raise AssertionError("the network never stayed idle for a whole window")


def _signed_burst(nodes, api, key, count: int, timeout: float, tag: str = "") -> float:
    """`count` sign requests at once, round-robin over the four APIs: every one ordered
    and signed, every signature verified. Returns the signatures per second."""
    pub = VerifyingKey.from_string(bytes.fromhex(key["public_key"]), curve=SECP256k1)

    def sign(i: int):  # many at once
        with nodes[i % 4].client(timeout=60) as c:
            return c.post(
                "/sign", {"key_id": key["key_id"], "message": f"burst{tag} {i}", "hash": "sha256"}
            )

    t0 = time.monotonic()
    with ThreadPoolExecutor(32) as ex:
        outs = list(ex.map(sign, range(count)))
    # ordering must keep up even when signing takes a while
    wait_for(
        lambda: all(get_or_none(api[0], f"/tx/{o['tx']}") for o in outs),
        f"all {count} requests in blocks",
        timeout,
        1.0,
    )

    def done():
        sigs = [
            get_or_none(api[i % 4], f"/signatures/{o['signature_id']}") for i, o in enumerate(outs)
        ]
        return all(s and s["status"] == "done" for s in sigs) and sigs

    sigs = wait_for(done, f"all {count} signatures", timeout, 2.0)
    elapsed = time.monotonic() - t0
    for i, s in enumerate(sigs):
        digest = message_digest(f"burst{tag} {i}".encode(), "sha256")
        assert pub.verify_digest(bytes.fromhex(s["r"] + s["s"]), digest)
    return count / elapsed


@contextmanager
def _network(tmp_path) -> Iterator[tuple[list, list, dict]]:
    """Four nodes, a 1-of-4 key with a pool of 4 ready."""
    with running_cluster(tmp_path, 4, presign_pool=4) as nodes:
        api = [n.client(timeout=30) for n in nodes]
        try:
            wait_for(lambda: all(c.get("/status")["peers_connected"] == 3 for c in api), "peers")
            yield nodes, api, new_key(api[1], api[0], pool=4, timeout=180)
        finally:
            for c in api:
                c.http.close()


def _burst(tmp_path, count: int, timeout: float) -> None:
    with _network(tmp_path) as (nodes, api, key):
        rss_before = [_rss_kib(n.proc.pid) for n in nodes]
        view0 = max(c.get("/status")["view"] for c in api)
        rate = _signed_burst(nodes, api, key, count, timeout)
        probe = api[2].post(
            "/sign", {"key_id": key["key_id"], "message": "probe", "hash": "sha256"}
        )
        wait_for(
            lambda: get_or_none(api[0], f"/tx/{probe['tx']}"), "a request after the burst", 60, 0.5
        )
        assert max(c.get("/status")["view"] for c in api) - view0 <= 4, "view-change storm"
        statuses = [c.get("/status") for c in api]
        assert not any(s["stalled"] for s in statuses)
        rss_after = [_rss_kib(n.proc.pid) for n in nodes]
        # memory: bounded growth (caches of a few hundred sessions, not a leak per message)
        assert all(a < b + 200 * 1024 for a, b in zip(rss_after, rss_before, strict=True)), (
            rss_before,
            rss_after,
        )
        # and once the work is done, the nodes rest (no busy loop left behind)
        cpu = _idle_cpu(api, nodes)
        assert all(share <= IDLE_CPU_MAX for share in cpu), f"idle nodes busy: {cpu}"
        print(f"\nburst of {count}: {rate:.1f} signatures/s; "
              f"RSS KiB before {rss_before} after {rss_after}; idle CPU "
              f"{[f'{c:.1%}' for c in cpu]}")  # fmt: skip


#: What a burst of 100 may still add to a node's RSS once the first two have warmed its
#: caches, pools and arenas. Before the fixes of docs/reliability.md ("Node memory: what
#: holds it") every 100 requests added ~25 MiB for good; measured after them (2026-12-07):
#: +19 to +20, +12 to +17, then +10 to +11 MiB for the three bursts of 100.
LATE_BURST_GROWTH_KIB = 16 * 1024


def test_a_burst_of_50_sign_requests_completes(tmp_path):
    _burst(tmp_path, 50, 240)


@pytest.mark.slow
def test_a_burst_of_200_sign_requests_completes(tmp_path):
    _burst(tmp_path, 200, 900)


@pytest.mark.slow
def test_node_memory_settles_over_bursts(tmp_path):
    """Three bursts of 100 on one network: the third adds little (no leak per request)."""
    with _network(tmp_path) as (nodes, api, key):
        rss = [[_rss_kib(n.proc.pid) for n in nodes]]
        for b in range(3):
            _signed_burst(nodes, api, key, 100, 600, tag=f"-{b}")
            _idle_cpu(api, nodes)  # (settled: the pool refilled, nothing running)
            rss.append([_rss_kib(n.proc.pid) for n in nodes])
        print(f"\nRSS KiB per node, before and after each burst of 100: {rss}")
        growth = [after - before for before, after in zip(rss[2], rss[3], strict=True)]
        assert all(g <= LATE_BURST_GROWTH_KIB for g in growth), (growth, rss)
