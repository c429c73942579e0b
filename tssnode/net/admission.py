"""Admission: who may talk to this node, and the count of everything dropped.

The allow-list is the validator set; until the ledger supplies it, it is either the
config's `allowed_peers` or open (any Noise-authenticated peer). The node can replace it
at any time with a set of peer ids (`set_allowed`) or a predicate (`set_policy`), e.g. a
callback that reads the current validator set from the ledger.

Every envelope and frame is checked in the same order before anything else looks at it:
size (by the frame reader), strict decoding, network id, the sender's admission, then the
signature. A failed check drops it and adds one to `drops[reason]`; `drops` is what tests
and the console read.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable

from tssnode.net import peerid

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

#: Streams that ended early (a peer gave up on its own timeout, or reset): expected now and
#: then on a heavily loaded but honest network, unlike the other reasons.
ABORTED = frozenset({TRUNCATED, TIMEOUT, STREAM_ERROR})


class Admission:
    """The current allow-list and the drop counters of one node."""

    def __init__(self, allowed: Iterable[bytes] | None = None) -> None:
        self._policy: Callable[[bytes], bool] | None = None
        self._allowed: frozenset[bytes] | None = None
        self.drops: Counter[str] = Counter()
        self.by_peer: Counter[tuple[bytes, str]] = Counter()  # (peer, reason)
        self._listeners: list[Callable[[], None]] = []
        if allowed is not None:
            self.set_allowed(allowed)

    # -- the allow-list ----------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True while any authenticated peer is admitted (no list, no policy)."""
        return self._allowed is None and self._policy is None

    def set_allowed(self, peers: Iterable[bytes] | None) -> None:
        """Admit exactly these peers (binary ids); None opens admission to everyone."""
        self._allowed = None if peers is None else frozenset(map(peerid.check_peer_id, peers))
        self._policy = None
        self._changed()

    def set_policy(self, policy: Callable[[bytes], bool]) -> None:
        """Admit the peers for which `policy(peer_id)` is true (asked on every check)."""
        self._allowed = None
        self._policy = policy
        self._changed()

    def allowed_set(self) -> frozenset[bytes] | None:
        """The explicit allow-list, or None when admission is open or a policy."""
        return self._allowed

    def is_allowed(self, peer: bytes) -> bool:
        if self._policy is not None:
            try:
                return bool(self._policy(peer))
            except Exception:
                log.exception("admission policy failed; refusing %s", peerid.short(peer))
                return False
        return self._allowed is None or peer in self._allowed

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever the allow-list or policy changes."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()

    # -- counting ----------------------------------------------------------------------------

    def drop(self, reason: str, peer: bytes | None = None, detail: str = "") -> None:
        """Count one dropped frame or envelope."""
        self.drops[reason] += 1
        if peer:
            self.by_peer[(peer, reason)] += 1
        who = peerid.short(peer) if peer else "?"
        log.debug("dropped (%s) from %s %s", reason, who, detail)

    def snapshot(self) -> dict[str, int]:
        return dict(self.drops)

    def from_peer(self, peer: bytes) -> dict[str, int]:
        """What was dropped from one peer, by reason."""
        return {reason: n for (who, reason), n in self.by_peer.items() if who == peer}

    def refused(self) -> dict[str, int]:
        """Drops other than aborted streams: what an honest network never produces."""
        return {k: v for k, v in self.drops.items() if k not in ABORTED}
