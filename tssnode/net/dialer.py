"""The dialer: keep a connection to every admitted peer whose address we know.

One keeper task per peer (bootstrap peers from the config, peers learnt by peer
exchange): while the peer is disconnected it dials each known address in turn with
`Swarm.dial_addr` under a timeout, and after a failed round waits with exponential backoff
from `redial_min` to `redial_max` (with jitter). A disconnect wakes the keeper at once, so
a restarted peer is redialled within one backoff step of coming back.

py-libp2p's own paths are avoided on purpose: `Host.connect`/`Swarm.dial_peer` refuse to
dial a peer for 60 s after one failed attempt (a negative cache), which would keep a
restarted validator away for a minute; `dial_addr` does not consult that cache.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from tssnode.net import peerid
from tssnode.net.admission import Admission
from tssnode.net.host import swarm_of
from tssnode.net.peerbook import PeerBook

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio's own TaskStatus is hidden by trio-typing

log = logging.getLogger(__name__)

#: Backoff growth per failed round, and the random spread around each delay.
BACKOFF_FACTOR = 2.0
JITTER = 0.2


class Dialer:
    """Keeps the node connected to every admitted peer it has an address for."""

    def __init__(
        self,
        host: IHost,
        peers: PeerBook,
        admission: Admission,
        *,
        dial_timeout: float,
        redial_min: float,
        redial_max: float,
        on_connected: Callable[[bytes], None],
    ) -> None:
        self.host = host
        self.peers = peers
        self.admission = admission
        self.dial_timeout = dial_timeout
        self.redial_min = redial_min
        self.redial_max = redial_max
        self._on_connected = on_connected
        self.refused: set[bytes] = set()  # peers on another network: never dialled again
        self.attempts = 0
        self.failures = 0
        self._keepers: set[bytes] = set()
        self._rng = random.Random()

    def wanted(self, peer: bytes) -> bool:
        record = self.peers.get(peer)
        return (
            record is not None
            and bool(record.addrs)
            and peer not in self.refused
            and self.admission.is_allowed(peer)
        )

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                for peer in self.peers.known():
                    if peer not in self._keepers and self.wanted(peer):
                        self._keepers.add(peer)
                        nursery.start_soon(self._keep, peer)
                await self.peers.wait_changed()

    async def _keep(self, peer: bytes) -> None:
        delay = self.redial_min
        try:
            while self.wanted(peer):
                if self.peers.is_connected(peer):
                    delay = self.redial_min
                    await self.peers.wait_changed()
                    continue
                if await self.dial(peer):
                    delay = self.redial_min
                    continue
                spread = delay * JITTER * (2 * self._rng.random() - 1)
                with trio.move_on_after(delay + spread):
                    # an inbound connection from the peer ends the wait early
                    while not self.peers.is_connected(peer):
                        await self.peers.wait_changed()
                delay = min(delay * BACKOFF_FACTOR, self.redial_max)
        finally:
            self._keepers.discard(peer)

    async def dial(self, peer: bytes) -> bool:
        """One round over the peer's known addresses; True once connected."""
        record = self.peers.get(peer)
        if record is None:
            return False
        swarm = swarm_of(self.host)
        for addr in record.addrs:
            self.attempts += 1
            with trio.move_on_after(self.dial_timeout) as scope:
                try:
                    await swarm.dial_addr(Multiaddr(addr), ID(peer))
                    log.debug("dialled %s at %s", peerid.short(peer), addr)
                    self._on_connected(peer)
                    return True
                except Exception as exc:  # SwarmException and transport errors
                    log.debug("dial %s at %s failed: %s", peerid.short(peer), addr, exc)
            if scope.cancelled_caught:
                log.debug("dial %s at %s timed out", peerid.short(peer), addr)
            if self.peers.is_connected(peer):  # it dialled us meanwhile
                return True
        self.failures += 1
        return False
