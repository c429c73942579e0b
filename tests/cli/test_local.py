"""`tssnode cluster status` node states from pid and exit files (no node runs here: the
processes are stand-ins), and `tssnode cluster demo` on stand-in nodes: its own network,
a clear message instead of a traceback on any failure (issue 14)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tssnode import launch
from tssnode.api.client import ApiClient
from tssnode.cli import cluster, configs, follow, processes
from tssnode.testing import cluster as testnet
from tssnode.testing.fakecli import SyncNode
from tssnode.testing.fakenode import TOKEN, URL


@pytest.fixture
def network(tmp_path: Path) -> list[testnet.NodeProc]:
    """Two node configs with identities (never started)."""
    return testnet.make_cluster(tmp_path, 2)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def status(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> tuple[int, str]:
    code = cluster.cmd_cluster(["status", "--dir", str(root), *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def row(out: str, name: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.startswith(f"{name} "))


def test_never_started_nodes_are_stopped_and_down(network, tmp_path, capsys):
    code, out = status(capsys, tmp_path)
    assert code == 1
    assert row(out, "node1")[:3] == ["node1", "stopped", "-"]
    assert row(out, "node1")[3] == network[0].peer_id  # from the identity on disk
    assert "node1: never started" in out
    assert out.rstrip().endswith("2 of 2 nodes down: node1, node2")


def test_a_pid_that_is_gone_is_a_crash(network, tmp_path, capsys, procs):
    gone = subprocess.Popen(["true"])
    gone.wait()
    (network[0].data_dir / "node.pid").write_text(f"{gone.pid}\n")
    # a live process that is not a tssnode (the pid was given to another program)
    other = subprocess.Popen(["sleep", "60"])
    procs.append(other)
    (network[1].data_dir / "node.pid").write_text(f"{other.pid}\n")
    code, out = status(capsys, tmp_path)
    assert code == 1
    assert row(out, "node1")[:3] == ["node1", "crashed", str(gone.pid)]
    assert f"node1: pid {gone.pid} is gone and left no exit code" in out
    assert row(out, "node2")[1] == "crashed"
    code, out = status(capsys, tmp_path, "--json")
    states = json.loads(out)
    assert [s["state"] for s in states] == ["crashed", "crashed"]
    assert states[0]["p2p_port"] == int(network[0].p2p.rsplit("/", 1)[1])


def test_a_running_process_whose_api_does_not_answer(network, tmp_path, capsys, procs):
    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "tssnode-stand-in"]
    )
    procs.append(stand_in)
    (network[0].data_dir / "node.pid").write_text(f"{stand_in.pid}\n")
    code, out = status(capsys, tmp_path)
    assert code == 1
    assert row(out, "node1")[1] == "unresponsive"
    assert f"its API does not answer at {network[0].api_url}" in out
    stand_in.send_signal(signal.SIGKILL)
    stand_in.wait(10)  # a zombie until reaped: either way it is no node
    code, out = status(capsys, tmp_path)
    assert row(out, "node1")[1] == "crashed"


def test_tssnode_run_records_its_exit_code(network, tmp_path, capsys):
    """A node that fails at start-up (here: no vault passphrase) leaves its exit code;
    `cluster status` reports the crash with it. A clean exit is a stop."""
    env = {k: v for k, v in os.environ.items() if k != "TSSNODE_PASSPHRASE"}
    node = network[0]
    run = launch.start(node.config, None, env=env)  # no log: stdout and stderr are pipes
    (node.data_dir / "node.pid").write_text(f"{run.pid}\n")  # as `cluster up` does
    _, err = run.communicate(timeout=120)
    assert run.returncode == 1, err
    record = json.loads((node.data_dir / "node.exit").read_text())
    assert record["pid"] == run.pid and record["code"] == 1
    code, out = status(capsys, tmp_path)
    assert code == 1 and row(out, "node1")[1] == "crashed"
    assert "node1: exited with code 1 at " in out
    record["code"] = 0
    (node.data_dir / "node.exit").write_text(json.dumps(record))
    _, out = status(capsys, tmp_path)
    assert row(out, "node1")[1] == "stopped" and "node1: exited with code 0" in out


# -- the demo -------------------------------------------------------------------------------


class StandIn:
    """A node of the demo's network that is no process: its API is the fake node's."""

    def __init__(self, index: int, fake: SyncNode) -> None:
        self.index, self.fake = index, fake
        self.api_url = URL
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def wait_api(self, timeout: float = 60.0) -> None:
        assert self.started

    def client(self, timeout: float = 30.0) -> ApiClient:
        return ApiClient(URL, TOKEN, transport=httpx.MockTransport(self.fake.handle))

    def stop(self) -> None:
        self.stopped = True


class DemoRig:
    """`cluster_demo` with stand-in nodes; the example network must not be touched."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.monkeypatch = monkeypatch
        self.made: dict[str, object] = {}
        self.dir = tmp_path / "tssnode-demo-x"

        def forbidden(*args: object, **kwargs: object) -> None:
            raise AssertionError("the demo touched the example network")

        for name in ("local_configs", "cluster_up", "cluster_down", "cluster_configs"):
            monkeypatch.setattr(cluster, name, forbidden)
        monkeypatch.setattr(configs, "local_configs", forbidden)
        monkeypatch.setattr(cluster, "start_daemon", forbidden)
        monkeypatch.setattr(processes, "start_daemon", forbidden)
        monkeypatch.setattr(tempfile, "mkdtemp", self._mkdtemp)
        monkeypatch.setattr(follow, "POLL_S", 0.0)  # (every CLI wait polls through it)

    def _mkdtemp(self, prefix: str = "") -> str:
        assert prefix == "tssnode-demo-"
        self.dir.mkdir()
        return str(self.dir)

    def __call__(self, fake: SyncNode) -> list[StandIn]:
        nodes = [StandIn(i, fake) for i in range(1, 5)]

        def make_cluster(
            root: Path, n: int, tier: str = "insecure-test", **_: object
        ) -> list[StandIn]:
            self.made.update(root=root, n=n, tier=tier)
            return nodes

        self.monkeypatch.setattr(testnet, "make_cluster", make_cluster)
        return nodes


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> DemoRig:
    return DemoRig(monkeypatch, tmp_path)


