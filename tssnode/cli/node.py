"""`tssnode init`, `tssnode run` and `tssnode vault`: a node's data directory, the
headless node (`tssnode.cli.daemon`), and its vault re-sealed under a new passphrase."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tssnode import logs
from tssnode.cli.common import CommandError, Row, kv, print_json
from tssnode.cli.configs import _config_arg, load_config
from tssnode.config import NodeConfig
from tssnode.errors import TssError
from tssnode.launch import EXITFILE, PIDFILE, read_pid, write_atomic
from tssnode.node.datadir import init_data_dir


def _setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    logs.setup(level, fmt)


# -- init and run ---------------------------------------------------------------------------


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


def _record_exit(data_dir: Path, code: int) -> None:
    """Leave this process's exit code where `tssnode cluster status` looks; a clean exit
    also takes back its pid file."""
    with contextlib.suppress(OSError):
        record = {"pid": os.getpid(), "code": code, "time": time.time()}
        write_atomic(data_dir / EXITFILE, json.dumps(record) + "\n")
        if code == 0 and read_pid(data_dir / PIDFILE) == os.getpid():
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

    from tssnode.cli import heap
    from tssnode.cli.daemon import run_until_signal
    from tssnode.node.vaultkey import unlock

    heap.limit_arenas()  # before any thread allocates (LevelDB's, trio's, the workers')
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
            write_atomic(config.data_dir / PIDFILE, f"{os.getpid()}\n")
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
