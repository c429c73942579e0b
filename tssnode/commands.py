"""The node's commands: init, run, vault, cluster, verify, and the clients of a running
node's API (status, validators, keys, keygen, sign, signatures, blocks). docs/cli.md has
every command with its options and output.

    tssnode init --data-dir DIR [--insecure-local-key]   identity and API token
    tssnode run [--config FILE]                          the headless daemon
    tssnode vault rekey [--config FILE] …                re-seal the vault
    tssnode cluster up|down|status|demo [N] [--dir DIR]  a local network on loopback
    tssnode status|validators|keys|signatures|blocks     read a node (API client)
    tssnode keygen|sign                                  ask a node (API client)
    tssnode verify --public-key HEX …                    check a signature, offline

A command that needs a node's config takes `--config FILE`, else `$TSSNODE_CONFIG`, else
`./tssnode.toml`; an API client also takes `--api URL --token-file PATH` instead. Results
go to stdout (with `--json`, exactly one JSON document); progress while waiting goes to
stderr, and only when stderr is a terminal. Exit codes: 0 success, 1 failure (a request
that failed, a node that is down, an invalid signature, an error), 2 bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import IO, Any

from tssnode import logs
from tssnode.api.client import ApiClient, ApiError, ApiUnavailable, get_or_none, read_token
from tssnode.config import ConfigError, NodeConfig
from tssnode.errors import TssError

#: a source checkout's root: where `configs/` is when tssnode runs from one without the
#: package data (`python -m tssnode.cli` in a checkout that was never installed)
ROOT = Path(__file__).resolve().parents[1]
#: the example configs shipped as package data (pyproject.toml maps `configs/` to it)
CONFIGS_PACKAGE = "tssnode.configs"
CONFIG_ENV = "TSSNODE_CONFIG"
DEFAULT_CONFIG = "tssnode.toml"
PIDFILE = "node.pid"
EXITFILE = "node.exit"
HASHES = ("sha256", "sha256d", "keccak256", "eip191")
#: seconds between two polls of a request's status
POLL_S = 0.25
#: the API's largest `limit` of GET /blocks
MAX_BLOCKS = 500


class CommandError(Exception):
    """What a command prints (after `tssnode COMMAND: `) before it exits with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def _setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    logs.setup(level, fmt)


# -- readable output ------------------------------------------------------------------------


def fmt(value: Any) -> str:
    """A value for people: `-` for nothing, yes/no, numbers without noise, lists and
    mappings spelled out (never Python's or JSON's notation)."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.3f}".rstrip("0")
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            text = fmt(v)
            parts.append(f"{k} ({text})" if isinstance(v, dict) and v else f"{k} {text}")
        return ", ".join(parts)
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def short(text: Any, head: int = 8, tail: int = 6) -> str:
    """`12D3KooW…dJd4bQ`: enough of an id to tell it apart."""
    if text is None or text == "":
        return "-"
    s = str(text)
    return s if len(s) <= head + tail + 1 else f"{s[:head]}…{s[-tail:]}"


def head(text: Any, n: int = 12) -> str:
    """The first `n` characters of an id (`4196784fadc0…`)."""
    s = fmt(text)
    return s if len(s) <= n else s[:n] + "…"


def duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"


def ago(seconds: Any) -> str:
    text = duration(seconds)
    return text if text == "-" else f"{text} ago"


def when(unix: Any) -> str:
    if not isinstance(unix, int | float) or isinstance(unix, bool):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix))


Row = tuple[str, str | list[str]]


def kv(rows: Sequence[Row]) -> str:
    """Label/value lines, aligned; a list value takes one line per item."""
    width = max((len(label) for label, _ in rows), default=0) + 2
    out = []
    for label, value in rows:
        items = value if isinstance(value, list) else [value]
        items = items or ["-"]
        out.append(f"{label:{width}}{items[0]}".rstrip())
        out += [f"{'':{width}}{item}".rstrip() for item in items[1:]]
    return "\n".join(out)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Columns aligned under their headers (those in `right` aligned right)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


class Progress:
    """One line on stderr that rewrites itself while a command waits, and disappears
    before the result is printed. Silent unless stderr is a terminal, so that nothing
    but the result reaches a pipe, a file or a log."""

    FRAMES = "|/-\\"

    def __init__(self, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.start = time.monotonic()
        self.frame = 0
        self.shown = False

    def update(self, text: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        line = f"{self.FRAMES[self.frame % len(self.FRAMES)]} {text} ({elapsed:.0f} s)"
        self.frame += 1
        width = shutil.get_terminal_size((100, 24)).columns - 1
        if len(line) > width:
            line = line[: width - 1] + "…"
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


# -- configs: the example network and discovery -----------------------------------------------


def example_configs(package: str = CONFIGS_PACKAGE) -> Traversable:
    """The example configs shipped with tssnode (`genesis.example.toml`, `local/node*.toml`):
    the package data `tssnode.configs` (an installed wheel, or an editable install), else
    the `configs/` of the checkout this module runs from."""
    try:
        found: Traversable | None = importlib.resources.files(package)
    except (ModuleNotFoundError, TypeError):
        found = None
    if found is not None and found.joinpath("local").joinpath("node1.toml").is_file():
        return found
    checkout = ROOT / "configs"
    if (checkout / "local" / "node1.toml").is_file():
        return checkout
    raise CommandError(
        f"tssnode's example configs are missing (neither the package data {package} nor "
        f"{checkout}): reinstall tssnode"
    )


def _checkout_local(configs: Traversable) -> Path | None:
    """`configs/local` as a directory of a source checkout (its data goes to the
    checkout's `.local/`), or None for configs installed with the package."""
    local = configs.joinpath("local")
    if isinstance(local, Path) and (local.parent.parent / "pyproject.toml").is_file():
        return local
    return None


def local_network_dir() -> Path:
    """Where an installed tssnode keeps its example network (`cluster up` without --dir):
    `$XDG_STATE_HOME/tssnode/local` (default `~/.local/state/tssnode/local`)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tssnode" / "local"


def _materialize(configs: Traversable, n: int, dest: Path) -> list[Path]:
    """Copies of the example node configs in `dest`, each with its data in `dest/nodeI`
    and the genesis in `dest/genesis.toml` (a copy already there is kept as it is)."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, n + 1):
        path = dest / f"node{i}.toml"
        paths.append(path)
        if path.exists():
            continue
        text = configs.joinpath("local").joinpath(f"node{i}.toml").read_text()
        text = re.sub(r"\A(?:#[^\n]*\n)+", "", text)  # the checkout's note on its paths
        text = re.sub(r"(?m)^data_dir\s*=.*$", f'data_dir = "node{i}"', text)
        text = re.sub(r"(?m)^genesis\s*=.*$", 'genesis = "genesis.toml"', text)
        header = (
            f"# Local network node {i}: a copy of tssnode's example config, made by `tssnode\n"
            f"# cluster up`. Its data is in node{i}/ next to this file, the genesis in\n"
            "# genesis.toml (written by `tssnode cluster up` from the nodes' identities).\n"
        )
        path.write_text(header + text)
    return paths


def local_configs(n: int = 4, *, create: bool = False) -> list[Path]:
    """The configs of the example local network's first `n` nodes: configs/local of the
    checkout, or (installed) copies of the packaged ones in `local_network_dir()`, made
    when `create`."""
    configs = example_configs()
    available = sum(
        1 for i in range(1, 100) if configs.joinpath("local").joinpath(f"node{i}.toml").is_file()
    )
    if not 1 <= n <= available:
        raise CommandError(f"the example network has {available} nodes (node1..node{available})")
    local = _checkout_local(configs)
    if local is not None:
        return [local / f"node{i}.toml" for i in range(1, n + 1)]
    dest = local_network_dir()
    if create:
        return _materialize(configs, n, dest)
    paths = [dest / f"node{i}.toml" for i in range(1, n + 1)]
    if not all(p.exists() for p in paths):
        raise CommandError(f"no local network in {dest} yet: `tssnode cluster up` makes one")
    return paths


def find_config(given: Path | None, environ: dict[str, str] | None = None) -> Path:
    """The node config to use: `given` (--config), else $TSSNODE_CONFIG, else
    ./tssnode.toml."""
    env = os.environ if environ is None else environ
    if given is not None:
        if not given.is_file():
            raise CommandError(f"no config file {given}", 2)
        return given
    named = env.get(CONFIG_ENV, "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise CommandError(f"{CONFIG_ENV}={named}: no such config file", 2)
        return path
    local = Path(DEFAULT_CONFIG)
    if local.is_file():
        return local
    raise CommandError(
        f"no node config: give --config FILE, set {CONFIG_ENV}, or put {DEFAULT_CONFIG} in "
        "the current directory",
        2,
    )


def load_config(given: Path | None) -> NodeConfig:
    path = find_config(given)
    try:
        return NodeConfig.load(path)
    except ConfigError as exc:
        raise CommandError(str(exc), 2) from None


def api_url(cfg: NodeConfig) -> str:
    """The node's API base URL: `http://host:port` (the config has host:port only)."""
    return f"http://{cfg.api.address}"


# -- init and run ---------------------------------------------------------------------------


def init_data_dir(data_dir: Path, *, local_key: bool = False) -> dict[str, str]:
    """Create the identity and API token of a data directory (idempotent). Never a vault
    key, unless `local_key`: then a random `vault.key` in the directory (mode 0600), which
    only a node with `[vault] insecure_local_key = true` accepts."""
    from tssnode.net import identity as identity_mod
    from tssnode.node.node import ensure_token

    ident, _ = identity_mod.load_or_create(data_dir)
    ensure_token(data_dir)
    info = {
        "data_dir": str(data_dir),
        "peer_id": ident.peer_id_text,
        "validator_key": ident.key.public_bytes().hex(),
    }
    if local_key:
        import secrets

        from tssnode.node.vaultkey import local_key_path, write_secret_file

        path = local_key_path(data_dir)
        if not path.exists():
            write_secret_file(path, secrets.token_urlsafe(32).encode() + b"\n", overwrite=False)
        info["vault_key"] = str(path)
    return info


def parser_init() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="tssnode init",
        description="create a node's data directory: its identity and API token. The vault "
        "passphrase is not kept there: give it to `tssnode run` in TSSNODE_PASSPHRASE or "
        "with [vault] passphrase_file / passphrase_command in the config.",
    )
    ap.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        metavar="DIR",
        help="the directory to create (or complete); an existing identity is kept",
    )
    ap.add_argument(
        "--insecure-local-key",
        action="store_true",
        help="also write a random vault key into the data directory (vault.key): for "
        "throw-away local nodes whose config sets [vault] insecure_local_key = true",
    )
    ap.add_argument(
        "--json", action="store_true", help="print one JSON object instead of lines of text"
    )
    return ap


