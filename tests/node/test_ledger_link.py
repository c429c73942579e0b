"""The ledger's link to the net layer: a ledger broadcast goes to each validator by a
direct send, never by gossip, once the validator set is known."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tssnode.crypto.identity import IdentityKey
from tssnode.net import peerid
from tssnode.node.daemon import LEDGER_SESSION, LedgerLink


class _RecordingNet:
    def __init__(self) -> None:
        self.direct: list[tuple[str, bytes]] = []
        self.gossip: list[bytes] = []

    async def send(self, peer: str, session: bytes, rnd: int, data: bytes, **_: Any) -> None:
        assert session == LEDGER_SESSION
        self.direct.append((peer, data))

    async def broadcast(self, session: bytes, rnd: int, data: bytes) -> None:
        self.gossip.append(data)


@pytest.mark.trio
async def test_a_ledger_broadcast_is_a_direct_send_to_every_other_validator() -> None:
    keys = [IdentityKey.from_seed(bytes([i]) * 32).public_bytes() for i in range(1, 6)]
    me = keys[0]
    net = _RecordingNet()
    link = LedgerLink(net, me)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        link.bind(nursery)
        await link.broadcast(b"before the genesis is known")  # (a joining node)
        link.recipients = lambda: keys
        await link.broadcast(b"a vote")
    assert net.gossip == [b"before the genesis is known"]
    assert sorted(net.direct) == sorted((peerid.from_public_key(k), b"a vote") for k in keys[1:])
