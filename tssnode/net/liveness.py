"""Liveness: ping every connected peer, record latency, drop peers that stop answering.

A frozen peer (SIGSTOP, a hung process, a dead link without a TCP reset) keeps its TCP
connection open, so py-libp2p reports no disconnect and streams to it just stall. Every
`ping_interval` each connected peer gets a libp2p ping (`/ipfs/ping/1.0.0`: 32 random
bytes, echoed) bounded by `ping_timeout`, on one long-lived ping stream per peer (the
remote's handler refuses more than two at a time); the round trip goes into the peer
book. After `ping_failures` consecutive failures the peer is reported unresponsive and its
connections are closed, which produces the disconnect event; the dialer then keeps trying
to reach it with backoff.

A failed ping does not count while the peer sent any frame on its connections within the
last `ping_timeout` (a busy peer, or our own loop too busy to see the answer in time, is
not a frozen one); a frozen peer sends nothing at all.

The loop also closes every connection on which a single write has been blocked for
`stall_timeout` (the peer stopped reading): writes are atomic (see `host`), so closing the
connection is the only way to end such a write, and it breaks any wait that depends on it.
Pings run in the background, so no stalled ping holds up the loop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from tssnode.net import peerid, streams
from tssnode.net.errors import FrameError, MalformedFrame
from tssnode.net.host import last_frame, stalled_peers
from tssnode.net.peerbook import PeerBook
from tssnode.net.wire import read_exact

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio's own TaskStatus is hidden by trio-typing

log = logging.getLogger(__name__)

PING_PROTOCOL = TProtocol("/ipfs/ping/1.0.0")
PING_BYTES = 32


class Liveness:
    """The ping and stall-watch loop."""

    def __init__(
        self,
        host: IHost,
        peers: PeerBook,
        *,
        interval: float,
        timeout: float,
        failures: int,
        stall_timeout: float,
        disconnect: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self.host = host
        self.peers = peers
        self.interval = interval
        self.timeout = timeout
        self.failures = failures
        self.stall_timeout = stall_timeout
        self._disconnect = disconnect
        self._streams: dict[bytes, INetStream] = {}
        self._busy: set[bytes] = set()  # a ping in progress
        self._dropping: set[bytes] = set()  # a stalled connection being closed
        self.dropped = 0
        self.stalls = 0

    async def _ping_stream(self, peer: bytes) -> INetStream:
        stream = self._streams.get(peer)
        if stream is None:
            with trio.move_on_after(self.timeout):
                try:
                    stream = await self.host.new_stream(ID(peer), [PING_PROTOCOL])
                except Exception as exc:
                    raise FrameError(f"cannot open a ping stream: {type(exc).__name__}") from None
            if stream is None:
                raise FrameError("opening a ping stream timed out")
            self._streams[peer] = stream
        return stream

    async def ping(self, peer: bytes) -> float:
        """One ping round trip in seconds; raises `FrameError` (incl. timeouts)."""
        payload = os.urandom(PING_BYTES)
        start = trio.current_time()
        try:
            with trio.fail_after(self.timeout):
                stream = await self._ping_stream(peer)
                try:
                    await stream.write(payload)
                except Exception as exc:
                    raise FrameError(f"ping write failed: {type(exc).__name__}") from None
                echo = await read_exact(stream, PING_BYTES, self.timeout)
            if echo != payload:
                raise MalformedFrame("ping echo differs")
        except (FrameError, trio.TooSlowError):
            broken = self._streams.pop(peer, None)
            if broken is not None:
                await streams.reset(broken)
            raise
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
        else:
            self.peers.ping_ok(peer, rtt)
        finally:
            self._busy.discard(peer)

    async def _drop_stalled(self, peer: bytes) -> None:
        try:
            self.stalls += 1
            log.warning(
                "a write to %s has been blocked for %.0f s; closing the connection",
                peerid.short(peer),
                self.stall_timeout,
            )
            self.peers.unresponsive(peer, "write stalled")
            await self._disconnect(peer)
        finally:
            self._dropping.discard(peer)

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                for peer in stalled_peers(self.host, self.stall_timeout):
                    if peer not in self._dropping:
                        self._dropping.add(peer)
                        nursery.start_soon(self._drop_stalled, peer)
                for peer in list(self._streams):
                    if not self.peers.is_connected(peer) and peer not in self._busy:
                        nursery.start_soon(streams.reset, self._streams.pop(peer))
                for peer in self.peers.connected():
                    if peer not in self._busy:
                        self._busy.add(peer)
                        nursery.start_soon(self._check, peer)
                await trio.sleep(self.interval)
