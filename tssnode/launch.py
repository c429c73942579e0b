"""The one way the project's processes are started. A node: `python -m tssnode.cli run
--config FILE` with this interpreter, its output (stdout and stderr) appended to a log
file, stdin closed.

Who starts nodes, and how each holds the process:
- `start(...)`: a child of this process, to signal and wait on (the multi-node tests, the
  fault runner and the benchmarks, through `tssnode.testing.cluster`); `prefix` runs it
  under another command, e.g. `ip netns exec NAME` (which execs, so the pid and its
  signals stay the node's). With no log its stdout and stderr are pipes of their own,
  for a caller that reads what the node said (`communicate`);
- `run(...)`: a child run to its exit, its exit code, stdout and stderr returned (the
  tests of a node that stops at start-up);
- `start_orphan(...)`: nobody's child, in a session of its own: a shell starts the node in
  the background and exits at once. It outlives its starter and the terminal, leaves no
  zombie, and `alive(pid)` tells whether the node itself still runs (`tssnode cluster up`,
  and the console, which watches it until its API answers and leaves it running).

A node keeps its pid in `<data dir>/node.pid` while it runs and leaves how it ended in
`<data dir>/node.exit` (`{"pid", "code", "time"}`; `tssnode run` writes both); `alive`,
`read_pid` and `exit_record` read them back for whoever started it.

`python_argv` is the same command line for another of the project's entry points (`python
-m MODULE`). One that its starter talks to through pipes (stdin a pipe: closing it asks
the process to stop; stdout a pipe it answers on; stderr where the starter says) starts
with `start_piped` (the loopback replicas of tests/ledger), or, under trio, with
`trio.lowlevel.open_process(p.argv, **p.options)` of `p = piped(...)`: `piped` is the
command line and the whole `Popen` wiring, and trio only holds the process (the network
harness of `tssnode.testing.netcluster`, which reads its stdout in trio). A `tssnode run`
that is tested through its own output starts with `start` (no log) or `run`, not with a
`Popen` of `node_argv` (tests/test_launch.py holds every file, tests included, to this).

Standard library only: every layer, the console included, may use it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

#: the module `python -m` runs to start a node
NODE_MODULE = "tssnode.cli"
#: in a data directory: the running node's pid, and how its last run ended
PIDFILE = "node.pid"
EXITFILE = "node.exit"


class LaunchError(Exception):
    """The node process could not be started (not: it started and then failed)."""


def python_argv(module: str, *args: str, prefix: Sequence[str] = ()) -> list[str]:
    """`[*prefix, <this python>, "-m", module, *args]`."""
    return [*prefix, sys.executable, "-m", module, *args]


def node_argv(config: Path, *, prefix: Sequence[str] = ()) -> list[str]:
    """The command line of a node that runs with the config at `config`."""
    return python_argv(NODE_MODULE, "run", "--config", str(config), prefix=prefix)


def start(
    config: Path,
    log: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
    argv: Sequence[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the node of `config` as a child, its output appended to `log` (its folder is
    made), or with `log` None to pipes of its own (`stdout`, `stderr`); `env` replaces the
    environment (default: ours). `argv` replaces the node's command line (a stand-in in
    tests)."""
    command = list(argv) if argv is not None else node_argv(config, prefix=prefix)
    if log is None:
        return _popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return _popen(command, stdout=out.fileno(), stderr=subprocess.STDOUT, env=env)


def _popen(
    command: list[str], *, stdout: int, stderr: int, env: Mapping[str, str] | None
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=None if env is None else dict(env),
            close_fds=True,
        )
    except OSError as exc:
        raise LaunchError(f"could not start {command[0]}: {exc.strerror or exc}") from None


