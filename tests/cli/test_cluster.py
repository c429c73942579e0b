"""The command line against one real local network (four `tssnode run` processes at the
insecure-test tier, the module's only cluster), brought up and down by `tssnode cluster
up|down --dir`: `tssnode cluster status` reports each node and exits 1 with a node down,
killed or stopped; keygen, sign and verify as an operator runs them, each in its own
process (issue 14)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tssnode import launch
from tssnode.cli import cluster as cluster_cli
from tssnode.cli import configs
from tssnode.testing.cluster import NodeProc, make_cluster, wait_for


@dataclass
class Cluster:
    root: Path
    nodes: list[NodeProc]  # configs and identities; the processes are `cluster up`'s
    up_output: str

    def pid(self, i: int) -> int:
        return int((self.nodes[i].data_dir / "node.pid").read_text())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Four nodes started by `tssnode cluster up --dir` (detached, as `make run` starts
    its own) and stopped by `tssnode cluster down --dir`; whatever is left is killed."""
    root = tmp_path_factory.mktemp("cli-cluster")
    nodes = make_cluster(root, 4, vault={"insecure_local_key": True})
    pids: list[int] = []
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = cluster_cli.cmd_cluster(["up", "--dir", str(root)])
        pids = [int((n.data_dir / "node.pid").read_text()) for n in nodes]
        assert code == 0, out.getvalue()
        clients = [n.client() for n in nodes]
        try:
            wait_for(
                lambda: all(c.get("/status")["peers_connected"] == 3 for c in clients),
                "every node connected",
            )
        finally:
            for c in clients:
                c.http.close()
        yield Cluster(root, nodes, out.getvalue())
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            cluster_cli.cmd_cluster(["down", "--dir", str(root)])
        for pid in pids:  # not our children (`cluster up` detaches them): signal only
            if launch.alive(pid):
                os.kill(pid, signal.SIGKILL)


def tssnode(*argv: str, stderr_tty: bool = False) -> tuple[int, str, str]:
    """`tssnode ARGV` in a process of its own; stderr a pipe, or a terminal."""
    env = {k: v for k, v in os.environ.items() if k != configs.CONFIG_ENV}
    if not stderr_tty:
        command = launch.python_argv("tssnode.cli", *argv)
        done = launch.run(Path("tssnode"), argv=command, timeout=300, env=env)
        return done.returncode, done.stdout.decode(), done.stderr.decode()
    leader, follower = pty.openpty()
    with launch.start_piped(
        "tssnode.cli", *argv, stdin=subprocess.DEVNULL, stderr=follower, env=env
    ) as proc:
        os.close(follower)
        out, _ = proc.communicate(timeout=300)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")


