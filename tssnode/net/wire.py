"""What crosses the wire on our own protocols: envelopes, acks, fetch and peer-exchange
messages (canonical CBOR `Wire` values), and the length-prefixed frames that carry them.

Envelope: the routing header (network id, session id, round, sender, recipient, sequence
number) and opaque payload bytes; the net layer never looks inside the payload. Every
envelope travels signed by its sender's node key (`SignedEnvelope`), so a broadcast fetched
from any peer can be checked against the sender's peer id alone.

Frame: a 4-byte big-endian length, then that many bytes of one canonical encoding. A reader
checks the length against the protocol's limit before reading the body and decodes it
strictly (`MalformedFrame` on anything else). libp2p's `read_exactly` is not used: it gives
up after 100 short reads, which is 400 KiB on mplex.

Timeouts are on progress, not on the whole frame: every single read, and every 64 KiB
slice of a write, must finish within the operation timeout. A frozen peer makes no
progress and times out; a 1 MiB frame on a busy connection is not cut off for being slow.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from tssnode.crypto.encoding import Wire, from_plain, loads_plain, wire
from tssnode.crypto.identity import verify_signature
from tssnode.errors import EncodingError
from tssnode.net import peerid
from tssnode.net.errors import (
    FrameError,
    FrameTooLarge,
    InvalidPeerId,
    MalformedFrame,
    PeerBusy,
    StreamTimeout,
    TruncatedFrame,
)
from tssnode.net.limits import StreamGuard

W = TypeVar("W", bound=Wire)

#: `recipient` of a broadcast envelope.
BROADCAST = b""
MAX_SESSION_ID = 64
MAX_NETWORK_ID = 64
MAX_U64 = 2**64 - 1
#: Signature domain: a signed envelope cannot be mistaken for any other signed thing.
SIGNATURE_DOMAIN = b"tssnode.net.envelope-signature/1\x00"
_LENGTH = struct.Struct(">I")


@wire("tssnode.net.envelope/1")
@dataclass(frozen=True)
class Envelope(Wire):
    """Routing header and opaque payload of one protocol message."""

    network_id: str
    session_id: bytes
    round: int
    sender: bytes
    recipient: bytes  # BROADCAST (b"") or the binary peer id of the one recipient
    seq: int
    payload: bytes

    @property
    def is_broadcast(self) -> bool:
        return self.recipient == BROADCAST

    @property
    def key(self) -> tuple[bytes, int]:
        """Deduplication key: a sender never uses a sequence number twice."""
        return (self.sender, self.seq)

    def check(self) -> None:
        """Structural checks beyond the types; raises `MalformedFrame`."""
        if not 0 < len(self.network_id) <= MAX_NETWORK_ID:
            raise MalformedFrame("bad network id")
        if len(self.session_id) > MAX_SESSION_ID:
            raise MalformedFrame("session id too long")
        if not (0 <= self.round <= MAX_U64 and 0 <= self.seq <= MAX_U64):
            raise MalformedFrame("round or sequence number out of range")
        try:
            peerid.check_peer_id(self.sender)
            if self.recipient != BROADCAST:
                peerid.check_peer_id(self.recipient)
        except InvalidPeerId as exc:
            raise MalformedFrame(f"bad peer id in header: {exc}") from None

    def describe(self) -> str:
        to = "all" if self.is_broadcast else peerid.short(self.recipient)
        return (
            f"{peerid.short(self.sender)}→{to} session {self.session_id.hex()[:12]} "
            f"round {self.round} seq {self.seq}"
        )


@wire("tssnode.net.signed-envelope/1")
@dataclass(frozen=True)
class SignedEnvelope(Wire):
    """An envelope with its sender's Ed25519 signature."""

    envelope: Envelope
    signature: bytes

    @staticmethod
    def signing_bytes(envelope: Envelope) -> bytes:
        return SIGNATURE_DOMAIN + envelope.to_bytes()

    def signature_valid(self) -> bool:
        key = peerid.public_key(self.envelope.sender)
        return verify_signature(key, self.signing_bytes(self.envelope), self.signature)


