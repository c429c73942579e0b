"""The ledger's link to the net layer: a ledger broadcast goes to each validator, posted
on its open stream (by gossip too only while some validator has no connection to this
node, so that others relay it); a large frame goes on a stream of its own, and one
already on its way to a peer is not sent twice."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tssnode.crypto.identity import IdentityKey
from tssnode.net import peerid
from tssnode.node.links import LEDGER_SESSION, POST_MAX, LedgerLink


class _Peers:
    def __init__(self) -> None:
        self.down: set[bytes] = set()

    def is_connected(self, peer: bytes) -> bool:
        return peer not in self.down


class _RecordingNet:
    def __init__(self) -> None:
        self.direct: list[tuple[bytes, bytes]] = []  # large frames, a stream each
        self.posted: list[tuple[bytes, bytes]] = []
        self.gossip: list[bytes] = []
        self.peers = _Peers()
        self.release = trio.Event()
        self.release.set()

    async def send(self, peer: bytes, session: bytes, rnd: int, data: bytes, **_: Any) -> None:
        assert session == LEDGER_SESSION and len(data) > POST_MAX
        await self.release.wait()
        self.direct.append((peer, data))

    def post(self, peer: bytes, session: bytes, rnd: int, data: bytes) -> bool:
        assert session == LEDGER_SESSION and len(data) <= POST_MAX
        self.posted.append((peer, data))
        return self.peers.is_connected(peer)

    async def broadcast(self, session: bytes, rnd: int, data: bytes) -> None:
        self.gossip.append(data)


KEYS = [IdentityKey.from_seed(bytes([i]) * 32).public_bytes() for i in range(1, 6)]


@pytest.mark.trio
async def test_a_ledger_broadcast_is_posted_to_every_other_validator() -> None:
    net = _RecordingNet()
    link = LedgerLink(net, KEYS[0])  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        link.bind(nursery)
        await link.broadcast(b"before the genesis is known")  # (a joining node)
        link.recipients = lambda: KEYS
        await link.broadcast(b"a vote")
    assert net.gossip == [b"before the genesis is known"]
    assert sorted(net.posted) == sorted((peerid.from_public_key(k), b"a vote") for k in KEYS[1:])
    assert not net.direct and link.posted == 4


@pytest.mark.trio
async def test_a_validator_without_a_connection_gets_the_frame_relayed_by_gossip() -> None:
    net = _RecordingNet()
    net.peers.down.add(peerid.from_public_key(KEYS[3]))
    link = LedgerLink(net, KEYS[0])  # type: ignore[arg-type]
    link.recipients = lambda: KEYS
    async with trio.open_nursery() as nursery:
        link.bind(nursery)
        await link.broadcast(b"a view change")
    assert net.gossip == [b"a view change"]  # for the others to relay
    assert len(net.posted) == 4  # and still tried directly (it may be back by then)
    assert link.undelivered["not queued"] == 1


@pytest.mark.trio
async def test_a_large_frame_on_its_way_to_a_peer_is_not_sent_to_it_again() -> None:
    net = _RecordingNet()
    net.release = trio.Event()  # every send hangs until released
    link = LedgerLink(net, KEYS[0])  # type: ignore[arg-type]
    link.recipients = lambda: KEYS
    blocks, more = b"b" * (POST_MAX + 1), b"m" * (POST_MAX + 1)  # (catch-up answers)
    async with trio.open_nursery() as nursery:
        link.bind(nursery)
        for _ in range(5):  # the replica re-sends while the first sends are under way
            await link.broadcast(blocks)
        await link.broadcast(more)
        assert link.coalesced == 4 * 4 and link.sending == 8
        net.release.set()
    assert len(net.direct) == 8 and link.sending == 0 and not net.posted
    async with trio.open_nursery() as nursery:
        link.bind(nursery)
        await link.broadcast(blocks)  # once delivered, a re-send goes out again
    assert len(net.direct) == 12
