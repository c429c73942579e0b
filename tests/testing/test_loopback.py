"""The multi-process ledger test's own transport (`tssnode.testing.loopback`): frames
arrive whole and in order with their sender, broadcasts reach every other node, and a
send to a node that is gone is dropped (the replica retransmits) instead of raising."""

from __future__ import annotations

import socket

import pytest
import trio

from tssnode.testing.loopback import LoopbackTransport


def _listener() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


@pytest.mark.trio
async def test_frames_arrive_whole_in_order_and_broadcasts_reach_the_others() -> None:
    ids = [bytes([i]) * 32 for i in range(3)]
    listeners = [_listener() for _ in ids]
    ports = {i: s.getsockname()[1] for i, s in zip(ids, listeners, strict=True)}
    nodes = [LoopbackTransport(i, s, ports) for i, s in zip(ids, listeners, strict=True)]
    async with trio.open_nursery() as nursery:
        for n in nodes:
            await n.serve(nursery)
        big = bytes(range(256)) * 4096  # 1 MiB: many TCP reads, one frame
        await nodes[0].send(ids[1], b"first")
        await nodes[0].send(ids[1], big)
        assert await nodes[1].receive() == (ids[0], b"first")
        assert await nodes[1].receive() == (ids[0], big)
        await nodes[2].broadcast(b"to all")
        assert await nodes[0].receive() == (ids[2], b"to all")
        assert await nodes[1].receive() == (ids[2], b"to all")
        nursery.cancel_scope.cancel()  # (stops serving, then close)
    for n in nodes:
        await n.aclose()


@pytest.mark.trio
async def test_a_send_to_a_closed_port_is_dropped() -> None:
    gone = _listener()
    port = gone.getsockname()[1]
    gone.close()
    me = _listener()
    node = LoopbackTransport(b"a" * 32, me, {b"a" * 32: me.getsockname()[1], b"b" * 32: port})
    await node.send(b"b" * 32, b"lost")  # no exception: best effort
    me.close()
