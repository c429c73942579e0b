"""The manifest-driven fault runner: real `tssnode run` processes, faults on a schedule,
and the checks that say whether the network survived them (`tssnode faults MANIFEST`).

CometBFT's e2e runner and Jepsen test a replicated system the same way: a manifest names
the network and what to do to it; a runner starts the nodes, drives a steady load, applies
the faults on time, heals everything, and then checks what must hold whatever happened.
Unit tests and the simulated network (`pbftsim`) cover the logic; this covers what only
real processes show: crashes at any instruction (SIGKILL), a process frozen mid-write
(SIGSTOP), TCP connections that hang instead of failing (a pulled data link, a
partition), restarts that read everything back from LevelDB.

A manifest (TOML, `load_manifest`):

    recover_within = 120        # s after the heal by which a new request must commit
    settle_within = 300         # s after the heal by which every accepted request settles

    [network]
    nodes = 4                   # validators (1..250)
    threshold = 1               # of the key made at the start (t + 1 sign)
    presign_pool = 2
    round_timeout = 15          # a session round's timeout at the nodes, s
    tier = "insecure-test"
    network = "auto"            # "netns" | "loopback" | "auto" (netns if it can)

    [load]
    rate = 0.3                  # sign requests per second, round-robin over live nodes
    max_outstanding = 3         # of the steady load not yet settled

    [[schedule]]                # or top-level [[step]]s for a single schedule
    name = "kill-restart"
    duration = 20               # s of load and faults before the heal
    [[schedule.step]]
    at = 2                      # s from the schedule's start
    action = "kill"
    nodes = [3]

or `random = N` (with `seed`, `max_faulty` and a `[generator]` table) for N seeded random
schedules (`random_schedule`). Actions: kill (SIGKILL), restart, pause (SIGSTOP), resume
(SIGCONT), disconnect / connect (a node's data link), partition (`groups`), heal, burst
(`count` sign requests at once) and failpoint (restart `nodes` armed with
`TSSNODE_FAILPOINT=point`; when one dies there it is restarted unarmed and the hit
recorded). Nodes are numbers 1..n, or "primary" / "backup" (the current PBFT primary, the
node after it), resolved when first used in a schedule and meaning that node to its end.

After every schedule the runner heals everything (resumes, restarts, reconnects, heals
partitions, disarms failpoints) and checks (`Runner.run_schedule`):

a. the network commits again: a new sign request is ordered and signed within
   `recover_within` of the heal;
b. every request an API accepted (202) reaches `done` or `failed` within `settle_within`
   (a 503, or no answer, is not an acceptance and is not counted);
c. every `done` signature verifies with `ecdsa` and recovers the key's eth address with
   eth-keys;
d. every node holds the same block hashes up to the lowest height, and while a partition
   left no side a quorum no new height was committed;
e. no node's height ever went backwards (a restart lost no block), no node died of
   anything but a kill or its failpoint;
f. the node that accepted a request never answers 404 for it (it is journalled);
g. no presignature lost: each node holds its part of every ready pooled presignature
   the ledger says it signs (`presignatures_held` = `presignatures_mine` of `/keys/{id}`);

and at the end (`Runner.finish`) that the key is active at every node and every share
holder still signs (signatures through each node until each holder has been a signer).
A failed check raises `FaultCheckFailed` with the seed, the schedule as TOML, and the tail
of the affected nodes' logs; `<root>/history.jsonl` keeps every node's /status, second by
second. A failed request is allowed (its reason is counted in the summary); a request
accepted and then lost or stuck is not. All waits are bounded; nothing asserts on speed.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, TypeVar

from ecdsa import BadSignatureError, SECP256k1, VerifyingKey  # type: ignore[import-untyped]
from eth_keys.datatypes import Signature as EthSignature

from tssnode import failpoints
from tssnode.api.client import ApiClient, ApiError, ApiUnavailable
from tssnode.crypto.digests import message_digest
from tssnode.crypto.params import INSECURE_TEST, TIERS
from tssnode.testing.cluster import NodeProc, make_cluster
from tssnode.testing.netns import Hosts, Unsupported, open_hosts

log = logging.getLogger("tssnode.testing.faults")

T = TypeVar("T")

ACTIONS = (
    "kill",
    "restart",
    "pause",
    "resume",
    "disconnect",
    "connect",
    "partition",
    "heal",
    "burst",
    "failpoint",
)
#: Actions that take `nodes`.
NODE_ACTIONS = frozenset(
    {"kill", "restart", "pause", "resume", "disconnect", "connect", "failpoint"}
)
#: Actions on the data network: they need network namespaces.
NETWORK_ACTIONS = frozenset({"disconnect", "connect", "partition", "heal"})
#: Actions that make a node (or a side) faulty; the rest undo them, or load the network.
FAULT_ACTIONS = frozenset({"kill", "pause", "disconnect", "partition", "failpoint"})
#: Node names resolved at run time (the first time a schedule uses them).
SYMBOLS = ("primary", "backup")
TERMINAL = ("done", "failed")
#: After a partition with no side holding a quorum, blocks already voted may still land
#: for this long; after it, no new height may be committed until the heal.
PARTITION_GRACE = 5.0
#: What the monitor keeps of each /status in the run's history.jsonl.
HISTORY_KEYS = (
    "height",
    "view",
    "primary",
    "view_change",
    "pending_requests",
    "peers_connected",
    "validators_online",
    "stalled",
    "liveness",
)


# -- the manifest ----------------------------------------------------------------------------


class ManifestError(ValueError):
    """A manifest that cannot be run: says which file, which key, and what is wrong."""


@dataclass(frozen=True)
class Step:
    """One fault at `at` seconds from the start of its schedule."""

    at: float
    action: str
    nodes: tuple[int | str, ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()
    count: int = 0
    point: str = ""

    def table(self) -> dict[str, Any]:
        """The step as a TOML table's keys (what `[[step]]` reads back)."""
        out: dict[str, Any] = {"at": self.at, "action": self.action}
        if self.nodes:
            out["nodes"] = list(self.nodes)
        if self.groups:
            out["groups"] = [list(g) for g in self.groups]
        if self.count:
            out["count"] = self.count
        if self.point:
            out["point"] = self.point
        return out

    def describe(self) -> str:
        what = {k: v for k, v in self.table().items() if k not in ("at", "action")}
        args = " ".join(f"{k}={json.dumps(v)}" for k, v in what.items())
        return f"t={self.at:g}s {self.action} {args}".rstrip()


@dataclass(frozen=True)
class Schedule:
    """Steps run with the load going, for `duration` seconds, before the heal."""

    name: str
    steps: tuple[Step, ...]
    duration: float
    #: the seed of a generated schedule (None: written in the manifest)
    seed: int | None = None

    def needs_namespaces(self) -> list[str]:
        return sorted({s.action for s in self.steps if s.action in NETWORK_ACTIONS})

    def to_toml(self) -> str:
        """The schedule as a manifest's `[[schedule]]` (replayable as it is)."""
        lines = ["[[schedule]]", f"name = {json.dumps(self.name)}", f"duration = {self.duration!r}"]
        if self.seed is not None:
            lines.append(f"# generated from seed {self.seed}")
        for step in self.steps:
            lines += ["", "[[schedule.step]]"]
            # JSON's numbers, strings and (nested) arrays are valid TOML values
            lines += [f"{k} = {json.dumps(v)}" for k, v in step.table().items()]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class NetworkSpec:
    nodes: int = 4
    threshold: int = 1
    presign_pool: int = 2
    round_timeout: float = 15.0
    tier: str = "insecure-test"
    network: str = "auto"
    stall_after: float | None = None

    @property
    def f(self) -> int:
        """How many faulty nodes PBFT tolerates: ⌊(n − 1)/3⌋."""
        return (self.nodes - 1) // 3

    @property
    def quorum(self) -> int:
        return self.nodes - self.f


