"""Messages received (and broadcasts sent) by this node, by session and round.

The store is the receivers' deduplication index (a sender never reuses a sequence number,
so `(sender, seq)` names one envelope) and the source for three things: the per-round
queries the console shows (`get-message` / `get-direct-message`), answers to other nodes'
fetch requests (broadcasts only), and waiters that need the broadcasts of a round.

Everything is kept until the session is forgotten (`forget_session`), which the node does
when a session ends, or until the store's bounds push it out (`STORE_BOUNDS`: envelopes
and bytes per sender and in total; the oldest go first, of the sender holding the most
when the total is passed). Sessions that never start are never forgotten, and the
ledger's own session is never forgotten at all, so without the bounds a peer sending to
made-up session ids (issue 13) or simply a long-running chain grew the store for good.
An evicted envelope loses its deduplication key with it: a late resend is delivered
again, which the layers above take (protocol messages are deduplicated by content, ledger
frames are idempotent). The store does no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

from tssnode.net.limits import Bounds, Quota
from tssnode.net.wire import Envelope, SignedEnvelope

#: What the store keeps at most: per sender (one validator's envelopes of every session)
#: and in all. A round of a large protocol message is well under a MiB per party.
STORE_BOUNDS = Bounds(
    owner_items=4096,
    owner_bytes=16 * 1024 * 1024,
    total_items=32_768,
    total_bytes=128 * 1024 * 1024,
)

#: An envelope's place in the store: (session id, round, (sender, seq)).
_Slot = tuple[bytes, int, tuple[bytes, int]]


@dataclass(frozen=True)
class Delivery:
    """One envelope as this node received it: how (`gossip`, `direct`, `fetch`, or `self`
    for our own broadcasts) and when (wall clock, and `time.monotonic()` for latencies)."""

    envelope: Envelope
    via: str
    received_at: float
    received_mono: float


@dataclass
class _Round:
    broadcasts: dict[tuple[bytes, int], SignedEnvelope] = field(default_factory=dict)
    direct: dict[tuple[bytes, int], SignedEnvelope] = field(default_factory=dict)
    via: dict[tuple[bytes, int], Delivery] = field(default_factory=dict)


class MessageStore:
    """Envelopes by (session id, round), deduplicated by (sender, sequence number)."""

    def __init__(self, bounds: Bounds = STORE_BOUNDS) -> None:
        self._rounds: dict[tuple[bytes, int], _Round] = {}
        self._keys: dict[bytes, set[tuple[bytes, int]]] = {}  # session → seen keys
        self._changed = trio.Event()
        self.duplicates = 0
        self.quota: Quota[_Slot] = Quota(bounds)

    def has(self, envelope: Envelope) -> bool:
        return envelope.key in self._keys.get(envelope.session_id, ())

    def add(self, signed: SignedEnvelope, via: str) -> Delivery | None:
        """Store an envelope; None (and a duplicate counted) if it was already here."""
        env = signed.envelope
        keys = self._keys.setdefault(env.session_id, set())
        if env.key in keys:
            self.duplicates += 1
            return None
        keys.add(env.key)
        box = self._rounds.setdefault((env.session_id, env.round), _Round())
        (box.broadcasts if env.is_broadcast else box.direct)[env.key] = signed
        delivery = Delivery(env, via, time.time(), time.monotonic())
        box.via[env.key] = delivery
        size = len(env.payload) + 256  # (the header and the signature)
        for victim in self.quota.add(env.sender, (env.session_id, env.round, env.key), size):
            self._drop(victim)
        self._changed.set()
        self._changed = trio.Event()
        return delivery

    def _drop(self, slot: _Slot) -> None:
        """Forget one envelope the quota pushed out."""
        session, rnd, key = slot
        box = self._rounds.get((session, rnd))
        if box is not None:
            box.broadcasts.pop(key, None)
            box.direct.pop(key, None)
            box.via.pop(key, None)
            if not box.via:
                del self._rounds[(session, rnd)]
        keys = self._keys.get(session)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys[session]

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def broadcasts(
        self, session_id: bytes, rnd: int, senders: Iterable[bytes] | None = None
    ) -> list[SignedEnvelope]:
        """Broadcasts of a round held here (own ones included), oldest sequence first."""
        box = self._rounds.get((session_id, rnd))
        if box is None:
            return []
        wanted = None if senders is None else set(senders)
        found = [s for k, s in box.broadcasts.items() if wanted is None or k[0] in wanted]
        return sorted(found, key=lambda s: s.envelope.key)

    def senders_of(self, session_id: bytes, rnd: int) -> set[bytes]:
        box = self._rounds.get((session_id, rnd))
        return set() if box is None else {k[0] for k in box.broadcasts}

    def deliveries(self, session_id: bytes, rnd: int, kind: str | None = None) -> list[Delivery]:
        """What arrived for a round: `kind` is "broadcast", "direct" or None for both."""
        box = self._rounds.get((session_id, rnd))
        if box is None:
            return []
        keys: list[tuple[bytes, int]] = []
        if kind in (None, "broadcast"):
            keys += box.broadcasts
        if kind in (None, "direct"):
            keys += box.direct
        return [box.via[k] for k in sorted(keys)]

    def rounds(self, session_id: bytes) -> list[int]:
        return sorted(r for s, r in self._rounds if s == session_id)

    def sessions(self) -> list[bytes]:
        return list(self._keys)

    def forget_session(self, session_id: bytes) -> None:
        self._keys.pop(session_id, None)
        for sr in [k for k in self._rounds if k[0] == session_id]:
            for key in self._rounds.pop(sr).via:
                self.quota.remove((sr[0], sr[1], key))

    def snapshot(self) -> dict[str, Any]:
        return {"sessions": len(self._keys), "duplicates": self.duplicates, **self.quota.snapshot()}