def status(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> tuple[int, str]:
    code = cluster_cli.cmd_cluster(["status", "--dir", str(root), *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def row(out: str, name: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.startswith(f"{name} "))


def test_cluster_up_says_where_each_api_is(cluster):
    for node in cluster.nodes:
        assert f"node{node.index}: started (pid " in cluster.up_output
        assert f"node{node.index}: API {node.api_url} answers" in cluster.up_output
    assert "http://http" not in cluster.up_output
    for node in cluster.nodes:  # the node's own start-up line: one scheme
        log = (node.data_dir / "node.log").read_text()
        assert f"ready, API on {node.api_url}\n" in log and "http://http" not in log
    assert f"console: tssnode console --config {cluster.nodes[0].config}" in cluster.up_output
    with contextlib.redirect_stdout(io.StringIO()) as again:
        assert cluster_cli.cmd_cluster(["up", "--dir", str(cluster.root)]) == 0
    assert f"node1: already running (pid {cluster.pid(0)})" in again.getvalue()


def test_status_of_a_running_network(cluster, capsys):
    code, out = status(capsys, cluster.root)
    assert code == 0, out
    header = out.splitlines()[0].split()
    assert header == [
        "NODE", "STATE", "PID", "PEER", "ID", "P2P", "API", "HEIGHT", "VIEW", "LAST", "BLOCK"
    ]  # fmt: skip
    for i, node in enumerate(cluster.nodes):
        _, state, pid, peer, p2p, api, height, view, *age = row(out, f"node{node.index}")
        assert state == "running" and int(pid) == cluster.pid(i)
        assert peer == node.peer_id
        assert p2p == node.p2p.rsplit("/", 1)[1] and api == node.api_url.rsplit(":", 1)[1]
        assert int(height) >= 0 and int(view) >= 0
        assert age[-1] == "ago"
    assert "down" not in out
    code, out = status(capsys, cluster.root, "--json")
    states = json.loads(out)
    assert code == 0 and [s["state"] for s in states] == ["running"] * 4
    assert [s["peer_id"] for s in states] == [n.peer_id for n in cluster.nodes]


def test_keygen_sign_verify_as_an_operator_runs_them(cluster):
    nodes = cluster.nodes
    code, out, err = tssnode(
        "keygen", "--config", str(nodes[1].config), "--threshold", "1", "--json"
    )
    assert code == 0, err
    assert err == ""  # stderr is a pipe: no progress
    key = json.loads(out)
    assert key["status"] == "active" and key["threshold"] == 1
    code, out, err = tssnode(
        "sign",
        "--config",
        str(nodes[3].config),
        "--key-id",
        key["key_id"],
        "--message",
        "hello",
        "--json",
        stderr_tty=True,
    )
    assert code == 0, err
    sig = json.loads(out)  # stdout is the result alone, with the progress on the terminal
    assert sig["status"] == "done"
    assert f"waiting for signature {sig['signature_id'][:12]}…" in err
    sig_file = cluster.root / "sig.json"
    sig_file.write_text(out)
    verify = ["verify", "--public-key", key["public_key"], "--signature-json", str(sig_file)]
    code, out, err = tssnode(*verify, "--message", "hello")
    assert code == 0 and out.startswith("valid: "), out + err
    code, out, err = tssnode(*verify, "--message", "hullo")
    assert code == 1 and out.startswith("INVALID: ")
    code, out, _ = tssnode("signatures", "--config", str(nodes[0].config))
    assert code == 0 and out.splitlines()[1].startswith(sig["signature_id"])
    code, out, _ = tssnode("blocks", "--config", str(nodes[0].config), "--limit", "5")
    heights = [int(line.split()[0]) for line in out.splitlines()[1:]]
    assert code == 0 and heights == sorted(heights, reverse=True) and len(heights) == 5
    assert not re.search(r"\bNone\b|\bFalse\b|\bTrue\b|[{}\[\]]", out)


def test_a_killed_node_is_reported_crashed(cluster, capsys):
    pid = cluster.pid(2)
    os.kill(pid, signal.SIGKILL)  # no chance to record an exit
    wait_for(lambda: not launch.alive(pid), "node3 gone", timeout=30)
    code, out = status(capsys, cluster.root)
    assert code == 1
    assert row(out, "node3")[:3] == ["node3", "crashed", str(pid)]
    assert f"node3: pid {pid} is gone and left no exit code" in out
    assert [row(out, f"node{i}")[1] for i in (1, 2, 4)] == ["running"] * 3
    assert out.rstrip().endswith("1 of 4 nodes down: node3")


def test_cluster_down_stops_the_rest(cluster, capsys):
    pids = [cluster.pid(i) for i in (0, 1, 3)]
    assert cluster_cli.cmd_cluster(["down", "--dir", str(cluster.root)]) == 0
    out = capsys.readouterr().out
    assert "node3: was not running" in out
    for i, pid in zip((1, 2, 4), pids, strict=True):
        assert f"node{i}: stopped (pid {pid})" in out
    code, out = status(capsys, cluster.root)
    assert code == 1
    assert [row(out, f"node{i}")[1] for i in (1, 2, 3, 4)] == ["stopped"] * 4
    assert "node1: not running; its last run exited with code 0" in out
