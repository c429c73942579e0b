"""The node processes of a data directory as the command line sees them: the pid and
exit files, whether a pid is a live tssnode, a node's state as `tssnode cluster status`
reports it, a node started detached (`cluster up`) and the wait for its API, and a
detached process stopped by its pid (`cluster down`)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tssnode import launch
from tssnode.api.client import ApiClient, ApiError, ApiUnavailable, read_token
from tssnode.cli.common import CommandError, when
from tssnode.cli.configs import api_url
from tssnode.config import NodeConfig
from tssnode.launch import PIDFILE, alive, describe_exit, exit_record, read_pid, write_atomic


def node_log(cfg: NodeConfig) -> Path:
    """Where `cluster up` appends the node's output (the path without `..` in it)."""
    return Path(os.path.normpath(cfg.data_dir / "node.log"))


def _p2p_port(cfg: NodeConfig) -> int | None:
    tail = cfg.net.listen.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _peer_id_on_disk(data_dir: Path) -> str | None:
    """The node's peer id from its identity file (public), when the node cannot say it."""
    try:
        from tssnode.net import identity

        return identity.load(data_dir).peer_id_text
    except Exception:  # no identity yet, or one this user cannot read
        return None


@dataclass
class NodeState:
    """One node of a local network as `tssnode cluster status` reports it."""

    name: str
    config: str
    state: str  # running | unresponsive | stopped | crashed
    pid: int | None
    peer_id: str | None
    p2p_port: int | None
    api_port: int
    api: str
    height: int | None = None
    view: int | None = None
    last_block_age_s: float | None = None
    detail: str = ""
    log: str = ""

    @property
    def up(self) -> bool:
        return self.state == "running"


def node_state(path: Path, *, timeout: float = 2.0) -> NodeState:
    cfg = NodeConfig.load(path)
    data_dir = cfg.data_dir
    pid = read_pid(data_dir / PIDFILE)
    st = NodeState(
        name=path.stem,
        config=str(path),
        state="stopped",
        pid=pid,
        peer_id=None,
        p2p_port=_p2p_port(cfg),
        api_port=cfg.api.port,
        api=api_url(cfg),
        log=str(node_log(cfg)),
    )
    if pid is None:
        record = exit_record(data_dir)
        if record is not None:
            code = int(record.get("code", 0))
            st.detail = (
                f"not running; its last run {describe_exit(code)} at {when(record.get('time'))}"
            )
        elif not (data_dir / "node.log").exists():
            st.detail = "never started"
    elif alive(pid):
        try:
            with ApiClient(st.api, read_token(data_dir / "api.token"), timeout=timeout) as api:
                status = api.get("/status")
            st.state = "running"
            st.peer_id = status.get("peer_id")
            st.height, st.view = status.get("height"), status.get("view")
            st.last_block_age_s = status.get("last_block_age_s")
            if status.get("liveness"):
                st.detail = str(status["liveness"])
        except (ApiError, ApiUnavailable, OSError) as exc:
            st.state = "unresponsive"
            st.detail = f"pid {pid} runs but its API does not answer at {st.api}"
            if isinstance(exc, ApiError):
                st.detail = f"pid {pid} runs but its API answers {exc.status}: {exc.message}"
    else:
        record = exit_record(data_dir)
        if record is not None and record.get("pid") == pid:
            code = int(record.get("code", 1))
            st.state = "stopped" if code == 0 else "crashed"
            st.detail = f"{describe_exit(code)} at {when(record.get('time'))}"
        else:
            st.state = "crashed"
            st.detail = f"pid {pid} is gone and left no exit code (killed, e.g. SIGKILL or OOM)"
    if st.peer_id is None:
        st.peer_id = _peer_id_on_disk(data_dir)
    return st


def start_daemon(config_path: Path, log_path: Path | None = None) -> int:
    """Start `tssnode run --config` detached, its output appended to its log; returns
    its pid. The node is nobody's child here (`launch.start_orphan`): it outlives this
    process and leaves no zombie to reap."""
    cfg = NodeConfig.load(config_path)
    try:
        pid = launch.start_orphan(config_path, log_path or cfg.data_dir / "node.log")
    except launch.LaunchError as exc:
        raise CommandError(str(exc)) from None
    write_atomic(cfg.data_dir / PIDFILE, f"{pid}\n")
    return pid


def wait_api(cfg: NodeConfig, timeout: float = 60.0, pid: int | None = None) -> bool:
    """Whether the node's API answers within `timeout` (False at once if `pid` exits)."""
    token = read_token(cfg.data_dir / "api.token")
    deadline = time.monotonic() + timeout
    with ApiClient(api_url(cfg), token, timeout=2.0) as api:
        while time.monotonic() < deadline:
            try:
                api.get("/status")
                return True
            except (ApiUnavailable, ApiError):
                if pid is not None and not alive(pid):
                    return False
                time.sleep(0.3)
    return False


def _log_tail(path: Path, lines: int = 5) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def stop_recorded(name: str, pid_file: Path, alive: Callable[[int], bool], wait: float) -> str:
    """Stops the detached process `pid_file` names, if it runs (SIGTERM, and up to `wait`
    seconds for it to end, `alive` telling; then SIGKILL), and removes the file; what
    happened, in words (`cluster down`)."""
    pid = read_pid(pid_file)
    if pid is None:
        said = f"{name}: not running"
    elif not alive(pid):
        said = f"{name}: was not running (pid {pid} is gone)"
    else:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
            said = f"{name}: did not stop within {wait:.0f} s; killed (pid {pid})"
        else:
            said = f"{name}: stopped (pid {pid})"
    pid_file.unlink(missing_ok=True)
    return said


def wait_started(
    pid: int, alive: Callable[[int], bool], ready: Callable[[], bool], log: Path, timeout: float
) -> str | None:
    """None once `ready()` while the detached process `pid` runs; else why not (it exited,
    or was not ready within `timeout` seconds), with the end of its `log`."""
    deadline = time.monotonic() + timeout
    while True:
        running = alive(pid)
        if running and ready():
            return None
        if not running or time.monotonic() > deadline:
            gone = "exited" if not running else f"did not answer within {timeout:.0f} s"
            if not running:
                _wait_gone(pid, 2.0)  # (what it writes on its way out is in its log then)
            return f"{gone} (log {log}):\n" + "\n".join(_log_tail(log, 10))
        time.sleep(0.1)


def _wait_gone(pid: int, grace: float) -> None:
    """Until `pid` has exited (gone, or a zombie), for at most `grace` seconds: `alive`
    may say no to a process that is still running another program (a wrapper script)."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            stat = (Path("/proc") / str(pid) / "stat").read_text()
        except OSError:
            return
        if stat.rsplit(")", 1)[-1].split()[:1] in (["Z"], ["X"]):
            return
        time.sleep(0.02)
