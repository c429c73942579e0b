"""`tssnode.launch`, the one way node processes are started: the command line, the log,
the environment, and the three ways of holding the process (real processes; a stand-in
command where a whole node is not needed)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tssnode import launch


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_node_command_line():
    assert launch.node_argv(Path("n.toml")) == [
        sys.executable,
        "-m",
        "tssnode.cli",
        "run",
        "--config",
        "n.toml",
    ]
    prefixed = launch.node_argv(Path("n.toml"), prefix=["ip", "netns", "exec", "ns1"])
    assert prefixed[:5] == ["ip", "netns", "exec", "ns1", sys.executable]


def test_start_appends_output_to_the_log_with_the_given_environment(tmp_path):
    log = tmp_path / "deep" / "node.log"
    log.parent.mkdir()
    log.write_text("earlier run\n")
    script = "import os, sys; print(os.environ['MARK'], flush=True); print('err', file=sys.stderr)"
    proc = launch.start(
        tmp_path / "n.toml", log, env={"MARK": "m-42"}, argv=[sys.executable, "-c", script]
    )
    assert proc.wait(20) == 0
    assert log.read_text().splitlines() == ["earlier run", "m-42", "err"]


def test_start_is_our_child(tmp_path):
    child = launch.start(
        tmp_path / "n.toml", tmp_path / "a.log", argv=[sys.executable, "-c", "exit(5)"]
    )
    assert child.wait(20) == 5  # ours to wait on: only a parent gets the exit code


def test_a_command_that_cannot_run_is_a_launch_error(tmp_path):
    with pytest.raises(launch.LaunchError, match="could not start /nonexistent/tssnode"):
        launch.start(tmp_path / "n.toml", tmp_path / "n.log", argv=["/nonexistent/tssnode"])


def test_start_orphan_is_nobodys_child_and_outlives_the_call(tmp_path):
    log = tmp_path / "node.log"
    script = "import os, time; print('up', os.getpid(), flush=True); time.sleep(30)"
    pid = launch.start_orphan(tmp_path / "n.toml", log, argv=[sys.executable, "-c", script])
    try:
        os.kill(pid, 0)  # runs
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # and is not ours to reap
        assert os.getsid(pid) != os.getsid(0)
        _wait_for(lambda: log.exists() and log.read_text().strip() == f"up {pid}")
    finally:
        os.kill(pid, signal.SIGKILL)


def test_start_orphan_starts_a_real_node_that_reports_its_config_error(tmp_path):
    """The real command line: a node given a config that does not exist says so in its log
    and exits (nothing else is needed to tell that the node itself ran)."""
    log = tmp_path / "node.log"
    pid = launch.start_orphan(tmp_path / "missing.toml", log)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    _wait_for(gone, timeout=60)
    assert "missing.toml" in log.read_text()


def test_exit_records_and_their_words(tmp_path):
    assert launch.exit_record(tmp_path) is None  # never ran
    (tmp_path / launch.EXITFILE).write_text('{"pid": 41, "code": -9, "time": 1.0}')
    assert launch.exit_record(tmp_path) == {"pid": 41, "code": -9, "time": 1.0}
    assert launch.exit_record(tmp_path, pid=41) is not None
    assert launch.exit_record(tmp_path, pid=42) is None  # another run's word
    (tmp_path / launch.EXITFILE).write_text("[1, 2]")
    assert launch.exit_record(tmp_path) is None
    assert launch.describe_exit(3) == "exited with code 3"
    assert launch.describe_exit(-9) == "killed by SIGKILL"
    assert launch.describe_exit(-200) == "killed by signal 200"


def test_alive_is_false_for_a_zombie_and_for_another_program(tmp_path):
    marked = launch.start(
        tmp_path / "n.toml",
        tmp_path / "a.log",
        argv=[sys.executable, "-c", "import time; time.sleep(30)  # tssnode"],
    )
    other = launch.start(
        tmp_path / "n.toml",
        tmp_path / "b.log",
        argv=[sys.executable, "-c", "import time; time.sleep(30)"],
    )
    try:
        _wait_for(lambda: launch.alive(marked.pid))
        assert not launch.alive(other.pid)  # a pid now held by something else
        marked.kill()
        _wait_for(lambda: not launch.alive(marked.pid))  # a zombie until reaped
    finally:
        for proc in (marked, other):
            proc.kill()
            proc.wait(10)
    (tmp_path / launch.PIDFILE).write_text(f"{marked.pid}\n")
    assert launch.read_pid(tmp_path / launch.PIDFILE) == marked.pid
    (tmp_path / launch.PIDFILE).write_text("-3")
    assert launch.read_pid(tmp_path / launch.PIDFILE) is None


def test_no_other_module_builds_a_node_command_line():
    """One launcher: a product module that spells `-m tssnode…` itself, or opens a process
    of its own for a node, starts nodes a second way."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in [*root.joinpath("tssnode").rglob("*.py"), *root.joinpath("tui").rglob("*.py")]:
        if path.name == "launch.py" and path.parent.name == "tssnode":
            continue
        text = path.read_text()
        if '"-m", "tssnode' in text or "sys.executable" in text:
            offenders.append(str(path.relative_to(root)))
    assert offenders == []
