"""Catch-up: `/tssnode/fetch/1.0.0` asks a peer for the broadcasts it holds for a round.

The requester sends one `FetchRequest` (network, session, round, wanted senders); the
server answers with one frame per matching signed envelope from its store, then a
`FetchEnd` with the count. Envelopes keep their original senders' signatures, so they can
come from any peer: the requester checks each one exactly as if it had arrived by gossip.
A server refuses requesters other than validators and other networks (`FetchEnd` with
`refused:<reason>`, counted).
"""

from __future__ import annotations

import logging

from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol

from tssnode.net import admission as reasons
from tssnode.net import streams
from tssnode.net.admission import Admission
from tssnode.net.errors import MalformedFrame
from tssnode.net.store import MessageStore
from tssnode.net.wire import (
    MAX_SESSION_ID,
    FetchEnd,
    FetchRequest,
    SignedEnvelope,
    decode_one_of,
    read_frame,
    read_message,
    write_frame,
)

log = logging.getLogger(__name__)

PROTOCOL = TProtocol("/tssnode/fetch/1.0.0")
REQUEST_MAX_BYTES = 64 * 1024
#: At most this many envelopes in one answer (a round has one broadcast per validator).
MAX_ANSWER = 1024


class Fetch:
    """Both ends of the fetch protocol."""

    def __init__(
        self,
        host: IHost,
        network_id: str,
        admission: Admission,
        store: MessageStore,
        *,
        max_frame_bytes: int,
        op_timeout: float,
    ) -> None:
        self.host = host
        self.network_id = network_id
        self.admission = admission
        self.store = store
        self.max_frame_bytes = max_frame_bytes
        self.op_timeout = op_timeout
        self.served = 0

    def install(self) -> None:
        self.host.set_stream_handler(PROTOCOL, streams.serve("fetch", self.admission, self._serve))

    async def _serve(self, stream: INetStream, remote: bytes) -> None:
        budget = (self.admission.guard, remote)
        request = await read_message(
            stream, FetchRequest, REQUEST_MAX_BYTES, self.op_timeout, budget
        )
        if len(request.session_id) > MAX_SESSION_ID or len(request.senders) > MAX_ANSWER:
            raise MalformedFrame("fetch request out of bounds")
        status = "ok"
        if request.network_id != self.network_id:
            status = f"refused:{reasons.WRONG_NETWORK}"
        elif not self.admission.is_allowed(remote):  # validators only
            status = f"refused:{reasons.SYNC_ONLY}"
        if status != "ok":
            self.admission.refuse(remote, status.split(":", 1)[1], "fetch request")
            await write_frame(stream, FetchEnd(0, status).to_bytes(), self.op_timeout)
            return
        senders = request.senders or None
        found = self.store.broadcasts(request.session_id, request.round, senders)[:MAX_ANSWER]
        for signed in found:
            await write_frame(stream, signed.to_bytes(), self.op_timeout)
        await write_frame(stream, FetchEnd(len(found), "ok").to_bytes(), self.op_timeout)
        self.served += len(found)

    async def fetch(self, peer: bytes, request: FetchRequest) -> list[SignedEnvelope]:
        """Ask `peer`; returns the envelopes as received (unchecked: the caller checks)."""
        got: list[SignedEnvelope] = []
        async with streams.opened(self.host, peer, PROTOCOL, self.op_timeout) as stream:
            await write_frame(stream, request.to_bytes(), self.op_timeout)
            while True:
                body = await read_frame(stream, self.max_frame_bytes, self.op_timeout)
                item = decode_one_of((SignedEnvelope, FetchEnd), body)
                if isinstance(item, FetchEnd):
                    if item.status != "ok":
                        log.info("fetch refused by peer: %s", item.status)
                    elif item.count != len(got):
                        raise MalformedFrame("fetch answer count does not match")
                    return got
                assert isinstance(item, SignedEnvelope)
                got.append(item)
                if len(got) > MAX_ANSWER:
                    raise MalformedFrame("fetch answer too long")
