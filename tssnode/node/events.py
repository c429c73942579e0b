"""The node's event stream: everything that happens, for the API and the console.

Events are small JSON-ready records (kind, time, fields). Publishing never blocks the
node: each subscriber has a bounded buffer, and a subscriber that falls behind loses
its oldest events and is told how many it missed (`dropped`), instead of slowing the
node down. A ring of recent events serves late subscribers and `GET /events?since=`.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

from tssnode import schema

#: the kinds of event the node publishes: those the API's schema describes
KINDS = tuple(schema.event_models())


@dataclass(frozen=True)
class Event:
    seq: int
    kind: str
    time: float
    fields: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "time": self.time, **self.fields}


@dataclass(eq=False)  # identity semantics: subscribers live in a set
class _Subscriber:
    buffer: deque[Event]
    #: the kinds it asked for (None: all)
    kinds: frozenset[str] | None = None
    wake: trio.Event = field(default_factory=trio.Event)
    dropped: int = 0


class EventBus:
    """Publish/subscribe within one trio process."""

    def __init__(self, history: int = 2000, per_subscriber: int = 1000) -> None:
        self._seq = itertools.count(1)
        self.recent: deque[Event] = deque(maxlen=history)
        self._subs: set[_Subscriber] = set()
        self._cap = per_subscriber
        #: Called with every event as it is published (in the publisher's task; must not
        #: block or raise): the metrics count from here and never miss one.
        self.listeners: list[Callable[[Event], None]] = []

    def publish(self, kind: str, **fields: Any) -> Event:
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        event = Event(next(self._seq), kind, time.time(), fields)
        self.recent.append(event)
        for listener in self.listeners:
            listener(event)
        for sub in self._subs:
            if sub.kinds is not None and kind not in sub.kinds:
                continue
            if len(sub.buffer) >= self._cap:
                sub.buffer.popleft()
                sub.dropped += 1
            sub.buffer.append(event)
            sub.wake.set()
        return event

    def since(self, seq: int) -> list[Event]:
        return [e for e in self.recent if e.seq > seq]

    async def subscribe(
        self, since: int | None = None, kinds: Iterable[str] | None = None
    ) -> AsyncGenerator[Event, None]:
        """Events from now on (after replaying those newer than `since`, if given), only
        those of `kinds` if given (a reader of a few kinds then misses none to the many)."""
        only = None if kinds is None else frozenset(kinds)
        past = self.since(since) if since is not None else []
        sub = _Subscriber(deque(e for e in past if only is None or e.kind in only), only)
        self._subs.add(sub)
        try:
            while True:
                while sub.buffer or sub.dropped:
                    if sub.dropped:
                        missed, sub.dropped = sub.dropped, 0
                        yield Event(0, "log", time.time(), {"level": "warning", "dropped": missed})
                        continue
                    yield sub.buffer.popleft()
                sub.wake = trio.Event()
                if not sub.buffer:
                    await sub.wake.wait()
        finally:
            self._subs.discard(sub)