def cmd_init(argv: Sequence[str]) -> int:
    args = parser_init().parse_args(argv)
    info = init_data_dir(args.data_dir, local_key=args.insecure_local_key)
    if args.json:
        print_json(info)
        return 0
    rows: list[Row] = [
        ("data directory", info["data_dir"]),
        ("peer id", info["peer_id"]),
        ("validator key", info["validator_key"]),
        ("API token", str(args.data_dir / "api.token")),
    ]
    if "vault_key" in info:
        rows.append(("vault key", f"{info['vault_key']} (insecure: for throw-away nodes)"))
    print(kv(rows))
    return 0


def parser_run() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="tssnode run",
        description="run a node headless until SIGINT or SIGTERM. Its pid is kept in "
        f"<data dir>/{PIDFILE} and its exit code in <data dir>/{EXITFILE} (what "
        "`tssnode cluster status` reads).",
    )
    _config_arg(ap)
    ap.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="the lowest level logged (default INFO)",
    )
    ap.add_argument(
        "--log-format",
        default=os.environ.get("TSSNODE_LOG_FORMAT", "text"),
        choices=list(logs.FORMATS),
        help="text lines, or json: one object a line with session id, phase, round and "
        "height where they apply (default text, or $TSSNODE_LOG_FORMAT)",
    )
    return ap


def _config_arg(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"the node's config file (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG})",
    )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _record_exit(data_dir: Path, code: int) -> None:
    """Leave this process's exit code where `tssnode cluster status` looks; a clean exit
    also takes back its pid file."""
    with contextlib.suppress(OSError):
        record = {"pid": os.getpid(), "code": code, "time": time.time()}
        _write_atomic(data_dir / EXITFILE, json.dumps(record) + "\n")
        if code == 0 and _read_pid(data_dir / PIDFILE) == os.getpid():
            (data_dir / PIDFILE).unlink()


def cmd_run(argv: Sequence[str]) -> int:
    args = parser_run().parse_args(argv)
    _setup_logging(args.log_level, args.log_format)
    try:
        config = load_config(args.config)
    except CommandError as exc:
        print(f"tssnode run: {exc.message}", file=sys.stderr)
        return exc.code
    init_data_dir(config.data_dir)
    code = 1
    try:
        code = _run_node(config)
    finally:
        _record_exit(config.data_dir, code)
    return code


def _run_node(config: NodeConfig) -> int:
    import trio

    from tssnode.node.daemon import run_until_signal
    from tssnode.node.vaultkey import unlock

    try:
        # the store and the vault first: no passphrase, a wrong one or a running node
        # stops here, before the node joins the network
        unlocked = unlock(config)
    except TssError as exc:
        print(f"tssnode run: {exc}", file=sys.stderr)
        return 1
    try:
        # the database is ours now (no other node of this data directory runs)
        with contextlib.suppress(OSError):
            _write_atomic(config.data_dir / PIDFILE, f"{os.getpid()}\n")
        trio.run(run_until_signal, config, unlocked)
    except TssError as exc:
        print(f"tssnode run: {exc}", file=sys.stderr)
        return 1
    finally:
        unlocked.close()
    return 0


# -- the vault ------------------------------------------------------------------------------


def parser_vault() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="tssnode vault",
        description="rekey: seal every secret of a stopped node again under a new passphrase, "
        "in one atomic write (interrupted, the old passphrase keeps working). The current "
        "passphrase comes from where `tssnode run` takes it; the new one from "
        "TSSNODE_NEW_PASSPHRASE or one of the options.",
    )
    ap.add_argument("action", choices=["rekey"], help="rekey: re-seal under a new passphrase")
    _config_arg(ap)
    new = ap.add_mutually_exclusive_group()
    new.add_argument(
        "--new-passphrase-file",
        type=Path,
        metavar="PATH",
        help="a file whose contents, stripped, are the new passphrase (outside the data directory)",
    )
    new.add_argument(
        "--new-passphrase-command",
        metavar="CMD",
        help="run without a shell; its standard output, stripped, is the new passphrase",
    )
    new.add_argument(
        "--new-local-key",
        action="store_true",
        help="a new random vault.key in the data directory (insecure_local_key only)",
    )
    return ap


