"""The transport a replica service needs, and an in-memory trio implementation of it.

A transport moves opaque frames between replicas named by their 32-byte identity keys:
`send` to one, `broadcast` to every other known replica, and `receive` the next frame
with the sender's id. Nothing more: framing, encryption (Noise), peer discovery and
gossip are the network layer's business (tssnode/net implements this protocol over
libp2p). Delivery is best effort — the replica retransmits what matters.

`MemoryNetwork` connects transports inside one trio run (tests, benchmarks), with
optional seeded drops and partitions.
"""

from __future__ import annotations

import contextlib
import math
import random
from typing import Protocol

import trio


class Transport(Protocol):
    """Best-effort frames between replicas identified by their public keys."""

    @property
    def self_id(self) -> bytes: ...

    async def send(self, to: bytes, data: bytes) -> None: ...

    async def broadcast(self, data: bytes) -> None: ...

    async def receive(self) -> tuple[bytes, bytes]:
        """The next (sender id, frame)."""
        ...


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
