"""Crash and restart at every step: a replica dies at each of its store writes, either
just before the write lands or just after it (before anything that depends on it is
sent), and comes back from its store. It must never equivocate across incarnations,
never lose a block it had stored, and the network must finish every request."""

from __future__ import annotations

import pytest

from tests.ledger.harness import assert_consistent, assert_no_equivocation, keygen_tx
from tssnode.ledger.chain import Chain
from tssnode.registry.app import KeyRegistry
from tssnode.store import layout
from tssnode.testing.pbftsim import SimNetwork, SimNode


def scenario(crash_at: int | None, after: bool, victim_index: int) -> tuple[SimNetwork, list]:
    net = SimNetwork.make("crash-restart", 4, apps=(KeyRegistry,))
    net.auto_restart = 0.4
    ids = sorted(net.ids)
    victim = net.nodes[ids[victim_index]]
    if crash_at is not None:
        victim.store.crash_at = crash_at
        victim.store.crash_after_write = after
    stored_tips: list[int] = []

    def on_crash(node: SimNode) -> None:
        raw = node.store.get(layout.meta("tip"))
        stored_tips.append(
            0 if raw is None else Chain(node.store, net.genesis, apps=(KeyRegistry,)).height
        )

    net.on_crash.append(on_crash)

    def submit(i: int) -> None:  # a client submits at some replica that is up
        live = [x for x in ids[i % 4 :] + ids[: i % 4] if net.nodes[x].alive]
        net.submit(live[0], keygen_tx(b"c%d" % i))

    for i in range(6):
        net.at(0.05 + 0.3 * i, lambda i=i: submit(i))
    net.run(
        120,
        stop=lambda: (
            net.now > 3
            and all(n.alive for n in net.nodes.values())
            and all(not r.pending and r.height >= 6 for r in net.alive_replicas())
        ),
    )
    return net, stored_tips


def writes_of(victim_index: int) -> int:
    net, _ = scenario(None, False, victim_index)
    return net.nodes[sorted(net.ids)[victim_index]].store.writes


@pytest.mark.parametrize("victim_index", [0, 2], ids=["primary", "backup"])
@pytest.mark.parametrize("after", [False, True], ids=["before-write", "after-write"])
def test_crash_at_every_write(victim_index: int, after: bool) -> None:
    total = writes_of(victim_index)
    assert total > 20
    for k in range(1, total + 1):
        net, stored_tips = scenario(k, after, victim_index)
        assert net.crashes == 1, f"write {k}: the crash was not injected"
        victim = net.nodes[sorted(net.ids)[victim_index]]
        rs = net.alive_replicas()
        assert len(rs) == 4
        assert len({r.height for r in rs}) == 1 and rs[0].height >= 6, f"write {k}: stuck"
        assert not any(r.pending for r in rs)
        assert_consistent(rs)
        for node in net.nodes.values():
            assert_no_equivocation(node.sent)
        assert victim.replica is not None and victim.incarnation == 2
        # every block the victim had stored when it died is still its block
        assert victim.replica.height >= stored_tips[0]