@wire("tssnode.net.ack/1")
@dataclass(frozen=True)
class Ack(Wire):
    """A receiver's answer to one direct envelope: `ok`, `duplicate` or `refused:<reason>`."""

    seq: int
    status: str


@wire("tssnode.net.fetch-request/1")
@dataclass(frozen=True)
class FetchRequest(Wire):
    """Ask a peer for the broadcasts it holds for one round (from `senders`, or all)."""

    network_id: str
    session_id: bytes
    round: int
    senders: tuple[bytes, ...]


@wire("tssnode.net.fetch-end/1")
@dataclass(frozen=True)
class FetchEnd(Wire):
    """Ends a fetch answer: how many envelopes were sent (or `refused:<reason>`)."""

    count: int
    status: str


@wire("tssnode.net.pex-peer/1")
@dataclass(frozen=True)
class PexPeer(Wire):
    """One peer a node knows: its id and the addresses it listens on."""

    peer_id: bytes
    addrs: tuple[str, ...]


@wire("tssnode.net.pex/1")
@dataclass(frozen=True)
class PexHello(Wire):
    """Peer exchange, both directions: the network, our addresses, the peers we know."""

    network_id: str
    addrs: tuple[str, ...]
    peers: tuple[PexPeer, ...]
    status: str  # "ok" or "refused:<reason>" in an answer


# -- decoding --------------------------------------------------------------------------------


def decode(cls: type[W], body: bytes) -> W:
    """Strictly decode one `cls`; anything else is `MalformedFrame`."""
    try:
        return cls.from_bytes(body)
    except EncodingError as exc:
        raise MalformedFrame(f"not a {cls.__name__}: {exc}") from None


def decode_one_of(classes: tuple[type[Wire], ...], body: bytes) -> Wire:
    """Strictly decode a value that must be one of `classes` (told apart by tag)."""
    try:
        plain = loads_plain(body)
    except EncodingError as exc:
        raise MalformedFrame(str(exc)) from None
    tag = plain[0] if isinstance(plain, list) and plain else None
    for cls in classes:
        if tag == cls.WIRE_TAG:
            try:
                value: Wire = from_plain(cls, plain)
            except EncodingError as exc:
                raise MalformedFrame(f"not a {cls.__name__}: {exc}") from None
            return value
    raise MalformedFrame("unexpected message type")


# -- frames on a libp2p stream ---------------------------------------------------------------


#: A write is done in slices of this size, each under the operation timeout.
WRITE_SLICE = 64 * 1024


