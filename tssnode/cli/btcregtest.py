"""The regtest Bitcoin service (`tssnode regtest`, docs/regtest.md) as a process: a child
that lives as long as a `with` block (the demo, the tests, the benchmarks), or detached
with a pid file and its chain in a data directory (the local network of `tssnode cluster
up --bridge`). Either way the credentials come from the cookie file it writes, as a
client of bitcoind reads them.

    with running_regtest(tmp_path) as (url, auth, process):
        rpc = bitcoin.rpc.RawProxy(service_url=service_url(url, auth))

A child is `python -m tssnode.cli regtest --port 0` (the kernel picks the port: no window
in which another process takes a port chosen beforehand); the port is read from the line
`regtest RPC listening on 127.0.0.1:<port>`. Its logs go to `regtest.log` beside the
cookie (a pipe nobody drains would stall the service). On exit the process gets SIGTERM
(it saves its mempool when it has a data directory), then SIGKILL if it lingers.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

from tssnode import launch
from tssnode.bridge.watcher import rpc_url
from tssnode.cli.processes import wait_started

#: the service is ready in about 0.3 s here; the margin is for a loaded machine
START_TIMEOUT = 30.0
_READY = re.compile(r"regtest RPC listening on ([\d.]+):(\d+)")


class RegtestStartError(RuntimeError):
    """The regtest service could not be started, exited, or did not say where it listens
    in time."""


class Regtest(NamedTuple):
    """A running service: its RPC `url`, (user, password) and process."""

    url: str
    auth: tuple[str, str]
    process: subprocess.Popen[str]

    @property
    def service_url(self) -> str:
        return service_url(self.url, self.auth)


def service_url(url: str, auth: tuple[str, str]) -> str:
    """The URL with credentials, as python-bitcoinlib's `RawProxy(service_url=...)` takes
    (the node's watch builds its own the same way: `bridge.watcher.rpc_url`)."""
    return rpc_url(url, user=auth[0], password=auth[1])


def regtest_argv(*args: str) -> list[str]:
    """`tssnode regtest ARGS` with this interpreter."""
    return launch.python_argv("tssnode.cli", "regtest", *args)


class _FirstLine:
    """Reads the service's stdout to its end; keeps the first line, and the port in it."""

    def __init__(self, stream: IO[str]) -> None:
        self.line: str | None = None
        self.ended = False
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            if self.line is None:
                self.line = line.strip()
                self.ready.set()
        self.ended = True  # stdout closed: the service is exiting
        self.ready.set()

    def join(self) -> None:
        self._thread.join()


@contextmanager
def running_regtest(
    tmp_path: Path,
    *,
    datadir: Path | None = None,
    args: Sequence[str] = (),
    timeout: float = START_TIMEOUT,
) -> Iterator[Regtest]:
    """A `tssnode regtest` on 127.0.0.1, in memory unless `datadir` is given (then the
    chain survives a restart on the same directory)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    if datadir is not None:
        cookie = datadir / "regtest" / ".cookie"
        where = ["--datadir", str(datadir)]
    else:
        cookie = tmp_path / ".cookie"
        where = ["--rpccookiefile", str(cookie)]
    log_path = tmp_path / "regtest.log"
    with log_path.open("a") as log:
        try:
            process = launch.start_piped(
                "tssnode.cli", "regtest", "--port", "0", *where, *args,
                stdin=subprocess.DEVNULL, stderr=log.fileno(),
            )  # fmt: skip
        except launch.LaunchError as exc:
            raise RegtestStartError(str(exc)) from None
    assert process.stdout is not None  # PIPE was asked for
    output = _FirstLine(process.stdout)
    try:
        output.ready.wait(timeout)
        match = _READY.search(output.line or "")
        if match is None:
            if output.ended:  # its output closes a moment before its exit status is known
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            code = process.poll()
            state = "still running" if code is None else f"exited with {code}"
            raise RegtestStartError(
                f"tssnode regtest did not report its port within {timeout} s ({state}):\n"
                + log_path.read_text()[-4000:]
            )
        user, _, password = cookie.read_text().partition(":")
        yield Regtest(f"http://{match.group(1)}:{match.group(2)}", (user, password), process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        output.join()
        with contextlib.suppress(OSError):
            process.stdout.close()


# -- detached, with a pid file (the local network) --------------------------------------------


def proxy(url: str, cookie: Path, timeout: float = 30.0) -> Any:
    """An RPC client (`btcrpc.Rpc`, over python-bitcoinlib's RawProxy) for the service at
    `url`, with the cookie's credentials as they are now (the service writes a new cookie
    at every start)."""
    from tssnode.bridge.btcrpc import Rpc

    return Rpc(rpc_url(url, cookie_file=cookie), timeout=timeout)


def start_detached(
    host: str,
    port: int,
    *,
    datadir: Path,
    cookie: Path,
    log: Path,
    timeout: float = START_TIMEOUT,
) -> int:
    """`tssnode regtest` on host:port as nobody's child (it outlives this process), its
    chain, wallet and mempool in `datadir/regtest`, its cookie at `cookie`, its output
    appended to `log`; returns its pid once it answers RPC with the cookie it wrote.
    RegtestStartError (with the end of its log) if it exits or never answers."""
    datadir.mkdir(parents=True, exist_ok=True)
    argv = regtest_argv(
        "--host", host, "--port", str(port), "--datadir", str(datadir),
        "--rpccookiefile", str(cookie),
    )  # fmt: skip
    try:
        pid = launch.start_orphan(Path("tssnode regtest"), log, argv=argv)
    except launch.LaunchError as exc:
        raise RegtestStartError(str(exc)) from None
    url = f"http://{host}:{port}"
    failed = wait_started(pid, launch.alive, lambda: answers(url, cookie), log, timeout)
    if failed is not None:
        raise RegtestStartError(f"tssnode regtest {failed}")
    return pid


def answers(url: str, cookie: Path) -> bool:
    """Whether the service at `url` answers RPC with the credentials in `cookie` (a
    stale cookie of an earlier run does not)."""
    try:
        rpc = proxy(url, cookie, timeout=2.0)
    except OSError:  # no cookie (yet)
        return False
    try:
        rpc.getblockcount()
    except Exception:  # (refused, a 401 for a stale cookie, ...)
        return False
    finally:
        rpc.close()
    return True