def cmd_vault(argv: Sequence[str]) -> int:
    args = parser_vault().parse_args(argv)
    try:
        config = load_config(args.config)
    except CommandError as exc:
        print(f"tssnode vault: {exc.message}", file=sys.stderr)
        return exc.code
    from tssnode.node import vaultkey
    from tssnode.store import StoreLocked

    try:
        new_passphrase = vaultkey.new_passphrase(
            config,
            file=args.new_passphrase_file,
            command=args.new_passphrase_command,
            local=args.new_local_key,
        )
        result = vaultkey.rekey(config, new_passphrase)
    except StoreLocked:
        print(
            f"tssnode vault: the node of {config.source} is running (it holds the database in "
            f"{config.data_dir}); stop it first, then rekey",
            file=sys.stderr,
        )
        return 1
    except TssError as exc:
        print(f"tssnode vault: {exc}", file=sys.stderr)
        return 1
    print(f"re-sealed {result.records} secret(s) of {config.data_dir} under the new passphrase")
    print(f"  was: {result.old_source}")
    print(f"  now: {result.new_source}")
    if result.written is not None:
        print(f"  the new key is in {result.written}")
    if result.removed is not None:
        print(f"  removed the old key file {result.removed}")
    if result.written is None:
        print(
            "start the node with the new passphrase: TSSNODE_PASSPHRASE, or [vault] "
            "passphrase_file / passphrase_command in the config"
        )
    return 0


# -- processes ------------------------------------------------------------------------------


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _alive(pid: int) -> bool:
    """Whether `pid` is a live process (not a zombie) that is a tssnode: a pid the
    system gave to another program since is not our node."""
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
    return b"tssnode" in cmdline


def _exit_record(data_dir: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((data_dir / EXITFILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


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
    pid = _read_pid(data_dir / PIDFILE)
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
        record = _exit_record(data_dir)
        if record is not None:
            code = int(record.get("code", 0))
            st.detail = (
                f"not running; its last run {_describe_exit(code)} at {when(record.get('time'))}"
            )
        elif not (data_dir / "node.log").exists():
            st.detail = "never started"
    elif _alive(pid):
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
        record = _exit_record(data_dir)
        if record is not None and record.get("pid") == pid:
            code = int(record.get("code", 1))
            st.state = "stopped" if code == 0 else "crashed"
            st.detail = f"{_describe_exit(code)} at {when(record.get('time'))}"
        else:
            st.state = "crashed"
            st.detail = f"pid {pid} is gone and left no exit code (killed, e.g. SIGKILL or OOM)"
    if st.peer_id is None:
        st.peer_id = _peer_id_on_disk(data_dir)
    return st


def start_daemon(config_path: Path, log_path: Path | None = None) -> int:
    """Start `tssnode run --config` detached, its output appended to its log; returns
    its pid. The node is started by a shell that exits at once, in a session of its own:
    it outlives this process and is nobody's child here (no zombie to reap)."""
    cfg = NodeConfig.load(config_path)
    log_path = log_path or cfg.data_dir / "node.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tssnode.cli", "run", "--config", str(config_path)]
    script = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
    started = subprocess.run(
        ["/bin/sh", "-c", script, "sh", str(log_path), *command],
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=30,
    )
    pid = started.stdout.strip()
    if started.returncode != 0 or not pid.isdigit():
        raise CommandError(f"could not start {config_path}: {started.stderr.strip() or pid}")
    _write_atomic(cfg.data_dir / PIDFILE, f"{pid}\n")
    return int(pid)


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
                if pid is not None and not _alive(pid):
                    return False
                time.sleep(0.3)
    return False


def _log_tail(path: Path, lines: int = 5) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


# -- the local cluster ----------------------------------------------------------------------


def write_local_genesis(configs: list[Path]) -> Path:
    """The genesis of the local network, from the nodes' identities (made on first use)."""
    from tssnode.ledger.genesis import Validator, genesis_toml, make_genesis

    loaded = [NodeConfig.load(p) for p in configs]
    validators = []
    for i, cfg in enumerate(loaded, start=1):
        info = init_data_dir(cfg.data_dir)
        port = cfg.net.listen.rsplit("/", 1)[-1]
        validators.append(
            Validator(
                bytes.fromhex(info["validator_key"]), f"node{i}", f"/ip4/127.0.0.1/tcp/{port}"
            )
        )
    genesis = make_genesis(
        sorted(validators, key=lambda v: v.public_key), chain_name="tssnode-local"
    )
    path = loaded[0].genesis_path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(genesis_toml(genesis))
    return path


def parser_cluster() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="tssnode cluster",
        description="a local network on loopback. Without --dir: the example network of "
        "configs/local (P2P ports 4101-4104, API ports 3001-3004, data in .local/ of the "
        "checkout; installed, copies in ~/.local/state/tssnode/local). `demo` always runs "
        "a throw-away network of its own and never touches this one.",
    )
    ap.add_argument(
        "action",
        choices=["up", "down", "status", "demo"],
        help="up: start the nodes (those running are left alone); down: stop them; "
        "status: each node's state, exit code 1 if any is not running; demo: a key and a "
        "signature on a network of its own",
    )
    ap.add_argument(
        "n",
        nargs="?",
        type=int,
        help="how many nodes (default: 4; with --dir, every node*.toml there)",
    )
    ap.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="a network directory of node*.toml configs (as tssnode.node.localnet makes) "
        "instead of the example network; `up` then starts them as they are (no genesis "
        "written)",
    )
    ap.add_argument(
        "--json", action="store_true", help="status: print one JSON list instead of a table"
    )
    ap.add_argument(
        "--tier",
        default="standard",
        choices=["standard", "insecure-test"],
        help="demo: the parameter tier of its key (default standard)",
    )
    ap.add_argument(
        "--keep",
        action="store_true",
        help="demo: keep its directory (configs, data, logs) afterwards",
    )
    return ap


def _node_number(path: Path) -> tuple[int, str]:
    digits = re.sub(r"\D", "", path.stem)
    return (int(digits) if digits else 0, path.stem)


def cluster_configs(n: int | None, directory: Path | None, *, create: bool = False) -> list[Path]:
    if directory is None:
        return local_configs(4 if n is None else n, create=create)
    paths = sorted(directory.glob("node*.toml"), key=_node_number)
    if not paths:
        raise CommandError(f"no node*.toml configs in {directory}")
    if n is not None:
        if not 1 <= n <= len(paths):
            raise CommandError(f"{directory} has {len(paths)} node configs, not {n}")
        paths = paths[:n]
    return paths


