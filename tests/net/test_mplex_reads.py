"""Reads from our mplex stream: the same bytes as py-libp2p's, at a cost proportional to
what each read returns (py-libp2p copied everything still buffered on every read, so a
reader behind by B bytes of small gossip RPCs paid O(B) per length-prefix byte)."""

from __future__ import annotations

import random

import pytest
import trio
from libp2p.stream_muxer.mplex.mplex_stream import MplexStream

from tssnode.net.host import _MplexStream


def _stream(cls: type[MplexStream], chunks: list[bytes]) -> MplexStream:
    send, receive = trio.open_memory_channel[bytes](len(chunks) + 1)
    for chunk in chunks:
        send.send_nowait(chunk)
    send.close()  # the remote closed its side after the data: reads end with EOF
    return cls("test", None, None, receive)  # type: ignore[arg-type]


async def _read_all(stream: MplexStream, sizes: random.Random) -> bytes:
    out = bytearray()
    while True:
        try:
            out += await stream.read(sizes.choice([1, 1, 2, 3, 7, 100, 5000]))
        except Exception:  # MplexStreamEOF once everything was read
            return bytes(out)


@pytest.mark.trio
@pytest.mark.parametrize("seed", range(5))
async def test_reads_return_exactly_the_bytes_sent_in_order(seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(200_000)
    cuts = sorted(rng.sample(range(1, len(data)), 60))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    ours = await _read_all(_stream(_MplexStream, chunks), random.Random(seed))
    theirs = await _read_all(_stream(MplexStream, chunks), random.Random(seed))
    assert ours == theirs == data


@pytest.mark.trio
async def test_a_small_read_from_a_large_buffer_does_not_copy_the_rest() -> None:
    stream = _stream(_MplexStream, [bytes(1 << 20)])
    assert len(await stream.read(1)) == 1  # the first read fills the buffer
    buffer = stream._buf
    for _ in range(100):
        assert await stream.read(1) == b"\x00"
    # the same bytearray, its front dropped in place (py-libp2p's read made a new one
    # holding the remaining megabyte each time)
    assert stream._buf is buffer and len(buffer) == (1 << 20) - 101
