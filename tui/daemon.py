"""`tssnode console --config FILE`: find the node a config describes, and start it as a
background daemon if its API does not answer.

This is the only part of the console that knows about node configs and processes; it
runs before the app starts (blocking is fine here). The node is started the one way
nodes are (`tssnode.launch`: `python -m tssnode.cli run --config FILE`), as nobody's
child in a session of its own, output to `<data dir>/node.log`, and left running when the
console quits.
It inherits the console's environment, so a `TSSNODE_PASSPHRASE` set there reaches it; a
node that finds no vault passphrase (or a wrong one) exits at once, and its log tail is
the error shown.

The config file is read by the node's own parser (`tssnode.config.NodeConfig.load`), so
the console takes exactly the configs a node takes, and refuses the others with the
node's own message (`DaemonError`). From it the console uses `[api] listen` (default
127.0.0.1:8600), `[node] data_dir` and `[ledger] genesis` (default
`<data dir>/genesis.toml`: the console reads the validators' names there). The token is
`<data dir>/api.token`; a node started here leaves its pid in `<data dir>/node.pid`, as
`tssnode cluster` does.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tssnode import config as node_config
from tssnode import launch


class DaemonError(Exception):
    """The node could not be found or started."""


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    api_url: str
    data_dir: Path
    genesis: Path | None = None  # [ledger] genesis, if the config names one

    @property
    def name(self) -> str:
        """The config's name: 'node1' for configs/local/node1.toml."""
        return self.path.stem

    @property
    def genesis_file(self) -> Path:
        """Where the node's genesis is: [ledger] genesis, or genesis.toml in the data
        directory (as `tssnode.config` has it)."""
        return self.genesis or self.data_dir / "genesis.toml"

    @property
    def screenshot_dir(self) -> Path:
        return self.data_dir / "screenshots"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "api.token"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "node.log"


def read_config(path: Path) -> NodeConfig:
    """What the console needs of the node config at `path`, read as the node reads it."""
    try:
        config = node_config.NodeConfig.load(path)
    except node_config.ConfigError as exc:
        raise DaemonError(f"cannot read node config {exc}") from None
    url = f"http://{config.api.address}"
    return NodeConfig(path, url, config.data_dir, config.ledger.genesis)


def answers(url: str) -> bool:
    """Whether a node API answers `GET /health/live` at `url` (`/health` itself says 503
    while the ledger is stalled or below quorum, which is still a node that answers)."""
    try:
        return httpx.get(f"{url}/health/live", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def ensure_running(
    config_path: Path,
    *,
    start: bool = True,
    timeout: float = 60.0,
    probe: Callable[[str], bool] = answers,
    argv: Sequence[str] | None = None,
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
) -> NodeConfig:
    """The node's config, once its API answers and its token file exists; starts the
    node first if needed (`tssnode.launch.start_orphan`; `argv` replaces its command line,
    for tests). Raises DaemonError if it cannot be had within `timeout`, or at once, with
    its log's tail, if the node exits."""
    config = read_config(config_path)
    if probe(config.api_url):
        return config
    if not start:
        raise DaemonError(f"no node answers at {config.api_url}")
    say(f"starting the node ({config_path}); its log: {config.log_file}")
    try:
        pid = launch.start_orphan(config_path, config.log_file, argv=argv)
    except launch.LaunchError as exc:
        raise DaemonError(str(exc)) from None
    launch.write_atomic(config.data_dir / launch.PIDFILE, f"{pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe(config.api_url) and config.token_file.exists():
            return config
        if not launch.alive(pid):
            record = launch.exit_record(config.data_dir, pid)
            how = "exited" if record is None else launch.describe_exit(int(record.get("code", 1)))
            raise DaemonError(f"the node {how}:\n{_tail(config.log_file)}")
        time.sleep(0.2)
    raise DaemonError(
        f"the node (pid {pid}) did not answer at {config.api_url} within {timeout:.0f} s;"
        f" it is left running, see {config.log_file}"
    )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
