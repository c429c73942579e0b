"""The manifest-driven fault runner (`tssnode.testing.faults`, `tssnode faults`).

Unit tests (no processes): manifests are checked with errors that say where and why,
seeded schedules replay exactly and never fault more than `max_faulty` nodes at once,
the namespace names and subnets fit Linux's limits, and a failed check's message carries
what it takes to replay it (the seed, the schedule).

Then real `tssnode run` processes, each in its own network namespace when this runs as
root (else on loopback, where the network faults are skipped with the runner's reason):
four nodes through the schedules of `tests/faults/n4.toml` on one network (a kill under
load, the primary paused, a 2 | 2 partition, a backup dying at `pbft.view-change`),
after a check that the nodes really talk over the namespaces' own addresses; and seven
nodes with two killed at once (`n7.toml`). The slow tier runs a burst of 200 under
faults and the random soaks (hundreds of seeded schedules).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
from eth_keys.datatypes import PrivateKey

from tssnode.api.client import ApiError
from tssnode.testing import faults, netns
from tssnode.testing.cluster import wait_for
from tssnode.testing.faults import (
    FaultCheckFailed,
    Manifest,
    ManifestError,
    RandomSpec,
    Runner,
    Schedule,
    Step,
    load_manifest,
    parse_manifest,
    random_schedule,
    verify_signature,
)
from tssnode.testing.netns import NAME_RE, Names, Unsupported, choose_subnets, new_prefix

MANIFESTS = Path(__file__).resolve().parents[1] / "faults"


# -- the manifest ----------------------------------------------------------------------------


def _manifest(**top: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"network": {"nodes": 4}, "step": [{"at": 1, "action": "heal"}]}
    data.update(top)
    return data


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (_manifest(network={"nodes": 0}), "network.nodes: must be in [1, 250], not 0"),
        (_manifest(network={"nodes": "4"}), "network.nodes: must be an integer, not '4'"),
        (_manifest(network={"nodes": 4, "threshold": 4}), "network.threshold: must be in [0, 3]"),
        (_manifest(network={"nodes": 4, "tier": "fast"}), "network.tier: must be one of"),
        (_manifest(network={"nodes": 4, "network": "vm"}), "network.network: must be one of"),
        (_manifest(network={"nodes": 4, "colour": 1}), "network.colour: unknown key"),
        (_manifest(load={"rate": -1}), "load.rate: must be in [0, 100]"),
        (_manifest(recover_within="soon"), "recover_within: must be a number"),
        (_manifest(step=[{"at": 1, "action": "explode"}]), "step[0].action: must be one of"),
        (_manifest(step=[{"at": 1, "action": "kill"}]), "step[0].nodes: is required"),
        (_manifest(step=[{"at": 1, "action": "kill", "nodes": []}]), "needs at least one node"),
        (
            _manifest(step=[{"at": 1, "action": "kill", "nodes": [5]}]),
            "step[0].nodes[0]: must be in [1, 4], not 5",
        ),
        (
            _manifest(step=[{"at": 1, "action": "pause", "nodes": ["leader"]}]),
            "must be an integer, not 'leader'",
        ),
        (_manifest(step=[{"at": -1, "action": "heal"}]), "step[0].at: must be in [0, 86400]"),
        (_manifest(step=[{"action": "heal"}]), "step[0].at: is required"),
        (_manifest(step=[{"at": 1, "action": "burst"}]), "step[0].count: is required"),
        (_manifest(step=[{"at": 1, "action": "heal", "nodes": [1]}]), "step[0].nodes: unknown"),
        (
            _manifest(step=[{"at": 1, "action": "partition", "groups": [[1, 2], [2, 3]]}]),
            "names a node in two groups",
        ),
        (
            _manifest(step=[{"at": 1, "action": "failpoint", "nodes": [1], "point": "nowhere"}]),
            "unknown failpoint 'nowhere'",
        ),
        (
            _manifest(
                step=[{"at": 1, "action": "failpoint", "nodes": [1], "point": "block.committed@0"}]
            ),
            "hit count after @",
        ),
        (_manifest(step=[]), "step: must be a non-empty array of tables"),
        (
            _manifest(random=5),
            "needs exactly one of [[step]], [[schedule]] and random = N (has step, random)",
        ),
        ({"network": {"nodes": 4}}, "needs exactly one of"),
        (_manifest(max_faulty=2), "max_faulty: applies to random = N schedules only"),
        (
            {"random": 3, "generator": {"actions": ["kill", "nap"]}},
            "generator.actions[1]: must be one of",
        ),
        (
            {
                "schedule": [
                    {"name": "a", "step": [{"at": 1, "action": "heal"}]},
                    {"name": "a", "step": [{"at": 2, "action": "heal"}]},
                ]
            },
            "two schedules have the same name",
        ),
        (
            {"schedule": [{"duration": 1, "step": [{"at": 2, "action": "heal"}]}]},
            "schedule[0].duration: ends before the last step",
        ),
    ],
)
def test_a_bad_manifest_is_refused_with_where_and_why(data, error):
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data, "bad.toml")
    assert str(caught.value).startswith("bad.toml: ")
    assert error in str(caught.value)


def test_a_manifest_file_that_is_not_toml_says_so(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[network\nnodes = 4\n")
    with pytest.raises(ManifestError, match=r"broken\.toml: not valid TOML"):
        load_manifest(path)
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "missing.toml")


def test_every_committed_manifest_parses():
    paths = sorted(MANIFESTS.glob("*.toml"))
    assert len(paths) >= 4
    for path in paths:
        manifest = load_manifest(path)
        assert manifest.expand(count=2), path


def test_a_manifest_reads_as_written():
    m = load_manifest(MANIFESTS / "n4.toml")
    assert (m.network.nodes, m.network.threshold, m.network.f, m.network.quorum) == (4, 1, 1, 3)
    names = [s.name for s in m.schedules]
    assert names == ["kill-restart", "pause-primary", "partition-2-2", "failpoint-view-change"]
    partition = m.schedules[2]
    assert partition.steps[0] == Step(1.0, "partition", groups=((1, 2), (3, 4)))
    assert partition.needs_namespaces() == ["heal", "partition"]
    assert m.schedules[3].steps[0].point == "pbft.view-change"


def test_a_schedule_written_as_toml_reads_back_the_same():
    for seed in range(20):
        spec = RandomSpec(1, max_faulty=2, failpoints=("block.committed",))
        schedule = random_schedule(seed, 7, spec)
        data = faults.tomllib.loads(schedule.to_toml())
        again = parse_manifest({"network": {"nodes": 7}, **data}).schedules[0]
        assert again == Schedule(schedule.name, schedule.steps, schedule.duration)


# -- seeded schedules ----------------------------------------------------------------------


def test_the_same_seed_gives_the_same_schedule():
    spec = RandomSpec(10, max_faulty=2, failpoints=("pbft.vote-sent",))
    assert random_schedule(42, 7, spec) == random_schedule(42, 7, spec)
    assert random_schedule(42, 7, spec).to_toml() == random_schedule(42, 7, spec).to_toml()
    drawn = {random_schedule(seed, 7, spec).steps for seed in range(30)}
    assert len(drawn) > 25  # and different seeds differ
    m = parse_manifest({"random": 5, "seed": 100, "network": {"nodes": 4}})
    assert [s.seed for s in m.expand()] == [100, 101, 102, 103, 104]
    assert [s.seed for s in m.expand(seed=7, count=2)] == [7, 8]
    assert m.expand(seed=7, count=2)[1] == random_schedule(8, 4, m.random)


def _replay(schedule: Schedule, n: int) -> Iterator[set[int]]:
    """The faulty set after each step, by the generator's own rules, re-derived."""
    killed: set[int] = set()
    paused: set[int] = set()
    cut: set[int] = set()
    armed: set[int] = set()
    apart: set[int] = set()
    for step in schedule.steps:
        nodes = set(step.nodes)
        if step.action == "kill":
            killed |= nodes
        elif step.action == "restart":
            killed -= nodes
        elif step.action == "pause":
            paused |= nodes
        elif step.action == "resume":
            paused -= nodes
        elif step.action == "disconnect":
            cut |= nodes
        elif step.action == "connect":
            cut -= nodes
        elif step.action == "failpoint":
            armed |= nodes
        elif step.action == "partition":
            assert len(step.groups) == 2
            assert set(step.groups[0]) | set(step.groups[1]) == set(range(1, n + 1))
            apart = set(step.groups[0])
            assert len(apart) <= n // 2
        elif step.action == "heal":
            apart = set()
        yield killed | paused | cut | armed | apart
    assert not (killed or paused or cut or apart), "the schedule does not end healed"


