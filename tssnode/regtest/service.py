"""`tssnode regtest`: serve a regtest chain with Bitcoin Core's JSON-RPC until SIGINT,
SIGTERM or the `stop` method.

Credentials as bitcoind: `--rpcuser`/`--rpcpassword`, or else a cookie file
(`__cookie__:<random hex>`, mode 0600) at `--rpccookiefile`, else `<datadir>/regtest/.cookie`,
else in a temporary directory whose path is logged; the cookie is deleted on exit. When it
serves, stdout gets one line, `regtest RPC listening on <host>:<port>` (with `--port 0`, the
port the kernel gave), or only the port with `--print-port`. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve

from tssnode import logs
from tssnode.regtest.errors import RegtestError
from tssnode.regtest.jsonrpc import build_app
from tssnode.regtest.methods import Methods
from tssnode.regtest.node import DEFAULT_FALLBACK_FEE, RegtestNode, Settings
from tssnode.regtest.units import amount_from_value

log = logging.getLogger("tssnode.regtest")

COOKIE_USER = "__cookie__"


#: seconds an idle RPC connection stays open (bitcoind's -rpcservertimeout default)
RPC_SERVER_TIMEOUT = 30.0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="tssnode regtest",
        description=(
            "A regtest Bitcoin chain with Bitcoin Core's JSON-RPC, every block and input "
            "script validated by Bitcoin Core's engine (libbitcoinkernel). docs/regtest.md"
        ),
    )
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    ap.add_argument(
        "--port", type=int, default=18443, help="RPC port (18443, as bitcoind -regtest; 0: any)"
    )
    ap.add_argument(
        "--datadir",
        type=Path,
        help="keep the chain, wallet and mempool in DIR/regtest (default: in memory)",
    )
    ap.add_argument("--rpcuser", help="RPC user name (with --rpcpassword; else a cookie)")
    ap.add_argument("--rpcpassword", help="RPC password (with --rpcuser)")
    ap.add_argument(
        "--rpccookiefile",
        type=Path,
        help="where to write the auth cookie (default: DATADIR/regtest/.cookie)",
    )
    ap.add_argument(
        "--fallbackfee",
        default=str(DEFAULT_FALLBACK_FEE / 1e8),
        help="BTC/kvB: estimatesmartfee and the wallet's rate with no fee data (0.0002)",
    )
    ap.add_argument(
        "--rpcservertimeout",
        type=float,
        default=RPC_SERVER_TIMEOUT,
        help="seconds an idle RPC connection stays open (30, as bitcoind's)",
    )
    ap.add_argument(
        "--print-port", action="store_true", help="print only the port number when ready"
    )
    ap.add_argument(
        "--log-level", default="INFO", choices=logs.LEVELS, help="stderr log level (INFO)"
    )
    return ap


def write_cookie(path: Path) -> str:
    """Write `__cookie__:<64 hex>` as bitcoind does (temp file, then rename); the password."""
    password = secrets.token_hex(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{COOKIE_USER}:{password}")
    os.replace(tmp, path)
    return password


async def run(
    methods: Methods,
    host: str,
    port: int,
    user: str,
    password: str,
    just_port: bool,
    idle_timeout: float = RPC_SERVER_TIMEOUT,
) -> None:
    """Serve until a signal or the `stop` method."""
    hc = HyperConfig()
    hc.bind = [f"{host}:{port}"]
    hc.accesslog = None
    hc.errorlog = logging.getLogger("tssnode.regtest.http")
    # bitcoind keeps an idle RPC connection for -rpcservertimeout (30 s); hypercorn's 5 s
    # broke clients that, like python-bitcoinlib's proxy, never reconnect
    hc.keep_alive_timeout = idle_timeout
    app = build_app(methods, user, password)
    stopping = trio.Event()
    token = trio.lowlevel.current_trio_token()
    methods.on_stop = lambda: token.run_sync_soon(stopping.set)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            # hypercorn types its app parameter as its own ASGI protocol, which Starlette is
            binds = await nursery.start(partial(serve, app, hc))  # type: ignore[arg-type]
            real_port = int(str(binds[0]).rsplit(":", 1)[1])
            log.info("regtest RPC listening on %s:%d", host, real_port)
            print(real_port if just_port else f"regtest RPC listening on {host}:{real_port}",
                  flush=True)  # fmt: skip

            async def on_signal() -> None:
                async for signum in signals:
                    log.info("signal %d: shutting down", signum)
                    stopping.set()
                    return

            nursery.start_soon(on_signal)
            await stopping.wait()
            await trio.sleep(0.1)  # let the reply to `stop` go out
            nursery.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logs.setup(args.log_level)
    if bool(args.rpcuser) != bool(args.rpcpassword):
        print("tssnode regtest: give both --rpcuser and --rpcpassword, or neither", file=sys.stderr)
        return 2
    try:
        fallback = amount_from_value(args.fallbackfee)
    except RegtestError:
        print("tssnode regtest: --fallbackfee is a BTC/kvB amount", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        node = RegtestNode(Settings(datadir=args.datadir, fallback_fee=fallback))
    except (RegtestError, OSError, RuntimeError) as exc:
        print(f"tssnode regtest: cannot start the chain: {exc}", file=sys.stderr)
        return 1
    log.info(
        "chain ready in %.2f s: height %d%s", time.monotonic() - started, node.chain.height,
        f", data in {node.network_dir}" if node.network_dir else " (in memory)",
    )  # fmt: skip
    cookie: Path | None = None
    scratch: tempfile.TemporaryDirectory[str] | None = None
    if args.rpcuser:
        user, password = args.rpcuser, args.rpcpassword
    else:
        if args.rpccookiefile is not None:
            cookie = args.rpccookiefile
        elif node.network_dir is not None:
            cookie = node.network_dir / ".cookie"
        else:
            scratch = tempfile.TemporaryDirectory(prefix="tssnode-regtest-cookie-")
            cookie = Path(scratch.name) / ".cookie"
        user, password = COOKIE_USER, write_cookie(cookie)
        log.info("auth cookie in %s", cookie)
    failure: BaseException | None = None
    try:
        trio.run(
            run,
            Methods(node),
            args.host,
            args.port,
            user,
            password,
            args.print_port,
            args.rpcservertimeout,
        )
    except* OSError as group:  # from hypercorn's nursery: the port is taken, say
        failure = group
        while isinstance(failure, BaseExceptionGroup):
            failure = failure.exceptions[0]
    finally:
        node.close()
        if cookie is not None:
            cookie.unlink(missing_ok=True)
        if scratch is not None:
            scratch.cleanup()
    if failure is not None:
        print(
            f"tssnode regtest: cannot listen on {args.host}:{args.port}: {failure}", file=sys.stderr
        )
        return 1
    log.info("stopped")
    return 0
