"""Envelopes and frames: canonical round trips, signatures, and the frame reader's

refusals (oversized before reading, truncated, malformed, timed out)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tssnode.net.errors import (
    FrameError,
    FrameTooLarge,
    MalformedFrame,
    PeerBusy,
    StreamTimeout,
    TruncatedFrame,
)
from tssnode.net.identity import NodeIdentity
from tssnode.net.limits import StreamGuard
from tssnode.net.wire import (
    BROADCAST,
    Ack,
    Envelope,
    FetchEnd,
    FrameReader,
    SignedEnvelope,
    decode,
    decode_one_of,
    frame,
    read_frame,
    read_message,
    write_frame,
)

ALICE = NodeIdentity.from_seed(bytes(32))
BOB = NodeIdentity.from_seed(bytes([1]) * 32)


def sealed(payload: bytes = b"payload", *, recipient: bytes = BROADCAST) -> SignedEnvelope:
    env = Envelope("net", b"session", 3, ALICE.peer_id, recipient, 7, payload)
    return SignedEnvelope(env, ALICE.sign(SignedEnvelope.signing_bytes(env)))


class FakeStream:
    """Hands out its bytes in small pieces, then EOF (or hangs, or fails)."""

    def __init__(self, data: bytes, *, piece: int = 3, then: str = "eof") -> None:
        self.data = data
        self.piece = piece
        self.then = then
        self.written = b""

    async def read(self, n: int) -> bytes:
        await trio.lowlevel.checkpoint()
        if not self.data:
            if self.then == "hang":
                await trio.sleep_forever()
            if self.then == "reset":
                raise ConnectionResetError("reset")
            raise EOFError
        chunk, self.data = self.data[: min(n, self.piece)], self.data[min(n, self.piece) :]
        return chunk

    async def write(self, data: bytes) -> None:
        if self.then == "hang":
            await trio.sleep_forever()
        self.written += data


def test_envelope_round_trip_and_strictness() -> None:
    signed = sealed()
    data = signed.to_bytes()
    assert decode(SignedEnvelope, data) == signed
    with pytest.raises(MalformedFrame):
        decode(SignedEnvelope, data + b"\x00")  # trailing bytes
    with pytest.raises(MalformedFrame):
        decode(SignedEnvelope, Ack(1, "ok").to_bytes())  # another message type
    assert isinstance(decode_one_of((SignedEnvelope, FetchEnd), data), SignedEnvelope)
    with pytest.raises(MalformedFrame):
        decode_one_of((FetchEnd,), data)


def test_signature_covers_every_header_field() -> None:
    signed = sealed(recipient=BOB.peer_id)
    assert signed.signature_valid()
    env = signed.envelope
    for change in (
        {"network_id": "other"},
        {"session_id": b"other"},
        {"round": 4},
        {"recipient": ALICE.peer_id},
        {"seq": 8},
        {"payload": b"Payload"},
    ):
        forged = SignedEnvelope(Envelope(**{**env.__dict__, **change}), signed.signature)
        assert not forged.signature_valid(), change
    impostor = Envelope(**{**env.__dict__, "sender": BOB.peer_id})
    assert not SignedEnvelope(impostor, signed.signature).signature_valid()


def test_envelope_structure_checks() -> None:
    good = sealed().envelope
    good.check()
    for change in (
        {"network_id": ""},
        {"session_id": bytes(65)},
        {"round": -1},
        {"seq": 2**64},
        {"sender": b"\x00" * 38},
        {"recipient": b"short"},
    ):
        with pytest.raises(MalformedFrame):
            Envelope(**{**good.__dict__, **change}).check()


@pytest.mark.trio
async def test_frame_round_trip() -> None:
    out = FakeStream(b"")
    body = sealed(b"x" * 10_000).to_bytes()
    await write_frame(out, body, 1.0)
    back = FakeStream(out.written, piece=4076)  # mplex hands out 4 KiB pieces
    assert await read_message(back, SignedEnvelope, 1 << 20, 5.0) == sealed(b"x" * 10_000)


@pytest.mark.trio
async def test_more_than_100_short_reads() -> None:
    # libp2p's read_exactly gives up after 100 reads; a 1 MiB frame on mplex needs ~260
    body = bytes(1 << 20)
    got = await read_frame(FakeStream(frame(body), piece=4076), 2 << 20, 10.0)
    assert got == body


@pytest.mark.trio
async def test_oversized_frame_is_refused_before_its_body() -> None:
    stream = FakeStream(frame(bytes(100)) + b"never read", piece=1000)
    with pytest.raises(FrameTooLarge):
        await read_frame(stream, 99, 1.0)
    assert stream.data == bytes(100) + b"never read"  # only the length prefix was read


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", TruncatedFrame),
        (b"\x00\x00", TruncatedFrame),
        (frame(b"abc")[:-1], TruncatedFrame),
        (b"\x00\x00\x00\x00", MalformedFrame),
        (frame(b"\xff\xff not cbor"), MalformedFrame),
    ],
)
@pytest.mark.trio
async def test_bad_frames(data: bytes, error: type[FrameError]) -> None:
    with pytest.raises(error):
        await read_message(FakeStream(data), SignedEnvelope, 1 << 20, 1.0)


@pytest.mark.trio
async def test_stream_failure_is_a_frame_error() -> None:
    with pytest.raises(FrameError, match="stream failed"):
        await read_frame(FakeStream(b"\x00", then="reset"), 100, 1.0)


@pytest.mark.trio
async def test_every_operation_has_a_timeout(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(StreamTimeout):
        await read_frame(FakeStream(frame(b"abcdef")[:6], then="hang"), 100, 5.0)
    with pytest.raises(StreamTimeout):
        await write_frame(FakeStream(b"", then="hang"), b"body", 5.0)


class Chunks:
    """A stream that returns these chunks, one per read, then waits (or ends)."""

    def __init__(self, chunks: list[bytes], *, end: bool = True) -> None:
        self.chunks, self.end = list(chunks), end

    async def read(self, n: int = -1) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        if self.end:
            return b""
        await trio.sleep_forever()
        raise AssertionError


@pytest.mark.trio
async def test_frame_reader_splits_and_joins_frames_across_reads() -> None:
    raw = frame(b"one") + frame(b"two" * 100) + frame(b"three")
    # several frames in one read, and frames cut anywhere (even inside the length)
    for cut in (raw, *[[raw[:i], raw[i:]] for i in (1, 3, 5, 9, len(raw) - 1)]):
        chunks = [cut] if isinstance(cut, bytes) else cut
        reader = FrameReader(Chunks(chunks), 1024, 1.0)
        assert [await reader.next() for _ in range(3)] == [b"one", b"two" * 100, b"three"]
        assert await reader.next() is None  # a clean end between frames


@pytest.mark.trio
async def test_frame_reader_refuses_bad_frames_and_waits_only_between_frames(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(FrameTooLarge):
        await FrameReader(Chunks([frame(b"x" * 20)]), 10, 1.0).next()
    with pytest.raises(MalformedFrame):
        await FrameReader(Chunks([bytes(4)]), 10, 1.0).next()
    with pytest.raises(TruncatedFrame):
        await FrameReader(Chunks([frame(b"abcdef")[:6]]), 10, 1.0).next()
    with pytest.raises(StreamTimeout):  # a frame begun must go on within the timeout
        await FrameReader(Chunks([frame(b"abcdef")[:6]], end=False), 10, 1.0).next()
    guard = StreamGuard(peer_bytes=8)
    with pytest.raises(PeerBusy):  # its length is reserved before the body is awaited
        await FrameReader(Chunks([frame(b"x" * 9)]), 100, 1.0, (guard, b"p")).next()
    assert guard.bytes == 0
    # an idle stream between frames is waited for as long as it takes
    idle = FrameReader(Chunks([], end=False), 10, 1.0)
    with trio.move_on_after(3600) as scope:
        await idle.next()
    assert scope.cancelled_caught
