"""Bounds for everything a peer can make this node hold: quotas by owner, rate limits.

A peer that is admitted can still send more than the node should keep (issue 13: forty
1 MiB envelopes to session ids that never start were all kept). Every buffer that holds
what peers sent therefore has a `Quota`: a bound on items and bytes per owner (the peer
that sent them) and in total, and, where it makes sense, on age. When a bound is passed
the oldest items go first, and the owner whose items go is chosen so that one peer's
flood evicts its own items before anyone else's:

* over the owner's own bound: that owner's oldest item;
* over the total bound: the oldest item of the owner holding the most (bytes or items,
  whichever bound was passed), so a flooder pays before the peers that stayed in bounds.

Every eviction is counted by reason (`evicted`), and `snapshot` is what `/status` shows.
A `TokenBucket` limits the rate of requests one peer may make.

Nothing here does I/O or imports trio or libp2p: the node layer uses the same quotas
for its own buffers (the early messages of sessions not started yet).
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)

#: Eviction reasons (the keys of `Quota.evicted`).
OWNER_ITEMS = "owner_items"
OWNER_BYTES = "owner_bytes"
TOTAL_ITEMS = "total_items"
TOTAL_BYTES = "total_bytes"
EXPIRED = "expired"
TOO_LARGE = "too_large"


@dataclass(frozen=True)
class Bounds:
    """Items and bytes one owner may have held, and all owners together."""

    owner_items: int
    owner_bytes: int
    total_items: int
    total_bytes: int

    def __post_init__(self) -> None:
        if min(self.owner_items, self.owner_bytes, self.total_items, self.total_bytes) < 1:
            raise ValueError("every bound must be at least 1")
        if self.owner_items > self.total_items or self.owner_bytes > self.total_bytes:
            raise ValueError("an owner's bound cannot exceed the total")


class Quota(Generic[K]):
    """Accounting of held items (keyed by `K`) by owner, in arrival order.

    The quota holds no data: its user stores the items and calls `add` / `remove`; `add`
    returns the keys the user must now drop (possibly the new key itself, when the item
    alone exceeds its owner's bound).
    """

    def __init__(
        self,
        bounds: Bounds,
        *,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bounds = bounds
        self.ttl = ttl
        self.clock = clock
        self._items: OrderedDict[K, tuple[bytes, int, float]] = OrderedDict()  # owner, size, t
        self._by_owner: dict[bytes, OrderedDict[K, int]] = {}
        self._owner_bytes: Counter[bytes] = Counter()
        self.bytes = 0
        self.evicted: Counter[str] = Counter()
        #: the owners that lost the most items to eviction (bounded: see `_blame`)
        self.evicted_from: Counter[bytes] = Counter()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def owner_of(self, key: K) -> bytes | None:
        entry = self._items.get(key)
        return None if entry is None else entry[0]

    def owner_bytes(self, owner: bytes) -> int:
        return self._owner_bytes.get(owner, 0)

    def owner_items(self, owner: bytes) -> int:
        held = self._by_owner.get(owner)
        return 0 if held is None else len(held)

    def add(self, owner: bytes, key: K, size: int) -> list[K]:
        """Account one new item; returns the keys to drop (oldest first), already
        forgotten here. The new key is among them when the item alone is too big."""
        if key in self._items:
            self.remove(key)
        victims = self.expire()
        b = self.bounds
        if size > b.owner_bytes:
            self._count(TOO_LARGE, owner)
            return [*victims, key]
        self._items[key] = (owner, size, self.clock())
        self._by_owner.setdefault(owner, OrderedDict())[key] = size
        self._owner_bytes[owner] += size
        self.bytes += size
        held = self._by_owner[owner]
        while len(held) > b.owner_items or self._owner_bytes[owner] > b.owner_bytes:
            reason = OWNER_ITEMS if len(held) > b.owner_items else OWNER_BYTES
            victims.append(self.evict(next(iter(held)), reason))
        while len(self._items) > b.total_items or self.bytes > b.total_bytes:
            by_bytes = self.bytes > b.total_bytes
            load = self._owner_bytes if by_bytes else {o: len(h) for o, h in self._by_owner.items()}
            biggest = max(self._by_owner, key=lambda o: load[o])
            reason = TOTAL_BYTES if by_bytes else TOTAL_ITEMS
            victims.append(self.evict(next(iter(self._by_owner[biggest])), reason))
        return victims

    def remove(self, key: K) -> None:
        """Forget an item the user dropped by itself (consumed, or its session ended)."""
        entry = self._items.pop(key, None)
        if entry is None:
            return
        owner, size, _ = entry
        held = self._by_owner[owner]
        del held[key]
        if not held:
            del self._by_owner[owner]
        self._owner_bytes[owner] -= size
        if self._owner_bytes[owner] <= 0:
            del self._owner_bytes[owner]
        self.bytes -= size

    def expire(self) -> list[K]:
        """Forget and return the items older than `ttl` (none without a ttl)."""
        if self.ttl is None:
            return []
        limit = self.clock() - self.ttl
        gone: list[K] = []
        while self._items:
            key, (_, _, t) = next(iter(self._items.items()))
            if t > limit:
                break
            gone.append(self.evict(key, EXPIRED))
        return gone

    def evict(self, key: K, reason: str) -> K:
        """Forget an item pushed out by a bound of the user's own, counted as `reason`."""
        owner = self._items[key][0]
        self.remove(key)
        self._count(reason, owner)
        return key

    def _count(self, reason: str, owner: bytes) -> None:
        self.evicted[reason] += 1
        self.evicted_from[owner] += 1
        if len(self.evicted_from) > MAX_BLAMED:
            self._blame()

    def _blame(self) -> None:
        """Keep only the owners that lost the most (the counter is bounded too)."""
        self.evicted_from = Counter(dict(self.evicted_from.most_common(MAX_BLAMED // 2)))

    def snapshot(self) -> dict[str, Any]:
        b = self.bounds
        return {
            "items": len(self._items),
            "bytes": self.bytes,
            "owners": len(self._by_owner),
            "evicted": dict(self.evicted),
            "limits": {
                "owner_items": b.owner_items,
                "owner_bytes": b.owner_bytes,
                "total_items": b.total_items,
                "total_bytes": b.total_bytes,
                **({"ttl_s": self.ttl} if self.ttl is not None else {}),
            },
        }


#: Owners remembered in `Quota.evicted_from` at most.
MAX_BLAMED = 256


class TokenBucket:
    """`rate` requests a second on average, `burst` at once."""

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self, n: float = 1.0) -> bool:
        """Spend `n` tokens if there are that many; False (nothing spent) otherwise."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < n:
            return False
        self._tokens -= n
        return True


class BoundedCounter(Counter[K]):
    """A counter that forgets its smallest entries once it holds more than `limit` keys,
    so a stream of distinct keys (fresh peer ids) cannot grow it without bound."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def bump(self, key: K, n: int = 1) -> None:
        self[key] += n
        if len(self) > self.limit:
            for old, _ in self.most_common()[self.limit // 2 :]:
                del self[old]


class StreamGuard:
    """Inbound streams being served, and the frame bytes being read on them, by peer.

    A peer could otherwise open thousands of streams at once and start a 4 MiB frame on
    each: the reader would hold all of them in memory while they arrive. A stream beyond
    the bounds is reset at once (the sender retries); a frame that would pass the byte
    bounds is refused before its body is read."""

    def __init__(
        self,
        *,
        peer_streams: int = 64,
        total_streams: int = 1024,
        peer_bytes: int = 16 * 1024 * 1024,
        total_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.peer_streams, self.total_streams = peer_streams, total_streams
        self.peer_bytes, self.total_bytes = peer_bytes, total_bytes
        self._streams: Counter[bytes] = Counter()
        self._bytes: Counter[bytes] = Counter()
        self.streams = 0
        self.bytes = 0
        self.refused: Counter[str] = Counter()  # "streams" | "bytes"

    def enter(self, peer: bytes) -> bool:
        if self.streams >= self.total_streams or self._streams[peer] >= self.peer_streams:
            self.refused["streams"] += 1
            if not self._streams[peer]:
                del self._streams[peer]
            return False
        self._streams[peer] += 1
        self.streams += 1
        return True

    def leave(self, peer: bytes) -> None:
        self._streams[peer] -= 1
        self.streams -= 1
        if self._streams[peer] <= 0:
            del self._streams[peer]

    def reserve(self, peer: bytes, n: int) -> bool:
        if self.bytes + n > self.total_bytes or self._bytes[peer] + n > self.peer_bytes:
            self.refused["bytes"] += 1
            if not self._bytes[peer]:
                del self._bytes[peer]
            return False
        self._bytes[peer] += n
        self.bytes += n
        return True

    def release(self, peer: bytes, n: int) -> None:
        self._bytes[peer] -= n
        self.bytes -= n
        if self._bytes[peer] <= 0:
            del self._bytes[peer]

    def snapshot(self) -> dict[str, Any]:
        return {
            "streams": self.streams,
            "bytes_in_flight": self.bytes,
            "refused": dict(self.refused),
            "limits": {
                "peer_streams": self.peer_streams,
                "total_streams": self.total_streams,
                "peer_bytes": self.peer_bytes,
                "total_bytes": self.total_bytes,
            },
        }
