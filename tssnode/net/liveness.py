"""Liveness: ping every connected peer, record latency, drop peers that stop answering.

A frozen peer (SIGSTOP, a hung process, a dead link without a TCP reset) keeps its TCP
connection open, so py-libp2p reports no disconnect and streams to it just stall. Every
`ping_interval` each connected peer gets a libp2p ping (`/ipfs/ping/1.0.0`, 32 random
bytes echoed) bounded by `ping_timeout`; the round trip goes into the peer book. After
`ping_failures` consecutive failures the peer is reported unresponsive and its
connections are closed, which produces the disconnect event; the dialer then keeps
trying to reach it with backoff.

A failed ping does not count while the peer sent any frame on its connections within the
last `ping_timeout` (a busy peer, or our own loop too busy to see the answer in time, is
not a frozen one); a frozen peer sends nothing at all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio
from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from tssnode.net import peerid, streams
from tssnode.net.errors import FrameError, MalformedFrame
from tssnode.net.host import last_frame
from tssnode.net.peerbook import PeerBook
from tssnode.net.wire import read_exact

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio's own TaskStatus is hidden by trio-typing

log = logging.getLogger(__name__)

PING_PROTOCOL = TProtocol("/ipfs/ping/1.0.0")
PING_BYTES = 32


class Liveness:
    """The ping loop."""

    def __init__(
        self,
        host: IHost,
        peers: PeerBook,
        *,
        interval: float,
        timeout: float,
        failures: int,
        disconnect: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self.host = host
        self.peers = peers
        self.interval = interval
        self.timeout = timeout
        self.failures = failures
        self._disconnect = disconnect
        self.dropped = 0

    async def ping(self, peer: bytes) -> float:
        """One ping round trip in seconds; raises `FrameError` (incl. timeout)."""
        payload = os.urandom(PING_BYTES)
        with trio.fail_after(self.timeout):
            start = trio.current_time()
            async with streams.opened(self.host, peer, PING_PROTOCOL, self.timeout) as stream:
                try:
                    await stream.write(payload)
                except Exception as exc:
                    raise FrameError(f"ping write failed: {type(exc).__name__}") from None
                echo = await read_exact(stream, PING_BYTES, trio.current_time() + self.timeout)
            if echo != payload:
                raise MalformedFrame("ping echo differs")
            return trio.current_time() - start

    async def _check(self, peer: bytes) -> None:
        try:
            rtt = await self.ping(peer)
        except (FrameError, trio.TooSlowError) as exc:
            record = self.peers.get(peer)
            if record is None or not record.connected:
                return
            heard = last_frame(self.host, ID(peer))
            if heard is not None and trio.current_time() - heard < self.timeout:
                return  # it sent us frames meanwhile: busy or slow, not frozen
            failed = self.peers.ping_failed(peer)
            log.debug("ping %s failed (%d in a row): %s", peerid.short(peer), failed, exc)
            if failed >= self.failures:
                self.dropped += 1
                detail = f"{failed} pings failed"
                log.warning("peer %s unresponsive (%s); disconnecting", peerid.short(peer), detail)
                self.peers.unresponsive(peer, detail)
                await self._disconnect(peer)
            return
        self.peers.ping_ok(peer, rtt)

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            async with trio.open_nursery() as nursery:
                for peer in self.peers.connected():
                    nursery.start_soon(self._check, peer)
                await trio.sleep(self.interval)