@dataclass(frozen=True)
class LoadSpec:
    #: sign requests per second (0: no steady load)
    rate: float = 0.0
    #: requests of the steady load accepted and not yet settled, at most
    max_outstanding: int = 4
    #: threads sending a burst
    burst_workers: int = 16


@dataclass(frozen=True)
class RandomSpec:
    """How `random_schedule` draws: `schedules` schedules from seeds `seed`, `seed + 1`, …"""

    schedules: int
    seed: int = 1
    max_faulty: int = 1
    duration: float = 20.0
    steps: int = 4
    actions: tuple[str, ...] = ACTIONS
    burst: int = 10
    failpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    name: str
    network: NetworkSpec
    load: LoadSpec
    recover_within: float
    settle_within: float
    schedules: tuple[Schedule, ...] = ()
    random: RandomSpec | None = None
    source: str = "<manifest>"

    def expand(self, seed: int | None = None, count: int | None = None) -> list[Schedule]:
        """The schedules to run: the written ones (the first `count`), or `count` (default
        `random`) generated ones from `seed` (default the manifest's) on."""
        if self.random is None:
            return list(self.schedules[:count] if count is not None else self.schedules)
        base = self.random.seed if seed is None else seed
        total = self.random.schedules if count is None else count
        return [random_schedule(base + k, self.network.nodes, self.random) for k in range(total)]


_MISSING: Any = object()


class _Table:
    """One TOML table of a manifest: typed `take`s, then `finish` (unknown keys are
    errors, so a misspelt key is never silently ignored)."""

    def __init__(self, data: Any, where: str, source: str) -> None:
        self.where, self.source = where, source
        if not isinstance(data, dict):
            raise self.error("", f"must be a table, not {type(data).__name__}")
        self.data: dict[str, Any] = dict(data)

    def error(self, key: str, message: str) -> ManifestError:
        path = ".".join(p for p in (self.where, key) if p) or "manifest"
        return ManifestError(f"{self.source}: {path}: {message}")

    def take(self, key: str, check: Callable[[_Table, str, Any], T], default: Any = _MISSING) -> T:
        if key not in self.data:
            if default is _MISSING:
                raise self.error(key, "is required")
            return default  # type: ignore[no-any-return]
        return check(self, key, self.data.pop(key))

    def sub(self, key: str) -> _Table:
        return _Table(self.data.pop(key, {}), f"{self.where}.{key}".strip("."), self.source)

    def finish(self) -> None:
        if self.data:
            raise self.error(sorted(self.data)[0], "unknown key")


