"""The peer book: every peer this node knows, its state, and events when that changes.

A record holds the peer's dialable addresses (from the config, peer exchange or its own
hello), whether it is connected, whether it is *ready* (connected, peer exchange done on
the same network, and subscribed to our gossip topic), its ping latency and when we last
heard from it. The node and the console subscribe to `PeerEvent`s (connected, ready,
unresponsive, disconnected); each subscriber gets its own unbounded channel, so a slow
subscriber never makes the network wait, and a closed channel is simply forgotten.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import trio

from tssnode.net import peerid

EventKind = Literal["connected", "ready", "disconnected", "unresponsive"]
#: Weight of a new ping sample in the smoothed latency.
LATENCY_ALPHA = 0.3


@dataclass(frozen=True)
class PeerEvent:
    """Something happened to a peer: `kind` is connected, ready (peer exchange and gossip
    done), unresponsive (pings failed; a disconnect follows) or disconnected. `peer` is the
    binary peer id, `at` wall-clock time."""

    kind: EventKind
    peer: bytes
    at: float
    detail: str = ""

    @property
    def up(self) -> bool:
        """True for connected and ready, False for unresponsive and disconnected."""
        return self.kind in ("connected", "ready")

    @property
    def peer_text(self) -> str:
        return peerid.to_text(self.peer)


@dataclass
class PeerRecord:
    """What the node knows about one peer (copies are handed out; see `PeerBook.get`)."""

    peer_id: bytes
    addrs: tuple[str, ...] = ()
    source: str = "unknown"  # bootstrap | pex | inbound
    connected: bool = False
    hello: bool = False  # peer exchange done: same network, admitted
    gossip: bool = False  # subscribed to our topic, pubsub stream up
    latency: float | None = None  # smoothed ping round trip, seconds
    last_rtt: float | None = None
    last_seen: float | None = None  # wall-clock time of the last sign of life
    connected_since: float | None = None
    failed_pings: int = 0
    connects: int = 0  # how many times it (re)connected
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.connected and self.hello and self.gossip

    @property
    def text(self) -> str:
        return peerid.to_text(self.peer_id)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (for the API and the harness)."""
        return {
            "peer_id": self.text,
            "addrs": list(self.addrs),
            "source": self.source,
            "connected": self.connected,
            "ready": self.ready,
            "latency_ms": None if self.latency is None else round(self.latency * 1e3, 3),
            "last_seen": self.last_seen,
            "connects": self.connects,
        }


