"""`tssnode.testing.memnet`: the in-memory ledger network delivers each sender's frames in
order, broadcasts to everyone else, and loses frames only when told to (a blocked node,
the seeded drop rate, a full inbox), the same ones for the same seed."""

from __future__ import annotations

import pytest
import trio

from tssnode.testing.memnet import MemoryNetwork, MemoryTransport

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


async def _pending(transport: MemoryTransport) -> list[tuple[bytes, bytes]]:
    """Everything in the transport's inbox now (what arrived, in order)."""
    got = []
    while True:
        with trio.move_on_after(1) as scope:
            got.append(await transport.receive())
        if scope.cancelled_caught:
            return got


@pytest.mark.trio
async def test_frames_arrive_in_order_with_their_sender(autojump_clock: trio.abc.Clock) -> None:
    net = MemoryNetwork()
    a, b = net.connect(A), net.connect(B)
    assert a.self_id == A
    for i in range(50):
        await a.send(B, b"frame %d" % i)
    await b.send(A, b"reply")
    assert await _pending(b) == [(A, b"frame %d" % i) for i in range(50)]
    assert await _pending(a) == [(B, b"reply")]


@pytest.mark.trio
async def test_broadcast_reaches_every_other_node(autojump_clock: trio.abc.Clock) -> None:
    net = MemoryNetwork()
    a, b, c = net.connect(A), net.connect(B), net.connect(C)
    await a.broadcast(b"all")
    assert await _pending(b) == [(A, b"all")]
    assert await _pending(c) == [(A, b"all")]
    assert await _pending(a) == []  # not to itself
    await a.send(b"nobody" * 5 + b"xx", b"lost")  # an unknown node: lost, no error


@pytest.mark.trio
async def test_a_blocked_node_neither_sends_nor_receives(autojump_clock: trio.abc.Clock) -> None:
    net = MemoryNetwork()
    a, b, c = net.connect(A), net.connect(B), net.connect(C)
    net.blocked.add(B)
    await a.broadcast(b"1")
    await b.send(C, b"2")
    assert await _pending(b) == []
    assert await _pending(c) == [(A, b"1")]
    net.blocked.discard(B)
    await b.send(C, b"3")
    assert await _pending(c) == [(B, b"3")]


@pytest.mark.trio
async def test_drops_follow_the_seed(autojump_clock: trio.abc.Clock) -> None:
    async def delivered(seed: str, drop: float) -> list[bytes]:
        net = MemoryNetwork(seed=seed, drop=drop)
        a, b = net.connect(A), net.connect(B)
        for i in range(200):
            await a.send(B, b"%d" % i)
        return [frame for _, frame in await _pending(b)]

    first = await delivered("x", 0.3)
    assert 100 < len(first) < 180  # about 70 % arrive
    assert first == sorted(first, key=int)  # what arrives stays in order
    assert await delivered("x", 0.3) == first
    assert await delivered("y", 0.3) != first
    assert await delivered("x", 1.0) == []
    assert len(await delivered("x", 0.0)) == 200


@pytest.mark.trio
async def test_a_full_inbox_loses_frames(autojump_clock: trio.abc.Clock) -> None:
    net = MemoryNetwork(buffer=3)
    a, b = net.connect(A), net.connect(B)
    for i in range(5):
        await a.send(B, b"%d" % i)
    assert await _pending(b) == [(A, b"0"), (A, b"1"), (A, b"2")]
