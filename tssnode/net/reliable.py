"""Reliable delivery on top of gossip and direct streams.

Outbound, every envelope gets the next sequence number of this node (started from the wall
clock in nanoseconds, so a restarted node never reuses one) and is signed with the node key.

* Direct: `send` resends the same envelope (same sequence number) until the recipient
  acknowledges it, waiting for the dialer to reconnect the peer when it is down, with a
  backoff between attempts. At the deadline it raises `DeliveryTimeout`; a recipient that
  answers `refused:<reason>` raises `DeliveryRefused` at once; a recipient outside the
  allow-list raises `UnknownPeer` without sending anything.
* Broadcast: `broadcast` stores the envelope (so peers can fetch it from us) and publishes
  it by gossip. Gossip is the fast path, not the guarantee: `collect_broadcasts` waits
  for a round's broadcasts from the given senders and, after `fetch_grace`, fetches what
  is missing, first from each missing sender, then from any other ready peer, so a node
  that was down or lost gossip messages still gets the whole round. At its deadline it
  raises `MissingBroadcasts` naming who is missing.

Inbound, `accept` is the one gate for all three paths (gossip, direct, fetch): network id,
the sender against the authenticated peer, the sender's tier (a validator may send
anything; a follower, joiner or newcomer only what `admission.permits`, by direct stream),
recipient, deduplication by (sender, sequence number), then the signature. New envelopes
go into the store and onto the inbox, each exactly once.

The inbox is bounded (`INBOX_ITEMS`, `INBOX_BYTES`): if its consumer falls that far behind,
the oldest deliveries are dropped and counted (`inbox.evicted`); the store still has them.

Deduplication lives in memory: after a receiver restarts, a resend of something it had
already acknowledged before the crash is delivered again (the protocol layer deduplicates
by content; the net layer does not persist).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import trio

from tssnode.net import admission as reasons
from tssnode.net import peerid
from tssnode.net.admission import Admission
from tssnode.net.direct import Direct
from tssnode.net.errors import (
    DeliveryRefused,
    DeliveryTimeout,
    FrameError,
    MissingBroadcasts,
    UnknownPeer,
)
from tssnode.net.fetch import Fetch
from tssnode.net.gossip import Gossip
from tssnode.net.identity import NodeIdentity
from tssnode.net.peerbook import PeerBook
from tssnode.net.posts import Posts
from tssnode.net.store import Delivery, MessageStore
from tssnode.net.wire import BROADCAST, Envelope, FetchRequest, SignedEnvelope

log = logging.getLogger(__name__)

#: Resend backoff: first delay and cap.
RESEND_MIN, RESEND_MAX = 0.1, 2.0
#: How long `collect_broadcasts` waits between fetch rounds.
FETCH_PAUSE = 0.5
#: Deliveries waiting for the inbox's consumer, at most (items and payload bytes).
INBOX_ITEMS = 10_000
INBOX_BYTES = 128 * 1024 * 1024


class Inbox:
    """Every new envelope, once each, in arrival order, for one consumer; bounded: when
    full, the oldest waiting deliveries are dropped (counted in `evicted`)."""

    def __init__(self, max_items: int = INBOX_ITEMS, max_bytes: int = INBOX_BYTES) -> None:
        self.max_items, self.max_bytes = max_items, max_bytes
        self._items: deque[Delivery] = deque()
        self.bytes = 0
        self.evicted = 0
        self._closed = False
        self._changed = trio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, delivery: Delivery) -> None:
        if self._closed:
            return
        self._items.append(delivery)
        self.bytes += len(delivery.envelope.payload)
        while len(self._items) > self.max_items or self.bytes > self.max_bytes:
            self._pop()
            self.evicted += 1
        self._changed.set()

    def _pop(self) -> Delivery:
        delivery = self._items.popleft()
        self.bytes -= len(delivery.envelope.payload)
        return delivery

    def receive_nowait(self) -> Delivery:
        """The next delivery; `trio.WouldBlock` when none waits, `trio.EndOfChannel`
        once closed and drained."""
        if self._items:
            return self._pop()
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> Delivery:
        while True:
            try:
                delivery = self.receive_nowait()
            except trio.WouldBlock:
                await self._changed.wait()
                self._changed = trio.Event()
                continue
            await trio.lowlevel.checkpoint()
            return delivery

    def __aiter__(self) -> Inbox:
        return self

    async def __anext__(self) -> Delivery:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """No more deliveries (the node is stopping); the consumer drains what waits."""
        self._closed = True
        self._changed.set()

    def snapshot(self) -> dict[str, Any]:
        return {
            "items": len(self._items),
            "bytes": self.bytes,
            "evicted": self.evicted,
            "limits": {"items": self.max_items, "bytes": self.max_bytes},
        }


class Reliable:
    """Sequence numbers, signing, the inbound gate, resends and catch-up."""

    def __init__(
        self,
        identity: NodeIdentity,
        network_id: str,
        admission: Admission,
        peers: PeerBook,
        store: MessageStore,
        *,
        send_deadline: float,
        fetch_grace: float,
    ) -> None:
        self.identity = identity
        self.self_id = identity.peer_id
        self.network_id = network_id
        self.admission = admission
        self.peers = peers
        self.store = store
        self.send_deadline = send_deadline
        self.fetch_grace = fetch_grace
        self._seq = time.time_ns()
        self.inbox = Inbox()
        # wired by the node once the protocol ends exist
        self.direct: Direct | None = None
        self.posts: Posts | None = None
        self.fetcher: Fetch | None = None
        self.gossip: Gossip | None = None
        self.stats = {"sent": 0, "resends": 0, "broadcasts": 0, "fetched": 0, "delivered": 0}

    # -- outbound ----------------------------------------------------------------------------

    def seal(self, session_id: bytes, rnd: int, recipient: bytes, payload: bytes) -> SignedEnvelope:
        self._seq += 1
        env = Envelope(
            self.network_id, session_id, rnd, self.self_id, recipient, self._seq, payload
        )
        env.check()
        return SignedEnvelope(env, self.identity.sign(SignedEnvelope.signing_bytes(env)))

    async def send(
        self,
        recipient: bytes,
        session_id: bytes,
        rnd: int,
        payload: bytes,
        *,
        deadline: float | None = None,
    ) -> Envelope:
        """Deliver one direct message, or raise a `DeliveryError` once `deadline` seconds
        have passed (default: the config's `send_deadline`)."""
        who = peerid.to_text(recipient)
        if recipient != self.self_id and not self.admission.may_send_to(recipient):
            raise UnknownPeer(f"{who} is not in the allow-list", recipient=who)
        signed = self.seal(session_id, rnd, recipient, payload)
        env = signed.envelope
        if recipient == self.self_id:  # to ourselves: no network, nothing to check
            self._deliver(signed, "direct")
            return env
        assert self.direct is not None
        budget = self.send_deadline if deadline is None else deadline
        give_up = trio.current_time() + budget
        delay = RESEND_MIN
        last = "the peer never became reachable"
        attempts = 0
        with trio.move_on_at(give_up):
            while True:
                while not self.peers.is_connected(recipient):
                    await self.peers.wait_changed()
                attempts += 1
                try:
                    ack = await self.direct.send_once(recipient, signed)
                except FrameError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    log.debug("send %s to %s: attempt %d failed: %s", env.seq, who, attempts, last)
                else:
                    if ack.status in ("ok", "duplicate"):
                        self.stats["sent"] += 1
                        self.stats["resends"] += attempts - 1
                        return env
                    raise DeliveryRefused(
                        f"{who} refused seq {env.seq}: {ack.status}", recipient=who, seq=env.seq
                    )
                await trio.sleep(delay)
                delay = min(delay * 2, RESEND_MAX)
        self.stats["resends"] += max(0, attempts - 1)
        raise DeliveryTimeout(
            f"no acknowledgement from {who} for seq {env.seq} within {budget:g} s "
            f"({attempts} attempts; last: {last})",
            recipient=who,
            seq=env.seq,
        )

    def post(self, recipient: bytes, session_id: bytes, rnd: int, payload: bytes) -> bool:
        """Queue one message on the recipient's post stream (`posts`): in order, with no
        acknowledgement and no retry. False: dropped at once (no connection, lane full)."""
        if recipient != self.self_id and not self.admission.may_send_to(recipient):
            raise UnknownPeer(f"{peerid.to_text(recipient)} is not in the allow-list")
        signed = self.seal(session_id, rnd, recipient, payload)
        if recipient == self.self_id:
            self._deliver(signed, "direct")
            return True
        assert self.posts is not None
        return self.posts.post(recipient, signed)

    async def broadcast(self, session_id: bytes, rnd: int, payload: bytes) -> Envelope:
        """Publish one broadcast; it is stored first so peers can fetch it from us."""
        assert self.gossip is not None
        signed = self.seal(session_id, rnd, BROADCAST, payload)
        self.gossip.check_size(signed)
        self.store.add(signed, "self")
        await self.gossip.publish(signed)
        self.stats["broadcasts"] += 1
        return signed.envelope

    # -- inbound -----------------------------------------------------------------------------

    def accept(self, signed: SignedEnvelope, authenticated: bytes, via: str) -> str:
        """The gate every inbound envelope passes; returns the ack status."""
        env = signed.envelope
        reason = ""
        tier = reasons.NONE
        if env.network_id != self.network_id:
            reason = reasons.WRONG_NETWORK
        elif via != "fetch" and env.sender != authenticated:
            reason = reasons.SENDER_MISMATCH
        elif (tier := self.admission.tier(env.sender)) == reasons.NONE:
            reason = reasons.UNKNOWN_PEER
        elif tier != reasons.FULL:
            # a follower, joiner or newcomer: chain reads by direct stream, nothing else
            reason = (
                self.admission.permits(env.sender, env.session_id, env.payload)
                if via == "direct"
                else reasons.SYNC_ONLY
            )
        if not reason and (
            (via == "direct") != (env.recipient == self.self_id)
            or (via != "direct" and not env.is_broadcast)
        ):
            reason = reasons.WRONG_RECIPIENT
        if reason:
            detail = f"{via}: {env.describe()}"
            if reason in (reasons.UNKNOWN_PEER, reasons.SYNC_ONLY):
                self.admission.refuse(authenticated, reason, detail)  # logged once a peer
            else:
                self.admission.drop(reason, authenticated, detail)
            return f"refused:{reason}"
        if self.store.has(env):
            return "duplicate"
        if not signed.signature_valid():
            self.admission.drop(reasons.BAD_SIGNATURE, authenticated, f"{via}: {env.describe()}")
            return f"refused:{reasons.BAD_SIGNATURE}"
        return "ok" if self._deliver(signed, via) else "duplicate"

    def _deliver(self, signed: SignedEnvelope, via: str) -> bool:
        """Store an envelope and put it on the inbox, unless it is a duplicate."""
        delivery = self.store.add(signed, via)
        if delivery is None:
            return False
        self.stats["delivered"] += 1
        self.inbox.put(delivery)  # (closed only while stopping; the store keeps it anyway)
        return True

    def close_inbox(self) -> None:
        self.inbox.close()

    def accept_gossip(self, signed: SignedEnvelope, origin: bytes, forwarder: bytes) -> bool:
        self.peers.seen(forwarder)
        return self.accept(signed, origin, "gossip") in ("ok", "duplicate")

    def accept_direct(self, signed: SignedEnvelope, remote: bytes) -> str:
        self.peers.seen(remote)
        return self.accept(signed, remote, "direct")

    # -- catch-up ----------------------------------------------------------------------------

    async def collect_broadcasts(
        self,
        session_id: bytes,
        rnd: int,
        senders: Iterable[bytes],
        *,
        within: float,
    ) -> dict[bytes, Envelope]:
        """The round's broadcasts from every sender in `senders` (one each, the first
        received), fetching what gossip did not bring; `MissingBroadcasts` after `within`
        seconds."""
        wanted = set(senders)
        give_up = trio.current_time() + within
        fetch_from = trio.current_time() + min(self.fetch_grace, within)
        tried_others: set[bytes] = set()
        with trio.move_on_at(give_up):
            while True:
                missing = wanted - self.store.senders_of(session_id, rnd)
                if not missing:
                    return self._first_broadcasts(session_id, rnd, wanted)
                if trio.current_time() >= fetch_from:
                    await self._fetch_round(session_id, rnd, missing, tried_others)
                    missing = wanted - self.store.senders_of(session_id, rnd)
                    if not missing:
                        continue
                    wait = FETCH_PAUSE
                else:
                    wait = fetch_from - trio.current_time()
                with trio.move_on_after(wait):
                    await self.store.wait_changed()
        missing = wanted - self.store.senders_of(session_id, rnd)
        if not missing:
            return self._first_broadcasts(session_id, rnd, wanted)
        names = tuple(sorted(peerid.to_text(p) for p in missing))
        raise MissingBroadcasts(
            f"round {rnd} of session {session_id.hex()[:16]}: no broadcast from "
            f"{len(names)} sender(s) within {within:g} s: {', '.join(names)}",
            missing=names,
        )

    def _first_broadcasts(
        self, session_id: bytes, rnd: int, wanted: set[bytes]
    ) -> dict[bytes, Envelope]:
        found: dict[bytes, Envelope] = {}
        for signed in self.store.broadcasts(session_id, rnd, wanted):
            found.setdefault(signed.envelope.sender, signed.envelope)
        return found

    async def _fetch_round(
        self, session_id: bytes, rnd: int, missing: set[bytes], tried_others: set[bytes]
    ) -> None:
        """One catch-up round: ask each reachable missing sender for its own broadcast,
        and one other ready peer (a different one each round) for all that is missing."""
        ready = [p for p in self.peers.ready() if p != self.self_id]
        direct_sources = [p for p in ready if p in missing]
        others = [p for p in ready if p not in missing and p not in tried_others]
        if not others:
            tried_others.clear()
            others = [p for p in ready if p not in missing]
        async with trio.open_nursery() as nursery:
            for peer in direct_sources:
                nursery.start_soon(self._fetch_from, peer, session_id, rnd, [peer])
            if others:
                tried_others.add(others[0])
                nursery.start_soon(self._fetch_from, others[0], session_id, rnd, sorted(missing))

    async def _fetch_from(
        self, peer: bytes, session_id: bytes, rnd: int, senders: list[bytes]
    ) -> None:
        assert self.fetcher is not None
        request = FetchRequest(self.network_id, session_id, rnd, tuple(senders))
        try:
            found = await self.fetcher.fetch(peer, request)
        except FrameError as exc:
            log.debug("fetch from %s failed: %s", peerid.short(peer), exc)
            return
        for signed in found:
            env = signed.envelope
            try:
                env.check()
            except FrameError:
                self.admission.drop(reasons.MALFORMED, peer, "fetched envelope")
                continue
            if env.session_id != session_id or env.round != rnd or env.sender not in senders:
                self.admission.drop(reasons.MALFORMED, peer, "fetched envelope not asked for")
                continue
            if self.accept(signed, peer, "fetch") == "ok":
                self.stats["fetched"] += 1