class PeerBook:
    """Peers by binary id, with change notification."""

    def __init__(self, self_id: bytes) -> None:
        self.self_id = self_id
        self._peers: dict[bytes, PeerRecord] = {}
        self._subscribers: list[trio.MemorySendChannel[PeerEvent]] = []
        self._changed = trio.Event()

    # -- reading -----------------------------------------------------------------------------

    def get(self, peer: bytes) -> PeerRecord | None:
        record = self._peers.get(peer)
        return None if record is None else replace(record, extra=dict(record.extra))

    def records(self) -> list[PeerRecord]:
        return [replace(r, extra=dict(r.extra)) for r in self._peers.values()]

    def known(self) -> list[bytes]:
        return list(self._peers)

    def connected(self) -> list[bytes]:
        return [p for p, r in self._peers.items() if r.connected]

    def ready(self) -> list[bytes]:
        return [p for p, r in self._peers.items() if r.ready]

    def is_connected(self, peer: bytes) -> bool:
        record = self._peers.get(peer)
        return record is not None and record.connected

    def is_ready(self, peer: bytes) -> bool:
        record = self._peers.get(peer)
        return record is not None and record.ready

    # -- events ------------------------------------------------------------------------------

    def subscribe(self) -> trio.MemoryReceiveChannel[PeerEvent]:
        """A channel of future events; close it to unsubscribe."""
        send, receive = trio.open_memory_channel[PeerEvent](math.inf)
        self._subscribers.append(send)
        return receive

    def _emit(self, kind: EventKind, peer: bytes, detail: str = "") -> None:
        event = PeerEvent(kind, peer, time.time(), detail)
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(channel)
        self.touch()

    def touch(self) -> None:
        """Wake everything waiting for a change (e.g. after the allow-list changed)."""
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        """Return at the next change of any record."""
        await self._changed.wait()

    async def wait_ready(self, peers: Iterable[bytes], within: float) -> None:
        """Wait until every peer in `peers` is ready; `trio.TooSlowError` after `within`
        seconds."""
        wanted = set(peers) - {self.self_id}
        with trio.fail_after(within):
            while not all(self.is_ready(p) for p in wanted):
                await self.wait_changed()

    # -- updates (by the node's services) ----------------------------------------------------

    def _record(self, peer: bytes) -> PeerRecord:
        record = self._peers.get(peer)
        if record is None:
            record = self._peers[peer] = PeerRecord(peer_id=peer)
        return record

    def learn(self, peer: bytes, addrs: Iterable[str], source: str) -> bool:
        """Add addresses for a peer; True when the peer or an address is new."""
        if peer == self.self_id:
            return False
        new_peer = peer not in self._peers
        record = self._record(peer)
        if new_peer or record.source == "unknown":
            record.source = source
        merged = tuple(dict.fromkeys((*record.addrs, *addrs)))
        changed = new_peer or merged != record.addrs
        record.addrs = merged
        if changed:
            self.touch()
        return changed

    def set_connected(self, peer: bytes, connected: bool) -> None:
        if not connected and peer not in self._peers:
            return  # (no record for a peer that is gone: see `forget`)
        record = self._record(peer)
        if record.connected == connected:
            return
        was_ready = record.ready
        record.connected = connected
        if connected:
            record.connects += 1
            record.connected_since = time.time()
            record.last_seen = record.connected_since
            record.failed_pings = 0
            self._emit("connected", peer)
        else:
            record.hello = record.gossip = False
            record.connected_since = None
            self._emit("disconnected", peer, "was ready" if was_ready else "")

    def set_hello(self, peer: bytes) -> None:
        self._set_flag(peer, "hello")

    def set_gossip(self, peer: bytes) -> None:
        self._set_flag(peer, "gossip")

    def _set_flag(self, peer: bytes, name: Literal["hello", "gossip"]) -> None:
        record = self._record(peer)
        if not record.connected or getattr(record, name):
            return
        setattr(record, name, True)
        if record.ready:
            self._emit("ready", peer)
        else:
            self.touch()

    def clear_gossip(self, peer: bytes) -> None:
        """The peer's pubsub stream is gone (it stays connected): not ready until renewed."""
        record = self._peers.get(peer)
        if record is not None and record.gossip:
            record.gossip = False
            self.touch()

    def forget(self, peer: bytes) -> None:
        """Drop a disconnected peer's record (a newcomer that left: the book would
        otherwise keep every peer id that ever connected)."""
        record = self._peers.get(peer)
        if record is not None and not record.connected:
            del self._peers[peer]
            self.touch()

    def seen(self, peer: bytes) -> None:
        record = self._peers.get(peer)
        if record is not None:
            record.last_seen = time.time()

    def ping_ok(self, peer: bytes, rtt: float) -> None:
        record = self._record(peer)
        record.last_rtt = rtt
        record.latency = (
            rtt
            if record.latency is None
            else (1 - LATENCY_ALPHA) * record.latency + LATENCY_ALPHA * rtt
        )
        record.failed_pings = 0
        record.last_seen = time.time()

    def ping_failed(self, peer: bytes) -> int:
        record = self._record(peer)
        record.failed_pings += 1
        return record.failed_pings

    def unresponsive(self, peer: bytes, detail: str) -> None:
        self._emit("unresponsive", peer, detail)

    def close(self) -> None:
        """Close every subscriber channel (the node is stopping)."""
        for channel in self._subscribers:
            channel.close()
        self._subscribers.clear()
