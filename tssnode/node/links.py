"""The node's links to the net layer: the ledger's `Transport` (`LedgerLink`) and a
protocol session's transport (`ProtocolLink`), and the admission rule for the frames a
peer that is not a validator may send (`chain_read`).

One Ed25519 key (the libp2p identity in the data directory) is the node's peer id, its
validator key in the ledger and the key that signs its protocol envelopes, so a party
and a validator are addressed by that key here. The net layer carries the ledger's
frames under the session id `LEDGER_SESSION` and protocol envelopes under their ssid.
The daemon (`tssnode.cli.daemon`) wires these links between the net node, the replica
and the node's sessions.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import trio

from tssnode.crypto.encoding import decode_any
from tssnode.errors import EncodingError
from tssnode.ledger.messages import FetchBlocks, StatusRequest
from tssnode.net import peerid
from tssnode.net.errors import NetError
from tssnode.net.node import NetNode
from tssnode.node.sessions import DeliveryFailed
from tssnode.protocol.base import BROADCAST, Message, SessionConfig

log = logging.getLogger("tssnode.node")

LEDGER_SESSION = b"tssnode/ledger/1"
#: Ledger frames are best effort (the replica retransmits): a send gives up after this.
#: (3 s was too short on a loaded machine, where a stream's open and ack took longer: the
#: view changes of a loaded n = 7 network never gathered a quorum.)
LEDGER_SEND_DEADLINE = 8.0
#: Gossip publishes of ledger frames under way at once, at most (each relays a frame to
#: the validators this node has no connection to; more wait for the replica's re-send).
LEDGER_RELAYS = 4
#: A protocol message not acknowledged by then fails its session (which is retried).
SEND_DEADLINE = 15.0
#: Ledger frames received and not yet taken by the replica, at most: in all, in bytes in
#: all and in bytes from one sender (beyond: dropped and counted; the sender retransmits).
LEDGER_INBOX_FRAMES = 10_000
LEDGER_INBOX_BYTES = 64 * 1024 * 1024
LEDGER_INBOX_PEER_BYTES = 16 * 1024 * 1024
#: Large ledger frames being sent at once, at most (each send is its own task): in all, in
#: bytes in all and in bytes to one recipient (a follower asking for blocks again and
#: again must not make this node hold answers without bound).
LEDGER_SENDS = 2048
LEDGER_SEND_BYTES = 64 * 1024 * 1024
LEDGER_SEND_PEER_BYTES = 16 * 1024 * 1024
#: Ledger frames up to this size are posted on the peer's open stream (no acknowledgement,
#: one muxer frame); larger ones get a stream each (see `LedgerLink.send`).
POST_MAX = 64 * 1024
#: The largest chain read a follower, joiner or newcomer may send (a status or block
#: request is a few dozen bytes).
CHAIN_READ_MAX = 1024


def chain_read(session_id: bytes, payload: bytes) -> bool:
    """True for the frames a peer that is not a validator may send: a ledger status
    request or block request (`admission.sync_filter`)."""
    if session_id != LEDGER_SESSION or len(payload) > CHAIN_READ_MAX:
        return False
    try:
        frame = decode_any(payload)
    except EncodingError:
        return False
    return isinstance(frame, StatusRequest | FetchBlocks)


class LedgerLink:
    """The ledger's `Transport` over the net layer.

    A ledger broadcast is a direct send to each validator (`recipients`), not gossip.
    Gossip carried the protocol's bulky round messages too, on one pubsub stream per
    peer: a vote queued behind them, and the replica's one send loop waited on a full
    gossip queue for up to 5 s, so under load NEW-VIEW messages arrived 10-35 s late,
    the view changes of n = 7 never converged, and full-mesh forwarding made every vote
    cross the wire about n times per receiver (issue 12). A frame to a validator is
    posted on the stream this node keeps open to it (`net.posts`), beside the gossip
    stream instead of behind it: a stream per frame with an acknowledgement cost two round
    trips and about eight muxer frames each, and made a commit over libp2p about ten
    times slower than in one process (issue 16). A large frame (blocks for catch-up)
    gets a stream of its own, sent in a task of its own, so it holds no vote back; such
    a frame already on its way to a peer is not sent to it again. When some validator
    has no connection to this node (restarting, or reachable only through others), the
    frame is also published by gossip, in a task of its own, so that the peers
    connected to it relay it. Before the validator set is known (a node
    learning its genesis) a broadcast goes by gossip only."""

    def __init__(self, net: NetNode, me: bytes) -> None:
        self.net = net
        self._me = me
        #: The validators' keys a broadcast goes to (set once the replica runs).
        self.recipients: Callable[[], Iterable[bytes]] | None = None
        self.inbox_send, self.inbox = trio.open_memory_channel[tuple[bytes, bytes]](
            LEDGER_INBOX_FRAMES
        )
        self._nursery: trio.Nursery | None = None
        self._seq = 0
        self._in: Counter[bytes] = Counter()  # bytes waiting for the replica, by sender
        self._out: Counter[bytes] = Counter()  # bytes being sent, by recipient
        self.in_bytes = self.out_bytes = self.sending = 0
        self.dropped: Counter[str] = Counter()  # "inbox" | "send" | "relay"
        self.undelivered: Counter[str] = Counter()  # sends that failed, by error
        self._inflight: set[bytes] = set()  # hash(recipient, frame) of sends under way
        self.coalesced = 0  # sends skipped: the same frame was on its way to that peer
        self.posted = 0  # frames queued on a post stream
        self.relays = 0  # gossip publishes under way

    @property
    def self_id(self) -> bytes:
        return self._me

    def bind(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def deliver(self, sender_key: bytes, data: bytes) -> None:
        n = len(data)
        if (
            self.in_bytes + n > LEDGER_INBOX_BYTES
            or self._in[sender_key] + n > LEDGER_INBOX_PEER_BYTES
        ):
            self._drop("inbox")
            return
        try:
            self.inbox_send.send_nowait((sender_key, data))
        except trio.WouldBlock:
            self._drop("inbox")
            return
        self._in[sender_key] += n
        self.in_bytes += n

    def _drop(self, where: str) -> None:
        """Count a frame dropped at a bound; warn on the first and every 1000th."""
        self.dropped[where] += 1
        if self.dropped[where] % 1000 == 1:
            log.warning(
                "ledger %s full: frame dropped (%d so far; the sender retransmits)",
                where,
                self.dropped[where],
            )

    async def send(self, to: bytes, data: bytes) -> None:
        """A frame of at most `POST_MAX` bytes (a vote, a request, a status) is posted on
        the stream kept open to the peer (`net.posts`): one muxer frame, no round trip.
        A larger one (blocks for a peer catching up) goes on a stream of its own, so the
        votes behind it do not wait for it."""
        if len(data) > POST_MAX:
            self._send_large(to, data)
            return
        self._seq += 1
        try:
            queued = self.net.post(peerid.from_public_key(to), LEDGER_SESSION, self._seq, data)
        except NetError as exc:
            self.undelivered[type(exc).__name__] += 1
            return
        if queued:
            self.posted += 1
        else:  # no connection or too much queued: the replica sends it again
            self.undelivered["not queued"] += 1

    def _send_large(self, to: bytes, data: bytes) -> None:
        # never hold the replica's send loop on one slow peer
        assert self._nursery is not None
        key = hashlib.sha256(to + data).digest()
        if key in self._inflight:  # a re-send of a frame still under way (the transport
            self.coalesced += 1  # retries it until acknowledged or its deadline)
            return
        n = len(data)
        if (
            self.sending >= LEDGER_SENDS
            or self.out_bytes + n > LEDGER_SEND_BYTES
            or self._out[to] + n > LEDGER_SEND_PEER_BYTES
        ):
            self._drop("send")
            return
        self.sending += 1
        self.out_bytes += n
        self._out[to] += n
        self._inflight.add(key)
        self._nursery.start_soon(self._send_one, to, data, key)

    async def _send_one(self, to: bytes, data: bytes, key: bytes) -> None:
        self._seq += 1
        try:
            await self.net.send(
                peerid.from_public_key(to), LEDGER_SESSION, self._seq, data,
                deadline=LEDGER_SEND_DEADLINE,
            )  # fmt: skip
        except NetError as exc:
            self.undelivered[type(exc).__name__] += 1
            log.debug("ledger frame to %s not delivered: %s", to.hex()[:12], exc)
        finally:
            self._inflight.discard(key)
            self.sending -= 1
            self.out_bytes -= len(data)
            self._out[to] -= len(data)
            if self._out[to] <= 0:
                del self._out[to]

    async def broadcast(self, data: bytes) -> None:
        if self.recipients is not None:
            unreachable = False
            for to in self.recipients():
                if to != self._me:
                    await self.send(to, data)
                    unreachable |= not self.net.peers.is_connected(peerid.from_public_key(to))
            if unreachable:
                self._relay(data)
            return
        await self._publish(data)

    def _relay(self, data: bytes) -> None:
        assert self._nursery is not None
        if self.relays >= LEDGER_RELAYS:
            self._drop("relay")
            return
        self.relays += 1

        async def publish() -> None:
            try:
                await self._publish(data)
            finally:
                self.relays -= 1

        self._nursery.start_soon(publish)

    async def _publish(self, data: bytes) -> None:
        self._seq += 1
        try:
            await self.net.broadcast(LEDGER_SESSION, self._seq, data)
        except NetError as exc:
            log.warning("ledger broadcast failed: %s", exc)

    async def receive(self) -> tuple[bytes, bytes]:
        sender, data = await self.inbox.receive()
        self.in_bytes -= len(data)
        self._in[sender] -= len(data)
        if self._in[sender] <= 0:
            del self._in[sender]
        return sender, data

    def snapshot(self) -> dict[str, Any]:
        return {
            "inbox_frames": self.inbox.statistics().current_buffer_used,
            "inbox_bytes": self.in_bytes,
            "sending": self.sending,
            "sending_bytes": self.out_bytes,
            "dropped": dict(self.dropped),
            "undelivered": dict(self.undelivered),
            "coalesced": self.coalesced,
            "posted": self.posted,
            "relays": self.relays,
            "limits": {
                "inbox_frames": LEDGER_INBOX_FRAMES,
                "inbox_bytes": LEDGER_INBOX_BYTES,
                "inbox_peer_bytes": LEDGER_INBOX_PEER_BYTES,
                "sends": LEDGER_SENDS,
                "send_bytes": LEDGER_SEND_BYTES,
                "send_peer_bytes": LEDGER_SEND_PEER_BYTES,
            },
        }


class ProtocolLink:
    """A session's transport over the net layer: parties are addressed by validator key."""

    def __init__(self, net: NetNode, cfg: SessionConfig) -> None:
        self.net, self.cfg = net, cfg

    async def send(self, party: int, msg: Message) -> None:
        peer = peerid.from_public_key(self.cfg.identities[party])
        try:
            await self.net.send(peer, msg.ssid, msg.round, msg.to_bytes(), deadline=SEND_DEADLINE)
        except NetError as exc:
            raise DeliveryFailed(party, str(exc)) from None

    async def broadcast(self, msg: Message) -> None:
        assert msg.recipient == BROADCAST
        try:
            await self.net.broadcast(msg.ssid, msg.round, msg.to_bytes())
        except NetError as exc:
            raise DeliveryFailed(msg.sender, f"broadcast failed: {exc}") from None
