"""`tssnode.launch`, the one way node processes are started: the command line, the log,
the environment, and the three ways of holding the process (real processes; a stand-in
command where a whole node is not needed)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
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


def test_start_without_a_log_gives_the_output_in_pipes_of_its_own(tmp_path):
    script = "import sys; print('out'); print('err', file=sys.stderr); exit(4)"
    proc = launch.start(tmp_path / "n.toml", None, argv=[sys.executable, "-c", script])
    out, err = proc.communicate(timeout=20)
    assert (proc.returncode, out, err) == (4, b"out\n", b"err\n")
    assert not list(tmp_path.iterdir())  # no log anywhere


def test_run_runs_to_the_exit_and_returns_the_code_and_the_output(tmp_path):
    script = "import os, sys; print(os.environ['MARK']); print('err', file=sys.stderr); exit(3)"
    done = launch.run(
        tmp_path / "n.toml", env={"MARK": "m-7"}, timeout=20, argv=[sys.executable, "-c", script]
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, b"m-7\n", b"err\n")
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        launch.run(tmp_path / "n.toml", timeout=0.5, argv=["sleep", "30"])
    assert time.monotonic() - started < 10  # killed, not waited for


def test_run_runs_a_real_node_that_reports_its_config_error(tmp_path):
    done = launch.run(tmp_path / "missing.toml", timeout=60)
    assert done.returncode != 0 and b"missing.toml" in done.stderr


def test_piped_is_a_command_line_and_its_pipes(tmp_path):
    command, options = launch.piped(
        "tssnode.testing.netharness", "--config", "n.toml", stderr=7, env={"A": "1"},
        cwd=tmp_path, pass_fds=[9],
    )  # fmt: skip
    assert command == launch.python_argv("tssnode.testing.netharness", "--config", "n.toml")
    assert options == {
        "stdin": subprocess.PIPE,
        "stdout": subprocess.PIPE,
        "stderr": 7,
        "env": {"A": "1"},
        "cwd": str(tmp_path),
        "pass_fds": (9,),
        "close_fds": True,
    }


def test_start_piped_speaks_in_lines_through_stdin_and_stdout(tmp_path):
    proc = launch.start_piped("json.tool", "--compact", cwd=tmp_path)  # a stdlib module
    out, err = proc.communicate('{"a": [1, 2]}', timeout=20)  # closing stdin ends it
    assert (proc.returncode, out, err) == (0, '{"a":[1,2]}\n', "")
    with pytest.raises(launch.LaunchError, match=r"could not start json\.tool"):
        launch.start_piped("json.tool", cwd=tmp_path / "nowhere")


# -- the one launcher ---------------------------------------------------------------------------

#: a process started: subprocess, trio, asyncio, os
_STARTS = re.compile(
    r"\b(?:Popen|subprocess\.(?:run|call|check_call|check_output)|open_process|run_process"
    r"|create_subprocess_(?:exec|shell)|os\.(?:system|exec\w*|spawn\w*|posix_spawn\w*))\("
)
#: a project entry point's command line spelled out: `"-m", "tssnode…"` (or tests…, tui…)
_SPELLED = re.compile(r"""["']-m["']\s*,\s*["'](?:tssnode|tests|tui)\b""")
#: a command line of the launcher's, to be started by it
_BUILT = re.compile(r"\b(?:node_argv|python_argv)\(")

SPELLS = "spells a project command line"
STARTS_ITS_OWN = "starts a launcher's command line itself"
SYS_EXECUTABLE = "runs this python itself"

#: Every exception, with why it is allowed. A fixed file must leave this list.
ALLOWED = {
    ("tests/test_launch.py", SPELLS): "the expected value of `node_argv`, spelled out",
}


def test_every_project_process_starts_through_the_launcher():
    """One launcher: a module that spells `-m tssnode…` (or `-m tests…`) itself, or hands a
    command line of `node_argv`/`python_argv` to a process start of its own, starts the
    project's processes a second way; a product module that runs `sys.executable` too. The
    tests are held to it as well: stand-ins (`python -c`) and other programs are theirs to
    start, the project's entry points are not."""
    root = Path(__file__).resolve().parents[1]
    found: set[tuple[str, str]] = set()
    for top in ("tssnode", "tui", "tests", "scripts"):
        for path in root.joinpath(top).rglob("*.py"):
            name = path.relative_to(root).as_posix()
            if name == "tssnode/launch.py":
                continue
            text = path.read_text()
            if _SPELLED.search(text):
                found.add((name, SPELLS))
            if _BUILT.search(text) and _STARTS.search(text):
                found.add((name, STARTS_ITS_OWN))
            if top != "tests" and "sys.executable" in text:
                found.add((name, SYS_EXECUTABLE))
    assert sorted(found - ALLOWED.keys()) == [], "start these through tssnode.launch"
    assert sorted(ALLOWED.keys() - found) == [], "these are fixed: take them off ALLOWED"


def test_the_guard_sees_each_way_of_starting_a_second_way():
    spelled = """[sys.executable,\n    "-m",\n    'tssnode.cli', "run"]"""
    assert _SPELLED.search(spelled) and _SPELLED.search('"-m", "tssnode.testing.loopback"')
    assert not _SPELLED.search('[sys.executable, "-m", "pip", "wheel"]')
    # each a call only once formatted: this file itself starts nothing a second way
    for start in ("subprocess.Popen", "subprocess.run", "trio.lowlevel.open_process"):
        assert _STARTS.search(f"x = {start}({'launch.node_argv'}(config))")
    for start in ("await trio.run_process", "os.execv", "asyncio.create_subprocess_exec"):
        assert _STARTS.search(f"{start}(argv)")
    assert not _STARTS.search("launch.start(config, None)")
    assert not _STARTS.search("launch.start_piped('json.tool')")