def cmd_cluster(argv: Sequence[str]) -> int:
    args = parser_cluster().parse_args(argv)
    try:
        if args.action == "demo":
            if args.dir is not None:
                raise CommandError("demo makes a network of its own: --dir does not apply", 2)
            return cluster_demo(4 if args.n is None else args.n, tier=args.tier, keep=args.keep)
        configs = cluster_configs(args.n, args.dir, create=args.action == "up")
        if args.action == "up":
            return cluster_up(configs, genesis=args.dir is None)
        if args.action == "down":
            return cluster_down(configs)
        return cluster_status(configs, as_json=args.json)
    except CommandError as exc:
        print(f"tssnode cluster {args.action}: {exc.message}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        print(f"tssnode cluster {args.action}: {exc}", file=sys.stderr)
        return 1


def cluster_up(configs: list[Path], *, genesis: bool = True) -> int:
    if genesis:
        write_local_genesis(configs)
    started: dict[Path, int] = {}
    for path in configs:
        cfg = NodeConfig.load(path)
        pid = _read_pid(cfg.data_dir / PIDFILE)
        if pid is not None and _alive(pid):
            print(f"{path.stem}: already running (pid {pid})")
            started[path] = pid
            continue
        pid = start_daemon(path)
        started[path] = pid
        print(f"{path.stem}: started (pid {pid}), log {node_log(cfg)}")
    failed = 0
    for path in configs:
        cfg = NodeConfig.load(path)
        if wait_api(cfg, pid=started[path]):
            print(f"{path.stem}: API {api_url(cfg)} answers")
            continue
        failed += 1
        st = node_state(path)
        print(f"{path.stem}: {st.state}: {st.detail or 'its API does not answer'}")
        for line in _log_tail(cfg.data_dir / "node.log"):
            print(f"    {line}")
    if failed:
        print(f"{failed} of {len(configs)} nodes are not up; `tssnode cluster status` tells more")
        return 1
    print(f"console: tssnode console --config {configs[0]}")
    return 0


def cluster_down(configs: list[Path], *, wait: float = 20.0) -> int:
    for path in configs:
        cfg = NodeConfig.load(path)
        pid_path = cfg.data_dir / PIDFILE
        pid = _read_pid(pid_path)
        if pid is None:
            print(f"{path.stem}: not running")
        elif not _alive(pid):
            print(f"{path.stem}: was not running (pid {pid} is gone)")
        else:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + wait
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                print(f"{path.stem}: did not stop within {wait:.0f} s; killed (pid {pid})")
            else:
                print(f"{path.stem}: stopped (pid {pid})")
        pid_path.unlink(missing_ok=True)
    return 0


def cluster_status(configs: list[Path], *, as_json: bool = False) -> int:
    states = [node_state(p) for p in configs]
    if as_json:
        print_json([asdict(s) for s in states])
    else:
        rows = [
            [
                s.name,
                s.state,
                fmt(s.pid),
                fmt(s.peer_id),
                fmt(s.p2p_port),
                fmt(s.api_port),
                fmt(s.height),
                fmt(s.view),
                ago(s.last_block_age_s),
            ]
            for s in states
        ]
        headers = ["NODE", "STATE", "PID", "PEER ID", "P2P", "API", "HEIGHT", "VIEW", "LAST BLOCK"]
        print(table(headers, rows, right=(2, 4, 5, 6, 7)))
        for s in states:
            if s.detail:
                log = f"; log {s.log}" if s.state in ("crashed", "unresponsive") else ""
                print(f"{s.name}: {s.detail}{log}")
    down = [s for s in states if not s.up]
    if down and not as_json:
        print(f"{len(down)} of {len(states)} nodes down: {', '.join(s.name for s in down)}")
    return 1 if down else 0


# -- the demo -------------------------------------------------------------------------------


def _demo_threshold(n: int) -> int:
    """The demo key's threshold t (any t + 1 of the n parties sign): a majority signs."""
    return n // 2


def cluster_demo(n: int = 4, *, tier: str = "standard", keep: bool = False) -> int:
    """A throw-away network of `n` nodes in a directory of its own, on ports the system
    picks (never another network's): a key at node 2, a signature via node n, both
    printed and the signature checked; then the network is stopped and removed."""
    if not 2 <= n <= 7:
        print("tssnode cluster demo: the demo runs 2 to 7 nodes", file=sys.stderr)
        return 2
    from tssnode.node.localnet import make_cluster

    root = Path(tempfile.mkdtemp(prefix="tssnode-demo-"))
    t = _demo_threshold(n)
    nodes: list[Any] = []
    clients: list[ApiClient] = []
    step = "starting the nodes"
    ok = False
    try:
        print(f"demo network: {n} nodes in {root} (loopback ports the system picks)")
        nodes = make_cluster(root, n, tier=tier)
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_api(timeout=90)
        clients = [node.client() for node in nodes]
        step = "waiting for the nodes to connect"
        _demo_wait_connected(clients, n, timeout=90)
        print(f"nodes up: APIs {', '.join(c.base_url for c in clients)}")
        step = "keygen"
        print(
            f"requesting a {t + 1}-of-{n} key at node 2 (threshold {t}: any {t + 1} of the "
            f"{n} nodes sign) …"
        )
        req = clients[1].post("/keygen", {"threshold": t, "parties": None})
        key = follow(clients[1], "key", req["key_id"], timeout=600)
        if key["status"] != "active":
            raise CommandError(f"the key failed: {key.get('error') or 'no reason given'}")
        print(kv(key_rows(key)))
        step = "signing"
        message = "hello from tssnode"
        print(f"\nsigning {message!r} (sha256) via node {n} …")
        out = clients[-1].post(
            "/sign", {"key_id": key["key_id"], "message": message, "hash": "sha256"}
        )
        sig = follow(clients[-1], "signature", out["signature_id"], timeout=300)
        if sig["status"] != "done":
            raise CommandError(f"the signature failed: {_failure(sig)}")
        print(kv(signature_rows(sig)))
        step = "verifying"
        verdict = verify_signature(
            bytes.fromhex(key["public_key"]),
            bytes.fromhex(sig["digest"]),
            int(sig["r"], 16),
            int(sig["s"], 16),
            sig.get("v"),
        )
        if not verdict.valid:
            raise CommandError(f"the signature does not verify: {verdict.reason}")
        print("\nthe signature verifies against the key's public key (checked offline, coincurve)")
        ok = True
        return 0
    except KeyboardInterrupt:
        print("\ntssnode cluster demo: interrupted", file=sys.stderr)
        return 130
    except CommandError as exc:
        print(f"tssnode cluster demo: {step}: {exc.message}", file=sys.stderr)
        return 1
    except ApiError as exc:
        print(f"tssnode cluster demo: {step}: {exc.message} (HTTP {exc.status})", file=sys.stderr)
        return 1
    except (ApiUnavailable, RuntimeError, TimeoutError, TssError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"tssnode cluster demo: {step}: {first}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug here or an answer of an unexpected shape: still no trace
        print(f"tssnode cluster demo: {step}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        for c in clients:
            c.http.close()
        for node in nodes:
            node.stop()
        if nodes:
            print("demo network stopped", file=sys.stderr if not ok else sys.stdout)
        if ok and not keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"its configs, data and node logs are in {root}", file=sys.stderr)


def _demo_wait_connected(clients: list[ApiClient], n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    progress = Progress()
    try:
        while True:
            seen = [int(c.get("/status").get("peers_connected") or 0) for c in clients]
            if all(s >= n - 1 for s in seen):
                return
            if time.monotonic() > deadline:
                raise CommandError(f"the nodes did not all connect within {timeout:.0f} s")
            progress.update(f"nodes connected: {sum(s >= n - 1 for s in seen)} of {n}")
            time.sleep(POLL_S)
    finally:
        progress.clear()


# -- API clients ----------------------------------------------------------------------------


def _client_args(ap: argparse.ArgumentParser, *, json_help: str | None = None) -> None:
    where = ap.add_argument_group(
        "which node",
        f"--config FILE, else --api with --token-file, else ${CONFIG_ENV}, else ./{DEFAULT_CONFIG}",
    )
    where.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the node's config file (it names the API address and the data directory "
        "with api.token)",
    )
    where.add_argument(
        "--api", metavar="URL", help="the node's API base URL, e.g. http://127.0.0.1:3001"
    )
    where.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help="with --api: the node's API token file (<data dir>/api.token)",
    )
    ap.add_argument(
        "--json",
        action="store_true",
        help=json_help or "print the API's answer as one JSON document instead of text",
    )


def _client(args: argparse.Namespace) -> ApiClient:
    if args.api and args.config:
        raise CommandError("give --config or --api, not both", 2)
    if args.api:
        if not args.token_file:
            raise CommandError("--api needs --token-file PATH (the node's api.token)", 2)
        return ApiClient(args.api.rstrip("/"), _token(args.token_file))
    if args.token_file:
        raise CommandError("--token-file goes with --api URL", 2)
    cfg = load_config(args.config)
    return ApiClient(api_url(cfg), _token(cfg.data_dir / "api.token"))


def _token(path: Path) -> str:
    try:
        return read_token(path)
    except OSError as exc:
        raise CommandError(
            f"cannot read the API token {path}: {exc.strerror or exc} (the node writes it "
            "when it first starts; `tssnode init` makes it too)"
        ) from None


class WaitTimeout(CommandError):
    pass


PHASES = {"keygen": "keygen", "aux": "aux-info", "presign": "presign", "sign": "sign"}


def _party(who: Any, parties: Sequence[str]) -> str:
    if isinstance(who, int) and not isinstance(who, bool):
        if 1 <= who <= len(parties):
            return short(parties[who - 1])
        return f"party {who}"
    return short(who)


class _Watcher:
    """What a request waits for, in words, from the API's view of it and of the node's
    protocol sessions (GET /sessions, as the console's Sessions screen shows them)."""

    def __init__(self, api: ApiClient, kind: str, ident: str) -> None:
        self.api, self.kind, self.ident = api, kind, ident
        self.parties: list[str] | None = None
        self.sessions_at = 0.0
        self.session_text = ""

    def describe(self, data: dict[str, Any] | None) -> str:
        what = f"{self.kind} {head(self.ident)}"
        if data is None:
            return f"waiting for {what}: the node does not list it yet"
        if data.get("height") is None:
            return f"waiting for {what}: the ledger has not ordered the request yet"
        attempt = data.get("attempts")
        if isinstance(attempt, int) and attempt > 1:  # retried without the parties that failed
            what += f" (attempt {attempt})"
        text = self._session()
        if text:
            return f"waiting for {what}: {text}"
        return f"waiting for {what}: in block {data['height']}, the parties are at work"

    def _session(self) -> str:
        now = time.monotonic()
        if now - self.sessions_at < 1.0:
            return self.session_text
        self.sessions_at = now
        try:
            sessions = self.api.get("/sessions")
        except (ApiError, ApiUnavailable):
            return self.session_text
        mine = [s for s in sessions if isinstance(s, dict) and s.get("request") == self.ident]
        if not mine:  # this node takes no part (or not yet)
            self.session_text = ""
            return ""
        s = max(mine, key=lambda s: (s.get("status") == "running", s.get("started") or 0.0))
        phase = PHASES.get(str(s.get("phase")), str(s.get("phase")))
        if s.get("status") != "running":
            self.session_text = f"{phase} {s.get('status')} here; the ledger records the result"
            return self.session_text
        rounds = f" of {s['rounds']}" if s.get("rounds") else ""
        text = f"{phase} round {s.get('round', '?')}{rounds}"
        waiting = s.get("waiting_for") or []
        if waiting:
            parties = self._parties(s)
            text += ", waiting for " + ", ".join(_party(w, parties) for w in waiting)
        self.session_text = text
        return text

    def _parties(self, session: dict[str, Any]) -> list[str]:
        if self.parties is None:
            self.parties = []
            key_id = session.get("key_id") or (self.ident if self.kind == "key" else "")
            if key_id:
                with contextlib.suppress(ApiError, ApiUnavailable):
                    key = get_or_none(self.api, f"/keys/{key_id}") or {}
                    self.parties = [str(p) for p in key.get("parties") or []]
        return self.parties


def follow(
    api: ApiClient,
    kind: str,
    ident: str,
    *,
    timeout: float,
    progress: Progress | None = None,
) -> Any:
    """Poll a key (`kind` "key") or a signature until it is settled; say what it waits
    for on the progress line meanwhile."""
    path = f"/keys/{ident}" if kind == "key" else f"/signatures/{ident}"
    settled = ("active", "failed") if kind == "key" else ("done", "failed")
    progress = progress or Progress()
    watcher = _Watcher(api, kind, ident)
    deadline = time.monotonic() + timeout
    try:
        while True:
            data = get_or_none(api, path)
            if data is not None and data.get("status") in settled:
                return data
            if time.monotonic() > deadline:
                raise WaitTimeout(f"no result after {timeout:.0f} s")
            if progress.enabled:
                progress.update(watcher.describe(data))
            time.sleep(POLL_S)
    finally:
        progress.clear()


def _failure(data: dict[str, Any]) -> str:
    blame = data.get("blame")
    if isinstance(blame, dict) and blame:
        culprits = ", ".join(str(c) for c in blame.get("culprits") or []) or "nobody named"
        check = blame.get("check") or "aborted"
        return f"{check} (round {fmt(blame.get('round'))}; culprits {culprits})"
    return str(data.get("error") or "no reason given")


def key_rows(key: dict[str, Any]) -> list[Row]:
    t = key.get("threshold")
    parties = [str(p) for p in key.get("parties") or []]
    threshold = "-"
    if isinstance(t, int):
        threshold = f"{t} (any {t + 1} of {len(parties)} parties sign)"
    addresses = key.get("addresses") or {}
    rows: list[Row] = [
        ("key id", fmt(key.get("key_id"))),
        ("status", fmt(key.get("status"))),
        ("threshold", threshold),
        ("parties", parties or "-"),
    ]
    if "holders" in key:
        rows.append(("holders", [str(h) for h in key.get("holders") or []] or "-"))
    rows += [
        ("epoch", fmt(key.get("epoch"))),
        ("tier", fmt(key.get("tier"))),
        ("public key", fmt(key.get("public_key"))),
        ("eth address", fmt(addresses.get("eth"))),
        ("btc address", fmt(addresses.get("btc_p2wpkh"))),
    ]
    if "presignatures" in key:
        ready, pending = key.get("presignatures"), key.get("presignatures_pending")
        text = f"{fmt(ready)} ready" + (f", {pending} being made" if pending else "")
        rows.append(("presignatures", text))
    for child in key.get("children") or []:
        eth = (child.get("addresses") or {}).get("eth")
        rows.append((f"child {child.get('path')}", f"{child.get('public_key')} ({fmt(eth)})"))
    rows += [("height", fmt(key.get("height"))), ("error", fmt(key.get("error")))]
    return rows


def signature_rows(sig: dict[str, Any]) -> list[Row]:
    rows: list[Row] = [
        ("signature id", fmt(sig.get("signature_id"))),
        ("status", fmt(sig.get("status"))),
        ("key id", fmt(sig.get("key_id"))),
        ("path", fmt(sig.get("path"))),
        ("digest", fmt(sig.get("digest"))),
        ("r", fmt(sig.get("r"))),
        ("s", fmt(sig.get("s"))),
        ("v", fmt(sig.get("v"))),
        ("signers", [str(s) for s in sig.get("signers") or []] or "-"),
        ("height", fmt(sig.get("height"))),
    ]
    if sig.get("attempts", 1) != 1:
        rows.append(("attempts", fmt(sig.get("attempts"))))
    if sig.get("blame"):
        rows.append(("blame", _failure(sig)))
    if sig.get("error"):
        rows.append(("error", fmt(sig.get("error"))))
    return rows


STATUS_LABELS = {
    "peer_id": "peer id",
    "network": "network",
    "chain_id": "chain id",
    "version": "version",
    "uptime_s": "uptime",
    "height": "height",
    "view": "view",
    "primary": "primary",
    "is_primary": "this node is primary",
    "last_block_age_s": "last block",
    "pending_requests": "pending requests",
    "view_change": "view change",
    "validators": "validators",
    "validators_online": "validators online",
    "quorum": "quorum",
    "peers_connected": "peers connected",
    "stalled": "stalled",
    "below_quorum": "below quorum",
    "liveness": "liveness",
    "warnings": "warnings",
    "addrs": "addresses",
    "api_refused": "API refused (429)",
}


def status_rows(status: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for key, label in STATUS_LABELS.items():
        if key not in status:
            continue
        value = status[key]
        if key == "uptime_s":
            rows.append((label, duration(value)))
        elif key == "last_block_age_s":
            rows.append((label, ago(value)))
        elif key in ("warnings", "addrs"):
            rows.append((label, [fmt(v) for v in value or []] or "-"))
        else:
            rows.append((label, fmt(value)))
    for key, value in status.items():
        if key not in STATUS_LABELS:
            rows.append((key.replace("_", " "), fmt(value)))
    return rows


def _tx_kinds(txs: Sequence[Any]) -> str:
    kinds = Counter(str(t.get("kind", "?")) if isinstance(t, dict) else "?" for t in txs)
    return ", ".join(k if c == 1 else f"{c}×{k}" for k, c in kinds.items()) or "-"


def blocks_table(blocks: Sequence[dict[str, Any]]) -> str:
    rows = []
    for b in blocks:
        cert = b.get("certificate") or {}
        rows.append(
            [
                fmt(b.get("height")),
                when(b.get("time")),
                head(b.get("hash")),
                short(b.get("proposer")),
                fmt(b.get("view")),
                fmt(len(cert.get("signers") or [])) if cert else "-",
                fmt(len(b.get("txs") or [])),
                _tx_kinds(b.get("txs") or []),
            ]
        )
    headers = ["HEIGHT", "TIME", "HASH", "PROPOSER", "VIEW", "VOTES", "TXS", "KINDS"]
    return table(headers, rows, right=(0, 4, 5, 6))


def keys_table(keys: Sequence[dict[str, Any]]) -> str:
    rows = []
    for k in keys:
        t, parties = k.get("threshold"), k.get("parties") or []
        rows.append(
            [
                fmt(k.get("key_id")),
                fmt(k.get("status")),
                f"{t} (any {t + 1} of {len(parties)})" if isinstance(t, int) else "-",
                fmt(k.get("epoch")),
                short(k.get("public_key"), 10, 8),
                fmt(k.get("presignatures")),
                fmt(k.get("height")),
            ]
        )
    headers = ["KEY ID", "STATUS", "THRESHOLD", "EPOCH", "PUBLIC KEY", "PRESIGS", "HEIGHT"]
    return table(headers, rows, right=(3, 5, 6))


def signatures_table(sigs: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            fmt(s.get("signature_id")),
            fmt(s.get("status")),
            head(s.get("key_id")),
            fmt(s.get("path")),
            fmt(s.get("height")),
            fmt(len(s.get("signers") or [])),
        ]
        for s in sigs
    ]
    headers = ["SIGNATURE ID", "STATUS", "KEY", "PATH", "HEIGHT", "SIGNERS"]
    return table(headers, rows, right=(4, 5))


def validators_table(validators: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            fmt(v.get("index")),
            fmt(v.get("peer_id")),
            fmt(v.get("status")),
            fmt(len(v.get("keys") or [])),
        ]
        for v in validators
    ]
    return table(["#", "PEER ID", "STATUS", "KEYS"], rows, right=(0, 3))


