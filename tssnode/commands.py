"""The node's commands: init, run, vault, cluster, and the API clients (keygen, sign, status,
blocks).

tssnode init --data-dir DIR [--insecure-local-key]   identity and API token (and a vault key)
tssnode run --config FILE                   the headless daemon (SIGINT/SIGTERM stop it)
tssnode vault rekey --config FILE           re-seal the vault under a new passphrase
tssnode cluster up|down|status [N]          a local N-node network from configs/local
tssnode status|keygen|sign|blocks --config FILE | --api URL --token-file PATH [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tssnode.api.client import ApiClient, ApiError, ApiUnavailable, read_token
from tssnode.config import ConfigError, NodeConfig
from tssnode.errors import TssError

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / "configs" / "local"


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


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


def cmd_init(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="tssnode init",
        description="create a node's data directory: its identity and API token. The vault "
        "passphrase is not kept there: give it to `tssnode run` in TSSNODE_PASSPHRASE or "
        "with [vault] passphrase_file / passphrase_command in the config.",
    )
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument(
        "--insecure-local-key",
        action="store_true",
        help="also write a random vault key into the data directory (vault.key): for "
        "throw-away local nodes whose config sets [vault] insecure_local_key = true",
    )
    args = ap.parse_args(argv)
    info = init_data_dir(args.data_dir, local_key=args.insecure_local_key)
    print(json.dumps(info, indent=2))
    return 0


def cmd_run(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(prog="tssnode run", description="run a node (headless)")
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    _setup_logging(args.log_level)
    try:
        config = NodeConfig.load(args.config)
    except ConfigError as exc:
        print(f"tssnode run: {exc}", file=sys.stderr)
        return 2
    init_data_dir(config.data_dir)
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
        trio.run(run_until_signal, config, unlocked)
    except TssError as exc:
        print(f"tssnode run: {exc}", file=sys.stderr)
        return 1
    finally:
        unlocked.close()
    return 0


# -- the vault ------------------------------------------------------------------------------


def cmd_vault(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="tssnode vault",
        description="rekey: seal every secret of a stopped node again under a new passphrase, "
        "in one atomic write (interrupted, the old passphrase keeps working). The current "
        "passphrase comes from where `tssnode run` takes it; the new one from "
        "TSSNODE_NEW_PASSPHRASE or one of the options.",
    )
    ap.add_argument("action", choices=["rekey"])
    ap.add_argument("--config", type=Path, required=True)
    new = ap.add_mutually_exclusive_group()
    new.add_argument("--new-passphrase-file", type=Path, metavar="PATH")
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
    args = ap.parse_args(argv)
    try:
        config = NodeConfig.load(args.config)
    except ConfigError as exc:
        print(f"tssnode vault: {exc}", file=sys.stderr)
        return 2
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
            f"tssnode vault: the node of {args.config} is running (it holds the database in "
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


# -- the local cluster ----------------------------------------------------------------------


def local_configs(n: int) -> list[Path]:
    paths = [LOCAL / f"node{i}.toml" for i in range(1, n + 1)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"no config {missing[0]}; configs/local has node1..node4")
    return paths


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


def _pidfile(cfg: NodeConfig) -> Path:
    return cfg.data_dir / "node.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def start_daemon(config_path: Path, log_path: Path | None = None) -> int:
    """Start `tssnode run --config` detached; returns its pid."""
    cfg = NodeConfig.load(config_path)
    log_path = log_path or cfg.data_dir / "node.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tssnode.cli", "run", "--config", str(config_path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _pidfile(cfg).write_text(str(proc.pid))
    return proc.pid


def wait_api(cfg: NodeConfig, timeout: float = 60.0) -> bool:
    token = read_token(cfg.data_dir / "api.token")
    deadline = time.monotonic() + timeout
    with ApiClient(f"http://{cfg.api.address}", token, timeout=2.0) as api:
        while time.monotonic() < deadline:
            try:
                api.get("/status")
                return True
            except (ApiUnavailable, ApiError):
                time.sleep(0.3)
    return False


def cmd_cluster(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(prog="tssnode cluster", description="a local network on loopback")
    ap.add_argument("action", choices=["up", "down", "status", "demo"])
    ap.add_argument("n", nargs="?", type=int, default=4)
    args = ap.parse_args(argv)
    configs = local_configs(args.n)
    if args.action == "demo":
        return cluster_demo(configs)
    if args.action == "up":
        write_local_genesis(configs)
        for path in configs:
            cfg = NodeConfig.load(path)
            pid_path = _pidfile(cfg)
            if pid_path.exists() and _alive(int(pid_path.read_text())):
                print(f"{path.name}: already running (pid {pid_path.read_text()})")
                continue
            pid = start_daemon(path)
            print(f"{path.name}: started (pid {pid}), log {cfg.data_dir / 'node.log'}")
        for path in configs:
            cfg = NodeConfig.load(path)
            ok = wait_api(cfg)
            print(f"{path.name}: API http://{cfg.api.address} {'up' if ok else 'NOT answering'}")
        return 0
    if args.action == "down":
        for path in configs:
            cfg = NodeConfig.load(path)
            pid_path = _pidfile(cfg)
            if pid_path.exists():
                pid = int(pid_path.read_text())
                if _alive(pid):
                    os.kill(pid, signal.SIGTERM)
                    print(f"{path.name}: stopping (pid {pid})")
                pid_path.unlink()
        return 0
    for path in configs:
        cfg = NodeConfig.load(path)
        pid_path = _pidfile(cfg)
        alive = pid_path.exists() and _alive(int(pid_path.read_text()))
        print(f"{path.name}: {'running' if alive else 'stopped'}")
    return 0


def cluster_demo(configs: list[Path]) -> int:
    """Headless: bring the network up, make a key at node 2, sign at node n, print, stop."""
    rc = cmd_cluster(["up", str(len(configs))])
    if rc:
        return rc
    try:
        cfgs = [NodeConfig.load(p) for p in configs]
        clients = [
            ApiClient(f"http://{c.api.address}", read_token(c.data_dir / "api.token")) for c in cfgs
        ]
        t = (len(configs) - 1) // 2 + 1 if len(configs) > 2 else 1
        print(f"requesting a {t + 1}-of-{len(configs)} key at node 2 …")
        req = clients[1].post("/keygen", {"threshold": t, "parties": None})
        key = _wait_for(clients[0], f"/keys/{req['key_id']}", ("active", "failed"), 600)
        _show(key, False)
        print(f"\nsigning 'hello from tssnode' (sha256) via node {len(configs)} …")
        out = clients[-1].post(
            "/sign", {"key_id": key["key_id"], "message": "hello from tssnode", "hash": "sha256"}
        )
        sig = _wait_for(clients[0], f"/signatures/{out['signature_id']}", ("done", "failed"), 300)
        _show(sig, False)
        for c in clients:
            c.http.close()
        return 0 if sig["status"] == "done" else 1
    finally:
        cmd_cluster(["down", str(len(configs))])


# -- API clients ----------------------------------------------------------------------------


def _client_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--config", type=Path, help="the node's config (finds API and token)")
    ap.add_argument("--api", help="API base URL, e.g. http://127.0.0.1:3001")
    ap.add_argument("--token-file", type=Path)
    ap.add_argument("--json", action="store_true")


def _client(args: argparse.Namespace) -> ApiClient:
    if args.config:
        cfg = NodeConfig.load(args.config)
        return ApiClient(f"http://{cfg.api.address}", read_token(cfg.data_dir / "api.token"))
    if args.api and args.token_file:
        return ApiClient(args.api, read_token(args.token_file))
    raise SystemExit("give --config FILE, or --api URL with --token-file PATH")


def _show(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2))
        return
    if isinstance(data, list):
        for item in data:
            _show(item, False)
            print()
        return
    for k, v in data.items():
        print(f"{k:16} {json.dumps(v) if isinstance(v, dict | list) else v}")


def _wait_for(api: ApiClient, path: str, done: tuple[str, ...], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    spinner = "|/-\\"
    i = 0
    while True:
        try:
            data = api.get(path)
            if data.get("status") in done:
                print("\r", end="", file=sys.stderr)
                return data
        except ApiError as exc:
            if exc.status != 404:
                raise
        if time.monotonic() > deadline:
            raise SystemExit(f"still not done after {timeout:.0f} s: {path}")
        print(f"\r{spinner[i % 4]} waiting for {path}", end="", file=sys.stderr, flush=True)
        i += 1
        time.sleep(0.25)


def cmd_client(command: str, argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(prog=f"tssnode {command}")
    _client_args(ap)
    if command == "keygen":
        ap.add_argument("--threshold", type=int, required=True)
        ap.add_argument("--parties", nargs="*", help="validator keys (default: every validator)")
        ap.add_argument(
            "--single-signer",
            action="store_true",
            help="allow --threshold 0: a key any one party can use alone",
        )
        ap.add_argument("--no-wait", action="store_true")
    elif command == "sign":
        ap.add_argument("--key-id", required=True)
        group = ap.add_mutually_exclusive_group(required=True)
        group.add_argument("--message")
        group.add_argument("--message-hex")
        ap.add_argument(
            "--hash", default="sha256", choices=["sha256", "sha256d", "keccak256", "eip191"]
        )
        ap.add_argument("--path")
        ap.add_argument("--no-wait", action="store_true")
    elif command == "blocks":
        ap.add_argument("--from", dest="start", type=int, default=0)
        ap.add_argument("--limit", type=int, default=20)
    args = ap.parse_args(argv)
    try:
        with _client(args) as api:
            if command == "status":
                _show(api.get("/status"), args.json)
            elif command == "blocks":
                _show(api.get("/blocks", **{"from": args.start, "limit": args.limit}), args.json)
            elif command == "keygen":
                request: dict[str, Any] = {"threshold": args.threshold, "parties": args.parties}
                if args.single_signer:
                    request["single_signer"] = True
                out = api.post("/keygen", request)
                if not args.no_wait:
                    out = _wait_for(api, f"/keys/{out['key_id']}", ("active", "failed"), 600)
                _show(out, args.json)
            elif command == "sign":
                body: dict[str, Any] = {"key_id": args.key_id, "hash": args.hash, "path": args.path}
                if args.message is not None:
                    body["message"] = args.message
                else:
                    body["message_hex"] = args.message_hex
                out = api.post("/sign", body)
                if not args.no_wait:
                    out = _wait_for(
                        api, f"/signatures/{out['signature_id']}", ("done", "failed"), 300
                    )
                _show(out, args.json)
    except ApiError as exc:
        print(f"tssnode {command}: {exc.message} (HTTP {exc.status})", file=sys.stderr)
        return 1
    except (ApiUnavailable, ConfigError, OSError) as exc:
        print(f"tssnode {command}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_status(argv: Sequence[str]) -> int:
    return cmd_client("status", argv)


def cmd_keygen(argv: Sequence[str]) -> int:
    return cmd_client("keygen", argv)


def cmd_sign(argv: Sequence[str]) -> int:
    return cmd_client("sign", argv)


def cmd_blocks(argv: Sequence[str]) -> int:
    return cmd_client("blocks", argv)
