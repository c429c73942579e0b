"""Admission: who may talk to this node, about what, and the count of everything refused.

Every peer is in one of four tiers, asked afresh on every check:

* ``full``: the validators (in `tssnode run`: the ledger's current set and the next
  scheduled one). They may connect and send anything; only they take part in gossip.
* ``sync``: followers (the config's `[net] followers`) and joiners (a peer whose join
  request the ledger holds votes for). They may connect and read the chain: the frames
  that `sync_filter` accepts (in `tssnode run`: ledger status and block requests), at
  `SYNC_RATE` a second. Nothing else they send is accepted.
* ``newcomer``: any other peer, while a newcomer lease is free: `newcomer_slots` peers at
  a time, each for `newcomer_seconds` from its first connection, treated as ``sync``.
  This is how a brand-new node with no genesis learns it from its bootstrap peer and
  catches up before the validators vote it in (`newcomer_slots = 0` turns it off: then a
  joining node must be a follower of its bootstrap peer first).
* ``none``: everyone else. Refused right after the Noise handshake (`host`), so they
  never get a stream, and on every frame should one get through anyway.

With no list and no policy admission is open (every authenticated peer is ``full``):
bare net-layer tests and tools use that; the node never runs open.

Every envelope and frame is checked in the same order before anything else looks at it:
size (by the frame reader), strict decoding, network id, the sender's tier, then the
signature. A failed check drops it and adds one to `drops[reason]` and to
`by_peer[(peer, reason)]`. A refused peer is logged once (`refuse`), not once a frame,
and refusal lines are rate-limited as a whole: a peer that keeps trying, or one that
keeps making new keys, must not be able to fill the log.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from tssnode.net import peerid
from tssnode.net.limits import BoundedCounter, StreamGuard, TokenBucket

log = logging.getLogger(__name__)

#: Reasons a frame or envelope is dropped (the keys of `Admission.drops`).
OVERSIZED = "oversized"
TRUNCATED = "truncated"
MALFORMED = "malformed"
TIMEOUT = "timeout"
STREAM_ERROR = "stream_error"
WRONG_NETWORK = "wrong_network"
UNKNOWN_PEER = "unknown_peer"
SENDER_MISMATCH = "sender_mismatch"
WRONG_RECIPIENT = "wrong_recipient"
BAD_SIGNATURE = "bad_signature"
TOO_LARGE_FOR_GOSSIP = "too_large_for_gossip"
INTERNAL_ERROR = "internal_error"
#: A connection closed right after the handshake: the peer is not admitted.
REFUSED_AT_HANDSHAKE = "refused_at_handshake"
#: A follower, joiner or newcomer sent something other than a chain read.
SYNC_ONLY = "sync_only"
#: A follower, joiner or newcomer asked faster than `SYNC_RATE`.
RATE_LIMITED = "rate_limited"
#: A bound on what the node holds for a peer was reached (streams, bytes in flight,
#: the inbox); the sender retries.
BUSY = "busy"

#: Streams that ended early (a peer gave up on its own timeout, or reset): expected now and
#: then on a heavily loaded but honest network, unlike the other reasons.
ABORTED = frozenset({TRUNCATED, TIMEOUT, STREAM_ERROR})
#: What an honest but busy network may also produce (not a sign of a hostile peer).
HONEST = ABORTED | {BUSY}

#: Tiers (see the module docstring).
FULL, SYNC, NEWCOMER, NONE = "full", "sync", "newcomer", "none"

#: Chain reads a sync-tier peer may make: on average per second, and at once.
SYNC_RATE, SYNC_BURST = 10.0, 40.0
#: Peers remembered by the per-peer counters, the log-once set and the newcomer book.
MAX_TRACKED_PEERS = 4096
#: Refused peers logged: on average one every 6 s, 20 at once (fresh keys are free, so
#: "once per peer" alone would not bound the log); the others are counted in the next line.
REFUSAL_LOG_RATE, REFUSAL_LOG_BURST = 1 / 6, 20

#: (binary sender, session id, payload) -> True when a sync-tier peer may send it.
SyncFilter = Callable[[bytes, bytes, bytes], bool]


class Admission:
    """The tiers, the newcomer leases and the drop counters of one node."""

    def __init__(
        self,
        allowed: Iterable[bytes] | None = None,
        *,
        followers: Iterable[bytes] = (),
        newcomer_slots: int = 0,
        newcomer_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy: Callable[[bytes], bool] | None = None
        self._allowed: frozenset[bytes] | None = None
        self._sync: frozenset[bytes] = frozenset()  # set by the node (joiners)
        self._followers = frozenset(map(peerid.check_peer_id, followers))
        self.newcomer_slots = newcomer_slots
        self.newcomer_seconds = newcomer_seconds
        self.clock = clock
        #: peer → when its lease began (active and spent leases, oldest first)
        self._leases: OrderedDict[bytes, float] = OrderedDict()
        self.sync_filter: SyncFilter | None = None
        self._buckets: dict[bytes, TokenBucket] = {}
        self.drops: Counter[str] = Counter()
        self.by_peer: BoundedCounter[tuple[bytes, str]] = BoundedCounter(4 * MAX_TRACKED_PEERS)
        self._logged: OrderedDict[bytes, None] = OrderedDict()
        self._log_budget = TokenBucket(REFUSAL_LOG_RATE, REFUSAL_LOG_BURST, clock=clock)
        self._unlogged = 0
        self._listeners: list[Callable[[], None]] = []
        #: inbound streams and frame bytes being read, by peer (see `streams.serve`)
        self.guard = StreamGuard()
        if allowed is not None:
            self.set_allowed(allowed)

    # -- the tiers ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True while any authenticated peer is admitted (no list, no policy)."""
        return self._allowed is None and self._policy is None

    def set_allowed(self, peers: Iterable[bytes] | None) -> None:
        """Admit exactly these peers (binary ids) as full; None opens admission to everyone."""
        self._allowed = None if peers is None else frozenset(map(peerid.check_peer_id, peers))
        self._policy = None
        self._changed()

    def set_policy(self, policy: Callable[[bytes], bool]) -> None:
        """Admit as full the peers for which `policy(peer_id)` is true (asked every check)."""
        self._allowed = None
        self._policy = policy
        self._changed()

    def set_tiers(self, full: Iterable[bytes], sync: Iterable[bytes] = ()) -> None:
        """The node's snapshot of the ledger: validators (current and next) and joiners."""
        full_set = frozenset(full)
        sync_set = frozenset(sync) - full_set
        if full_set == self._allowed and sync_set == self._sync and self._policy is None:
            return
        self._allowed, self._sync, self._policy = full_set, sync_set, None
        self._changed()

    def set_followers(self, peers: Iterable[bytes]) -> None:
        self._followers = frozenset(map(peerid.check_peer_id, peers))
        self._changed()

    def allowed_set(self) -> frozenset[bytes] | None:
        """The explicit full list, or None when admission is open or a policy."""
        return self._allowed

    def is_allowed(self, peer: bytes) -> bool:
        """True for a full peer: a validator, or anyone while admission is open."""
        if self._policy is not None:
            try:
                return bool(self._policy(peer))
            except Exception:
                log.exception("admission policy failed; refusing %s", peerid.short(peer))
                return False
        return self._allowed is None or peer in self._allowed

    def tier(self, peer: bytes) -> str:
        """The peer's tier now (a newcomer lease is looked up, never granted here)."""
        if self.is_allowed(peer):
            return FULL
        if peer in self._followers or peer in self._sync:
            return SYNC
        started = self._leases.get(peer)
        if started is not None and self.clock() - started < self.newcomer_seconds:
            return NEWCOMER
        return NONE

    def may_connect(self, peer: bytes) -> bool:
        """Whether a peer that just finished the handshake may keep its connection; a
        peer in no tier gets a newcomer lease if one is free. Refusals are counted."""
        if self.tier(peer) != NONE or self._lease(peer):
            return True
        self.refuse(peer, REFUSED_AT_HANDSHAKE, "not a validator, follower or joiner")
        return False

    def may_send_to(self, peer: bytes) -> bool:
        """Whether this node sends a peer anything (answers to sync-tier peers included)."""
        return self.tier(peer) != NONE

    def permits(self, peer: bytes, session_id: bytes, payload: bytes) -> str:
        """Why a sync-tier peer may not send this envelope, or "" when it may (a chain
        read that `sync_filter` accepts, within the peer's rate)."""
        accept = self.sync_filter
        if accept is None or not accept(peer, session_id, payload):
            return SYNC_ONLY
        bucket = self._buckets.get(peer)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_PEERS:
                self._buckets.pop(next(iter(self._buckets)))
            bucket = self._buckets[peer] = TokenBucket(SYNC_RATE, SYNC_BURST, clock=self.clock)
        return "" if bucket.take() else RATE_LIMITED

    def _lease(self, peer: bytes) -> bool:
        """Grant a newcomer lease if a slot is free and this peer never had one."""
        if self.newcomer_slots <= 0 or peer in self._leases:
            return False
        now = self.clock()
        active = sum(1 for t in self._leases.values() if now - t < self.newcomer_seconds)
        if active >= self.newcomer_slots:
            return False
        self._leases[peer] = now
        while len(self._leases) > MAX_TRACKED_PEERS:  # spent leases, oldest first
            self._leases.popitem(last=False)
        log.info(
            "peer %s admitted as a newcomer (chain reads only) for %.0f s",
            peerid.short(peer),
            self.newcomer_seconds,
        )
        return True

    def newcomers(self) -> list[bytes]:
        """Peers holding a newcomer lease now."""
        now = self.clock()
        return [p for p, t in self._leases.items() if now - t < self.newcomer_seconds]

    def forget(self, peer: bytes) -> None:
        """A peer left: drop its rate-limit state (its lease, spent or not, is kept)."""
        self._buckets.pop(peer, None)

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever the tiers change."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()

    # -- counting ----------------------------------------------------------------------------

    def drop(self, reason: str, peer: bytes | None = None, detail: str = "") -> None:
        """Count one dropped frame or envelope."""
        self.drops[reason] += 1
        if peer:
            self.by_peer.bump((peer, reason))
        who = peerid.short(peer) if peer else "?"
        log.debug("dropped (%s) from %s %s", reason, who, detail)

    def refuse(self, peer: bytes, reason: str, detail: str = "") -> None:
        """Count a refusal of a peer that is not admitted for what it tried; the first
        refusal of each peer is logged (at WARNING), the rest only counted."""
        self.drop(reason, peer, detail)
        if peer in self._logged:
            return
        self._logged[peer] = None
        while len(self._logged) > MAX_TRACKED_PEERS:
            self._logged.popitem(last=False)
        if not self._log_budget.take():
            self._unlogged += 1
            return
        more = f" ({self._unlogged} other refused peers not logged)" if self._unlogged else ""
        self._unlogged = 0
        log.warning(
            "refusing peer %s (%s: %s); further refusals of it are only counted%s",
            peerid.to_text(peer),
            reason,
            detail or "not admitted",
            more,
        )

    def snapshot(self) -> dict[str, int]:
        return dict(self.drops)

    def from_peer(self, peer: bytes) -> dict[str, int]:
        """What was dropped from one peer, by reason."""
        return {reason: n for (who, reason), n in self.by_peer.items() if who == peer}

    def refused(self) -> dict[str, int]:
        """Drops other than aborted streams and busy refusals: what an honest network
        never produces."""
        return {k: v for k, v in self.drops.items() if k not in HONEST}

    def status(self) -> dict[str, Any]:
        """Tiers and refusals, for `/status` (counts; peer ids only of newcomers)."""
        refused_peers = {who for (who, reason) in self.by_peer if reason == REFUSED_AT_HANDSHAKE}
        return {
            "open": self.is_open,
            "validators": None if self._allowed is None else len(self._allowed),
            "followers": len(self._followers),
            "joiners": len(self._sync - self._followers),
            "newcomers": [peerid.to_text(p) for p in self.newcomers()],
            "newcomer_slots": self.newcomer_slots,
            "newcomer_seconds": self.newcomer_seconds,
            "refused_at_handshake": self.drops.get(REFUSED_AT_HANDSHAKE, 0),
            "refused_peers": len(refused_peers),
            "drops": dict(self.drops),
        }