@pytest.mark.parametrize(("n", "max_faulty"), [(4, 1), (4, 2), (7, 2), (7, 3), (4, 0)])
def test_a_random_schedule_keeps_max_faulty_and_ends_healed(n, max_faulty):
    spec = RandomSpec(1, max_faulty=max_faulty, steps=8, failpoints=("block.committed",))
    peak = 0
    for seed in range(300):
        schedule = random_schedule(seed, n, spec)
        assert all(0 < s.at <= spec.duration for s in schedule.steps)
        assert [s.at for s in schedule.steps] == sorted(s.at for s in schedule.steps)
        for faulty in _replay(schedule, n):
            assert len(faulty) <= max_faulty, (seed, schedule.to_toml())
            peak = max(peak, len(faulty))
    assert peak == max_faulty  # the bound is reached, not just respected


def test_a_random_schedule_uses_only_the_actions_allowed():
    spec = RandomSpec(1, max_faulty=1, actions=("kill", "restart", "pause", "resume", "burst"))
    actions = {s.action for seed in range(100) for s in random_schedule(seed, 4, spec).steps}
    assert actions == {"kill", "restart", "pause", "resume", "burst"}


# -- namespaces ----------------------------------------------------------------------------


def test_namespace_names_fit_linux_and_are_recognised():
    rng = random.Random(1)
    prefix = new_prefix(rng)
    names = Names(prefix)
    made = [names.data_bridge, names.mgmt_bridge, names.side_bridge(9)]
    made += [f(i) for i in (1, 250) for f in (names.netns, names.data_host, names.mgmt_host)]
    assert all(len(x) <= 15 and NAME_RE.match(x) for x in made), made
    assert len(set(made)) == len(made)
    assert new_prefix(random.Random(1), [names.netns(1)]) != prefix  # taken: another one
    assert not NAME_RE.match("tssnode0") and not NAME_RE.match("eth0")


