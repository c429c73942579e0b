"""Posts (`net.posts`): frames on one stream kept open per peer, in order, unacknowledged;
dropped and counted, never raised, when the peer is gone; a new stream after a
restart; hostile frames reset the stream and leave the receiver running."""

from __future__ import annotations

import pytest
import trio
from libp2p.peer.id import ID

from tssnode.net import peerid
from tssnode.net.errors import UnknownPeer
from tssnode.net.identity import NodeIdentity
from tssnode.net.posts import PROTOCOL
from tssnode.net.wire import frame
from tssnode.testing.netcluster import LocalCluster

from .conftest import eventually

SESSION = b"posts-1"


async def _received(node, n: int) -> list[bytes]:  # type: ignore[no-untyped-def]
    out: list[bytes] = []
    with trio.fail_after(20):
        while len(out) < n:
            out.append((await node.inbox.receive()).envelope.payload)
    return out


@pytest.mark.trio
async def test_posts_arrive_in_order_on_one_stream(net_cluster: LocalCluster) -> None:
    sender, receiver = net_cluster[0], net_cluster[1]
    to = net_cluster.peer_ids[1]
    payloads = [b"vote %d" % i for i in range(200)]
    assert all(sender.post(to, SESSION, 1, p) for p in payloads)
    assert await _received(receiver, 200) == payloads
    assert sender.posts is not None and receiver.posts is not None
    assert sender.posts.stats["written"] == 200 and receiver.posts.stats["received"] == 200
    # one stream carried them all, several frames per write (they were queued at once)
    assert sender.posts.stats["opened"] == 1 and receiver.posts.stats["served"] == 1
    assert sender.posts.stats["writes"] < 200
    # to itself: straight to its own inbox
    assert sender.post(net_cluster.peer_ids[0], SESSION, 2, b"self")
    assert (await _received(sender, 1)) == [b"self"]


@pytest.mark.trio
async def test_a_post_to_a_peer_that_is_gone_is_dropped_and_counted(
    net_cluster: LocalCluster,
) -> None:
    sender = net_cluster[0]
    to = net_cluster.peer_ids[2]
    with pytest.raises(UnknownPeer):
        sender.post(NodeIdentity.generate().peer_id_text, SESSION, 1, b"x")
    await net_cluster.stop_node(2)
    await eventually(lambda: not sender.peers.is_connected(peerid.from_text(to)), 20)
    assert sender.post(to, SESSION, 1, b"lost") is False
    assert sender.posts is not None and sender.posts.stats["dropped_unreachable"] >= 1
    # back with the same identity: the next post opens a new stream and arrives
    node2 = await net_cluster.start_node(2)
    await eventually(lambda: sender.peers.is_connected(peerid.from_text(to)), 30)
    await eventually(lambda: sender.post(to, SESSION, 3, b"after the restart"), 10, every=0.5)
    payloads = await _received(node2, 1)
    assert payloads[-1] == b"after the restart"


@pytest.mark.trio
async def test_a_malformed_post_resets_its_stream_and_the_receiver_goes_on(
    net_cluster: LocalCluster,
) -> None:
    sender, receiver = net_cluster[0], net_cluster[1]
    to = net_cluster.peer_ids[1]
    stream = await sender.host.new_stream(ID(peerid.from_text(to)), [PROTOCOL])
    await stream.write(frame(b"\xff\xfe not an envelope"))
    await eventually(lambda: receiver.admission.drops["malformed"] >= 1, 20)
    with pytest.raises(Exception):  # noqa: B017 - reset by the receiver: any stream error
        for _ in range(50):
            await stream.write(frame(b"more"))
            await trio.sleep(0.05)
    # the receiver still takes well-formed posts
    assert sender.post(to, SESSION, 4, b"still here")
    assert await _received(receiver, 1) == [b"still here"]
