"""`tssnode.testing.pbftsim`: the seeded PBFT simulator replays a seed exactly, and each
of its faults does what it says (total loss stops progress, a partition leaves the
minority behind until the heal, a crash stops a replica until its restart from its own
store, a crashing store write takes the replica down, an interceptor rewrites what one
replica sends)."""

from __future__ import annotations

from tests.ledger.harness import assert_consistent, chaos_run, keygen_tx
from tssnode.registry.app import KeyRegistry
from tssnode.testing.pbftsim import Faults, SimNetwork


def _net(seed: str, n: int = 4, faults: Faults | None = None) -> SimNetwork:
    return SimNetwork.make(seed, n, faults=faults, apps=(KeyRegistry,))


def _submit_everywhere(net: SimNetwork, tag: bytes) -> None:
    for i, v in enumerate(net.ids):
        net.submit(v, keygen_tx(tag + b"%d" % i))


def _settled(net: SimNetwork) -> bool:
    rs = net.alive_replicas()
    return len({r.height for r in rs}) == 1 and all(not r.pending for r in rs)


def test_same_seed_same_run() -> None:
    """The simulation is deterministic: a seed replays exactly."""
    a, _ = chaos_run(17, 4)
    b, _ = chaos_run(17, 4)
    assert a.now == b.now
    assert [r.chain.tip for r in a.alive_replicas()] == [r.chain.tip for r in b.alive_replicas()]


def test_a_quiet_network_commits_the_same_chain_everywhere() -> None:
    net = _net("quiet")
    _submit_everywhere(net, b"q")
    net.run(60, stop=lambda: _settled(net))
    rs = net.alive_replicas()
    assert len(rs) == 4 and assert_consistent(rs) >= 1
    assert _settled(net) and net.now < 60
    assert all(node.sent for node in net.nodes.values())  # every frame is kept for audits


def test_total_loss_stops_progress_until_the_links_work_again() -> None:
    net = _net("lossy", faults=Faults(drop=1.0))
    _submit_everywhere(net, b"l")
    net.run(10)
    assert {r.height for r in net.alive_replicas()} == {0}
    net.faults = Faults()
    net.run(120, stop=lambda: _settled(net))
    assert _settled(net) and min(r.height for r in net.alive_replicas()) >= 1


def test_a_partitioned_minority_falls_behind_and_catches_up_after_the_heal() -> None:
    net = _net("split")
    ids = sorted(net.ids)
    alone, rest = ids[3], set(ids[:3])
    net.partition({alone}, rest)
    for i, v in enumerate(sorted(rest)):
        net.submit(v, keygen_tx(b"p%d" % i))
    net.run(60, stop=lambda: all(net.replica(v).height >= 1 for v in rest))
    assert net.replica(alone).height == 0
    assert all(net.replica(v).height >= 1 for v in rest)  # 3 of 4 are a quorum
    net.heal()
    net.run(net.now + 120, stop=lambda: _settled(net))
    assert _settled(net) and assert_consistent(net.alive_replicas()) >= 1


def test_a_crashed_replica_restarts_from_its_own_store() -> None:
    net = _net("crash")
    _submit_everywhere(net, b"a")
    net.run(60, stop=lambda: _settled(net))
    victim = sorted(net.ids)[1]
    height = net.replica(victim).height
    assert height >= 1
    net.crash(victim)
    assert not net.nodes[victim].alive and net.crashes == 1
    assert len(net.alive_replicas()) == 3
    net.restart(victim)
    assert net.replica(victim).height == height  # read back from its store
    _submit_everywhere(net, b"b")
    net.run(net.now + 120, stop=lambda: _settled(net))
    assert _settled(net) and assert_consistent(net.alive_replicas()) > height


def test_a_store_write_can_crash_the_replica() -> None:
    net = _net("store")
    victim = sorted(net.ids)[2]
    net.nodes[victim].store.crash_at = net.nodes[victim].store.writes + 1
    _submit_everywhere(net, b"s")
    net.run(60, stop=lambda: not net.nodes[victim].alive)
    assert not net.nodes[victim].alive and net.crashes == 1


def test_an_interceptor_rewrites_what_one_replica_sends() -> None:
    net = _net("mute")
    mute = sorted(net.ids)[0]
    net.interceptors[mute] = lambda sender, to, frame: []  # sends nothing from now on
    before = list(net.nodes[mute].sent)  # what it sent while starting
    for i, v in enumerate(sorted(net.ids)[1:]):
        net.submit(v, keygen_tx(b"m%d" % i))
    net.run(120, stop=lambda: _settled(net))
    assert net.nodes[mute].sent == before
    assert _settled(net) and assert_consistent(net.alive_replicas()) >= 1  # f = 1 tolerated