def run(
    config: Path,
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
    argv: Sequence[str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run the node of `config` (as `start` does, with no log) to its exit and return its
    exit code, stdout and stderr. A node still running after `timeout` seconds is killed
    and `subprocess.TimeoutExpired` raised (as `subprocess.run` does)."""
    proc = start(config, None, env=env, prefix=prefix, argv=argv)
    with proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


class PipedOptions(TypedDict):
    """The `Popen` (or `trio.lowlevel.open_process`) options of a piped process."""

    stdin: int
    stdout: int
    stderr: int
    env: dict[str, str] | None
    cwd: str | None
    pass_fds: tuple[int, ...]
    close_fds: bool


class Piped(NamedTuple):
    """A piped process's command line and options: `Popen(p.argv, **p.options)`, or
    `trio.lowlevel.open_process(p.argv, **p.options)`."""

    argv: list[str]
    options: PipedOptions


def piped(
    module: str,
    *args: str,
    stdin: int = subprocess.PIPE,
    stderr: int = subprocess.PIPE,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    pass_fds: Sequence[int] = (),
) -> Piped:
    """`python -m module ARGS` spoken to through pipes: stdin a pipe (or `stdin`, e.g.
    `subprocess.DEVNULL`), stdout a pipe, stderr a pipe or `stderr` (a file descriptor);
    `env` replaces the environment (default: ours); `pass_fds` stay open in the child
    (a listening socket handed over). No other descriptor is inherited."""
    options: PipedOptions = {
        "stdin": stdin,
        "stdout": subprocess.PIPE,
        "stderr": stderr,
        "env": None if env is None else dict(env),
        "cwd": None if cwd is None else str(cwd),
        "pass_fds": tuple(pass_fds),
        "close_fds": True,
    }
    return Piped(python_argv(module, *args), options)


def start_piped(
    module: str,
    *args: str,
    stdin: int = subprocess.PIPE,
    stderr: int = subprocess.PIPE,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[str]:
    """Start `python -m module ARGS` as a child spoken to in lines of text through pipes
    (see `piped`)."""
    command, options = piped(
        module, *args, stdin=stdin, stderr=stderr, env=env, cwd=cwd, pass_fds=pass_fds
    )
    try:
        return subprocess.Popen(command, **options, text=True)
    except OSError as exc:
        raise LaunchError(f"could not start {module}: {exc.strerror or exc}") from None


#: `sh -c` script of `start_orphan`: $1 the log, the rest the command; prints the pid
_ORPHAN = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'


def start_orphan(
    config: Path,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Start the node of `config` as nobody's child, its output appended to `log`, in a
    session of its own; returns its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    command = list(argv) if argv is not None else node_argv(config)
    try:
        started = subprocess.run(
            ["/bin/sh", "-c", _ORPHAN, "sh", str(log), *command],
            capture_output=True,
            text=True,
            env=None if env is None else dict(env),
            start_new_session=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LaunchError(f"could not start {config}: {exc}") from None
    pid = started.stdout.strip()
    if started.returncode != 0 or not pid.isdigit():
        raise LaunchError(f"could not start {config}: {started.stderr.strip() or pid}")
    return int(pid)


# == a node's process files ===================================================================


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step (a reader sees the old or the new text)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or None (no file, or not a pid)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def alive(pid: int, program: bytes = b"tssnode", *, in_argv0: bool = False) -> bool:
    """Whether `pid` is a live process (not a zombie) that is a tssnode (or `program`: in
    its command line, or with `in_argv0` in its first word): a pid the system gave to
    another program since is not ours."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    except OSError:
        return False
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return proc.exists() or not Path("/proc/self").exists()  # no /proc: trust kill(0)
    state = stat.rsplit(")", 1)[-1].split()[:1]
    if state and state[0] in ("Z", "X"):
        return False
    return program in (cmdline.split(b"\0")[0] if in_argv0 else cmdline)


def exit_record(data_dir: Path, pid: int | None = None) -> dict[str, Any] | None:
    """How the node of `data_dir` said its last run ended (of process `pid`, if given),
    or None if it left no word (never ran, or was killed: SIGKILL, OOM)."""
    try:
        record = json.loads((data_dir / EXITFILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or (pid is not None and record.get("pid") != pid):
        return None
    return record


def describe_exit(code: int) -> str:
    """'exited with code 3', 'killed by SIGTERM' (a negative code: a signal's number)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"