def test_the_sweep_removes_a_crashed_runs_namespaces_and_leaves_a_live_runs():
    why = netns.netns_unavailable()
    if why is not None:
        pytest.skip(why)
    rng = random.Random()
    dead_prefix = new_prefix(rng)
    live_prefix = new_prefix(rng, [dead_prefix])
    dead, live = Names(dead_prefix).netns(1), Names(live_prefix).netns(1)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # its pid: a run's owner that is gone
    netns.OWNERS.mkdir(parents=True, exist_ok=True)
    (netns.OWNERS / dead_prefix).write_text(str(finished.pid))
    (netns.OWNERS / live_prefix).write_text(str(os.getpid()))
    try:
        for name in (dead, live):
            netns.ip("netns", "add", name)
        removed = netns.sweep_stale()
        spaces = netns.ip("netns", "list")
        assert dead in removed and dead not in spaces
        assert live not in removed and live in spaces
        assert not (netns.OWNERS / dead_prefix).exists()
    finally:
        netns.ip("netns", "del", live, check=False)
        netns.ip("netns", "del", dead, check=False)
        (netns.OWNERS / live_prefix).unlink(missing_ok=True)
        (netns.OWNERS / dead_prefix).unlink(missing_ok=True)


def test_subnets_are_private_adjacent_and_avoid_the_hosts_own():
    taken = [IPv4Network("10.0.0.0/9")]  # 10.0.x.x to 10.127.x.x in use
    for seed in range(50):
        nets = choose_subnets(random.Random(seed), taken)
        assert nets.data.prefixlen == nets.mgmt.prefixlen == 24
        assert nets.mgmt.network_address == nets.data.network_address + 256
        assert not any(n.overlaps(t) for n in (nets.data, nets.mgmt) for t in taken)
        assert nets.data_ip(3).endswith(".3") and nets.root_ip.endswith(".254")
    assert choose_subnets(random.Random(5)) == choose_subnets(random.Random(5))


