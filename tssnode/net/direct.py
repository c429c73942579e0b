"""Direct messages: our own stream protocol `/tssnode/direct/1.0.0`.

One stream carries one exchange: the sender writes one frame holding a `SignedEnvelope`,
the receiver answers with one `Ack` frame and both close. Every step has a timeout (open,
write, read); the frame limit is the config's `max_frame_bytes` for validators and
`SYNC_MAX_FRAME` for peers that may only read the chain, and the bytes being read at once
are bounded per peer (`admission.guard`). The receiver checks the
frame size, decodes strictly, then hands the envelope to the acceptor (admission,
signature, deduplication), and acks with its verdict: `ok`, `duplicate` (already had
it: the sender's resend raced our ack) or `refused:<reason>`. Anything malformed resets
the stream and is counted; the node carries on.

Resending, deadlines and the typed delivery errors are in `reliable`; this module only
does one attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol

from tssnode.net import streams
from tssnode.net.admission import Admission
from tssnode.net.errors import MalformedFrame, StreamTimeout
from tssnode.net.wire import Ack, SignedEnvelope, decode, read_message, write_frame

log = logging.getLogger(__name__)

PROTOCOL = TProtocol("/tssnode/direct/1.0.0")
ACK_MAX_BYTES = 1024
#: Largest direct frame from a peer that is not a validator (its chain reads are tiny).
SYNC_MAX_FRAME = 16 * 1024

#: (signed envelope, authenticated remote peer id) -> ack status
Acceptor = Callable[[SignedEnvelope, bytes], str]


class Direct:
    """Both ends of the direct protocol."""

    def __init__(
        self,
        host: IHost,
        admission: Admission,
        accept: Acceptor,
        *,
        max_frame_bytes: int,
        op_timeout: float,
        on_broken: Callable[[bytes], None],
    ) -> None:
        self.host = host
        self.admission = admission
        self.accept = accept
        self.max_frame_bytes = max_frame_bytes
        self.op_timeout = op_timeout
        self.on_broken = on_broken

    def install(self) -> None:
        self.host.set_stream_handler(PROTOCOL, streams.serve("direct", self.admission, self._serve))

    async def _serve(self, stream: INetStream, remote: bytes) -> None:
        # a peer that may only read the chain never needs a large frame
        limit = self.max_frame_bytes if self.admission.is_allowed(remote) else SYNC_MAX_FRAME
        budget = (self.admission.guard, remote)
        signed = await read_message(stream, SignedEnvelope, limit, self.op_timeout, budget)
        signed.envelope.check()
        status = self.accept(signed, remote)
        await write_frame(stream, Ack(signed.envelope.seq, status).to_bytes(), self.op_timeout)

    async def send_once(self, peer: bytes, signed: SignedEnvelope) -> Ack:
        """One attempt: open, write the envelope, read the ack. Raises `FrameError`s."""
        body = signed.to_bytes()
        async with streams.opened(self.host, peer, PROTOCOL, self.op_timeout) as stream:
            try:
                await write_frame(stream, body, self.op_timeout)
            except StreamTimeout:
                self.on_broken(peer)
                raise
            ack = await read_message(stream, Ack, ACK_MAX_BYTES, self.op_timeout)
        if ack.seq != signed.envelope.seq:
            raise MalformedFrame(f"ack for sequence {ack.seq}, expected {signed.envelope.seq}")
        return ack


def decode_envelope(body: bytes) -> SignedEnvelope:
    """Strictly decode and check one signed envelope (for tools and tests)."""
    signed = decode(SignedEnvelope, body)
    signed.envelope.check()
    return signed
