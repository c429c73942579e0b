"""Protocol messages that arrive before their session starts here.

A session starts on every party when the same block commits, so a peer's first messages
may come seconds before this node has executed that block. They are held here, bounded
per sender, per session and in all, and only for `EARLY_TTL` (messages for a session id
that never starts must not stay for good), and handed to the session when it starts.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from tssnode.net.limits import Bounds, Quota

#: Protocol messages for a session not started here yet live this long at most: a session
#: starts on every party when the same block commits, so its early messages are seconds
#: early; messages for a session id that never starts (issue 13) must not stay for good.
EARLY_TTL = 60.0
#: ...and are bounded per sender and in all, so that made-up session ids from one
#: validator push out its own messages, not the early messages of real sessions from
#: the others (see `tssnode.net.limits.Quota`).
EARLY_BOUNDS = Bounds(
    owner_items=512,
    owner_bytes=8 * 1024 * 1024,
    total_items=4096,
    total_bytes=64 * 1024 * 1024,
)
#: ...and per session.
EARLY_PER_SESSION = 512


class EarlyMessages:
    """Protocol messages held for sessions that have not started here yet."""

    def __init__(
        self,
        bounds: Bounds = EARLY_BOUNDS,
        ttl: float = EARLY_TTL,
        per_session: int = EARLY_PER_SESSION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quota: Quota[int] = Quota(bounds, ttl=ttl, clock=clock)
        self.per_session = per_session
        self._held: dict[bytes, OrderedDict[int, bytes]] = {}  # ssid → message id → data
        self._where: dict[int, bytes] = {}  # message id → ssid
        self._next = 0
        self.delivered = 0

    def __len__(self) -> int:
        """Sessions with messages held."""
        return len(self._held)

    def put(self, ssid: bytes, sender: bytes, data: bytes) -> None:
        box = self._held.setdefault(ssid, OrderedDict())
        if len(box) >= self.per_session:
            self._discard(self.quota.evict(next(iter(box)), "session_items"))
            box = self._held.setdefault(ssid, OrderedDict())
        self._next += 1
        box[self._next] = data
        self._where[self._next] = ssid
        for victim in self.quota.add(sender, self._next, len(data)):
            self._discard(victim)

    def take(self, ssid: bytes) -> list[bytes]:
        """The messages held for a session that starts now, oldest first."""
        self.expire()
        box = self._held.pop(ssid, None)
        if not box:
            return []
        for mid in box:
            self.quota.remove(mid)
            del self._where[mid]
        self.delivered += len(box)
        return list(box.values())

    def expire(self) -> None:
        for victim in self.quota.expire():
            self._discard(victim)

    def _discard(self, mid: int) -> None:
        """Forget one message the quota pushed out (or refused)."""
        ssid = self._where.pop(mid, None)
        box = None if ssid is None else self._held.get(ssid)
        if ssid is None or box is None:
            return
        box.pop(mid, None)
        if not box:
            del self._held[ssid]

    def snapshot(self) -> dict[str, Any]:
        return {"sessions": len(self._held), "delivered": self.delivered, **self.quota.snapshot()}