async def read_exact(stream: Any, n: int, seconds: float) -> bytes:
    """Read exactly `n` bytes; each read must return within `seconds`."""
    buf = bytearray()
    while len(buf) < n:
        with trio.move_on_after(seconds) as scope:
            try:
                chunk = await stream.read(n - len(buf))
            except EOFError:  # libp2p's StreamEOF is an EOFError
                chunk = b""
            except Exception as exc:  # StreamReset, StreamError, muxer errors
                raise FrameError(f"stream failed: {type(exc).__name__}") from None
        if scope.cancelled_caught:
            raise StreamTimeout(f"read stalled after {len(buf)} of {n} bytes")
        if not chunk:
            raise TruncatedFrame(f"stream ended after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


async def read_frame(
    stream: Any,
    max_bytes: int,
    seconds: float,
    budget: tuple[StreamGuard, bytes] | None = None,
) -> bytes:
    """One frame's body (each read within `seconds`); the length is checked against
    `max_bytes`, and reserved in `budget` (the guard and the sending peer) before the
    body is read: `PeerBusy` when that peer, or all peers together, are reading too much
    at once."""
    (length,) = _LENGTH.unpack(await read_exact(stream, _LENGTH.size, seconds))
    if length > max_bytes:
        raise FrameTooLarge(f"frame of {length} bytes (limit {max_bytes})")
    if length == 0:
        raise MalformedFrame("empty frame")
    if budget is None:
        return await read_exact(stream, length, seconds)
    guard, peer = budget
    if not guard.reserve(peer, length):
        raise PeerBusy(f"frame of {length} bytes: too much being read at once")
    try:
        return await read_exact(stream, length, seconds)
    finally:
        guard.release(peer, length)


async def read_message(
    stream: Any,
    cls: type[W],
    max_bytes: int,
    seconds: float,
    budget: tuple[StreamGuard, bytes] | None = None,
) -> W:
    return decode(cls, await read_frame(stream, max_bytes, seconds, budget))


class FrameReader:
    """Frames from a long-lived stream, read through a buffer: one read of the stream can
    bring several frames (a writer that coalesces them, `posts`) or part of one.

    Between frames the stream may stay idle for as long as the sender has nothing to
    say; once a frame has begun, every read must return within `seconds`. The length is
    checked against `max_bytes` and reserved in `budget` (as `read_frame` does) before
    the rest of the body is waited for."""

    CHUNK = 64 * 1024

    def __init__(
        self,
        stream: Any,
        max_bytes: int,
        seconds: float,
        budget: tuple[StreamGuard, bytes] | None = None,
    ) -> None:
        self.stream, self.max_bytes, self.seconds, self.budget = stream, max_bytes, seconds, budget
        self.buf = bytearray()

    async def _fill(self, n: int) -> bool:
        """Buffer at least `n` bytes; False on a clean end between frames."""
        while len(self.buf) < n:
            if not self.buf:  # between frames: no timeout, and an end is clean
                try:
                    chunk = await self.stream.read(self.CHUNK)
                except Exception:  # reset, connection gone: an end like any other
                    chunk = b""
                if not chunk:
                    return False
            else:
                with trio.move_on_after(self.seconds) as scope:
                    try:
                        chunk = await self.stream.read(self.CHUNK)
                    except EOFError:
                        chunk = b""
                    except Exception as exc:
                        raise FrameError(f"stream failed: {type(exc).__name__}") from None
                if scope.cancelled_caught:
                    raise StreamTimeout(f"read stalled after {len(self.buf)} of {n} bytes")
                if not chunk:
                    raise TruncatedFrame(f"stream ended after {len(self.buf)} of {n} bytes")
            self.buf += chunk
        return True

    async def next(self) -> bytes | None:
        """The next frame's body, or None when the stream ended cleanly between frames."""
        if not await self._fill(_LENGTH.size):
            return None
        (length,) = _LENGTH.unpack_from(self.buf)
        if length > self.max_bytes:
            raise FrameTooLarge(f"frame of {length} bytes (limit {self.max_bytes})")
        if length == 0:
            raise MalformedFrame("empty frame")
        end = _LENGTH.size + length
        if self.budget is not None and not self.budget[0].reserve(self.budget[1], length):
            raise PeerBusy(f"frame of {length} bytes: too much being read at once")
        try:
            await self._fill(end)
        finally:
            if self.budget is not None:
                self.budget[0].release(self.budget[1], length)
        body = bytes(self.buf[_LENGTH.size : end])
        del self.buf[:end]
        return body


def frame(body: bytes) -> bytes:
    return _LENGTH.pack(len(body)) + body


async def write_frame(stream: Any, body: bytes, seconds: float) -> None:
    """Write one frame, each 64 KiB slice within `seconds`. (A timeout cannot leave half
    a muxer frame on the connection: the host's writes are atomic.)"""
    await write_raw(stream, frame(body), seconds)


async def write_raw(stream: Any, raw: bytes, seconds: float) -> None:
    """Write bytes that are already frames (`frame`), as `write_frame` does."""
    data = memoryview(raw)
    for start in range(0, len(data), WRITE_SLICE):
        with trio.move_on_after(seconds) as scope:
            try:
                await stream.write(bytes(data[start : start + WRITE_SLICE]))
            except Exception as exc:
                raise FrameError(f"stream write failed: {type(exc).__name__}") from None
        if scope.cancelled_caught:
            raise StreamTimeout(f"write stalled after {start} of {len(data)} bytes")