def _positive(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be between 1 and {limit}")
        return value

    return parse


def _peer_ids(text: str) -> list[str]:
    return [p for p in re.split(r"[,\s]+", text) if p]


def parser_client(command: str) -> argparse.ArgumentParser:
    descriptions = {
        "status": "a node's status: chain height, view, peers, liveness, warnings",
        "validators": "the validators: index, peer id (what --parties takes), online or not",
        "keys": "the keys this node knows (newest first), or one key in full",
        "keygen": "ask for a threshold key and wait until it is active (or failed)",
        "sign": "ask for a signature and wait for it; stdout gets only the result",
        "signatures": "signatures requested in the ledger, newest first, or one in full",
        "blocks": "the newest blocks, newest first",
    }
    ap = argparse.ArgumentParser(prog=f"tssnode {command}", description=descriptions[command])
    _client_args(ap)
    wait_help = "print the accepted request (its id) at once instead of waiting for the result"
    if command == "keys":
        ap.add_argument(
            "key_id",
            nargs="?",
            metavar="KEY_ID",
            help="show this key in full (also takes the id POST /keygen returned)",
        )
    elif command == "keygen":
        ap.add_argument(
            "--threshold",
            type=int,
            required=True,
            metavar="T",
            help="any T + 1 of the parties sign; T = 0 needs --single-signer",
        )
        ap.add_argument(
            "--parties",
            nargs="+",
            type=_peer_ids,
            metavar="PEER_ID",
            help="the validators to hold the key, by libp2p peer id (12D3KooW…, as "
            "`tssnode validators` lists them; space- or comma-separated); default: every "
            "validator",
        )
        ap.add_argument(
            "--single-signer",
            action="store_true",
            help="allow --threshold 0: a key any one party can use alone",
        )
        ap.add_argument("--no-wait", action="store_true", help=wait_help)
        ap.add_argument(
            "--timeout",
            type=float,
            default=600.0,
            metavar="SECONDS",
            help="give up waiting after this long (default 600; the request stays accepted)",
        )
    elif command == "sign":
        ap.add_argument(
            "--key-id",
            required=True,
            metavar="KEY_ID",
            help="the key to sign with (its id, or the id POST /keygen returned)",
        )
        group = ap.add_mutually_exclusive_group(required=True)
        group.add_argument("--message", metavar="TEXT", help="the message, as UTF-8 text")
        group.add_argument("--message-hex", metavar="HEX", help="the message, as hex bytes")
        ap.add_argument(
            "--hash",
            default="sha256",
            choices=HASHES,
            help="how the signers hash the message (default sha256; eip191 is Ethereum's "
            "personal_sign)",
        )
        ap.add_argument(
            "--path",
            metavar="PATH",
            help="sign with the child key at this non-hardened BIP-32 path, e.g. m/0/1",
        )
        ap.add_argument("--no-wait", action="store_true", help=wait_help)
        ap.add_argument(
            "--timeout",
            type=float,
            default=300.0,
            metavar="SECONDS",
            help="give up waiting after this long (default 300; the request stays accepted)",
        )
    elif command == "signatures":
        ap.add_argument(
            "signature_id",
            nargs="?",
            metavar="SIGNATURE_ID",
            help="show this signature in full (any id, also one not yet in a block)",
        )
        ap.add_argument("--key-id", metavar="KEY_ID", help="only the signatures of this key")
        ap.add_argument(
            "--limit",
            type=_positive(1000),
            default=20,
            metavar="N",
            help="list at most N signatures (default 20)",
        )
    elif command == "blocks":
        ap.add_argument(
            "--from",
            dest="start",
            type=_positive(2**62),
            metavar="HEIGHT",
            help="the blocks from this height up (default: the newest ones)",
        )
        ap.add_argument(
            "--limit",
            type=_positive(MAX_BLOCKS),
            default=20,
            metavar="N",
            help=f"how many blocks (default 20, at most {MAX_BLOCKS})",
        )
    return ap


def _list_signatures(api: ApiClient, key_id: str | None, limit: int) -> list[dict[str, Any]]:
    """The sign requests in the ledger, newest first (each is a SignRequest transaction,
    whose hash is the signature id), read from the blocks backwards."""
    if key_id is not None:
        key = get_or_none(api, f"/keys/{key_id}")
        if key is None:
            raise CommandError(f"unknown key id {key_id}")
        key_id = str(key.get("key_id") or key_id)
    top = int(api.get("/status").get("height") or 0)
    found: list[dict[str, Any]] = []
    while top >= 1 and len(found) < limit:
        start = max(1, top - 99)  # 100 blocks a request: short turns on the node's loop
        blocks = api.get("/blocks", **{"from": start, "limit": top - start + 1})
        for block in sorted(blocks, key=lambda b: int(b.get("height") or 0), reverse=True):
            for tx in reversed(block.get("txs") or []):
                if not isinstance(tx, dict) or tx.get("kind") != "SignRequest":
                    continue
                sig = get_or_none(api, f"/signatures/{tx.get('hash')}")
                if sig is None or (key_id is not None and sig.get("key_id") != key_id):
                    continue
                found.append(sig)
                if len(found) >= limit:
                    return found
        top = start - 1
    return found


def _sort_keys(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pending requests first, then the newest keys."""
    return sorted(keys, key=lambda k: (k.get("height") is not None, -(k.get("height") or 0)))


def cmd_client(command: str, argv: Sequence[str]) -> int:
    args = parser_client(command).parse_args(argv)
    try:
        with _client(args) as api:
            try:
                return _client_command(command, args, api)
            except ApiUnavailable:
                raise CommandError(
                    f"no node answers at {api.base_url} (is it running? `tssnode cluster "
                    "status` or `tssnode run`)"
                ) from None
    except CommandError as exc:
        print(f"tssnode {command}: {exc.message}", file=sys.stderr)
        return exc.code
    except ApiError as exc:
        print(f"tssnode {command}: {exc.message} (HTTP {exc.status})", file=sys.stderr)
        return 1
    except (ApiUnavailable, OSError) as exc:
        print(f"tssnode {command}: {exc}", file=sys.stderr)
        return 1


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    """`data` as one JSON document (--json), else as text for people."""
    if args.json:
        print_json(data)
    else:
        print(text())


def _accepted(out: dict[str, Any]) -> str:
    return kv([(k.replace("_", " "), fmt(v)) for k, v in out.items()])


def _client_command(command: str, args: argparse.Namespace, api: ApiClient) -> int:
    if command == "status":
        status = api.get("/status")
        _emit(args, status, lambda: kv(status_rows(status)))
    elif command == "validators":
        validators = api.get("/validators")
        _emit(args, validators, lambda: validators_table(validators))
    elif command == "blocks":
        if args.start is not None:
            start = args.start
        else:
            height = int(api.get("/status").get("height") or 0)
            start = max(1, height - args.limit + 1)
        blocks = api.get("/blocks", **{"from": start, "limit": args.limit})
        blocks = sorted(blocks, key=lambda b: int(b.get("height") or 0), reverse=True)
        _emit(args, blocks, lambda: blocks_table(blocks) if blocks else "no blocks yet")
    elif command == "keys":
        if args.key_id:
            key = get_or_none(api, f"/keys/{args.key_id}")
            if key is None:
                raise CommandError(f"unknown key id {args.key_id}")
            _emit(args, key, lambda: kv(key_rows(key)))
        else:
            keys = _sort_keys(api.get("/keys"))
            none = "no keys yet (`tssnode keygen` asks for one)"
            _emit(args, keys, lambda: keys_table(keys) if keys else none)
    elif command == "signatures":
        if args.signature_id:
            sig = get_or_none(api, f"/signatures/{args.signature_id}")
            if sig is None:
                raise CommandError(f"unknown signature id {args.signature_id}")
            _emit(args, sig, lambda: kv(signature_rows(sig)))
        else:
            sigs = _list_signatures(api, args.key_id, args.limit)
            none = "no signatures in the ledger yet"
            _emit(args, sigs, lambda: signatures_table(sigs) if sigs else none)
    elif command == "keygen":
        request: dict[str, Any] = {"threshold": args.threshold, "parties": None}
        if args.parties:
            request["parties"] = [p for group in args.parties for p in group]
        if args.single_signer:
            request["single_signer"] = True
        out = api.post("/keygen", request)
        if args.no_wait:
            _emit(args, out, lambda: _accepted(out))
            return 0
        key = _wait(api, "key", out["key_id"], args.timeout)
        _emit(args, key, lambda: kv(key_rows(key)))
        if key.get("status") != "active":
            print(f"tssnode keygen: the key failed: {_failure(key)}", file=sys.stderr)
            return 1
    elif command == "sign":
        body: dict[str, Any] = {"key_id": args.key_id, "hash": args.hash}
        if args.path is not None:
            body["path"] = args.path
        if args.message is not None:
            body["message"] = args.message
        else:
            body["message_hex"] = args.message_hex
        out = api.post("/sign", body)
        if args.no_wait:
            _emit(args, out, lambda: _accepted(out))
            return 0
        sig = _wait(api, "signature", out["signature_id"], args.timeout)
        _emit(args, sig, lambda: kv(signature_rows(sig)))
        if sig.get("status") != "done":
            print(f"tssnode sign: the signature failed: {_failure(sig)}", file=sys.stderr)
            return 1
    return 0


def _wait(api: ApiClient, kind: str, ident: str, timeout: float) -> Any:
    later = "tssnode keys" if kind == "key" else "tssnode signatures"
    try:
        return follow(api, kind, ident, timeout=timeout)
    except WaitTimeout as exc:
        raise CommandError(
            f"{exc.message}; the request stays accepted: `{later} {ident}` shows it later"
        ) from None
    except KeyboardInterrupt:
        raise CommandError(
            f"interrupted; the request stays accepted: `{later} {ident}` shows it later", 130
        ) from None


def cmd_status(argv: Sequence[str]) -> int:
    return cmd_client("status", argv)


def cmd_validators(argv: Sequence[str]) -> int:
    return cmd_client("validators", argv)


def cmd_keys(argv: Sequence[str]) -> int:
    return cmd_client("keys", argv)


def cmd_keygen(argv: Sequence[str]) -> int:
    return cmd_client("keygen", argv)


def cmd_sign(argv: Sequence[str]) -> int:
    return cmd_client("sign", argv)


def cmd_signatures(argv: Sequence[str]) -> int:
    return cmd_client("signatures", argv)


def cmd_blocks(argv: Sequence[str]) -> int:
    return cmd_client("blocks", argv)


# -- verify (offline) -----------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    valid: bool
    public_key: str  # compressed hex
    digest: str
    r: int
    s: int
    v: int | None
    low_s: bool
    reason: str | None = None
    notes: tuple[str, ...] = ()

    def line(self) -> str:
        what = f"public key {short(self.public_key, 10, 8)}, digest {short(self.digest, 10, 8)}"
        if self.valid:
            return f"valid: the signature verifies ({what})"
        return f"INVALID: {self.reason} ({what})"

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "public_key": self.public_key,
            "digest": self.digest,
            "r": f"{self.r:064x}",
            "s": f"{self.s:064x}",
            "v": self.v,
            "low_s": self.low_s,
            "reason": self.reason,
            "notes": list(self.notes),
        }


def verify_signature(public_key: bytes, digest: bytes, r: int, s: int, v: int | None) -> Verdict:
    """ECDSA over secp256k1, checked by libsecp256k1 (coincurve); a high s is checked as
    its low twin and noted; with v, the key it recovers must be this one."""
    from coincurve import PublicKey
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from tssnode.crypto.group import Q

    try:
        key = PublicKey(public_key)
    except (ValueError, TypeError) as exc:
        raise CommandError(f"the public key is not a point of secp256k1 ({exc})", 2) from None
    pub = key.format(compressed=True).hex()
    notes: list[str] = []

    def verdict(valid: bool, reason: str | None = None) -> Verdict:
        return Verdict(valid, pub, digest.hex(), r, s, v, s <= Q // 2, reason, tuple(notes))

    if not (1 <= r < Q and 1 <= s < Q):
        return verdict(False, "r and s must both be in [1, n - 1]")
    low = s
    if s > Q // 2:
        low = Q - s
        notes.append(
            "s is high (not the low-s form Bitcoin and Ethereum require); checked as n - s"
        )
    if not key.verify(encode_dss_signature(r, low), digest, hasher=None):
        return verdict(False, "the signature does not match this public key and digest")
    if v is not None:
        rec = (v - 27 if v >= 27 else v) ^ (1 if low != s else 0)
        compact = r.to_bytes(32, "big") + low.to_bytes(32, "big") + bytes([rec])
        try:
            recovered = PublicKey.from_signature_and_message(compact, digest, hasher=None)
            ok = recovered.format(compressed=True) == key.format(compressed=True)
        except Exception:
            ok = False
        if not ok:
            return verdict(False, f"r and s verify, but v = {v} recovers another public key")
        notes.append(f"v = {v} recovers this public key")
    return verdict(True)


def _hex(text: str, what: str, sizes: Sequence[int] = ()) -> bytes:
    clean = re.sub(r"\s+", "", text).removeprefix("0x").removeprefix("0X")
    try:
        raw = bytes.fromhex(clean)
    except ValueError:
        raise CommandError(f"{what} is not hexadecimal", 2) from None
    if sizes and len(raw) not in sizes:
        spelled = " or ".join(str(n) for n in sizes)
        raise CommandError(f"{what} has {len(raw)} bytes, not {spelled}", 2)
    return raw


def _int_hex(text: str, what: str) -> int:
    """A number of up to 32 bytes in hex (an odd number of digits is fine: `0`, `1f`)."""
    clean = re.sub(r"\s+", "", text).removeprefix("0x").removeprefix("0X")
    if not re.fullmatch(r"[0-9a-fA-F]{1,64}", clean):
        raise CommandError(f"{what} must be 1 to 64 hexadecimal digits", 2)
    return int(clean, 16)


def _v(value: Any) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise CommandError(f"v must be 0, 1, 27 or 28, not {value!r}", 2) from None
    if v not in (0, 1, 27, 28):
        raise CommandError(f"v must be 0, 1, 27 or 28, not {v}", 2)
    return v


def parse_signature(text: str) -> tuple[int, int, int | None]:
    """`R,S` or `R,S,V` (hex), 64 bytes r‖s or 65 bytes r‖s‖v (hex), or DER (hex)."""
    text = text.strip()
    if "," in text:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) not in (2, 3):
            raise CommandError("a signature as R,S or R,S,V", 2)
        v = _v(parts[2]) if len(parts) == 3 else None
        return _int_hex(parts[0], "r"), _int_hex(parts[1], "s"), v
    raw = _hex(text, "the signature")
    if raw[:1] == b"\x30":
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        try:
            r, s = decode_dss_signature(raw)
        except ValueError:
            if len(raw) not in (64, 65):
                raise CommandError("the signature is not valid DER", 2) from None
        else:
            return r, s, None
    if len(raw) in (64, 65):
        v = _v(raw[64]) if len(raw) == 65 else None
        return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), v
    raise CommandError(
        f"the signature has {len(raw)} bytes: give 64 (r‖s), 65 (r‖s‖v), DER, or R,S", 2
    )


def parser_verify() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="tssnode verify",
        description="check an ECDSA signature (secp256k1) against a public key, offline: no "
        "node is asked. Exit code 0 if it is valid, 1 if not, 2 for unusable input.",
    )
    ap.add_argument(
        "--public-key",
        required=True,
        metavar="HEX",
        help="the public key: 33 bytes compressed, 65 bytes uncompressed (04…) or 64 bytes x‖y",
    )
    msg = ap.add_mutually_exclusive_group(required=True)
    msg.add_argument(
        "--message", metavar="TEXT", help="the message as UTF-8 text (hashed with --hash)"
    )
    msg.add_argument(
        "--message-hex", metavar="HEX", help="the message as hex bytes (hashed with --hash)"
    )
    msg.add_argument(
        "--message-file",
        type=Path,
        metavar="PATH",
        help="the message: a file's bytes (hashed with --hash)",
    )
    msg.add_argument(
        "--digest", metavar="HEX", help="the 32-byte digest that was signed (no hashing)"
    )
    ap.add_argument(
        "--hash",
        default="sha256",
        choices=HASHES,
        help="how the message was hashed (default sha256), as `tssnode sign --hash`",
    )
    sig = ap.add_mutually_exclusive_group(required=True)
    sig.add_argument(
        "--signature",
        metavar="SIG",
        help="R,S or R,S,V in hex; or hex of 64 bytes r‖s, 65 bytes r‖s‖v, or DER",
    )
    sig.add_argument(
        "--signature-json",
        type=Path,
        metavar="PATH",
        help="a JSON object with r, s (and v), as `tssnode sign --json` prints; - reads stdin",
    )
    sig.add_argument("--r", metavar="HEX", help="r in hex (with --s)")
    ap.add_argument("--s", metavar="HEX", help="s in hex (with --r)")
    ap.add_argument(
        "--v",
        type=int,
        metavar="V",
        help="the recovery id (27/28 or 0/1): then the key it recovers must be --public-key",
    )
    ap.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (valid, reason, public_key, digest, r, s, v, low_s)",
    )
    return ap


def cmd_verify(argv: Sequence[str]) -> int:
    ap = parser_verify()
    args = ap.parse_args(argv)
    try:
        verdict = _verify_args(args)
    except CommandError as exc:
        print(f"tssnode verify: {exc.message}", file=sys.stderr)
        return exc.code
    if args.json:
        print_json(verdict.to_json())
    else:
        print(verdict.line())
        for note in verdict.notes:
            print(f"  note: {note}")
    return 0 if verdict.valid else 1


def _verify_args(args: argparse.Namespace) -> Verdict:
    from tssnode.protocol.hashing import message_digest

    public_key = _hex(args.public_key, "the public key", (33, 64, 65))
    if len(public_key) == 64:
        public_key = b"\x04" + public_key
    if args.digest is not None:
        digest = _hex(args.digest, "the digest", (32,))
    else:
        if args.message is not None:
            message = args.message.encode()
        elif args.message_hex is not None:
            message = _hex(args.message_hex, "the message")
        else:
            try:
                message = args.message_file.read_bytes()
            except OSError as exc:
                raise CommandError(f"cannot read {args.message_file}: {exc.strerror}", 2) from None
        digest = message_digest(message, args.hash)
    v: int | None = None
    if args.signature is not None:
        r, s, v = parse_signature(args.signature)
    elif args.signature_json is not None:
        r, s, v = _signature_from_json(args.signature_json)
    else:
        if args.s is None:
            raise CommandError("--r needs --s", 2)
        r, s = _int_hex(args.r, "r"), _int_hex(args.s, "s")
    if args.s is not None and args.r is None:
        raise CommandError("--s goes with --r", 2)
    if args.v is not None:
        v = _v(args.v)
    return verify_signature(public_key, digest, r, s, v)


def _signature_from_json(path: Path) -> tuple[int, int, int | None]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
        data = json.loads(text)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}", 2) from None
    except ValueError:
        raise CommandError(f"{path} is not JSON", 2) from None
    if isinstance(data, dict) and isinstance(data.get("signature"), dict):
        data = data["signature"]  # `tssnode simulate --json`
    if not isinstance(data, dict) or not data.get("r") or not data.get("s"):
        raise CommandError(f"{path}: no r and s (is the signature done?)", 2)
    v = _v(data["v"]) if data.get("v") is not None else None
    return _int_hex(str(data["r"]), "r"), _int_hex(str(data["s"]), "s"), v
