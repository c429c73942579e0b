"""`tssnode.testing.netcluster` and the net layer's multi-node fixtures built on it
(tests/net/conftest.py): each node bootstraps from exactly one other yet all end fully
connected; teardown leaves no tasks, threads, processes or stderr output."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio

from tests.net.conftest import child_tasks, wait_threads
from tssnode.config import NodeConfig
from tssnode.net import peerid
from tssnode.testing.netcluster import LocalCluster, ProcessCluster, local_cluster, process_cluster


@pytest.mark.trio
async def test_local_cluster_is_fully_connected(net_cluster: LocalCluster) -> None:
    assert len(net_cluster) == 3
    for i, node in enumerate(net_cluster.nodes):
        assert node.running
        assert len(node.config.bootstrap) == 1  # told about one peer only
        others = {peerid.from_text(p) for p in net_cluster.others(i)}
        assert set(node.peers.ready()) == others
        for record in node.peers.records():
            assert record.addrs, "every peer's listen address was learnt"
            assert record.connected and record.ready


@pytest.mark.trio
async def test_local_cluster_stops_without_leftovers(tmp_path: Path) -> None:
    threads = threading.active_count()
    tasks = child_tasks()
    async with local_cluster(tmp_path, 4) as cluster:
        assert threading.active_count() > threads  # pubsub's sweeper threads, one per node
        nodes = list(cluster.nodes)
    assert not any(n.running for n in nodes)
    assert child_tasks() == tasks
    assert await wait_threads(threads) <= threads
    for node in nodes:  # the inbox and event channels are closed: consumers finish
        with pytest.raises(trio.EndOfChannel):
            await node.inbox.receive()


@pytest.mark.trio
async def test_local_cluster_restarts_a_node(net_cluster: LocalCluster) -> None:
    old = net_cluster[1]
    await net_cluster.stop_node(1)
    assert not old.running
    new = await net_cluster.start_node(1)
    assert new is net_cluster[1] and new.peer_id == old.peer_id  # same identity
    await net_cluster.wait_connected(30)


@pytest.mark.trio
async def test_process_cluster_is_fully_connected(process_nodes: ProcessCluster) -> None:
    for i, node in enumerate(process_nodes.nodes):
        config = NodeConfig.load(node.config_path)  # generated files are valid configs
        assert len(config.net.bootstrap) == 1
        assert config.data_dir == node.spec.data_dir
        status = await node.call("status")
        assert status["peer_id"] == node.peer_id
        assert sorted(status["ready"]) == sorted(process_nodes.others(i))
        assert (node.spec.data_dir / "net.log").exists()


@pytest.mark.trio
async def test_process_cluster_shuts_down_cleanly(tmp_path: Path) -> None:
    async with process_cluster(tmp_path, 2) as cluster:
        procs = [n.process for n in cluster.nodes]
    assert all(p is not None and p.returncode == 0 for p in procs)  # clean exits, no kill
    assert cluster.stderr_output() == {}
