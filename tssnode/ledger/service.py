"""The replica as a trio service: a transport loop, timers, and waiting for commits.

`ReplicaService.run` is started with `nursery.start` and reports ready once the replica
has loaded its chain and journal. Inside, one task feeds received frames to the replica,
one sends what it emits (consensus frames first: see `_Lanes`), and one fires its timers at
trio's clock (so tests drive view
changes with `trio.testing.MockClock(autojump_threshold=0)` instead of sleeping). The
replica itself is synchronous and never awaits: each input is handled to the end before
the next, so no locks are needed.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import trio

from tssnode.crypto.encoding import Wire
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.app import AppFactory
from tssnode.ledger.blocks import Block
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.replica import Replica, ReplicaOptions
from tssnode.ledger.transactions import SignedTx
from tssnode.ledger.transport import Transport
from tssnode.store.db import KeyValueStore

if TYPE_CHECKING:
    # trio's own annotations are shadowed by trio-stubs (trio-typing, a libp2p dependency).
    from trio_typing import TaskStatus


#: Relayed client requests waiting to go out, at most (more are dropped: the replica re-sends).
MAX_QUEUED_REQUESTS = 2048
#: Consensus frames waiting to go out, at most.
MAX_QUEUED_VOTES = 100_000
#: Bytes waiting to go out in both lanes, at most (a frame beyond is dropped and counted).
MAX_QUEUED_BYTES = 256 * 1024 * 1024
_REQUEST_TAG = b"tssnode.pbft.frame.request/"


class _Lanes:
    """The outgoing frames of one replica in two lanes: votes, proposals, view changes,
    checkpoints and catch-up first; relayed client requests after them, each at most once
    in the queue.

    Before, one first-in-first-out queue carried both: under a burst the replicas' request
    relays arrived faster than the transport could send them, the queue grew without
    bound, and the view-change and new-view messages waited behind thousands of stale
    requests, so no view change ever finished and the chain stopped for good."""

    def __init__(self) -> None:
        self.votes: deque[tuple[bytes | None, bytes]] = deque()
        self.requests: deque[tuple[bytes | None, bytes, bytes]] = deque()
        self.queued: set[bytes] = set()
        self.dropped = 0
        self.bytes = 0
        self.ready = trio.Event()

    def put(self, to: bytes | None, data: bytes) -> None:
        if self.bytes + len(data) > MAX_QUEUED_BYTES:
            self.dropped += 1
            return
        if _REQUEST_TAG in data[:40]:
            key = hashlib.sha256((to or b"*") + data).digest()
            if key in self.queued:
                return
            if len(self.requests) >= MAX_QUEUED_REQUESTS:
                self.dropped += 1
                return
            self.queued.add(key)
            self.requests.append((to, data, key))
        elif len(self.votes) < MAX_QUEUED_VOTES:
            self.votes.append((to, data))
        else:
            self.dropped += 1
            return
        self.bytes += len(data)
        self.ready.set()

    async def get(self) -> tuple[bytes | None, bytes]:
        while not (self.votes or self.requests):
            await self.ready.wait()
            self.ready = trio.Event()
        if self.votes:
            to, data = self.votes.popleft()
        else:
            to, data, key = self.requests.popleft()
            self.queued.discard(key)
        self.bytes -= len(data)
        return to, data

    def __len__(self) -> int:
        return len(self.votes) + len(self.requests)


class _TrioOutbox:
    def __init__(self, service: ReplicaService) -> None:
        self.s = service

    def send(self, to: bytes, data: bytes) -> None:
        self.s._enqueue(to, data)

    def broadcast(self, data: bytes) -> None:
        self.s._enqueue(None, data)

    def set_timer(self, name: str, delay: float) -> None:
        self.s._timers[name] = trio.current_time() + delay
        self.s._timers_changed.set()

    def cancel_timer(self, name: str) -> None:
        self.s._timers.pop(name, None)


class ReplicaService:
    """One node's PBFT replica over a transport."""

    def __init__(
        self,
        key: IdentityKey,
        genesis: Genesis,
        store: KeyValueStore,
        transport: Transport,
        options: ReplicaOptions | None = None,
        *,
        apps: Sequence[AppFactory],
    ) -> None:
        self.key = key
        self.apps = tuple(apps)
        self.genesis = genesis
        self.store = store
        self.transport = transport
        self.options = options
        self._timers: dict[str, float] = {}
        self._timers_changed = trio.Event()
        self._out = _Lanes()
        self._progress = trio.Event()
        self._replica: Replica | None = None

    @property
    def replica(self) -> Replica:
        if self._replica is None:
            raise RuntimeError("the replica service has not started")
        return self._replica

    def _enqueue(self, to: bytes | None, data: bytes) -> None:
        # A full lane loses the frame; the replica's retransmission recovers.
        self._out.put(to, data)

    @property
    def queued(self) -> int:
        """Frames waiting to be sent (both lanes)."""
        return len(self._out)

    def _on_block(self, block: Block) -> None:
        self._progress.set()
        self._progress = trio.Event()

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        replica = Replica(
            self.key, self.genesis, self.store, _TrioOutbox(self), self.options, apps=self.apps
        )
        replica.on_block.append(self._on_block)
        self._replica = replica
        replica.start()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receive_loop)
            nursery.start_soon(self._send_loop)
            nursery.start_soon(self._timer_loop)
            task_status.started()

    async def _receive_loop(self) -> None:
        while True:
            sender, data = await self.transport.receive()
            self.replica.receive(sender, data)

    async def _send_loop(self) -> None:
        while True:
            to, data = await self._out.get()
            if to is None:
                await self.transport.broadcast(data)
            else:
                await self.transport.send(to, data)

    async def _timer_loop(self) -> None:
        while True:
            if not self._timers:
                await self._timers_changed.wait()
                self._timers_changed = trio.Event()
                continue
            name, deadline = min(self._timers.items(), key=lambda kv: kv[1])
            with trio.move_on_at(deadline):
                await self._timers_changed.wait()
                self._timers_changed = trio.Event()
                continue
            if self._timers.get(name) == deadline:
                del self._timers[name]
                self.replica.on_timer(name)

    # -- client side --------------------------------------------------------------------------

    def submit(self, tx: SignedTx) -> bytes:
        """Submit a transaction (`InvalidTransaction` with the reason if it is refused)."""
        return self.replica.submit(tx)

    def submit_payload(self, payload: Wire) -> bytes:
        return self.replica.submit_payload(payload)

    async def wait_until(self, condition: Callable[[Replica], bool]) -> None:
        """Wait until `condition(replica)` holds after some block is committed."""
        while not condition(self.replica):
            await self._progress.wait()

    async def wait_for_height(self, height: int) -> None:
        await self.wait_until(lambda r: r.height >= height)

    async def wait_for_tx(self, tx_hash: bytes) -> tuple[int, int]:
        """(height, index) of a transaction once it is in a committed block."""
        await self.wait_until(lambda r: r.chain.tx_location(tx_hash) is not None)
        loc = self.replica.chain.tx_location(tx_hash)
        assert loc is not None
        return loc
