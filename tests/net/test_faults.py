"""Faults with real OS processes: a node killed with SIGKILL and restarted with the same
identity rejoins and gets what it missed of an open round; a SIGSTOPped node makes direct
sends fail with a timeout (not hang), is then dropped by liveness, and rejoins on SIGCONT."""

from __future__ import annotations

import hashlib
import signal

import pytest
import trio

from tests.net.conftest import eventually
from tssnode.testing.netcluster import ProcessCluster, RemoteError
from tssnode.testing.netharness import payload

SESSION = "0f" * 8


async def peer_state(cluster: ProcessCluster, observer: int, peer: int) -> dict[str, object]:
    status = await cluster[observer].call("status")
    (record,) = [r for r in status["peers"] if r["peer_id"] == cluster.peer_ids[peer]]
    assert isinstance(record, dict)
    return record


async def wait_for(cluster: ProcessCluster, observer: int, peer: int, connected: bool) -> None:
    async def check() -> bool:
        return (await peer_state(cluster, observer, peer))["connected"] == connected

    await eventually(check, within=60, every=0.2)


@pytest.mark.trio
@pytest.mark.parametrize("process_nodes", [4], indirect=True)
async def test_killed_node_rejoins_and_catches_up(process_nodes: ProcessCluster) -> None:
    cluster, victim = process_nodes, 3
    senders = [0, 1, 2]
    identity = cluster.peer_ids[victim]

    cluster.kill(victim)
    assert await cluster.wait_exit(victim) == -signal.SIGKILL
    for i in senders:
        await wait_for(cluster, i, victim, connected=False)

    # the round is open while the victim is down: broadcasts and one direct message
    for i in senders:
        await cluster[i].call("broadcast", session=SESSION, round=7, size=2000, seed=f"b{i}")
    sent: dict[str, object] = {}

    async def send_direct() -> None:
        sent.update(
            await cluster[0].call(
                "send", peer=identity, session=SESSION, round=7, size=5000, seed="d", deadline=60
            )
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_direct)  # resent by node 0 until the victim is back
        await trio.sleep(1.0)
        restarted = await cluster.restart(victim)
    assert restarted.peer_id == identity
    assert (await restarted.call("status"))["peer_id"] == identity  # the key was reloaded
    await cluster.wait_connected(60)

    got = await restarted.call(
        "collect",
        session=SESSION,
        round=7,
        senders=[cluster.peer_ids[i] for i in senders],
        seconds=30,
    )
    assert got == {
        cluster.peer_ids[i]: hashlib.sha256(payload(2000, f"b{i}")).hexdigest() for i in senders
    }
    messages = await restarted.call("messages", session=SESSION, round=7)
    direct = [m for m in messages if not m["broadcast"]]
    assert [(m["sender"], m["sha256"]) for m in direct] == [(cluster.peer_ids[0], sent["sha256"])]
    assert {m["via"] for m in messages if m["broadcast"]} <= {"fetch", "gossip"}
    assert (await peer_state(cluster, 0, victim))["connects"] >= 2  # redialled after the kill


@pytest.mark.trio
@pytest.mark.parametrize("process_nodes", [3], indirect=True)
async def test_frozen_node_times_out_instead_of_hanging(process_nodes: ProcessCluster) -> None:
    cluster, frozen = process_nodes, 2
    cluster.freeze(frozen)
    try:
        with trio.fail_after(60):  # a hang fails the test here
            with pytest.raises(RemoteError) as failed:
                await cluster[0].call(
                    "send",
                    peer=cluster.peer_ids[frozen],
                    session=SESSION,
                    round=1,
                    size=100,
                    seed="x",
                    deadline=3,
                )
        assert failed.value.name == "DeliveryTimeout"
        # liveness notices the silence and drops the peer: a disconnect event at last
        await wait_for(cluster, 0, frozen, connected=False)
        await wait_for(cluster, 1, frozen, connected=False)
    finally:
        cluster.thaw(frozen)
    await cluster.wait_connected(60)
    done = await cluster[0].call(
        "send", peer=cluster.peer_ids[frozen], session=SESSION, round=2, size=100, seed="y"
    )
    messages = await cluster[frozen].call("messages", session=SESSION, round=2)
    assert [m["sha256"] for m in messages] == [done["sha256"]]
