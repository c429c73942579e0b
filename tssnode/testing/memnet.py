"""An in-memory network of ledger transports (`tssnode.ledger.transport.Transport`),
with no libp2p: frames go through trio memory channels inside one trio run.

Used by the ledger service tests, the node core tests and `tssnode bench ledger`. Like a
real network it is best effort: a frame to an unknown or blocked node (`blocked` cuts a
node off from everyone, as a crash or an isolation would), a frame lost to the seeded
`drop` rate and a frame sent to a full inbox are lost without an error. What arrives from
one sender arrives in the order it was sent.
"""

from __future__ import annotations

import contextlib
import math
import random

import trio


class MemoryNetwork:
    """Transports that deliver to each other through trio memory channels."""

    def __init__(self, *, seed: int | str = 0, drop: float = 0.0, buffer: int = 100_000) -> None:
        self._inboxes: dict[bytes, trio.MemorySendChannel[tuple[bytes, bytes]]] = {}
        self._rng = random.Random(f"memnet:{seed}")
        self.drop = drop
        self.buffer = buffer
        self.blocked: set[bytes] = set()  # ids cut off from everyone (a crashed or isolated node)

    def connect(self, node_id: bytes) -> MemoryTransport:
        send, recv = trio.open_memory_channel[tuple[bytes, bytes]](
            self.buffer if self.buffer else math.inf
        )
        self._inboxes[node_id] = send
        return MemoryTransport(self, node_id, recv)

    def deliver(self, sender: bytes, to: bytes, data: bytes) -> None:
        inbox = self._inboxes.get(to)
        if inbox is None or sender in self.blocked or to in self.blocked:
            return
        if self.drop and self._rng.random() < self.drop:
            return
        # A full or closed inbox loses the frame, like a congested link.
        with contextlib.suppress(
            trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
        ):
            inbox.send_nowait((sender, data))

    def peers(self, node_id: bytes) -> list[bytes]:
        return [i for i in self._inboxes if i != node_id]


class MemoryTransport:
    def __init__(
        self,
        net: MemoryNetwork,
        node_id: bytes,
        inbox: trio.MemoryReceiveChannel[tuple[bytes, bytes]],
    ) -> None:
        self._net = net
        self._id = node_id
        self._inbox = inbox

    @property
    def self_id(self) -> bytes:
        return self._id

    async def send(self, to: bytes, data: bytes) -> None:
        self._net.deliver(self._id, to, data)
        await trio.lowlevel.checkpoint()

    async def broadcast(self, data: bytes) -> None:
        for peer in self._net.peers(self._id):
            self._net.deliver(self._id, peer, data)
        await trio.lowlevel.checkpoint()

    async def receive(self) -> tuple[bytes, bytes]:
        return await self._inbox.receive()
