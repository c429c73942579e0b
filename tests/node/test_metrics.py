"""The node's Prometheus metrics: what events and state become, read back with the
client library's own parser."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tssnode.config import ConfigError, NodeConfig
from tssnode.node.events import EventBus
from tssnode.node.metrics import NodeMetrics

STATE: dict[str, Any] = {
    "height": 42,
    "view": 3,
    "peers_connected": 3,
    "validators_online": 4,
    "validators": 4,
    "pending_requests": 2,
    "last_block_age_seconds": 1.5,
    "stalled": False,
    "below_quorum": False,
    "view_changes": 5,
    "pools": {"k1": (3, 1)},
    "vault_ops": {"put_share": 2, "take_presignature": 7},
}


def samples(metrics: NodeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_events_and_state_become_metrics() -> None:
    bus = EventBus()
    metrics = NodeMetrics(lambda: STATE)
    bus.listeners.append(metrics.on_event)
    bus.publish("block.committed", height=1, hash="aa", txs=1, latency_ms=40)
    bus.publish("block.committed", height=2, hash="bb", txs=0, latency_ms=None)
    bus.publish("session.started", ssid="s1", phase="presign", parties=[1, 2])
    for rnd in (2, 3):
        bus.publish("session.round", ssid="s1", phase="presign", round=rnd, of=3, waiting_for=[])
    bus.publish("session.done", ssid="s1", phase="presign", seconds=1.0)
    bus.publish("session.started", ssid="s2", phase="sign", parties=[1, 2])
    bus.publish("session.failed", ssid="s2", phase="sign", round=1, culprits=[2], check="bad share")
    bus.publish("proof.verified", ssid="s1", phase="presign", proof="enc", party=2, seconds=0.1)
    bus.publish("proof.rejected", ssid="s1", phase="presign", proof="logstar", party=2,
                seconds=0.1, reason="z1 out of range")  # fmt: skip
    got = samples(metrics)
    assert got[("tssnode_blocks_committed_total", ())] == 2
    assert got[("tssnode_commit_latency_seconds_count", ())] == 1  # one block had a latency
    assert got[("tssnode_commit_latency_seconds_sum", ())] == pytest.approx(0.04)
    assert got[("tssnode_sessions_total", (("outcome", "started"), ("phase", "presign")))] == 1
    assert got[("tssnode_sessions_total", (("outcome", "done"), ("phase", "presign")))] == 1
    assert got[("tssnode_sessions_total", (("outcome", "failed"), ("phase", "sign")))] == 1
    for rnd in ("1", "2", "3"):  # every round of the presign timed once
        assert got[("tssnode_round_seconds_count", (("phase", "presign"), ("round", rnd)))] == 1
    assert got[("tssnode_blames_total", (("phase", "sign"),))] == 1
    assert got[("tssnode_proof_verifications_total", (("proof", "enc"), ("result", "ok")))] == 1
    key = ("tssnode_proof_verifications_total", (("proof", "logstar"), ("result", "rejected")))
    assert got[key] == 1
    assert got[("tssnode_height", ())] == 42 and got[("tssnode_view", ())] == 3
    assert got[("tssnode_view_changes_total", ())] == 5
    assert got[("tssnode_validators_online", ())] == 4 and got[("tssnode_stalled", ())] == 0
    assert got[("tssnode_presignatures", (("key_id", "k1"), ("state", "ready")))] == 3
    assert got[("tssnode_presignatures", (("key_id", "k1"), ("state", "pending")))] == 1
    ops = ("tssnode_vault_operations_total", (("operation", "take_presignature"),))
    assert got[ops] == 7


def test_the_metrics_section_of_the_config() -> None:
    base = '[node]\nnetwork_id = "n"\ndata_dir = "d"\n[net]\nlisten = "/ip4/127.0.0.1/tcp/1"\n'
    off = NodeConfig.parse(base).metrics
    assert not off.enabled
    on = NodeConfig.parse(base + '[metrics]\nlisten = "127.0.0.1:9700"\n').metrics
    assert on.enabled and on.address == "127.0.0.1:9700"
    for bad in ('listen = "nowhere"', 'listen = "127.0.0.1:99999"', "port = 1"):
        with pytest.raises(ConfigError):
            NodeConfig.parse(base + f"[metrics]\n{bad}\n")


def test_the_dashboard_queries_only_metrics_the_node_exports() -> None:
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).parents[2] / "docs/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"tssnode_\w+", e)}
    metrics = NodeMetrics(lambda: STATE)
    bus = EventBus()
    bus.listeners.append(metrics.on_event)  # one event of each kind: every series appears
    bus.publish("session.started", ssid="s", phase="sign", parties=[])
    bus.publish("session.failed", ssid="s", phase="sign", round=1, culprits=[2], check="x")
    bus.publish("proof.rejected", ssid="s", phase="sign", proof="dec", party=2, seconds=0.1)
    exported = set()
    for family in text_string_to_metric_families(metrics.render().decode()):
        exported |= {s.name for s in family.samples}
    assert used and used <= exported, used - exported
