"""Posts: one-way frames on one long-lived stream per peer, `/tssnode/post/1.0.0`.

A direct message (`direct`) opens a stream, negotiates its protocol, writes its frame,
waits for the acknowledgement and closes: two round trips and about eight muxer frames,
each through Noise, for every message. The ledger needs neither the acknowledgement nor
a stream of its own per vote: its frames are small and many, and the replica sends again
whatever has not counted yet. A post is one frame on the stream this node keeps open to
that peer, written in order by one task per peer, with no answer.

What can go wrong costs frames, never the node: a post to a peer with no connection, or
beyond its lane's bounds, is dropped at once; a failed or stalled write resets the
stream (a stalled one also drops the connection, as `streams` explains) and loses the
frames queued behind it; the next post opens a new stream. Everything dropped is
counted in `stats`. The receiving end reads frame after frame, each through the gate
of a direct message (`Reliable.accept`: admission, sender, signature, duplicates); a
malformed frame resets the stream and is counted like any other.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from tssnode.net import streams
from tssnode.net.admission import Admission
from tssnode.net.direct import SYNC_MAX_FRAME, Acceptor, Direct
from tssnode.net.errors import FrameError, StreamTimeout
from tssnode.net.wire import (
    WRITE_SLICE,
    FrameReader,
    SignedEnvelope,
    decode,
    frame,
    write_raw,
)

log = logging.getLogger(__name__)

PROTOCOL = TProtocol("/tssnode/post/1.0.0")
#: Frames and bytes waiting to be written to one peer; a post beyond either is dropped.
LANE_FRAMES = 1024
LANE_BYTES = 8 * 1024 * 1024


class _Lane:
    """The frames waiting for one peer, and whether its writer task runs."""

    def __init__(self) -> None:
        self.frames: deque[bytes] = deque()
        self.bytes = 0
        self.more = trio.Event()


class Posts:
    """Both ends of the post protocol."""

    def __init__(self, direct: Direct, is_connected: Callable[[bytes], bool]) -> None:
        """The same host, admission, gate, frame limit, timeout and broken-connection
        handling as the direct protocol's `direct`."""
        self.host: IHost = direct.host
        self.admission: Admission = direct.admission
        self._accept: Acceptor = direct.accept
        self.max_frame_bytes = direct.max_frame_bytes
        self.op_timeout = direct.op_timeout
        self._on_broken = direct.on_broken
        self._is_connected = is_connected
        self._lanes: dict[bytes, _Lane] = {}
        self._nursery: trio.Nursery | None = None
        #: posted, written, received; streams opened and served; dropped_unreachable,
        #: dropped_full, dropped_failed: frames lost
        self.stats: Counter[str] = Counter()

    def install(self) -> None:
        self.host.set_stream_handler(PROTOCOL, streams.serve("post", self.admission, self._serve))

    def bind(self, nursery: trio.Nursery) -> None:
        """Where the writer tasks run (the net node's nursery)."""
        self._nursery = nursery

    # -- sending -------------------------------------------------------------------------------

    def post(self, peer: bytes, signed: SignedEnvelope) -> bool:
        """Queue one envelope for `peer`; False when it was dropped at once."""
        if self._nursery is None or not self._is_connected(peer):
            self.stats["dropped_unreachable"] += 1
            return False
        body = signed.to_bytes()
        lane = self._lanes.get(peer)
        if lane is None:
            lane = self._lanes[peer] = _Lane()
            self._nursery.start_soon(self._write_loop, peer, lane)
        if len(lane.frames) >= LANE_FRAMES or lane.bytes + len(body) > LANE_BYTES:
            self.stats["dropped_full"] += 1
            return False
        lane.frames.append(body)
        lane.bytes += len(body)
        lane.more.set()
        self.stats["posted"] += 1
        return True

    async def _write_loop(self, peer: bytes, lane: _Lane) -> None:
        """Write the lane's frames in order on one stream, opening it when needed; ends
        (and forgets the lane) once the lane stays empty for a while or the peer leaves."""
        stream: INetStream | None = None
        try:
            while True:
                if not lane.frames:
                    lane.more = trio.Event()
                    with trio.move_on_after(self.op_timeout * 6):
                        await lane.more.wait()
                    if not lane.frames:
                        return  # idle: close the stream; a later post opens a new one
                if not self._is_connected(peer):
                    self._lose(lane, "dropped_unreachable")
                    return
                # the frames queued now, up to one write's worth, go out as one muxer
                # frame (one Noise message, one send): a replica's votes to a peer often
                # come several at once
                count, size = 1, len(lane.frames[0])
                while count < len(lane.frames) and size + len(lane.frames[count]) <= WRITE_SLICE:
                    size += len(lane.frames[count])
                    count += 1
                try:
                    if stream is None:
                        stream = await self._open(peer)
                        self.stats["opened"] += 1
                    data = b"".join(frame(lane.frames[i]) for i in range(count))
                    await write_raw(stream, data, self.op_timeout)
                except FrameError as exc:
                    if isinstance(exc, StreamTimeout):
                        self._on_broken(peer)
                    log.debug("post to %s failed: %s", peer.hex()[:12], exc)
                    if stream is not None:
                        await streams.reset(stream)
                        stream = None
                    self._lose(lane, "dropped_failed")
                    continue
                for _ in range(count):
                    lane.bytes -= len(lane.frames.popleft())
                self.stats["written"] += count
                self.stats["writes"] += 1
        finally:
            if self._lanes.get(peer) is lane:
                del self._lanes[peer]
            self._lose(lane, "dropped_failed")
            if stream is not None:
                await streams.close(stream)

    def _lose(self, lane: _Lane, why: str) -> None:
        self.stats[why] += len(lane.frames)
        lane.frames.clear()
        lane.bytes = 0

    async def _open(self, peer: bytes) -> INetStream:
        with trio.move_on_after(self.op_timeout):
            try:
                stream: INetStream = await self.host.new_stream(ID(peer), [PROTOCOL])
            except Exception as exc:
                raise FrameError(f"cannot open {PROTOCOL}: {type(exc).__name__}: {exc}") from None
            return stream
        raise StreamTimeout(f"opening {PROTOCOL} timed out")

    # -- receiving -----------------------------------------------------------------------------

    async def _serve(self, stream: INetStream, remote: bytes) -> None:
        limit = self.max_frame_bytes if self.admission.is_allowed(remote) else SYNC_MAX_FRAME
        frames = FrameReader(stream, limit, self.op_timeout, (self.admission.guard, remote))
        self.stats["served"] += 1
        while True:
            body = await frames.next()
            if body is None:
                return  # the sender closed (or the connection went): nothing half-read
            signed = decode(SignedEnvelope, body)
            signed.envelope.check()
            self.stats["received"] += 1
            self._accept(signed, remote)

    def snapshot(self) -> dict[str, int]:
        return {"lanes": len(self._lanes), **self.stats}
