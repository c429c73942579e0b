"""Shared plumbing for our request/response stream protocols (direct, fetch, pex).

`serve` wraps a protocol handler so that whatever a remote peer sends, the handler ends by
closing or resetting its stream, counts the drop reason, and never lets an exception
reach py-libp2p (an exception escaping a stream handler tears down the host). Before the
handler runs, the peer must be admitted (any tier: what each tier may send is the
handler's business) and within its share of concurrent streams (`admission.guard`);
otherwise the stream is reset at once and counted. `open` opens
an outbound stream under a timeout. A write that times out leaves the connection in an
unknown state (part of a muxer frame may be on the wire), so it is reported to
`on_broken`, which drops the connection.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from tssnode.net import admission as reasons
from tssnode.net import peerid
from tssnode.net.admission import Admission
from tssnode.net.errors import (
    FrameError,
    FrameTooLarge,
    MalformedFrame,
    PeerBusy,
    StreamTimeout,
    TruncatedFrame,
)

log = logging.getLogger(__name__)

Handler = Callable[[INetStream, bytes], Awaitable[None]]


def reason_of(exc: FrameError) -> str:
    if isinstance(exc, FrameTooLarge):
        return reasons.OVERSIZED
    if isinstance(exc, TruncatedFrame):
        return reasons.TRUNCATED
    if isinstance(exc, MalformedFrame):
        return reasons.MALFORMED
    if isinstance(exc, StreamTimeout):
        return reasons.TIMEOUT
    if isinstance(exc, PeerBusy):
        return reasons.BUSY
    return reasons.STREAM_ERROR


def remote_of(stream: INetStream) -> bytes:
    peer: ID = stream.muxed_conn.peer_id
    return peer.to_bytes()


async def reset(stream: INetStream) -> None:
    """Reset a stream, shielded and bounded (never raises)."""
    with trio.CancelScope(shield=True), trio.move_on_after(2), contextlib.suppress(Exception):
        await stream.reset()


async def close(stream: INetStream) -> None:
    """Close a stream politely, shielded and bounded; reset it if that fails."""
    with trio.CancelScope(shield=True), trio.move_on_after(2) as scope:
        try:
            await stream.close()
            return
        except Exception:
            pass
    if scope.cancelled_caught:
        log.debug("stream close timed out")
    await reset(stream)


def serve(name: str, admission: Admission, handler: Handler) -> Callable[[INetStream], Any]:
    """A py-libp2p stream handler running `handler(stream, remote_peer_id)` safely."""

    async def guarded(stream: INetStream) -> None:
        remote = b""
        done = entered = False
        guard = admission.guard
        try:
            remote = remote_of(stream)
            if not admission.may_send_to(remote):  # (its tier changed since it connected)
                admission.refuse(remote, reasons.UNKNOWN_PEER, f"{name} stream")
                return
            if not guard.enter(remote):
                raise PeerBusy("too many streams at once")
            entered = True
            await handler(stream, remote)
            done = True
        except FrameError as exc:
            admission.drop(reason_of(exc), remote or None, f"{name}: {exc}")
        except Exception:
            log.exception("%s handler failed (peer %s)", name, peerid.short(remote) or "?")
            admission.drop(reasons.INTERNAL_ERROR, remote or None, name)
        finally:
            if entered:
                guard.leave(remote)
            if done:
                await close(stream)
            else:
                await reset(stream)

    return guarded


@contextlib.asynccontextmanager
async def opened(
    host: IHost, peer: bytes, protocol: TProtocol, seconds: float
) -> AsyncIterator[INetStream]:
    """An outbound stream to a connected peer, opened within `seconds`; reset unless the
    body ends normally."""
    stream: INetStream | None = None
    with trio.move_on_after(seconds):
        try:
            stream = await host.new_stream(ID(peer), [protocol])
        except Exception as exc:
            raise FrameError(f"cannot open {protocol}: {type(exc).__name__}: {exc}") from None
    if stream is None:
        raise StreamTimeout(f"opening {protocol} timed out")
    ok = False
    try:
        yield stream
        ok = True
    finally:
        if ok:
            await close(stream)
        else:
            await reset(stream)
