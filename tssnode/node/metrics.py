"""Prometheus metrics of one node (`GET /metrics` on `[metrics] listen`, off by default).

Two sources, so that nothing is counted twice and nothing is missed:

* **Events.** `NodeMetrics.on_event` is a listener on the node's `EventBus` (called at
  every publish, never dropped): sessions by phase and outcome, the time each round of
  each phase took, proof verifications by proof and result, blames, blocks committed and
  their commit latency (this node's note on each block: `ledger.chain.BlockNote`).
* **State, read at scrape time** (`_StateCollector`): height, view, view changes,
  peers connected, validators online, pending requests, the presignature pool of each
  key, and the vault's operations. Scrapes run on the node's own trio thread (`api.metrics`
  serves the page, on hypercorn like the API), so they read a consistent state.

Metric names follow Prometheus' conventions (`tssnode_` prefix, `_total` counters,
`_seconds` histograms). Labels are bounded: phases, proof names, outcomes and key ids
(one series per key), never session ids or peers' addresses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from tssnode.node.events import Event

#: Buckets for commit latency and round time, in seconds (a block on a quiet loopback
#: network takes milliseconds; a standard-tier presign round under load, tens of seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
#: Sessions whose round timing is remembered at once, at most (the oldest are forgotten).
MAX_TRACKED_SESSIONS = 4096


class NodeMetrics:
    """The node's metrics in their own registry (never the process-global one)."""

    def __init__(self, state: Callable[[], Mapping[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.blocks = Counter("tssnode_blocks_committed", "Blocks committed", registry=r)
        self.commit_latency = Histogram(
            "tssnode_commit_latency_seconds",
            "From this node's first message about a height to its commit",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sessions = Counter(
            "tssnode_sessions",
            "Protocol sessions by phase and outcome (started, done, failed)",
            ["phase", "outcome"],
            registry=r,
        )
        self.rounds = Histogram(
            "tssnode_round_seconds",
            "Time a round of a protocol phase took at this node (until the next began)",
            ["phase", "round"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.proofs = Counter(
            "tssnode_proof_verifications",
            "Zero-knowledge proofs verified, by proof and result (ok, rejected)",
            ["proof", "result"],
            registry=r,
        )
        self.blames = Counter(
            "tssnode_blames",
            "Sessions that failed naming culprits, by phase",
            ["phase"],
            registry=r,
        )
        self.peer_events = Counter(
            "tssnode_peer_events", "Peers connecting and disconnecting", ["event"], registry=r
        )
        r.register(_StateCollector(state))
        self._round_began: dict[str, tuple[int, float]] = {}  # ssid → (round, monotonic)

    # -- events --------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        f = event.fields
        kind = event.kind
        if kind == "block.committed":
            self.blocks.inc()
            latency = f.get("latency_ms")
            if isinstance(latency, int):
                self.commit_latency.observe(latency / 1000)
        elif kind == "session.started":
            self.sessions.labels(str(f.get("phase")), "started").inc()
            self._began(str(f.get("ssid")), 1)
        elif kind == "session.round":
            self._round_done(f, next_round=int(f.get("round", 0)))
        elif kind in ("session.done", "session.failed"):
            phase = str(f.get("phase"))
            self._round_done(f, next_round=None)
            self.sessions.labels(phase, "done" if kind == "session.done" else "failed").inc()
            if kind == "session.failed" and f.get("culprits"):
                self.blames.labels(phase).inc()
        elif kind in ("proof.verified", "proof.rejected"):
            result = "ok" if kind == "proof.verified" else "rejected"
            self.proofs.labels(str(f.get("proof")), result).inc()
        elif kind in ("peer.up", "peer.down"):
            self.peer_events.labels(kind.split(".")[1]).inc()

    def _began(self, ssid: str, rnd: int) -> None:
        if len(self._round_began) >= MAX_TRACKED_SESSIONS and ssid not in self._round_began:
            self._round_began.pop(next(iter(self._round_began)))
        self._round_began[ssid] = (rnd, time.monotonic())

    def _round_done(self, f: Mapping[str, Any], next_round: int | None) -> None:
        ssid = str(f.get("ssid"))
        began = self._round_began.pop(ssid, None)
        if began is not None:
            rnd, at = began
            self.rounds.labels(str(f.get("phase")), str(rnd)).observe(time.monotonic() - at)
        if next_round is not None:
            self._began(ssid, next_round)

    # -- exposition ----------------------------------------------------------------------------

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges and counters read from the node when Prometheus scrapes."""

    def __init__(self, state: Callable[[], Mapping[str, Any]]) -> None:
        self._state = state

    def describe(self) -> Iterable[Metric]:
        return []  # (read at collect time; no fixed description to register)

    def collect(self) -> Iterable[Metric]:
        s = self._state()
        gauges = {
            "height": "Height of this node's chain",
            "view": "Current PBFT view",
            "peers_connected": "Peers connected",
            "validators_online": "Validators online (this node included)",
            "validators": "Validators in the current set",
            "pending_requests": "Requests waiting to be ordered",
            "last_block_age_seconds": "Seconds since the last block",
        }
        for name, doc in gauges.items():
            value = s.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                yield GaugeMetricFamily(f"tssnode_{name}", doc, value=value)
        yield GaugeMetricFamily(
            "tssnode_stalled", "1 while the ledger is stalled or below quorum",
            value=1 if s.get("stalled") or s.get("below_quorum") else 0,
        )  # fmt: skip
        yield CounterMetricFamily(
            "tssnode_view_changes", "View changes this node started or joined",
            value=int(s.get("view_changes", 0)),
        )  # fmt: skip
        pools = GaugeMetricFamily(
            "tssnode_presignatures",
            "Pooled presignatures per key (ready or being made)",
            labels=["key_id", "state"],
        )
        for key_id, (ready, pending) in sorted(s.get("pools", {}).items()):
            pools.add_metric([key_id, "ready"], ready)
            pools.add_metric([key_id, "pending"], pending)
        yield pools
        vault = CounterMetricFamily(
            "tssnode_vault_operations", "Vault operations by kind", labels=["operation"]
        )
        for op, count in sorted(s.get("vault_ops", {}).items()):
            vault.add_metric([op], count)
        yield vault
