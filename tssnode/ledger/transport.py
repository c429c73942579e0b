"""The transport a replica service needs.

A transport moves opaque frames between replicas named by their 32-byte identity keys:
`send` to one, `broadcast` to every other known replica, and `receive` the next frame
with the sender's id. Nothing more: framing, encryption (Noise), peer discovery and
gossip are the network layer's business (tssnode/net implements this protocol over
libp2p). Delivery is best effort — the replica retransmits what matters.

An in-memory implementation for tests and benchmarks is `tssnode.testing.memnet`.
"""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    """Best-effort frames between replicas identified by their public keys."""

    @property
    def self_id(self) -> bytes: ...

    async def send(self, to: bytes, data: bytes) -> None: ...

    async def broadcast(self, data: bytes) -> None: ...

    async def receive(self) -> tuple[bytes, bytes]:
        """The next (sender id, frame)."""
        ...
