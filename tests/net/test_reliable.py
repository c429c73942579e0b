"""Reliable delivery: resends across a restart, typed errors for everything that cannot be
delivered, deduplication, catch-up by fetching, and the per-round message listing."""

from __future__ import annotations

import pytest
import trio

from tssnode.net import peerid
from tssnode.net.errors import (
    BroadcastTooLarge,
    DeliveryRefused,
    DeliveryTimeout,
    MissingBroadcasts,
    UnknownPeer,
)
from tssnode.net.identity import NodeIdentity
from tssnode.testing.netcluster import LocalCluster

SESSION = b"session-1"


@pytest.mark.trio
async def test_direct_send_waits_for_a_restarted_peer(net_cluster: LocalCluster) -> None:
    await net_cluster.stop_node(2)
    result: list[object] = []

    async def send() -> None:
        env = await net_cluster[0].send(net_cluster.peer_ids[2], SESSION, 1, b"held", deadline=30)
        result.append(env)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        await trio.sleep(0.5)  # the send is waiting for the peer (it is down)
        assert not result
        node2 = await net_cluster.start_node(2)  # same identity and port
    (delivery,) = node2.messages(SESSION, 1, "direct")
    assert delivery.envelope.payload == b"held" and delivery.via == "direct"
    assert net_cluster[0].reliable.stats["sent"] == 1


@pytest.mark.trio
async def test_undeliverable_messages_end_in_typed_errors(net_cluster: LocalCluster) -> None:
    node = net_cluster[0]
    stranger = NodeIdentity.generate().peer_id_text
    with pytest.raises(UnknownPeer):
        await node.send(stranger, SESSION, 1, b"x")

    net_cluster[1].set_allowed([net_cluster.peer_ids[2]])  # node 1 no longer admits node 0
    # (refused outright, or, once node 1 dropped it and it came back as a newcomer, as a
    # peer that may only read the chain)
    with pytest.raises(DeliveryRefused, match=r"unknown_peer|sync_only") as refused:
        await node.send(net_cluster.peer_ids[1], SESSION, 1, b"x")
    assert refused.value.recipient == net_cluster.peer_ids[1] and refused.value.seq > 0
    assert net_cluster[1].admission.drops["unknown_peer"] >= 1  # (its peer exchange too)
    net_cluster[1].set_allowed(net_cluster.peer_ids)

    await net_cluster.stop_node(2)
    with pytest.raises(DeliveryTimeout, match="no acknowledgement") as late:
        await node.send(net_cluster.peer_ids[2], SESSION, 1, b"x", deadline=1.0)
    assert late.value.recipient == net_cluster.peer_ids[2]

    with pytest.raises(BroadcastTooLarge):
        await node.broadcast(SESSION, 2, bytes(1024 * 1024))
    assert node.messages(SESSION, 2) == []  # nothing half-sent


@pytest.mark.trio
async def test_resent_envelope_is_delivered_once(net_cluster: LocalCluster) -> None:
    sender, receiver = net_cluster[0], net_cluster[1]
    signed = sender.reliable.seal(SESSION, 3, receiver.peer_id_bytes, b"once")
    assert sender.reliable.direct is not None
    first = await sender.reliable.direct.send_once(receiver.peer_id_bytes, signed)
    again = await sender.reliable.direct.send_once(receiver.peer_id_bytes, signed)
    assert (first.status, again.status) == ("ok", "duplicate")
    assert receiver.inbox.receive_nowait().envelope == signed.envelope
    with pytest.raises(trio.WouldBlock):
        receiver.inbox.receive_nowait()
    assert len(receiver.messages(SESSION, 3, "direct")) == 1


@pytest.mark.trio
async def test_missing_broadcast_is_fetched_from_a_peer(net_cluster: LocalCluster) -> None:
    a, b, c = net_cluster.nodes
    # b holds a broadcast of a's that c never got (as if its gossip copy was lost)
    signed = a.reliable.seal(SESSION, 4, b"", b"lost on the way")
    assert b.reliable.accept(signed, a.peer_id_bytes, "gossip") == "ok"
    await net_cluster.stop_node(0)  # and the sender itself is gone
    got = await c.collect_broadcasts(SESSION, 4, [a.peer_id], within=10)
    assert got[a.peer_id].payload == b"lost on the way"
    (delivery,) = c.messages(SESSION, 4, "broadcast")
    assert delivery.via == "fetch"
    assert c.reliable.stats["fetched"] == 1


@pytest.mark.trio
async def test_collect_names_who_is_missing(net_cluster: LocalCluster) -> None:
    a, b, c = net_cluster.nodes
    await a.broadcast(SESSION, 5, b"from a")
    with pytest.raises(MissingBroadcasts) as missing:
        await c.collect_broadcasts(SESSION, 5, [a.peer_id, b.peer_id], within=1.5)
    assert missing.value.missing == (b.peer_id,)


@pytest.mark.trio
async def test_messages_are_listed_per_round(net_cluster: LocalCluster) -> None:
    a, b, c = net_cluster.nodes
    await a.broadcast(SESSION, 6, b"everyone")
    await b.send(c.peer_id, SESSION, 6, b"just c")
    await c.send(c.peer_id, SESSION, 6, b"note to self")  # delivered locally
    await c.collect_broadcasts(SESSION, 6, [a.peer_id], within=10)
    kinds = {
        kind: sorted((peerid.to_text(d.envelope.sender), d.envelope.payload) for d in found)
        for kind in ("broadcast", "direct")
        if (found := c.messages(SESSION, 6, kind))
    }
    assert kinds == {
        "broadcast": [(a.peer_id, b"everyone")],
        "direct": sorted([(b.peer_id, b"just c"), (c.peer_id, b"note to self")]),
    }
    assert [d.envelope.payload for d in a.messages(SESSION, 6)] == [b"everyone"]  # own, via self
    a.forget_session(SESSION)
    assert a.messages(SESSION, 6) == []
