"""`tssnode cluster up|down|status [N] [--dir DIR]`: a local network on loopback, its
nodes started detached and stopped by pid; with `up --bridge`, the regtest Bitcoin
service and anvil beside them and the bridge brought up (`localchains`, `bridgenet`);
`down` stops those too. `tssnode cluster demo [N]`: a throw-away network of its own
(`tssnode.testing.cluster`), a key, a signature, checked offline; with `--bridge`, one
deposit to a minted balance on chains of its own (`bridgedemo`)."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tssnode.api.client import ApiClient, ApiError, ApiUnavailable
from tssnode.cli import localchains
from tssnode.cli.common import CommandError, ago, fmt, kv, print_json, table
from tssnode.cli.configs import api_url, local_configs
from tssnode.cli.follow import follow, wait_connected
from tssnode.cli.processes import (
    _log_tail,
    node_log,
    node_state,
    start_daemon,
    stop_recorded,
    wait_api,
)
from tssnode.cli.verify import verify_signature
from tssnode.cli.views import _failure, key_rows, signature_rows
from tssnode.config import ConfigError, NodeConfig
from tssnode.crypto.params import STANDARD, TIERS
from tssnode.errors import TssError
from tssnode.launch import PIDFILE, alive, read_pid
from tssnode.node.datadir import init_data_dir


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
        "checkout; installed, copies in ~/.local/state/tssnode/local). `up --bridge` also "
        "starts the regtest Bitcoin service and anvil beside the nodes and brings the bridge "
        "up (what `make run` runs); `down` stops them too. `demo` always runs a throw-away "
        "network of its own and never touches this one.",
    )
    ap.add_argument(
        "action",
        choices=["up", "down", "status", "demo"],
        help="up: start the nodes (those running are left alone); down: stop them (and the "
        "chains `up --bridge` started); status: each node's state, exit code 1 if any is not "
        "running; demo: a key and a signature (--bridge: a deposit minted) on a network of "
        "its own",
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
        help="a network directory of node*.toml configs (as tssnode.testing.cluster makes) "
        "instead of the example network; `up` then starts them as they are (no genesis "
        "written)",
    )
    ap.add_argument(
        "--bridge",
        action="store_true",
        help="up: also start the regtest Bitcoin service (at the nodes' [bridge.bitcoin] url) "
        "and anvil, each unless it runs, then make the bridge key, deploy the gateway and vote "
        "the settings at every node, each unless done (idempotent); demo: one Bitcoin deposit "
        "to a minted balance on a regtest service, anvil and nodes of its own",
    )
    ap.add_argument(
        "--evm-rpc",
        metavar="URL",
        help="up --bridge: where anvil listens (default: as the last `up --bridge` here, else "
        "the nodes' [bridge.evm] url, else http://127.0.0.1:8545)",
    )
    ap.add_argument(
        "--json", action="store_true", help="status: print one JSON list instead of a table"
    )
    ap.add_argument(
        "--tier",
        default=STANDARD.name,
        choices=sorted(TIERS),
        help=f"demo: the parameter tier of its key (default {STANDARD.name})",
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
        if args.evm_rpc is not None and not (args.action == "up" and args.bridge):
            raise CommandError("--evm-rpc goes with `up --bridge`", 2)
        if args.action == "demo":
            if args.dir is not None:
                raise CommandError("demo makes a network of its own: --dir does not apply", 2)
            n = 4 if args.n is None else args.n
            if args.bridge:
                from tssnode.cli.bridgedemo import bridge_demo

                if not 4 <= n <= 7:
                    raise CommandError("the bridge demo runs 4 to 7 nodes", 2)
                return bridge_demo(n, tier=args.tier, keep=args.keep)
            return cluster_demo(n, tier=args.tier, keep=args.keep)
        configs = cluster_configs(args.n, args.dir, create=args.action == "up")
        if args.action == "up":
            return cluster_up(
                configs, genesis=args.dir is None, bridge=args.bridge, evm_rpc=args.evm_rpc
            )
        if args.action == "down":
            return cluster_down(configs)
        return cluster_status(configs, as_json=args.json)
    except CommandError as exc:
        print(f"tssnode cluster {args.action}: {exc.message}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        print(f"tssnode cluster {args.action}: {exc}", file=sys.stderr)
        return 1


def cluster_up(
    configs: list[Path], *, genesis: bool = True, bridge: bool = False, evm_rpc: str | None = None
) -> int:
    """Starts the nodes (and, with `bridge`, their chains first and the bridge after) that
    are not running; 1 if a node does not come up."""
    chains = localchains.chains_of(configs, evm_rpc) if bridge else None
    if chains is not None:
        try:
            localchains.start(chains)
        except (RuntimeError, OSError) as exc:  # (AnvilError, RegtestStartError: their logs)
            raise CommandError(str(exc)) from None
    if genesis:
        write_local_genesis(configs)
    started: dict[Path, int] = {}
    for path in configs:
        cfg = NodeConfig.load(path)
        pid = read_pid(cfg.data_dir / PIDFILE)
        if pid is not None and alive(pid):
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
    if chains is not None:
        localchains.bring_up_bridge(chains, configs, threshold=demo_threshold(len(configs)))
    print(f"console: tssnode console --config {configs[0]}")
    return 0


def cluster_down(configs: list[Path], *, wait: float = 20.0) -> int:
    """Stops the nodes, then the chains `up --bridge` started beside them (if any)."""
    for path in configs:
        print(stop_recorded(path.stem, NodeConfig.load(path).data_dir / PIDFILE, alive, wait))
    localchains.stop(localchains.network_root(configs), wait)
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
        for line in localchains.status_lines(localchains.network_root(configs)):
            print(line)
    down = [s for s in states if not s.up]
    if down and not as_json:
        print(f"{len(down)} of {len(states)} nodes down: {', '.join(s.name for s in down)}")
    return 1 if down else 0


# -- the demo -------------------------------------------------------------------------------


def demo_threshold(n: int) -> int:
    """The demo key's threshold t (any t + 1 of the n parties sign): a majority signs."""
    return n // 2


