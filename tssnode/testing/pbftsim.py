"""A deterministic, seeded simulated network for PBFT replicas (a test double for the
ledger, the net layer's hostile-input tests and the decoder fuzz tests).

Discrete-event: virtual time, one heap of deliveries and timer firings, one
`random.Random(seed)` for every fault decision, no threads and no sleeping, so a seed
replays exactly. Each replica gets an `Outbox` whose send/broadcast go through the fault
rules: drop, duplicate, delay (and so reorder), partitions that heal, crashes and
restarts from the replica's own store. `Interceptor`s let a test make a replica
byzantine by rewriting what it sends.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.app import AppFactory
from tssnode.ledger.bootstrap import GenesisProbe
from tssnode.ledger.genesis import Genesis, Validator, make_genesis
from tssnode.ledger.replica import Replica, ReplicaOptions
from tssnode.store.db import KeyValueStore
from tssnode.testing.memstore import MemoryStore


class SimCrash(Exception):
    """Raised inside a replica's store to simulate the process dying at that point."""


@dataclass
class Faults:
    drop: float = 0.0
    duplicate: float = 0.0
    min_delay: float = 0.001
    max_delay: float = 0.02


#: (sender id, recipient id or None for broadcast, frame) → frames to send instead.
Interceptor = Callable[[bytes, bytes | None, bytes], list[tuple[bytes | None, bytes]]]


