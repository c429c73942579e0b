"""Learning the genesis from bootstrap peers, so a new node needs only their addresses.

A node started with an empty data directory asks its bootstrap peers for their `Status`,
which carries the genesis. With the expected chain id configured, the first genesis that
hashes to it is taken. Without one, the node takes the genesis that a majority of its
bootstrap peers agree on (trust on first use: the operator vouches for the peers). From
there the replica learns everything else as an observer — the validator set and every
block, each verified against its commit certificate — before it trusts any of it.
"""

from __future__ import annotations

import hashlib

import trio

from tssnode.crypto.encoding import decode_any
from tssnode.errors import EncodingError
from tssnode.ledger.errors import InvalidGenesis, StateTransferFailed
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.messages import Status, StatusRequest
from tssnode.ledger.transport import Transport


class GenesisProbe:
    """Sans-I/O: frames to send, and the genesis once enough peers have answered."""

    def __init__(self, peers: list[bytes], chain_id: bytes | None = None) -> None:
        if not peers:
            raise ValueError("bootstrapping needs at least one peer")
        self.peers = list(peers)
        self.chain_id = chain_id
        self.need = len(self.peers) // 2 + 1
        self.answers: dict[bytes, bytes] = {}  # peer → genesis bytes

    def requests(self) -> list[tuple[bytes, bytes]]:
        frame = StatusRequest(0).to_bytes()
        return [(p, frame) for p in self.peers if p not in self.answers]

    def receive(self, sender: bytes, data: bytes) -> Genesis | None:
        if sender not in self.peers:
            return None
        try:
            status = decode_any(data)
        except EncodingError:
            return None
        if not isinstance(status, Status):
            return None
        try:
            genesis = Genesis.from_bytes(status.genesis)
            genesis.check()
        except (EncodingError, InvalidGenesis):
            return None
        digest = hashlib.sha256(status.genesis).digest()
        if self.chain_id is not None:
            return genesis if digest == self.chain_id else None
        self.answers[sender] = status.genesis
        votes = sum(1 for g in self.answers.values() if g == status.genesis)
        return genesis if votes >= self.need else None


async def learn_genesis(
    transport: Transport,
    peers: list[bytes],
    *,
    chain_id: bytes | None = None,
    retry: float = 1.0,
    attempts: int = 30,
) -> Genesis:
    """Ask `peers` for the genesis over `transport` (retrying every `retry` seconds)."""
    probe = GenesisProbe(peers, chain_id)
    for _ in range(attempts):
        for peer, frame in probe.requests():
            await transport.send(peer, frame)
        with trio.move_on_after(retry):
            while True:
                sender, data = await transport.receive()
                genesis = probe.receive(sender, data)
                if genesis is not None:
                    return genesis
    raise StateTransferFailed("no bootstrap peer sent an acceptable genesis")