def demo_failed(step: str, exc: BaseException) -> int:
    """A demo's failure as one line on stderr, `tssnode cluster demo: <step>: <what went
    wrong>`, never a traceback; its exit code (130 if interrupted, else 1)."""
    if isinstance(exc, KeyboardInterrupt):
        print("\ntssnode cluster demo: interrupted", file=sys.stderr)
        return 130
    if isinstance(exc, CommandError):
        what = exc.message
    elif isinstance(exc, ApiError):
        what = f"{exc.message} (HTTP {exc.status})"
    elif isinstance(exc, ApiUnavailable | RuntimeError | TimeoutError | TssError | OSError):
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    else:  # a bug here or an answer of an unexpected shape: still no trace
        what = f"{type(exc).__name__}: {exc}"
    print(f"tssnode cluster demo: {step}: {what}", file=sys.stderr)
    return 1


def cluster_demo(n: int = 4, *, tier: str = "standard", keep: bool = False) -> int:
    """A throw-away network of `n` nodes in a directory of its own, on ports the system
    picks (never another network's): a key at node 2, a signature via node n, both
    printed and the signature checked; then the network is stopped and removed."""
    if not 2 <= n <= 7:
        print("tssnode cluster demo: the demo runs 2 to 7 nodes", file=sys.stderr)
        return 2
    from tssnode.testing.cluster import make_cluster

    root = Path(tempfile.mkdtemp(prefix="tssnode-demo-"))
    t = demo_threshold(n)
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
        wait_connected(clients, timeout=90)
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
    except (Exception, KeyboardInterrupt) as exc:
        return demo_failed(step, exc)
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