def test_without_namespaces_the_hosts_fall_back_to_loopback_and_say_so(monkeypatch, capsys):
    monkeypatch.setattr(netns, "netns_unavailable", lambda: "not running as root")
    hosts = netns.open_hosts(4, "auto")
    assert hosts.mode == "loopback" and not hosts.supports_network_faults
    assert hosts.p2p_host(1) == hosts.api_host(4) == "127.0.0.1" and hosts.command_prefix(2) == []
    assert "namespaces unavailable (not running as root)" in capsys.readouterr().out
    for fault in (lambda: hosts.disconnect(1), lambda: hosts.partition([[1, 2], [3, 4]])):
        with pytest.raises(Unsupported, match=r"needs network namespaces.*not running as root"):
            fault()
    with pytest.raises(netns.NetnsError, match="not running as root"):
        netns.open_hosts(4, "netns")
    assert netns.open_hosts(4, "loopback").reason == "loopback asked for"


# -- checks --------------------------------------------------------------------------------


def _signed(message: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(a signature as GET /signatures shows it, the key as GET /keys shows it)."""
    key = PrivateKey(hashlib.sha256(b"fault runner test key").digest())
    digest = hashlib.sha256(message.encode()).digest()
    sig = key.sign_msg_hash(digest)
    api_sig = {"digest": digest.hex(), "r": f"{sig.r:064x}", "s": f"{sig.s:064x}", "v": sig.v + 27}
    api_key = {
        "public_key": key.public_key.to_compressed_bytes().hex(),
        "addresses": {"eth": key.public_key.to_checksum_address()},
    }
    return api_sig, api_key


def test_a_signature_is_verified_with_ecdsa_and_eth_keys():
    sig, key = _signed("hello")
    assert verify_signature(sig, "hello", key) is None
    assert "not sha256 of the message" in verify_signature(sig, "other", key)
    bad_s = dict(sig, s=f"{int(sig['s'], 16) ^ 1:064x}")
    assert "ecdsa rejects it" in verify_signature(bad_s, "hello", key)
    flipped_v = dict(sig, v=55 - sig["v"])  # the other parity: recovers another key
    assert "eth-keys recovers" in verify_signature(flipped_v, "hello", key)


def test_chains_that_differ_are_reported():
    assert faults.compare_chains({1: ["a", "b"], 2: ["a", "b", "c"]}) is None
    assert "block 1 of the compared range differs" in faults.compare_chains(
        {1: ["a", "b"], 2: ["a", "x"]}
    )


def test_a_failed_check_names_the_seed_and_the_schedule(tmp_path):
    """The runner's own failure path, with no network: a violation recorded (as the
    tracker does for a signature that does not verify) fails the check with everything
    needed to replay it."""
    manifest = parse_manifest({"random": 3, "seed": 7, "network": {"nodes": 4}}, "soak.toml")
    schedule = manifest.expand()[0]
    runner = Runner(manifest, tmp_path)
    runner._current = schedule
    sig, key = _signed("a message")
    why = verify_signature(sig, "another message", key)
    runner._violate("signature", f"signature 00ff: {why}", ())
    with pytest.raises(FaultCheckFailed) as caught:
        runner._check_violations(set())
    text = str(caught.value)
    assert caught.value.check == "signature" and caught.value.schedule is schedule
    assert "fault check 'signature' failed in schedule 'random-7', seed 7" in text
    assert "not sha256 of the message" in text
    assert "replay: tssnode faults soak.toml --seed 7 --schedules 1" in text
    assert schedule.to_toml() in text and "[[schedule.step]]" in text
    assert str(tmp_path / "history.jsonl") in text


def test_an_accepted_request_unknown_at_the_node_that_accepted_it_fails_the_run(tmp_path):
    """A 202 is a promise: the accepting node answering 404 for the id later (as a node
    did after a restart, for a request that had failed) is a violation, not a statistic."""
    manifest = parse_manifest({"random": 1, "seed": 3, "network": {"nodes": 4}}, "soak.toml")
    runner = Runner(manifest, tmp_path)
    runner._current = manifest.expand()[0]

    class Answers404:
        def get(self, path: str) -> Any:
            raise ApiError(404, "unknown signature")

    req = faults.Request("ab" * 32, "cd" * 32, 2, "m", "00" * 32, "load", "random-3", 0.0)
    runner._poll(Answers404(), req)
    assert req.not_found == 1 and req.status == "pending"
    with pytest.raises(FaultCheckFailed) as caught:
        runner._check_violations(set())
    assert caught.value.check == "durability"
    assert f"request {'ab' * 32}, accepted (202) by node 2, is unknown (404)" in str(caught.value)


def test_a_node_that_lost_a_presignature_fails_the_run(tmp_path):
    manifest = parse_manifest({"random": 1, "seed": 3, "network": {"nodes": 4}}, "soak.toml")
    runner = Runner(manifest, tmp_path)
    runner._current = manifest.expand()[0]
    runner.key = {"key_id": "ab" * 16}

    class Keys:
        def __init__(self, mine: int, held: int) -> None:
            self.view = {"presignatures_mine": mine, "presignatures_held": held}

        def get(self, path: str) -> Any:
            assert path == f"/keys/{'ab' * 16}"
            return self.view

    answers = {1: Keys(2, 2), 2: Keys(1, 1), 3: Keys(2, 1), 4: Keys(0, 0)}
    runner._clients = answers.__getitem__  # type: ignore[assignment]
    runner._check_presignatures()
    with pytest.raises(FaultCheckFailed) as caught:
        runner._check_violations(set())
    assert caught.value.check == "presignature"
    assert "node 3 signs 2 ready pooled presignatures and holds 1" in str(caught.value)


def test_the_cli_refuses_a_bad_manifest(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[network]\nnodes = 4\n\n[[step]]\nat = 1\naction = "nap"\n')
    assert faults.main([str(path)]) == 2
    assert "step[0].action: must be one of" in capsys.readouterr().err


# -- four real nodes, one network, the fast tier's schedules ---------------------------------


@pytest.fixture(scope="module")
def n4(tmp_path_factory) -> Iterator[Runner]:
    with Runner(load_manifest(MANIFESTS / "n4.toml"), tmp_path_factory.mktemp("n4")) as runner:
        yield runner


def _schedule(runner: Runner, name: str) -> Schedule:
    (schedule,) = [s for s in runner.manifest.schedules if s.name == name]
    why = runner.unsupported(schedule)
    if why is not None:
        pytest.skip(why)
    return schedule


def _settled(result: faults.ScheduleResult) -> None:
    assert result.accepted > 0
    assert result.done + result.failed == result.accepted
    assert result.verified == result.done


def test_nodes_talk_over_their_namespaces_and_a_cut_link_drops_a_peer(n4: Runner):
    hosts = n4.hosts
    assert hosts is not None
    if not hosts.supports_network_faults:
        pytest.skip(f"nodes on loopback: {hosts.reason}")
    data = hosts.subnets.data
    apis = [node.client(timeout=10) for node in n4.nodes]
    try:
        for i, (node, api) in enumerate(zip(n4.nodes, apis, strict=True), start=1):
            assert node.p2p.startswith(f"/ip4/{data.network_address + i}/tcp/")
            assert api.get("/status")["addrs"] == [f"{node.p2p}/p2p/{node.peer_id}"]
            assert node.api_url.startswith(f"http://{hosts.api_host(i)}:")
        peers = {p["peer_id"]: p for p in apis[0].get("/peers") if p["validator"]}
        assert len(peers) == 3 and all(p["status"] == "connected" for p in peers.values())
        for p in peers.values():
            addr = p["address"].split("/")[2]
            assert addr.startswith("10.") and IPv4Network(f"{addr}/32").subnet_of(data), p
        fourth = n4.nodes[3].peer_id

        def seen_by_node1() -> str:
            return {p["peer_id"]: p["status"] for p in apis[0].get("/peers")}[fourth]

        hosts.disconnect(4)
        try:
            wait_for(lambda: seen_by_node1() == "disconnected", "node 1 drops node 4", 120, 1)
            wait_for(lambda: apis[3].get("/status")["peers_connected"] == 0, "node 4 alone", 120, 1)
        finally:
            hosts.connect(4)
        wait_for(lambda: seen_by_node1() == "connected", "node 1 has node 4 back", 120, 1)
        wait_for(
            lambda: all(a.get("/status")["peers_connected"] == 3 for a in apis),
            "everyone connected again",
            120,
            1,
        )
    finally:
        for api in apis:
            api.http.close()


def test_a_node_killed_under_load_comes_back_with_every_block(n4: Runner):
    result = n4.run_schedule(_schedule(n4, "kill-restart"))
    _settled(result)
    assert result.bursts == 1 and result.faults == 1 and result.peak_faulty == 1


def test_a_paused_primary_is_replaced_by_a_view_change(n4: Runner):
    result = n4.run_schedule(_schedule(n4, "pause-primary"))
    _settled(result)
    assert result.views[1] > result.views[0]


def test_a_2_2_partition_commits_nothing_and_recovers(n4: Runner):
    result = n4.run_schedule(_schedule(n4, "partition-2-2"))
    assert result.peak_faulty == 2 > n4.spec.f  # beyond f: the ledger must stop
    assert result.frozen_checked == 1  # no new height on either side while split
    _settled(result)


# (slow tier: 40 s of schedule; the fast tier keeps the view change of a paused primary, and
# the random soaks arm this point too)
@pytest.mark.slow
def test_a_backup_dying_in_a_view_change_does_not_stop_it(n4: Runner):
    result = n4.run_schedule(_schedule(n4, "failpoint-view-change"))
    _settled(result)
    assert [point for _, point in result.failpoint_hits] == ["pbft.view-change"]
    assert result.failpoints_missed == []
    assert result.views[1] > result.views[0]


def test_after_all_of_it_every_share_holder_still_signs(n4: Runner):
    summary = n4.finish()
    assert summary.final_signers == 4
    print("\n" + summary.text())


# -- seven nodes -----------------------------------------------------------------------------


def _run(name: str, root: Path, **options: Any) -> faults.Summary:
    manifest: Manifest = load_manifest(MANIFESTS / name)
    plan = manifest.expand(**options)
    try:
        with Runner(manifest, root, plan=plan) as runner:  # (refuses a plan it cannot run)
            for schedule in plan:
                runner.run_schedule(schedule)
            summary = runner.finish()
    except Unsupported as exc:
        pytest.skip(str(exc))
    print("\n" + summary.text())
    return summary


# Before the fix (ledger votes by gossip, queued behind the protocol's round messages;
# py-libp2p's mplex reads quadratic in a backlog) no run of 11 got through: the view
# changes never converged. See docs/reliability.md. (Slow tier: about a minute of seven
# nodes; the fast tier keeps the four-node kill and restart tests.)
@pytest.mark.slow
def test_seven_nodes_survive_two_killed_at_once_under_load(tmp_path):
    summary = _run("n7.toml", tmp_path)
    (result,) = summary.results
    _settled(result)
    assert summary.final_signers == 7


# -- slow: a burst of 200 under faults, and the random soaks ---------------------------------


@pytest.mark.slow
def test_the_primary_killed_and_then_all_four_killed_at_once_come_back(tmp_path):
    summary = _run("n4-restarts.toml", tmp_path)
    kill_primary, kill_all = summary.results
    for result in (kill_primary, kill_all):
        _settled(result)
    assert kill_primary.views[1] > kill_primary.views[0]  # a view change around it
    assert kill_all.peak_faulty == 4
    assert summary.final_signers == 4


@pytest.mark.slow
def test_a_burst_of_200_under_faults(tmp_path):
    summary = _run("burst200.toml", tmp_path)
    assert summary.total("accepted") >= 200
    assert summary.total("done") + summary.total("failed") == summary.total("accepted")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["random-n4.toml", "random-n4-beyond-f.toml", "random-n7.toml"])
def test_a_random_soak(tmp_path, name):
    summary = _run(name, tmp_path)
    assert len(summary.results) == load_manifest(MANIFESTS / name).random.schedules
