"""An accepted request is durable, and a node below quorum accepts nothing: four
`tssnode run` processes, real LevelDB, killed with SIGKILL."""

from __future__ import annotations

import signal

import pytest

from tssnode.api.client import ApiError
from tssnode.testing.cluster import running_cluster, wait_for


@pytest.fixture
def cluster(tmp_path):
    with running_cluster(tmp_path, 4) as nodes:
        yield nodes


def _key(api, key_id, timeout=180):
    def active():
        try:
            k = api.get(f"/keys/{key_id}")
        except ApiError as exc:
            assert exc.status != 404, f"accepted request {key_id} is unknown: {exc}"
            return None
        return k if k["status"] == "active" else None

    return wait_for(active, f"key {key_id[:12]} active", timeout)


def test_below_quorum_the_api_says_503_instead_of_accepting(cluster):
    n1, _n2, n3, n4 = cluster
    api = n1.client()
    try:
        wait_for(lambda: api.get("/status")["peers_connected"] == 3, "peers", 60)
        n3.kill()
        n4.kill()
        wait_for(lambda: api.get("/status")["below_quorum"], "below quorum seen", 60)
        with pytest.raises(ApiError) as err:
            api.post("/keygen", {"threshold": 1, "parties": None})
        assert err.value.status == 503
        assert "below quorum: 2 of 4 validators online, 3 needed" in str(err.value)
        # and the health check says so, for a load balancer or an operator's probe
        with pytest.raises(ApiError) as err:
            api.get("/health")
        assert err.value.status == 503 and "below quorum" in str(err.value)
    finally:
        api.http.close()


def test_a_request_accepted_just_before_a_kill_completes_after_the_restart(cluster):
    """Node 1 accepts a keygen while its three peers are paused, and is killed at once:
    whatever its relay did, the request comes back from its journal when it restarts."""
    n1, n2, n3, n4 = cluster
    api = n1.client()
    try:
        wait_for(lambda: api.get("/status")["peers_connected"] == 3, "peers", 60)
        for node in (n2, n3, n4):
            node.proc.send_signal(signal.SIGSTOP)
        req = api.post("/keygen", {"threshold": 1, "parties": None})
        n1.kill()
        for node in (n2, n3, n4):
            node.proc.send_signal(signal.SIGCONT)
    finally:
        api.http.close()
    n1.start()
    n1.wait_api()
    api = n1.client()
    other = n3.client()
    try:
        key = _key(api, req["key_id"])
        assert _key(other, key["key_id"])["public_key"] == key["public_key"]
        # the peers never processed the relay before node 1 died: its journal brought it back
        assert "submitted again after a restart" in n1.log.read_text()
    finally:
        api.http.close()
        other.http.close()