def test_the_demo_makes_a_key_and_a_verified_signature(demo, capsys):
    nodes = demo(SyncNode())
    code = cluster.cmd_cluster(["demo"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert demo.made == {"root": demo.dir, "n": 4, "tier": "standard"}
    assert "requesting a 3-of-4 key at node 2 (threshold 2: any 3 of the 4 nodes sign)" in out.out
    assert "signing 'hello from tssnode' (sha256) via node 4" in out.out
    assert "the signature verifies against the key's public key (checked offline" in out.out
    assert all(n.stopped for n in nodes)
    assert not demo.dir.exists()  # removed after a good run
    assert "Traceback" not in out.err


def test_a_failed_keygen_ends_with_a_message(demo, capsys):
    nodes = demo(SyncNode(fail="Π^mod proof of party 4 does not verify"))
    code = cluster.cmd_cluster(["demo", "4"])
    out = capsys.readouterr()
    assert code == 1
    assert "tssnode cluster demo: keygen: the key failed: Π^mod proof of party 4" in out.err
    assert "Traceback" not in out.err + out.out
    assert all(n.stopped for n in nodes)
    assert demo.dir.exists() and f"node logs are in {demo.dir}" in out.err


def test_a_refused_request_ends_with_a_message(demo, capsys):
    fake = SyncNode()
    fake.node.broken_routes["/sign"] = (409, {"error": "key 0a0b is failed, not active"})
    nodes = demo(fake)
    code = cluster.cmd_cluster(["demo"])
    out = capsys.readouterr()
    assert code == 1
    assert out.err.startswith(
        "tssnode cluster demo: signing: key 0a0b is failed, not active (HTTP 409)\n"
    )
    assert "Traceback" not in out.err and all(n.stopped for n in nodes)


def test_the_demo_threshold_matches_the_readme():
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    t = cluster.demo_threshold(4)  # (the bridge key of `make run` and `make demo` too)
    assert t == 2
    assert f"a {t + 1}-of-4 bridge key (threshold {t}: any {t + 1} of the 4 nodes" in readme
    assert "2-of-4" not in readme


def test_the_demo_is_never_the_example_network(monkeypatch):
    """`cluster demo` refuses --dir and never reads the example configs' ports."""
    assert cluster.cmd_cluster(["demo", "--dir", "/tmp"]) == 2
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "cluster demo" in recipe and "cluster up" not in recipe and "down" not in recipe
