"""Broadcast over gossipsub: one topic per network, with every silent drop handled.

py-libp2p 0.8.1's gossipsub loses messages without telling anyone in several places; each
is dealt with here:

* Own-publish rate limit: "spam protection" drops a peer's (and our own) messages beyond
  10 per second per topic. Turned off; admission is our own (envelope checks below).
* Per-peer outbound queue: 32 RPCs, then drops. `publish` waits until every draining
  peer queue is below half full; a queue that has not shrunk for `STALL` seconds (a
  frozen peer) is not waited for, and that peer catches up by fetching (`reliable`).
* Subscription channel: 32 messages, then drops. Messages are not taken from it at all:
  the topic validator, which pubsub calls synchronously for every new message before
  forwarding it, checks the envelope and hands it on; the channel is only drained.
* 1 MiB cap on one pubsub RPC: `publish` refuses a larger envelope with
  `BroadcastTooLarge` instead of letting the outbound splitter drop it.
* Start-up order: an inbound pubsub stream that arrives before the pubsub service runs
  crashes the whole host, and a subscription made while a peer's pubsub stream is being
  set up can be lost for good. So pubsub and the router are started, the topic's
  validator installed and the topic subscribed, before the swarm listens or dials
  (`node`), and a peer counts as ready only once it has announced the topic to us; one
  that does not within `ready_timeout` is disconnected and redialled.
* Reconnects: pubsub keeps one stream per peer and, when the connection under it closes,
  drops it only if no other connection to that peer is up. A peer that reconnects before
  the old connection's close is seen (typical after a freeze) keeps a dead stream for
  good: our messages to it go nowhere and it never hears our subscription again. (Its
  generic dead-stream path is no better: it forgets the peer's subscriptions, which the
  peer never repeats.) `stream_died_with` spots the case and `renew_stream` replaces the
  dead stream with one on a live connection, which carries a new hello, while keeping
  what the peer told us over its own stream.

Per-session topics are not used: subscribing while connected is exactly the unsafe case
above, and the envelope header already carries the session id.

Only validators (admission's ``full`` tier) take part: pubsub neither opens a stream to
another peer nor serves one from it, and drops any message it originated or forwarded.
Followers, joiners and newcomers read the chain by direct request; pubsub's per-peer
state (queues, subscriptions, caches) is thus held for validators only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio
from libp2p.abc import IHost, INetStream
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from tssnode.net import admission as reasons
from tssnode.net import peerid, streams
from tssnode.net.admission import Admission
from tssnode.net.errors import BroadcastTooLarge, FrameError
from tssnode.net.wire import SignedEnvelope, decode

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio's own TaskStatus is hidden by trio-typing

log = logging.getLogger(__name__)

#: Largest encoded signed envelope in one gossip message: pubsub refuses RPCs over 1 MiB,
#: and the RPC adds the message header, its signature and the sender's peer record.
MAX_GOSSIP_BYTES = 1024 * 1024 - 16 * 1024
#: Mesh degree: with up to `DEGREE_LOW + 1` validators every peer is in every mesh.
DEGREE, DEGREE_LOW, DEGREE_HIGH = 8, 6, 16
#: A peer's outbound queue holds 32 RPCs; publishing waits while one is this full.
QUEUE_HIGH = 16
#: A queue that has not shrunk for this long is not waited for (frozen peer).
STALL = 5.0
_POLL = 0.002

#: Called for each gossip message that passed the pubsub signature check: (signed envelope,
#: origin peer id, forwarder peer id) -> accepted.
Acceptor = Callable[[SignedEnvelope, bytes, bytes], bool]


def topic_for(network_id: str) -> str:
    return f"/tssnode/{network_id}/broadcast/1"


class _ValidatorsOnly(Pubsub):
    """Pubsub that treats every peer outside admission's full tier as blacklisted: no
    stream to it, none from it, none of its messages."""

    admission: Admission | None = None  # set right after construction

    def is_peer_blacklisted(self, peer_id: ID) -> bool:
        if super().is_peer_blacklisted(peer_id):
            return True
        gate = self.admission
        return (
            gate is not None and peer_id != self.my_id and not gate.is_allowed(peer_id.to_bytes())
        )

    async def stream_handler(self, stream: INetStream) -> None:
        if self.is_peer_blacklisted(stream.muxed_conn.peer_id):
            await streams.reset(stream)
            return
        await super().stream_handler(stream)


class Gossip:
    """Gossipsub for one network's broadcast topic."""

    def __init__(
        self,
        host: IHost,
        network_id: str,
        admission: Admission,
        accept: Acceptor,
        *,
        ready_timeout: float,
    ) -> None:
        self.host = host
        self.topic = topic_for(network_id)
        self.self_id = host.get_id().to_bytes()
        self.admission = admission
        self._accept = accept
        self.ready_timeout = ready_timeout
        self.router = GossipSub(
            protocols=[PROTOCOL_ID_V11],  # v1.2 IDONTWANT doubled the control traffic here
            degree=DEGREE,
            degree_low=DEGREE_LOW,
            degree_high=DEGREE_HIGH,
            heartbeat_interval=1,
            spam_protection_enabled=False,
            eclipse_protection_enabled=False,  # loopback and LAN networks share one IP
            adaptive_gossip_enabled=False,
        )
        self.pubsub = _ValidatorsOnly(host, self.router)
        self.pubsub.admission = admission
        # py-libp2p seeds the message seqno from the time in seconds and adds one per
        # message; a node publishes many a second, so after a restart it reused seqnos:
        # its peers dropped the new messages as already seen (message id = sender +
        # seqno), or logged "Equivocation detected". Nanoseconds never go back that way.
        self.pubsub.counter = time.time_ns()
        self.published = 0
        self.stalled_publishes = 0
        self._progress: dict[object, tuple[int, float]] = {}  # queue length, last shrink

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run pubsub and the router; started once the topic has its validator and is
        subscribed. Must be started before the host listens or dials (module docstring)."""
        try:
            async with (
                background_trio_service(self.pubsub),
                background_trio_service(self.router),
            ):
                await self.pubsub.wait_until_ready()
                self.pubsub.set_topic_validator(self.topic, self._validate, False)
                subscription = await self.pubsub.subscribe(self.topic)
                task_status.started()
                while True:  # drain the subscription (delivery happens in the validator)
                    await subscription.get()
        finally:
            self.pubsub.seen_messages.stop()  # joins the cache's sweeper thread

    # -- receiving ---------------------------------------------------------------------------

    def _validate(self, forwarder: ID, msg: rpc_pb2.Message) -> bool:
        """Pubsub's topic validator: true lets the message be delivered and forwarded.

        Runs after pubsub checked the message signature against `from_id`; never raises
        (an exception here would kill the pubsub service).
        """
        origin = b""
        try:
            origin = bytes(msg.from_id)
            if origin == self.self_id:
                return True  # our own publish (stored when it was sent)
            if len(msg.data) > MAX_GOSSIP_BYTES:
                self.admission.drop(reasons.OVERSIZED, origin, "gossip")
                return False
            signed = decode(SignedEnvelope, bytes(msg.data))
            signed.envelope.check()
            return self._accept(signed, origin, forwarder.to_bytes())
        except FrameError as exc:
            self.admission.drop(reasons.MALFORMED, origin or None, f"gossip: {exc}")
            return False
        except Exception:
            log.exception("gossip validator failed")
            self.admission.drop(reasons.INTERNAL_ERROR, origin or None, "gossip")
            return False

    # -- sending -----------------------------------------------------------------------------

    @staticmethod
    def check_size(signed: SignedEnvelope) -> bytes:
        """The envelope's encoding, or `BroadcastTooLarge` if it cannot go by gossip."""
        data = signed.to_bytes()
        if len(data) > MAX_GOSSIP_BYTES:
            raise BroadcastTooLarge(
                f"a broadcast envelope of {len(data)} bytes exceeds the gossip limit of "
                f"{MAX_GOSSIP_BYTES} bytes (payload {len(signed.envelope.payload)} bytes)"
            )
        return data

    async def publish(self, signed: SignedEnvelope) -> None:
        """Publish one signed envelope to the topic (after waiting for queue room)."""
        data = self.check_size(signed)
        await self._wait_for_queue_room()
        await self.pubsub.publish(self.topic, data)
        self.published += 1

    async def _wait_for_queue_room(self) -> None:
        """Wait while some peer's outbound queue is at least half full and draining.

        A queue that has not shrunk for `STALL` seconds (a frozen peer: liveness will
        drop it) is not waited for; that peer catches up by fetching.
        """
        queues = self.pubsub.peer_queues
        while True:
            now = trio.current_time()
            waiting = False
            for peer, queue in list(queues.items()):
                n = len(queue)
                last = self._progress.get(peer)
                if n < QUEUE_HIGH or last is None or n < last[0]:
                    self._progress[peer] = (n, now)
                    last = (n, now)
                else:
                    self._progress[peer] = (n, last[1])
                if n >= QUEUE_HIGH and now - last[1] < STALL:
                    waiting = True
            for gone in set(self._progress) - set(queues):
                del self._progress[gone]
            if not waiting:
                if any(len(q) >= QUEUE_HIGH for q in queues.values()):
                    self.stalled_publishes += 1
                return
            await trio.sleep(_POLL)

    # -- readiness ---------------------------------------------------------------------------

    def stream_died_with(self, peer: bytes, muxed_conn: object) -> bool:
        """True when our pubsub stream to `peer` ran on the connection that just closed."""
        stream = self.pubsub.peers.get(ID(peer))
        return stream is not None and getattr(stream, "muxed_conn", None) is muxed_conn

    def renew_stream(self, peer: bytes) -> None:
        """Replace a dead pubsub stream to a still-connected peer (see the module
        docstring); the peer's known subscriptions are kept."""
        pubsub, pid = self.pubsub, ID(peer)
        if not pubsub.manager.is_running:
            return
        topics = [t for t, members in pubsub.peer_topics.items() if pid in members]
        log.debug("pubsub stream to %s died with its connection; renewing", peerid.short(peer))
        # pubsub's handling of a dead stream: drop it and, the peer being connected, open
        # a new one (with a hello); it also forgets the peer's subscriptions, restored below
        pubsub._handle_dead_peer(pid)
        for topic in topics:
            pubsub.handle_subscription(pid, rpc_pb2.RPC.SubOpts(subscribe=True, topicid=topic))

    def is_ready(self, peer: bytes) -> bool:
        pid = ID(peer)
        return pid in self.pubsub.peers and pid in self.pubsub.peer_topics.get(self.topic, ())

    async def await_ready(self, peer: bytes) -> bool:
        """Wait until `peer` has a pubsub stream and has announced our topic."""
        pid = ID(peer)
        deadline = trio.current_time() + self.ready_timeout
        try:
            await self.pubsub.wait_for_peer(pid, timeout=self.ready_timeout)
            left = max(0.001, deadline - trio.current_time())
            await self.pubsub.wait_for_subscription(pid, self.topic, timeout=left)
        except trio.TooSlowError:
            log.warning(
                "peer %s connected but not ready for gossip after %.0f s",
                peerid.short(peer),
                self.ready_timeout,
            )
            return False
        return True