def _integer(low: int, high: int) -> Callable[[_Table, str, Any], int]:
    def check(t: _Table, k: str, v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise t.error(k, f"must be an integer, not {v!r}")
        if not low <= v <= high:
            raise t.error(k, f"must be in [{low}, {high}], not {v}")
        return v

    return check


def _number(low: float, high: float) -> Callable[[_Table, str, Any], float]:
    def check(t: _Table, k: str, v: Any) -> float:
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise t.error(k, f"must be a number, not {v!r}")
        if not low <= v <= high:
            raise t.error(k, f"must be in [{low:g}, {high:g}], not {v}")
        return float(v)

    return check


def _choice(options: Sequence[str]) -> Callable[[_Table, str, Any], str]:
    def check(t: _Table, k: str, v: Any) -> str:
        if v not in options:
            raise t.error(k, f"must be one of {', '.join(options)}, not {v!r}")
        return str(v)

    return check


def _text(t: _Table, k: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise t.error(k, f"must be a non-empty string, not {v!r}")
    return v


def _point(t: _Table, k: str, v: Any) -> str:
    """A failpoint as `TSSNODE_FAILPOINT` takes it: a name of failpoints.POINTS, or
    `name@N` (die at its N-th hit)."""
    if not isinstance(v, str):
        raise t.error(k, f"must be a failpoint name, not {v!r}")
    name, _, count = v.partition("@")
    if name not in failpoints.POINTS:
        raise t.error(k, f"unknown failpoint {name!r} (see tssnode/failpoints.py)")
    if count and not (count.isdigit() and int(count) > 0):
        raise t.error(k, f"{v!r}: the hit count after @ must be a positive integer")
    return v


def _list_of(item: Callable[[_Table, str, Any], T]) -> Callable[[_Table, str, Any], list[T]]:
    def check(t: _Table, k: str, v: Any) -> list[T]:
        if not isinstance(v, list):
            raise t.error(k, f"must be a list, not {v!r}")
        return [item(t, f"{k}[{i}]", x) for i, x in enumerate(v)]

    return check


def _step(t: _Table, n: int) -> Step:
    def node(t: _Table, k: str, v: Any) -> int | str:
        if isinstance(v, str) and v in SYMBOLS:
            return v
        return _integer(1, n)(t, k, v)

    at = t.take("at", _number(0, 86400))
    action = t.take("action", _choice(ACTIONS))
    step = Step(at, action)
    if action in NODE_ACTIONS:
        nodes = t.take("nodes", _list_of(node))
        if not nodes:
            raise t.error("nodes", f"{action} needs at least one node")
        if len(set(nodes)) != len(nodes):
            raise t.error("nodes", "names a node twice")
        step = replace(step, nodes=tuple(nodes))
    if action == "failpoint":
        step = replace(step, point=t.take("point", _point))
    if action == "burst":
        step = replace(step, count=t.take("count", _integer(1, 10_000)))
    if action == "partition":
        groups = t.take("groups", _list_of(_list_of(_integer(1, n))))
        if len(groups) < 1 or any(not g for g in groups):
            raise t.error("groups", "needs one or more non-empty groups of nodes")
        flat = [i for g in groups for i in g]
        if len(set(flat)) != len(flat):
            raise t.error("groups", "names a node in two groups")
        step = replace(step, groups=tuple(tuple(sorted(g)) for g in groups))
    t.finish()
    return step


def _steps(raw: Any, where: str, source: str, n: int) -> tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        raise ManifestError(f"{source}: {where}: must be a non-empty array of tables")
    steps = [_step(_Table(s, f"{where}[{i}]", source), n) for i, s in enumerate(raw)]
    return tuple(sorted(steps, key=lambda s: s.at))  # stable: equal times keep their order


def _schedule(t: _Table, n: int, default_name: str) -> Schedule:
    name = t.take("name", _text, default_name)
    steps = _steps(t.data.pop("step", None), f"{t.where}.step".strip("."), t.source, n)
    last = max(s.at for s in steps)
    duration = t.take("duration", _number(0, 86400), last + 5.0)
    if duration < last:
        raise t.error("duration", f"ends before the last step (at {last:g} s)")
    t.finish()
    return Schedule(name, steps, duration)


def parse_manifest(data: Mapping[str, Any], source: str = "<manifest>") -> Manifest:
    """A Manifest from TOML data; ManifestError for anything wrong (file, key, why)."""
    top = _Table(dict(data), "", source)
    net_t = top.sub("network")
    nodes = net_t.take("nodes", _integer(1, 250), 4)
    network = NetworkSpec(
        nodes=nodes,
        threshold=net_t.take("threshold", _integer(0, max(nodes - 1, 0)), min(1, nodes - 1)),
        presign_pool=net_t.take("presign_pool", _integer(0, 100), 2),
        round_timeout=net_t.take("round_timeout", _number(1, 3600), 15.0),
        tier=net_t.take("tier", _choice(tuple(TIERS)), INSECURE_TEST.name),
        network=net_t.take("network", _choice(("auto", "netns", "loopback")), "auto"),
        stall_after=net_t.take("stall_after", _number(1, 3600), None),
    )
    net_t.finish()
    load_t = top.sub("load")
    load = LoadSpec(
        rate=load_t.take("rate", _number(0, 100), 0.0),
        max_outstanding=load_t.take("max_outstanding", _integer(1, 10_000), 4),
        burst_workers=load_t.take("burst_workers", _integer(1, 256), 16),
    )
    load_t.finish()
    name = top.take("name", _text, Path(source).stem)
    recover_within = top.take("recover_within", _number(1, 86400), 120.0)
    settle_within = top.take("settle_within", _number(1, 86400), 300.0)
    kinds = [k for k in ("step", "schedule", "random") if k in top.data]
    if len(kinds) != 1:
        raise top.error(
            "",
            "needs exactly one of [[step]], [[schedule]] and random = N"
            + (f" (has {', '.join(kinds)})" if kinds else ""),
        )
    schedules: tuple[Schedule, ...] = ()
    rand: RandomSpec | None = None
    if "step" in top.data:
        steps = _steps(top.data.pop("step"), "step", source, nodes)
        last = max(s.at for s in steps)
        duration = top.take("duration", _number(last, 86400), last + 5.0)
        schedules = (Schedule(name, steps, duration),)
    elif "schedule" in top.data:
        raw = top.data.pop("schedule")
        if not isinstance(raw, list) or not raw:
            raise top.error("schedule", "must be a non-empty array of tables")
        schedules = tuple(
            _schedule(_Table(s, f"schedule[{i}]", source), nodes, f"{name}-{i + 1}")
            for i, s in enumerate(raw)
        )
        names = [s.name for s in schedules]
        if len(set(names)) != len(names):
            raise top.error("schedule", "two schedules have the same name")
    else:
        count = top.take("random", _integer(1, 1_000_000))
        gen = top.sub("generator")
        rand = RandomSpec(
            schedules=count,
            seed=top.take("seed", _integer(0, 2**63 - 1), 1),
            max_faulty=top.take("max_faulty", _integer(0, nodes), network.f),
            duration=gen.take("duration", _number(2, 86400), 20.0),
            steps=gen.take("steps", _integer(1, 1000), 4),
            actions=tuple(gen.take("actions", _list_of(_choice(ACTIONS)), list(ACTIONS))),
            burst=gen.take("burst", _integer(0, 10_000), 10),
            failpoints=tuple(gen.take("failpoints", _list_of(_point), [])),
        )
        gen.finish()
    for key in ("seed", "max_faulty"):
        if key in top.data:
            raise top.error(key, "applies to random = N schedules only")
    top.finish()
    return Manifest(name, network, load, recover_within, settle_within, schedules, rand, source)


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a TOML manifest (ManifestError names the file and the key)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML: {exc}") from None
    return parse_manifest(data, str(path))


# -- random schedules ----------------------------------------------------------------------


def random_schedule(seed: int, n: int, spec: RandomSpec) -> Schedule:
    """A schedule drawn from `random.Random(seed)` alone (same seed, same schedule): at
    `spec.steps` random times in the first `spec.duration` seconds, one action chosen
    among those `spec.actions` allows that keep at most `spec.max_faulty` nodes faulty at
    once (killed, paused, disconnected, armed with a failpoint, or on the smaller side of
    a partition), then, at `duration`, steps that heal everything."""
    rng = random.Random(seed)
    every = range(1, n + 1)
    killed: set[int] = set()
    paused: set[int] = set()
    cut: set[int] = set()
    armed: set[int] = set()
    apart: set[int] = set()  # the partition's minority side
    partitioned = False
    last = max(spec.duration - 1.0, 0.5)
    times = sorted(round(rng.uniform(0.5, last), 1) for _ in range(spec.steps))
    steps: list[Step] = []
    for at in times:
        faulty = killed | paused | cut | armed | apart
        healthy = [i for i in every if i not in faulty]
        room = spec.max_faulty - len(faulty)
        options: list[str] = []
        if room > 0 and healthy:
            options += ["kill", "pause", "disconnect"]
            if spec.failpoints:
                options.append("failpoint")
            if not partitioned and n > 1:
                options.append("partition")
        options += [a for a, s in (("restart", killed), ("resume", paused), ("connect", cut)) if s]
        if partitioned:
            options.append("heal")
        if spec.burst:
            options.append("burst")
        options = [a for a in options if a in spec.actions]
        if not options:
            continue
        action = rng.choice(options)
        if action == "partition":
            size = rng.randint(1, min(room, len(healthy), n // 2))
            apart = set(rng.sample(healthy, size))
            partitioned = True
            groups = (tuple(sorted(apart)), tuple(i for i in every if i not in apart))
            steps.append(Step(at, "partition", groups=groups))
        elif action == "heal":
            apart, partitioned = set(), False
            steps.append(Step(at, "heal"))
        elif action == "burst":
            steps.append(Step(at, "burst", count=spec.burst))
        else:
            pool = {"restart": killed, "resume": paused, "connect": cut}.get(action)
            victim = rng.choice(sorted(pool) if pool is not None else healthy)
            {"kill": killed, "pause": paused, "disconnect": cut, "failpoint": armed}.get(
                action, set()
            ).add(victim)
            if pool is not None:
                pool.discard(victim)
            point = rng.choice(spec.failpoints) if action == "failpoint" else ""
            steps.append(Step(at, action, nodes=(victim,), point=point))
    end = round(spec.duration, 1)
    steps += [Step(end, "resume", nodes=(i,)) for i in sorted(paused)]
    steps += [Step(end, "restart", nodes=(i,)) for i in sorted(killed)]
    steps += [Step(end, "connect", nodes=(i,)) for i in sorted(cut)]
    if partitioned:
        steps.append(Step(end, "heal"))
    return Schedule(f"random-{seed}", tuple(steps), end, seed)


# -- results ---------------------------------------------------------------------------------


class FaultCheckFailed(AssertionError):
    """A check failed after (or during) a schedule: the message has the check, the seed,
    the schedule as TOML, and the tail of the affected nodes' logs."""

    def __init__(self, message: str, check: str, schedule: Schedule | None) -> None:
        super().__init__(message)
        self.check, self.schedule = check, schedule


@dataclass
class Request:
    """A sign request an API accepted (HTTP 202), followed to done or failed."""

    signature_id: str
    tx: str
    node: int  # the node that accepted it (it follows its retries)
    message: str
    digest: str
    kind: str  # load | burst | probe | final
    schedule: str
    accepted_at: float
    status: str = "pending"
    settled_at: float | None = None
    signers: tuple[str, ...] = ()
    not_found: int = 0  # 404s seen at the accepting node
    verified: bool = False
    #: why it failed: the node's `error`, else the last blame's check
    reason: str = ""


@dataclass
class ScheduleResult:
    name: str
    seed: int | None
    steps: int
    faults: int
    bursts: int
    accepted: int = 0
    done: int = 0
    failed: int = 0
    verified: int = 0
    rejected: int = 0  # 503 / no answer / 409: not accepted
    transient_404: int = 0
    ordered_after_heal_s: float = 0.0  # (a): the probe ordered
    recovered_s: float = 0.0  # (a): the probe signed
    settled_s: float = 0.0  # (b): the last accepted request settled
    height: int = 0
    failpoint_hits: list[tuple[int, str]] = field(default_factory=list)
    failpoints_missed: list[tuple[int, str]] = field(default_factory=list)
    #: the PBFT view before and after (a primary paused or cut off: a view change)
    views: tuple[int, int] = (0, 0)
    #: partitions with no quorum side during which "nothing committed" was checked
    frozen_checked: int = 0
    #: the most nodes faulty at once (killed, paused, cut off, armed, split off)
    peak_faulty: int = 0
    #: why accepted requests failed (a failure is allowed; its reason is reported)
    reasons: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def line(self) -> str:
        seed = f" seed {self.seed}" if self.seed is not None else ""
        hits = f", failpoints hit {self.failpoint_hits}" if self.failpoint_hits else ""
        missed = f", not hit {self.failpoints_missed}" if self.failpoints_missed else ""
        top = sorted(self.reasons.items(), key=lambda kv: -kv[1])[:3]
        why = f" (why: {'; '.join(f'{n} × {r}' for r, n in top)})" if top else ""
        return (
            f"{self.name}{seed}: {self.faults} faults (at most {self.peak_faulty} nodes at "
            f"once), {self.bursts} bursts; accepted {self.accepted} (done {self.done}, failed "
            f"{self.failed}{why}, verified {self.verified}), not accepted {self.rejected}; "
            f"committed again "
            f"{self.ordered_after_heal_s:.1f} s and signed {self.recovered_s:.1f} s after the "
            f"heal; all settled {self.settled_s:.1f} s after it; height {self.height}, view "
            f"{self.views[0]} → {self.views[1]}{hits}{missed}; {self.elapsed_s:.0f} s"
        )


@dataclass
class Summary:
    manifest: str
    mode: str
    nodes: int
    results: list[ScheduleResult] = field(default_factory=list)
    final_signatures: int = 0
    final_signers: int = 0
    elapsed_s: float = 0.0

    def total(self, name: str) -> int:
        return int(sum(getattr(r, name) for r in self.results))

    def text(self) -> str:
        rec = [r.recovered_s for r in self.results]
        times = (
            f"min {min(rec):.1f} / median {statistics.median(rec):.1f} / max {max(rec):.1f} s"
            if rec
            else "-"
        )
        hits = [h for r in self.results for h in r.failpoint_hits]
        reasons: Counter[str] = Counter()
        for r in self.results:
            reasons.update(r.reasons)
        lines = [
            f"fault run {self.manifest}: {len(self.results)} schedules on {self.nodes} nodes "
            f"({self.mode}), {self.elapsed_s:.0f} s",
            f"  faults applied {self.total('faults')}, bursts {self.total('bursts')}, "
            f"failpoints hit {len(hits)}",
            f"  requests accepted {self.total('accepted')}: done {self.total('done')}, failed "
            f"{self.total('failed')}; signatures verified (ecdsa + eth-keys) "
            f"{self.total('verified')}; not accepted (503/409/no answer) {self.total('rejected')}",
            f"  signed again after the heal: {times}",
            *(f"  failed: {n} × {r}" for r, n in reasons.most_common(5)),
            f"  final: key active at every node; {self.final_signatures} signatures through "
            f"every node, all {self.final_signers} share holders signed",
        ]
        lines += [f"  - {r.line()}" for r in self.results]
        return "\n".join(lines)


# -- helpers ---------------------------------------------------------------------------------


def verify_signature(sig: Mapping[str, Any], message: str, key: Mapping[str, Any]) -> str | None:
    """Why a `done` signature is wrong (None: it signs sha256(message) under the key, by
    `ecdsa`, and eth-keys recovers the key's eth address from it)."""
    digest = message_digest(message.encode(), "sha256")
    if sig.get("digest") != digest.hex():
        return f"digest {sig.get('digest')} is not sha256 of the message {message!r}"
    try:
        r, s, v = int(sig["r"], 16), int(sig["s"], 16), int(sig["v"])
        pub = VerifyingKey.from_string(bytes.fromhex(key["public_key"]), curve=SECP256k1)
        pub.verify_digest(bytes.fromhex(sig["r"] + sig["s"]), digest)
    except (BadSignatureError, KeyError, TypeError, ValueError) as exc:
        return f"ecdsa rejects it: {exc!r}"
    try:
        recovered = EthSignature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
        address = recovered.to_checksum_address()
    except Exception as exc:  # eth-keys raises its own (BadSignature, ValidationError)
        return f"eth-keys cannot recover a key from it: {exc!r}"
    if address != key["addresses"]["eth"]:
        return f"eth-keys recovers {address}, not the key's {key['addresses']['eth']}"
    return None


def compare_chains(chains: Mapping[int, Sequence[str]]) -> str | None:
    """Why the nodes' block hashes (node → hashes from one common height on) differ
    (None: they agree at every height all of them have)."""
    if not chains:
        return None
    common = min(len(c) for c in chains.values())
    for h in range(common):
        hashes = {i: c[h] for i, c in chains.items()}
        if len(set(hashes.values())) > 1:
            return f"block {h} of the compared range differs: {hashes}"
    return None


def _reason(text: str) -> str:
    """A failure reason with its ids and numbers blanked, so that like counts with like."""
    return re.sub(r"[0-9a-f]{8,}|\d+(\.\d+)?", "…", text)[:120] or "(no reason given)"


def log_tail(node: NodeProc, lines: int = 40) -> str:
    try:
        text = node.log.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class _Clients:
    """One API client per node for one thread (a paused node's requests time out; the
    next request to a restarted node opens a new connection)."""

    def __init__(self, nodes: Sequence[NodeProc], timeout: float) -> None:
        self.nodes, self.timeout = nodes, timeout
        self._clients: dict[int, ApiClient] = {}

    def __call__(self, i: int) -> ApiClient:
        if i not in self._clients:
            self._clients[i] = self.nodes[i - 1].client(timeout=self.timeout)
        return self._clients[i]

    def close(self) -> None:
        for c in self._clients.values():
            c.http.close()
        self._clients.clear()


def _get(api: ApiClient, path: str, **params: Any) -> Any:
    """The resource, or None when the node cannot answer now (down, busy, 404, 503)."""
    try:
        return api.get(path, **params)
    except (ApiError, ApiUnavailable):
        return None


def _wait(fn: Callable[[], T | None], what: str, timeout: float, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


@dataclass
class _NodeState:
    killed: bool = False
    paused: bool = False
    disconnected: bool = False
    restarting: bool = False
    armed: str = ""
    #: the highest height seen at this node (check e)
    high: int = 0


# -- the runner ------------------------------------------------------------------------------


class Runner:
    """Runs a manifest's schedules one after another on one network (module docstring).

    `with Runner(manifest, root) as runner:` starts the network (namespaces if it can),
    waits for the peers, makes a key and fills its pool; then `run_schedule(s)` for each
    schedule, and `finish()` for the final checks. Leaving the block stops every node and
    removes the namespaces, whatever happened.
    """

    def __init__(
        self,
        manifest: Manifest,
        root: Path,
        *,
        network: str | None = None,
        plan: Sequence[Schedule] = (),
    ) -> None:
        """`plan`: schedules to check against the hosts before any node starts (a
        partition schedule on loopback is refused at once, not after the key is made)."""
        self.manifest = manifest
        self.plan = list(plan)
        self.spec = manifest.network
        self.root = Path(root)
        self.network = network or self.spec.network
        self.hosts: Hosts | None = None
        self.nodes: list[NodeProc] = []
        self.key: dict[str, Any] = {}
        self.summary = Summary(manifest.name, "not started", self.spec.nodes)
        self._state: dict[int, _NodeState] = {}
        self._lock = threading.RLock()  # the state, the requests, the violations
        self._proc_lock = threading.RLock()  # starting, stopping and signalling processes
        self._requests: list[Request] = []
        self._violations: list[tuple[str, str, tuple[int, ...]]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: _Clients | None = None
        self._seq = 0
        self._rejected = 0
        self._tag = f"{random.getrandbits(32):08x}"
        self._current: Schedule | None = None
        self._hits: list[tuple[int, str]] = []
        #: (height, hash) of the top block the last chain check found at every node
        self._checked: tuple[int, str] = (0, "")
        self._started = time.monotonic()

    # -- life cycle ----------------------------------------------------------------------------

    def __enter__(self) -> Runner:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def mode(self) -> str:
        return self.hosts.mode if self.hosts is not None else "not started"

    def start(self) -> None:
        """Start the network, make the key and start the monitor (FaultCheckFailed with
        the nodes' logs when it cannot)."""
        try:
            self._start_network()
        except (TimeoutError, RuntimeError, OSError, ApiError, ApiUnavailable) as exc:
            if self.nodes:
                self._fail("startup", f"{type(exc).__name__}: {exc}", set())
            raise

    def _start_network(self) -> None:
        n = self.spec.nodes
        self.root.mkdir(parents=True, exist_ok=True)
        self.hosts = open_hosts(n, self.network)
        self.summary.mode = self.hosts.mode
        hosts = self.hosts
        for schedule in self.plan:
            why = self.unsupported(schedule)
            if why is not None:
                raise Unsupported(why)
        self.nodes = make_cluster(
            self.root,
            n,
            self.spec.tier,
            presign_pool=self.spec.presign_pool,
            round_timeout=self.spec.round_timeout,
            stall_after=self.spec.stall_after,
            p2p_hosts=[hosts.p2p_host(i) for i in range(1, n + 1)],
            api_hosts=[hosts.api_host(i) for i in range(1, n + 1)],
        )
        for i, node in enumerate(self.nodes, start=1):
            node.command_prefix = hosts.command_prefix(i)
            self._state[i] = _NodeState()
        self._clients = _Clients(self.nodes, 10.0)
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_api(120)
        for target in (self._monitor, self._track):  # (the history starts now)
            thread = threading.Thread(target=self._guard(target), daemon=True)
            thread.start()
            self._threads.append(thread)
        api = self._clients
        _wait(
            lambda: all(
                (s := _get(api(i), "/status")) and s["peers_connected"] == n - 1
                for i in range(1, n + 1)
            ),
            f"all {n} nodes connected to each other",
            180,
        )
        req = _wait(
            lambda: self._post(
                api(1), "/keygen", {"threshold": self.spec.threshold, "parties": None}
            ),
            "keygen accepted",
            120,
        )
        pool = self.spec.presign_pool
        self.key = _wait(
            lambda: (
                (k := _get(api(1), f"/keys/{req['key_id']}"))
                and k["status"] == "active"
                and k["presignatures"] >= pool
                and k
            ),
            f"the key active with its pool of {pool}",
            600,
        )
        log.info("network up (%s, %d nodes), key %s", self.mode, n, self.key["key_id"][:16])

    def close(self) -> None:
        """Stop the threads and every node (resumed first: a stopped process cannot act on
        SIGTERM), then tear the network down. Safe to call twice."""
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        self._threads.clear()
        with self._proc_lock:
            for node in self.nodes:
                proc = node.proc
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)
                try:
                    node.stop()
                except OSError:
                    node.kill()
        if self._clients is not None:
            self._clients.close()
            self._clients = None
        if self.hosts is not None:
            self.hosts.close()
            self.hosts = None

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        """A background loop whose unexpected error becomes a violation (not a lost thread
        exception)."""

        def run() -> None:
            try:
                target()
            except Exception as exc:
                log.exception("runner thread %s failed", target.__name__)
                self._violate("runner", f"{target.__name__} failed: {exc!r}", ())

        run.__name__ = target.__name__
        return run

    def _violate(self, check: str, detail: str, nodes: Sequence[int]) -> None:
        with self._lock:
            self._violations.append((check, detail, tuple(nodes)))

    # -- requests ------------------------------------------------------------------------------

    @staticmethod
    def _post(api: ApiClient, path: str, body: Any) -> Any:
        """POST, None when not accepted now (503: below quorum; no answer)."""
        try:
            return api.post(path, body)
        except ApiError as exc:
            if exc.status == 503:
                return None
            raise
        except ApiUnavailable:
            return None

    def _submit(self, api: ApiClient, i: int, kind: str) -> Request | None:
        """One sign request at node i; the Request if it answered 202, else None."""
        with self._lock:
            self._seq += 1
            message = f"tssnode faults {self._tag} #{self._seq} {kind}"
        body = {"key_id": self.key["key_id"], "message": message, "hash": "sha256"}
        try:
            out = api.post("/sign", body)
        except (ApiError, ApiUnavailable) as exc:
            if not isinstance(exc, ApiUnavailable) and exc.status not in (503, 409):
                self._violate("api", f"POST /sign at node {i}: {exc}", (i,))
            with self._lock:
                self._rejected += 1
            return None
        name = self._current.name if self._current else "final"
        req = Request(
            out["signature_id"], out["tx"], i, message, out["digest"], kind, name, time.monotonic()
        )
        with self._lock:
            self._requests.append(req)
        return req

    def _reachable(self, i: int) -> bool:
        st = self._state[i]
        proc = self.nodes[i - 1].proc
        return (
            not (st.killed or st.paused or st.restarting)
            and proc is not None
            and proc.poll() is None
        )

    def _live(self) -> list[int]:
        return [i for i in range(1, self.spec.nodes + 1) if self._reachable(i)]

    def _poll(self, api: ApiClient, req: Request) -> None:
        """Update one request from the node that accepted it; verify it when done."""
        try:
            sig = api.get(f"/signatures/{req.signature_id}")
        except ApiUnavailable:
            return
        except ApiError as exc:
            if exc.status == 404:  # the node that answered 202 must know the id for ever
                req.not_found += 1
                self._violate(
                    "durability",
                    f"request {req.signature_id}, accepted (202) by node {req.node}, is "
                    f"unknown (404) there",
                    (req.node,),
                )
            return
        status = sig.get("status")
        if status not in TERMINAL:
            return
        req.signers = tuple(sig.get("signers") or ())
        blame = sig.get("blame") or {}
        req.reason = str(sig.get("error") or blame.get("check") or "") if status == "failed" else ""
        if status == "done":
            why = verify_signature(sig, req.message, self.key)
            if why is not None:
                self._violate(
                    "signature",
                    f"signature {req.signature_id} ({req.message!r}, node {req.node}): {why}",
                    (req.node,),
                )
            req.verified = why is None
        with self._lock:
            req.status, req.settled_at = status, time.monotonic()

    def _track(self) -> None:
        """Follows every accepted request to done or failed (check b, c)."""
        clients = _Clients(self.nodes, 5.0)
        try:
            while not self._stop.wait(1.0):
                with self._lock:
                    open_ = [r for r in self._requests if r.status not in TERMINAL]
                for req in open_:
                    if self._stop.is_set():
                        return
                    if self._reachable(req.node):
                        self._poll(clients(req.node), req)
        finally:
            clients.close()

    # -- processes -----------------------------------------------------------------------------

    def _start(self, i: int, env: dict[str, str] | None = None) -> None:
        """(Re)start node i, optionally with `env` (a failpoint), and wait for its API (an
        armed node that dies at its point while starting is left to the monitor)."""
        node, st = self.nodes[i - 1], self._state[i]
        with self._proc_lock:
            st.restarting = True
            try:
                node.extra_env = dict(env or {})
                node.start()
                try:
                    node.wait_api(120)
                except RuntimeError:
                    proc = node.proc
                    if not (env and proc is not None and proc.returncode == failpoints.EXIT_CODE):
                        raise
            finally:
                st.restarting = False
                st.killed = st.paused = False

    def _kill(self, i: int) -> None:
        with self._proc_lock:
            self._state[i].killed = True
            self.nodes[i - 1].kill()
            self._state[i].paused = False

    def _stop_node(self, i: int) -> None:
        """A clean stop (SIGTERM), resumed first if paused (a stopped process cannot act)."""
        with self._proc_lock:
            self._signal(i, signal.SIGCONT)
            self.nodes[i - 1].stop()

    def _signal(self, i: int, sig: signal.Signals) -> None:
        with self._proc_lock:
            proc = self.nodes[i - 1].proc
            if proc is not None and proc.poll() is None:
                proc.send_signal(sig)
                self._state[i].paused = sig == signal.SIGSTOP

    def _monitor(self) -> None:
        """Every second: restarts a node that died at its failpoint (unarmed, the hit
        recorded), records any other death, and watches every height (check e). Every
        status it reads goes to `root/history.jsonl` (what each node said, when), the way
        Jepsen keeps a history: the first thing to read when a check fails."""
        clients = _Clients(self.nodes, 3.0)
        history = open(self.root / "history.jsonl", "a")  # noqa: SIM115 - closed below
        try:
            while not self._stop.wait(1.0):
                for i in range(1, self.spec.nodes + 1):
                    try:
                        self._check_process(i)
                    except (RuntimeError, ApiError, ApiUnavailable, OSError) as exc:
                        self._violate("crash", f"node {i} could not be restarted: {exc}", (i,))
                    if not self._reachable(i):
                        continue
                    status = _get(clients(i), "/status")
                    if status is None:
                        continue
                    st, height = self._state[i], int(status["height"])
                    brief = {k: status.get(k) for k in HISTORY_KEYS}
                    sched = self._current.name if self._current else None
                    line = {"t": round(time.time(), 2), "node": i, "schedule": sched, **brief}
                    history.write(json.dumps(line) + "\n")
                    if height < st.high:
                        self._violate(
                            "height",
                            f"node {i}'s height went back from {st.high} to {height}",
                            (i,),
                        )
                    st.high = max(st.high, height)
                history.flush()
        finally:
            clients.close()
            history.close()

    def _check_process(self, i: int) -> None:
        node, st = self.nodes[i - 1], self._state[i]
        with self._proc_lock:
            proc = node.proc
            if proc is None or st.killed or st.restarting or proc.poll() is None:
                return
            code = proc.returncode
            point = st.armed
            if point and code == failpoints.EXIT_CODE:
                log.info("node %d died at failpoint %s: restarting it unarmed", i, point)
                with self._lock:
                    self._hits.append((i, point))
                st.armed = ""
            else:
                self._violate(
                    "crash",
                    f"node {i} exited with status {code} (not killed by the "
                    f"runner{', armed with ' + point if point else ''})",
                    (i,),
                )
                st.armed = ""
            self._start(i)

    # -- schedules -----------------------------------------------------------------------------

    def unsupported(self, schedule: Schedule) -> str | None:
        """Why `schedule` cannot run on this network (None: it can)."""
        needs = schedule.needs_namespaces()
        if not needs or (self.hosts is not None and self.hosts.supports_network_faults):
            return None
        reason = self.hosts.reason if self.hosts is not None else "not started"
        return (
            f"schedule {schedule.name!r} needs network namespaces ({', '.join(needs)}) but "
            f"this network runs on loopback 127.0.0.1: {reason}"
        )

    def _resolve(self, names: dict[str, int], target: int | str) -> int:
        """A node number; "primary" / "backup" bound on first use in the schedule."""
        if isinstance(target, int):
            return target
        if target not in names:
            assert self._clients is not None
            statuses = [s for i in self._live() if (s := _get(self._clients(i), "/status"))]
            if not statuses:
                raise RuntimeError(f"no node answers to tell the {target}")
            primary_pid = max(statuses, key=lambda s: int(s["view"]))["primary"]
            by_pid = {node.peer_id: i for i, node in enumerate(self.nodes, start=1)}
            primary = by_pid[primary_pid]
            names["primary"] = primary
            names["backup"] = primary % self.spec.nodes + 1
        return names[target]

    def _apply(
        self, step: Step, names: dict[str, int], bursts: list[threading.Thread]
    ) -> list[int]:
        """Apply one step now; the nodes it named, resolved."""
        hosts = self.hosts
        assert hosts is not None
        nodes = [self._resolve(names, t) for t in step.nodes]
        log.info("apply %s%s", step.describe(), f" → nodes {nodes}" if step.nodes else "")
        for i in nodes:
            st = self._state[i]
            if step.action == "kill":
                self._kill(i)
            elif step.action == "restart":
                with self._proc_lock:
                    self.nodes[i - 1].kill()  # a crash, then a start (a no-op if dead)
                    self._start(i, {failpoints.ENV: st.armed} if st.armed else None)
            elif step.action == "pause":
                self._signal(i, signal.SIGSTOP)
            elif step.action == "resume":
                self._signal(i, signal.SIGCONT)
            elif step.action == "disconnect":
                hosts.disconnect(i)
                st.disconnected = True
            elif step.action == "connect":
                hosts.connect(i)
                st.disconnected = False
            elif step.action == "failpoint":
                with self._proc_lock:
                    self._stop_node(i)
                    st.armed = step.point
                    self._start(i, {failpoints.ENV: step.point})
        if step.action == "partition":
            hosts.partition([list(g) for g in step.groups])
        elif step.action == "heal":
            hosts.heal()
            for st in self._state.values():
                st.disconnected = False
        elif step.action == "burst":
            thread = threading.Thread(
                target=self._guard(lambda: self._burst(step.count)), daemon=True
            )
            thread.start()
            bursts.append(thread)
        return nodes

    def _burst(self, count: int) -> None:
        """`count` sign requests at once from a thread pool, round-robin over the nodes
        reachable now."""
        live = self._live()
        if not live:
            return

        def one(k: int) -> None:
            i = live[k % len(live)]
            with self.nodes[i - 1].client(timeout=30) as api:
                self._submit(api, i, "burst")

        with ThreadPoolExecutor(self.manifest.load.burst_workers) as pool:
            list(pool.map(one, range(count)))

    def _load(self, stop: threading.Event) -> None:
        """The steady load: `rate` sign requests a second round-robin over live nodes, while
        fewer than `max_outstanding` of them are unsettled."""
        spec = self.manifest.load
        if spec.rate <= 0:
            return
        period, turn = 1.0 / spec.rate, 0
        clients = _Clients(self.nodes, 10.0)
        try:
            next_at = time.monotonic()
            while not stop.wait(max(0.0, next_at - time.monotonic())):
                next_at = max(next_at + period, time.monotonic())
                with self._lock:
                    busy = sum(
                        1 for r in self._requests if r.kind == "load" and r.status not in TERMINAL
                    )
                live = self._live()
                if busy >= spec.max_outstanding or not live:
                    continue
                i = live[turn % len(live)]
                turn += 1
                self._submit(clients(i), i, "load")
        finally:
            clients.close()

    def _statuses(self) -> dict[int, dict[str, Any]]:
        """/status of every node that answers now."""
        assert self._clients is not None
        out = {}
        for i in self._live():
            status = _get(self._clients(i), "/status")
            if status is not None:
                out[i] = status
        return out

    def _heights(self) -> dict[int, int]:
        return {i: int(s["height"]) for i, s in self._statuses().items()}

    def _view(self) -> int:
        return max((int(s["view"]) for s in self._statuses().values()), default=0)

    def _faulty(self) -> set[int]:
        return {
            i
            for i, st in self._state.items()
            if st.killed or st.paused or st.disconnected or st.armed
        }

    def _sides(self, groups: Sequence[Sequence[int]]) -> list[list[int]]:
        """A partition's sides: its groups, and the nodes in none of them together."""
        grouped = {i for g in groups for i in g}
        rest = [i for i in range(1, self.spec.nodes + 1) if i not in grouped]
        return [list(g) for g in groups] + ([rest] if rest else [])

    def _minority(self, groups: Sequence[Sequence[int]]) -> set[int]:
        """The nodes off the partition's largest side (they count as faulty)."""
        sides = self._sides(groups)
        largest = max(sides, key=len)
        return {i for side in sides if side is not largest for i in side}

    def _quorum_side(self, groups: Sequence[Sequence[int]]) -> bool:
        """Does any side of this partition (nodes in no group: one more side) hold a quorum?"""
        return any(len(side) >= self.spec.quorum for side in self._sides(groups))

    def run_schedule(self, schedule: Schedule) -> ScheduleResult:
        """Apply `schedule` under the load, heal everything, check (a)–(e); raises
        FaultCheckFailed on the first check that fails (or when the runner itself could not
        go on: a node that does not start, a wait that timed out)."""
        why = self.unsupported(schedule)
        if why is not None:
            raise Unsupported(why)
        self._current = schedule
        try:
            return self._run_schedule(schedule)
        except (TimeoutError, RuntimeError, OSError, ApiError, ApiUnavailable) as exc:
            self._fail("runner", f"{type(exc).__name__}: {exc}", set())
        finally:
            self._current = None

    def _run_schedule(self, schedule: Schedule) -> ScheduleResult:
        assert self._clients is not None
        t_begin = time.monotonic()
        with self._lock:
            first_request = len(self._requests)
            self._rejected = 0
            self._hits.clear()
        result = ScheduleResult(
            schedule.name,
            schedule.seed,
            len(schedule.steps),
            sum(1 for s in schedule.steps if s.action in FAULT_ACTIONS),
            sum(1 for s in schedule.steps if s.action == "burst"),
        )
        view_before = self._view()
        names: dict[str, int] = {}
        bursts: list[threading.Thread] = []
        load_stop = threading.Event()
        load = threading.Thread(target=self._guard(lambda: self._load(load_stop)), daemon=True)
        load.start()
        frozen: dict[str, Any] | None = None  # a partition with no quorum side
        touched: set[int] = set()
        armed: list[tuple[int, str]] = []
        split: set[int] = set()  # the nodes off the largest side of a partition
        try:
            t0 = time.monotonic()
            for step in [*schedule.steps, None]:
                at = step.at if step is not None else schedule.duration
                while time.monotonic() < t0 + at:
                    if frozen and frozen["snap"] is None and time.monotonic() >= frozen["since"]:
                        frozen["snap"] = self._heights()
                    time.sleep(min(0.2, max(0.0, t0 + at - time.monotonic())))
                if step is None:
                    break
                if step.action in ("partition", "heal", "connect") and frozen:
                    result.frozen_checked += self._check_frozen(frozen)
                    frozen = None
                nodes = self._apply(step, names, bursts)
                touched.update(nodes)
                touched.update(i for g in step.groups for i in g)
                if step.action == "failpoint":
                    armed += [(i, step.point) for i in nodes]
                if step.action == "partition":
                    split = self._minority(step.groups)
                elif step.action == "heal":
                    split = set()
                result.peak_faulty = max(result.peak_faulty, len(self._faulty() | split))
                if step.action == "partition" and not self._quorum_side(step.groups):
                    frozen = {
                        "since": time.monotonic() + PARTITION_GRACE,
                        "snap": None,
                        "groups": step.groups,
                    }
            if frozen:
                result.frozen_checked += self._check_frozen(frozen)
        finally:
            load_stop.set()
            load.join(60)
            for thread in bursts:
                thread.join(300)
        t_heal = self._heal_all()
        self._check_violations(touched)
        self._recover(result, t_heal, touched)
        self._settle(result, first_request, t_heal, touched)
        result.height = self._check_chains(touched)
        self._check_presignatures()
        result.views = (view_before, self._view())
        self._check_violations(touched)
        with self._lock:
            result.failpoint_hits = list(self._hits)
            result.rejected = self._rejected
        result.failpoints_missed = [a for a in armed if a not in result.failpoint_hits]
        result.elapsed_s = time.monotonic() - t_begin
        self.summary.results.append(result)
        log.info("%s", result.line())
        return result

    def _check_presignatures(self) -> None:
        """(g) no presignature lost: every node holds its part of each ready pooled
        presignature the ledger says it signs (a sign request would otherwise fail on it)."""
        clients = self._clients
        assert clients is not None
        path = f"/keys/{self.key['key_id']}"
        for i in range(1, self.spec.nodes + 1):
            k: dict[str, Any] = _wait(
                partial(_get, clients(i), path), f"node {i}'s key (presignatures)", 60
            )
            mine, held = k.get("presignatures_mine", 0), k.get("presignatures_held", 0)
            if held < mine:
                self._violate(
                    "presignature",
                    f"node {i} signs {mine} ready pooled presignatures and holds {held}",
                    (i,),
                )

    def _heal_all(self) -> float:
        """Resume, restart, reconnect, heal the partitions, disarm failpoints not hit."""
        hosts = self.hosts
        assert hosts is not None
        for i, st in self._state.items():
            if st.paused:
                self._signal(i, signal.SIGCONT)
        for i, st in self._state.items():
            if st.killed:
                self._start(i)
        if hosts.supports_network_faults:
            hosts.heal()
        for st in self._state.values():
            st.disconnected = False
        for i, st in self._state.items():
            if st.armed:
                with self._proc_lock:
                    if st.armed:  # (the monitor may have restarted it meanwhile)
                        self._stop_node(i)
                        st.armed = ""
                        self._start(i)
        return time.monotonic()

    def _recover(self, result: ScheduleResult, t_heal: float, touched: set[int]) -> None:
        """(a): a new sign request is ordered and signed within recover_within."""
        assert self._clients is not None
        api = self._clients
        deadline = t_heal + self.manifest.recover_within
        turn = 0
        probe: Request | None = None
        ordered: float | None = None
        while time.monotonic() < deadline:
            if probe is None or probe.status == "failed":
                i = self._live()[turn % len(self._live())] if self._live() else 1
                turn += 1
                probe = self._submit(api(i), i, "probe") if self._reachable(i) else None
                ordered = None
                if probe is None:
                    time.sleep(1.0)
                    continue
            if ordered is None and _get(api(probe.node), f"/tx/{probe.tx}"):
                ordered = time.monotonic()
            if probe.status == "done" and ordered is not None:
                signed = probe.settled_at or time.monotonic()
                # (ordered is seen by polling: it cannot have been later than the signature)
                result.ordered_after_heal_s = min(ordered, signed) - t_heal
                result.recovered_s = signed - t_heal
                return
            time.sleep(0.5)
        status = {i: _get(api(i), "/status") for i in self._live()}
        brief = {
            i: {k: s.get(k) for k in ("height", "view", "peers_connected", "liveness")}
            for i, s in status.items()
            if s
        }
        self._fail(
            "recovery",
            f"the network did not commit and sign again within {self.manifest.recover_within:g} "
            f"s of the heal (probe: {probe.status if probe else 'never accepted'}, ordered: "
            f"{ordered is not None}); nodes: {brief}",
            touched | ({probe.node} if probe else set()),
        )

    def _settle(self, result: ScheduleResult, first: int, t_heal: float, touched: set[int]) -> None:
        """(b), (c): every request accepted in this schedule done or failed, in time."""
        deadline = t_heal + self.manifest.settle_within
        while True:
            with self._lock:
                mine = self._requests[first:]
                open_ = [r for r in mine if r.status not in TERMINAL]
            if not open_ or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        result.accepted = len(mine)
        result.done = sum(1 for r in mine if r.status == "done")
        result.failed = sum(1 for r in mine if r.status == "failed")
        result.verified = sum(1 for r in mine if r.verified)
        result.reasons = dict(Counter(_reason(r.reason) for r in mine if r.status == "failed"))
        result.transient_404 = sum(1 for r in mine if r.not_found and r.status in TERMINAL)
        settled = [r.settled_at for r in mine if r.settled_at is not None]
        result.settled_s = max(settled) - t_heal if settled else 0.0
        if open_:
            lines = [
                f"{r.signature_id} ({r.kind}, node {r.node}, {r.status}, 404 × {r.not_found})"
                for r in open_[:20]
            ]
            self._fail(
                "settle",
                f"{len(open_)} accepted requests neither done nor failed "
                f"{self.manifest.settle_within:g} s after the heal:\n  " + "\n  ".join(lines),
                touched | {r.node for r in open_},
            )

    def _check_frozen(self, frozen: dict[str, Any]) -> int:
        """During a partition that left no side a quorum, no new height was committed
        (after PARTITION_GRACE for what was already voted); 1 if checked, 0 if the
        partition did not last beyond the grace period."""
        before = frozen["snap"]
        if not before:
            return 0
        after = self._heights()
        top = max(before.values())
        grew = {i: (before.get(i), h) for i, h in after.items() if h > top}
        if grew:
            self._fail(
                "partition",
                f"blocks above height {top} were committed while the network was split "
                f"{[list(g) for g in frozen['groups']]} with no side holding a quorum of "
                f"{self.spec.quorum}: {grew} (node: before, after)",
                set(grew),
            )
        return 1

    def _check_chains(self, touched: set[int]) -> int:
        """(d): the same block hashes at every node, up to the lowest height. Blocks are
        final, so each check reads on from the last one's top block (and checks that block
        is still the same everywhere), not from height 1 again."""
        assert self._clients is not None
        api = self._clients

        def all_heights() -> dict[int, int] | None:
            h = self._heights()
            return h if len(h) == self.spec.nodes else None

        heights = _wait(all_heights, "every node's status", 60)
        low = min(heights.values())
        first = max(1, min(self._checked[0], low))
        chains: dict[int, list[str]] = {i: [] for i in heights}
        for i in heights:
            start = first
            while start <= low:
                limit = min(500, low - start + 1)
                page: list[dict[str, Any]] = _wait(
                    partial(_get, api(i), "/blocks", **{"from": start, "limit": limit}),
                    f"node {i}'s blocks {start}..{start + limit - 1}",
                    60,
                )
                chains[i] += [b["hash"] for b in page]
                start += len(page)
        short = {i: len(c) for i, c in chains.items() if len(c) != low - first + 1}
        if short:
            self._fail(
                "chain", f"nodes return fewer blocks than their height {low}: {short}", set(short)
            )
        why = compare_chains(chains)
        if why is not None:
            detail = f"the nodes' chains differ from height {first}: {why}"
            self._fail("chain", detail, set(heights))
        known, known_hash = self._checked
        if known == first and chains and next(iter(chains.values()))[0] != known_hash:
            self._fail("chain", f"block {known} changed since it was checked", set(heights))
        if chains and low >= 1:
            self._checked = (low, next(iter(chains.values()))[-1])
        return low

    def _check_violations(self, touched: set[int]) -> None:
        with self._lock:
            found, self._violations = self._violations, []
        if found:
            nodes = {i for _, _, ns in found for i in ns}
            detail = "\n".join(f"[{check}] {what}" for check, what, _ in found)
            self._fail(found[0][0], detail, nodes or touched)

    def _fail(self, check: str, detail: str, nodes: set[int]) -> NoReturn:
        """Raise FaultCheckFailed with everything needed to replay and debug."""
        raise FaultCheckFailed(self.failure_message(check, detail, nodes), check, self._current)

    def failure_message(self, check: str, detail: str, nodes: set[int]) -> str:
        sched = self._current
        seed = sched.seed if sched and sched.seed is not None else "none (a written schedule)"
        lines = [
            f"fault check {check!r} failed in "
            f"{f'schedule {sched.name!r}' if sched else 'no schedule (start-up or the end)'}, "
            f"seed {seed}, on "
            f"{self.spec.nodes} nodes ({self.mode}): {detail}",
        ]
        if sched and sched.seed is not None:
            lines.append(
                f"replay: tssnode faults {self.manifest.source} --seed {sched.seed} --schedules 1"
            )
        lines += ["schedule:", sched.to_toml() if sched else "(none)"]
        lines.append(f"every node's status, second by second: {self.root / 'history.jsonl'}")
        if self._clients is not None:  # (a node that is behind, or cut off, shows here)
            lines.append("every node's status now:")
            for i in range(1, len(self.nodes) + 1):
                st = _get(self._clients(i), "/status")
                now = {k: st.get(k) for k in HISTORY_KEYS} if st else "no answer"
                lines.append(f"  node {i}: {now}")
        affected = sorted(nodes) or list(range(1, len(self.nodes) + 1))
        for i in affected:
            if 1 <= i <= len(self.nodes):
                node = self.nodes[i - 1]
                lines += [f"--- tail of node {i}'s log ({node.log}) ---", log_tail(node)]
        return "\n".join(lines)

    # -- the end -------------------------------------------------------------------------------

    def finish(self, max_rounds: int = 4) -> Summary:
        """The final checks: the key is active with the same public key at every node, and
        signatures through every node until every share holder has signed, all verified;
        the chains once more."""
        assert self._clients is not None
        api = self._clients
        holders = set(self.key["parties"])
        every = set(range(1, self.spec.nodes + 1))
        for i in every:
            k: dict[str, Any] = _wait(
                partial(_get, api(i), f"/keys/{self.key['key_id']}"), f"node {i}'s key", 60
            )
            if k["status"] != "active" or k["public_key"] != self.key["public_key"]:
                self._fail("key", f"node {i} has the key as {k}", {i})
        signed: set[str] = set()
        signer_sets: list[tuple[str, ...]] = []
        count = 0
        for _ in range(max_rounds):
            reqs = [r for i in sorted(every) if (r := self._final_request(i))]
            deadline = time.monotonic() + self.manifest.settle_within
            while any(r.status not in TERMINAL for r in reqs) and time.monotonic() < deadline:
                time.sleep(1.0)
            for r in reqs:
                if r.status != "done":
                    self._fail(
                        "final",
                        f"the final signature {r.signature_id} through node {r.node} is {r.status}",
                        {r.node},
                    )
                signed.update(r.signers)
                signer_sets.append(r.signers)
            count += len(reqs)
            if holders <= signed:
                break
        self._check_violations(set())
        if not holders <= signed:
            self._fail(
                "final",
                f"share holders never chosen to sign in {count} signatures: "
                f"{sorted(holders - signed)} (signers of each: {signer_sets}; a signer set is "
                f"a pooled presignature's, made by the sessions that succeeded)",
                every,
            )
        self._check_chains(every)
        self.summary.final_signatures = count
        self.summary.final_signers = len(signed)
        self.summary.elapsed_s = time.monotonic() - self._started
        return self.summary

    def _final_request(self, i: int) -> Request | None:
        clients = self._clients
        assert clients is not None
        return _wait(
            lambda: self._submit(clients(i), i, "final"),
            f"a final request accepted at node {i}",
            60,
        )


def run(
    manifest: Manifest,
    root: Path,
    *,
    seed: int | None = None,
    schedules: int | None = None,
    network: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Summary:
    """Start the network, run every schedule on it, the final checks; the Summary."""
    plan = manifest.expand(seed, schedules)
    with Runner(manifest, root, network=network, plan=plan) as runner:
        for k, schedule in enumerate(plan, start=1):
            result = runner.run_schedule(schedule)
            if progress:
                progress(f"[{k}/{len(plan)}] {result.line()}")
        return runner.finish()


def main(argv: Sequence[str] | None = None) -> int:
    """`tssnode faults MANIFEST [--seed N] [--schedules K] [--network ...] [--root DIR]`"""
    ap = argparse.ArgumentParser(
        prog="tssnode faults",
        description="run fault schedules from a TOML manifest against real nodes "
        "(network namespaces when run as root; see docs/reliability.md)",
    )
    ap.add_argument("manifest", type=Path, help="the TOML manifest (e.g. tests/faults/n4.toml)")
    ap.add_argument(
        "--seed",
        type=int,
        help="first seed of random schedules (default: the manifest's); schedule k runs seed + k",
    )
    ap.add_argument(
        "--schedules",
        type=int,
        help="how many schedules (random: instead of random = N; written: the first K)",
    )
    ap.add_argument(
        "--network",
        choices=("auto", "netns", "loopback"),
        help="override the manifest's [network] network",
    )
    ap.add_argument(
        "--root",
        type=Path,
        help="where the nodes' directories go (kept); default "
        "a temporary directory, removed after a run that passed",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="log every step")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call otherwise
    try:
        manifest = load_manifest(args.manifest)
    except ManifestError as exc:
        print(f"tssnode faults: {exc}", file=sys.stderr)
        return 2
    if args.schedules is not None and args.schedules < 1:
        print("tssnode faults: --schedules must be at least 1", file=sys.stderr)
        return 2
    root = args.root or Path(tempfile.mkdtemp(prefix="tssnode-faults-"))
    ok = False
    try:
        summary = run(
            manifest,
            root,
            seed=args.seed,
            schedules=args.schedules,
            network=args.network,
            progress=lambda line: print(line, flush=True),
        )
        print(summary.text())
        ok = True
        return 0
    except Unsupported as exc:
        print(f"tssnode faults: {exc}", file=sys.stderr)
        ok = args.root is None  # (refused before any node started: nothing to keep)
        return 2
    except FaultCheckFailed as exc:
        print(f"tssnode faults: FAILED\n{exc}", file=sys.stderr)
        return 1
    finally:
        if args.root is None and ok:
            shutil.rmtree(root, ignore_errors=True)
        elif not ok:
            print(f"tssnode faults: the nodes' directories and logs are in {root}", file=sys.stderr)
