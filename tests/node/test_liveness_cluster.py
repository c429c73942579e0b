"""A stall you can see, on four `tssnode run` processes: two paused (SIGSTOP) while a
request waits → `/status` says stalled, `/health` answers 503 with the reason, the log
has a WARNING; resumed (SIGCONT) → blocks again, `/health` 200, the request completes."""

from __future__ import annotations

import signal

import httpx
import pytest

from tssnode.testing.cluster import running_cluster, wait_for


@pytest.fixture
def cluster(tmp_path):
    with running_cluster(tmp_path, 4, stall_after=3) as nodes:
        yield nodes


def test_a_stall_is_reported_and_clears(cluster):
    n1, _n2, n3, n4 = cluster
    api = n1.client()
    try:
        wait_for(lambda: api.get("/status")["peers_connected"] == 3, "peers", 60)
        health = httpx.get(f"{n1.api_url}/health")
        assert health.status_code == 200 and health.json() == {"ok": True}
        status = api.get("/status")
        assert status["stalled"] is False and status["liveness"] is None
        height = status["height"]
        for node in (n3, n4):
            node.proc.send_signal(signal.SIGSTOP)
        req = api.post("/keygen", {"threshold": 1, "parties": None})
        stalled = wait_for(
            lambda: (s := api.get("/status"))["stalled"] and s, "the stall is reported", 60
        )
        assert stalled["pending_requests"] >= 1 and stalled["height"] == height
        assert stalled["liveness"]
        health = httpx.get(f"{n1.api_url}/health")
        assert health.status_code == 503
        assert health.json() == {"ok": False, "reason": api.get("/status")["liveness"]}
        assert httpx.get(f"{n1.api_url}/health/live").status_code == 200
        warned = ("WARNING", "ledger stalled")
        wait_for(lambda: all(w in n1.log.read_text() for w in warned), "the WARNING line", 10)
        for node in (n3, n4):
            node.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: api.get("/status")["height"] > height, "blocks again", 120)
        wait_for(lambda: httpx.get(f"{n1.api_url}/health").status_code == 200, "healthy again", 120)
        key = wait_for(
            lambda: (k := api.get(f"/keys/{req['key_id']}")) and k["status"] == "active" and k,
            "the request completes",
            180,
        )
        assert key["threshold"] == 1
        assert api.get("/status")["stalled"] is False
    finally:
        api.http.close()