class CrashingStore(MemoryStore):
    """A memory store that dies at its `crash_at`-th write, before or after writing it."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_at: int | None = None
        self.crash_after_write = False

    def write(self, ops: dict[bytes, bytes | None]) -> None:
        if self.crash_at is not None and self.writes + 1 >= self.crash_at:
            self.crash_at = None
            if self.crash_after_write:
                super().write(ops)
            raise SimCrash
        super().write(ops)


@dataclass
class SimNode:
    key: IdentityKey
    store: CrashingStore
    replica: Replica | None = None
    alive: bool = True
    timers: dict[str, int] = field(default_factory=dict)
    sent: list[bytes] = field(default_factory=list)  # every frame it sent (for audits)
    incarnation: int = 0
    id: bytes = b""
    genesis: Genesis | None = None
    probe: GenesisProbe | None = None

    def __post_init__(self) -> None:
        self.id = self.key.public_bytes()


class _Outbox:
    def __init__(self, net: SimNetwork, node: SimNode) -> None:
        self.net, self.node = net, node
        self.incarnation = node.incarnation

    def _live(self) -> bool:
        return self.node.alive and self.node.incarnation == self.incarnation

    def send(self, to: bytes, data: bytes) -> None:
        if self._live():
            self.net._emit(self.node, to, data)

    def broadcast(self, data: bytes) -> None:
        if self._live():
            self.net._emit(self.node, None, data)

    def set_timer(self, name: str, delay: float) -> None:
        if self._live():
            self.net._set_timer(self.node, name, delay)

    def cancel_timer(self, name: str) -> None:
        self.node.timers.pop(name, None)


class SimNetwork:
    """Replicas in one process, connected by a seeded, faulty, virtual-time network."""

    def __init__(
        self,
        seed: int | str,
        keys: list[IdentityKey],
        genesis: Genesis,
        options: ReplicaOptions | None = None,
        faults: Faults | None = None,
        *,
        apps: Sequence[AppFactory],
    ) -> None:
        self.apps = tuple(apps)
        self.rng = random.Random(f"sim:{seed}")
        self.genesis = genesis
        self.options = options or ReplicaOptions(view_timeout=1.0, tick=0.25, idle_poll=2.0)
        self.faults = faults or Faults()
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = 0
        self.nodes: dict[bytes, SimNode] = {}
        self.groups: list[set[bytes]] | None = None  # partition: who can reach whom
        self.interceptors: dict[bytes, Interceptor] = {}
        self.crashes = 0
        #: restart a crashed replica this long after it crashed (None: stay down)
        self.auto_restart: float | None = None
        self.on_crash: list[Callable[[SimNode], None]] = []
        for key in keys:
            self.add_node(key)

    @staticmethod
    def make(
        seed: int | str, n: int, *, checkpoint_interval: int = 4, window: int = 8, **kw: object
    ) -> SimNetwork:
        """n validators with keys derived from the seed."""
        keys = [
            IdentityKey.from_seed(hashlib.sha256(f"sim-key:{seed}:{i}".encode()).digest())
            for i in range(n)
        ]
        genesis = make_genesis(
            [Validator(k.public_bytes(), f"v{i}", "") for i, k in enumerate(keys)],
            chain_name=f"sim-{seed}",
            checkpoint_interval=checkpoint_interval,
            window=window,
        )
        return SimNetwork(seed, keys, genesis, **kw)  # type: ignore[arg-type]

    def add_node(self, key: IdentityKey, store: CrashingStore | None = None) -> SimNode:
        node = SimNode(key, store or CrashingStore(), genesis=self.genesis)
        self.nodes[node.id] = node
        self._boot(node)
        return node

    def join(
        self, key: IdentityKey, bootstrap: list[bytes], chain_id: bytes | None = None
    ) -> SimNode:
        """A new node that knows only its bootstrap peers: it learns the genesis from
        them (`GenesisProbe`), then follows the chain as an observer."""
        node = SimNode(key, CrashingStore(), probe=GenesisProbe(bootstrap, chain_id))
        self.nodes[node.id] = node
        node.incarnation += 1
        self._probe(node)
        return node

    def _probe(self, node: SimNode) -> None:
        if node.replica is not None or node.probe is None:
            return
        for peer, frame in node.probe.requests():
            self._emit(node, peer, frame)
        self._at(self.now + self.options.tick, lambda: self._probe(node))

    def _boot(self, node: SimNode) -> None:
        assert node.genesis is not None
        node.incarnation += 1
        node.alive = True
        node.timers.clear()
        node.store.reopen()
        node.replica = Replica(
            node.key, node.genesis, node.store, _Outbox(self, node), self.options, apps=self.apps
        )
        node.replica.clock = lambda: self.now  # block notes in virtual time
        self._guard(node, node.replica.start)

    def replica(self, node_id: bytes) -> Replica:
        r = self.nodes[node_id].replica
        assert r is not None
        return r

    @property
    def ids(self) -> list[bytes]:
        return list(self.nodes)

    # -- scheduling ---------------------------------------------------------------------------

    def _at(self, t: float, fn: Callable[[], None]) -> None:
        self._counter += 1
        heapq.heappush(self._queue, (t, self._counter, fn))

    def _set_timer(self, node: SimNode, name: str, delay: float) -> None:
        self._counter += 1
        token = self._counter
        node.timers[name] = token
        inc = node.incarnation

        def fire() -> None:
            if node.alive and node.incarnation == inc and node.timers.get(name) == token:
                del node.timers[name]
                r = node.replica
                assert r is not None
                self._guard(node, lambda: r.on_timer(name))

        self._at(self.now + delay, fire)

    def _reachable(self, a: bytes, b: bytes) -> bool:
        if self.groups is None:
            return True
        return any(a in g and b in g for g in self.groups)

    def _emit(self, node: SimNode, to: bytes | None, data: bytes) -> None:
        outgoing: list[tuple[bytes | None, bytes]] = [(to, data)]
        hook = self.interceptors.get(node.id)
        if hook is not None:
            outgoing = hook(node.id, to, data)
        for dest, frame in outgoing:
            node.sent.append(frame)
            targets = [dest] if dest is not None else [i for i in self.nodes if i != node.id]
            for target in targets:
                self._deliver(node.id, target, frame)

    def _deliver(self, sender: bytes, to: bytes, data: bytes) -> None:
        f = self.faults
        if to not in self.nodes or not self._reachable(sender, to):
            return
        copies = 0 if self.rng.random() < f.drop else 1
        if copies and self.rng.random() < f.duplicate:
            copies = 2
        for _ in range(copies):
            delay = self.rng.uniform(f.min_delay, f.max_delay)
            node = self.nodes[to]

            def arrive(node: SimNode = node) -> None:
                if not (node.alive and self._reachable(sender, to)):
                    return
                r = node.replica
                if r is None:
                    assert node.probe is not None
                    genesis = node.probe.receive(sender, data)
                    if genesis is not None:
                        node.genesis = genesis
                        node.incarnation -= 1
                        self._boot(node)
                    return
                self._guard(node, lambda: r.receive(sender, data))

            self._at(self.now + delay, arrive)

    def _guard(self, node: SimNode, fn: Callable[[], None]) -> None:
        try:
            fn()
        except SimCrash:
            self.crash(node.id)

    # -- control ------------------------------------------------------------------------------

    def crash(self, node_id: bytes) -> None:
        node = self.nodes[node_id]
        if not node.alive:
            return
        self.crashes += 1
        node.alive = False
        node.timers.clear()
        for fn in self.on_crash:
            fn(node)
        if self.auto_restart is not None:
            inc = node.incarnation
            self._at(
                self.now + self.auto_restart,
                lambda: self.restart(node_id) if node.incarnation == inc else None,
            )

    def restart(self, node_id: bytes) -> None:
        self._boot(self.nodes[node_id])

    def partition(self, *groups: list[bytes] | set[bytes]) -> None:
        self.groups = [set(g) for g in groups]

    def heal(self) -> None:
        self.groups = None

    def at(self, t: float, fn: Callable[[], None]) -> None:
        """Run `fn` at virtual time `t`."""
        self._at(t, fn)

    def step(self) -> bool:
        if not self._queue:
            return False
        t, _, fn = heapq.heappop(self._queue)
        self.now = max(self.now, t)
        fn()
        return True

    def run(self, until: float, stop: Callable[[], bool] | None = None) -> None:
        """Process events up to virtual time `until` (or until `stop()` holds)."""
        while self._queue and self._queue[0][0] <= until:
            self.step()
            if stop is not None and stop():
                return
        self.now = max(self.now, until)

    def submit(self, node_id: bytes, payload_fn: Callable[[Replica], object]) -> None:
        node = self.nodes[node_id]
        if node.alive and node.replica is not None:
            r = node.replica

            def call() -> None:
                payload_fn(r)

            self._guard(node, call)

    def alive_replicas(self) -> list[Replica]:
        return [n.replica for n in self.nodes.values() if n.alive and n.replica is not None]

    def stores(self) -> dict[bytes, KeyValueStore]:
        return {i: n.store for i, n in self.nodes.items()}
