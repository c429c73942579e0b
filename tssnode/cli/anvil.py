"""anvil (Foundry's EVM dev chain), from node_modules, as a process: a child that lives as
long as a `with` block (the demo, the tests, the benchmarks), or detached with a pid file
and its state kept in a file across restarts (the local network of `tssnode cluster up
--bridge`).

    with running_anvil(chain_id=31337) as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.url))

A child takes `--port 0` (the kernel picks a free port) and anvil prints `Listening on
127.0.0.1:<port>` when it serves: the port is read from that line, so there is no window
in which another process could take a port chosen beforehand. `--silent` and `--quiet`
suppress that line too, so anvil's output is read, and drained by a thread for as long as
it runs (its request log would otherwise fill the pipe and stall it).

A detached anvil listens on a fixed port (the local network's 8545) and writes its output
to a log; `--state FILE` loads the chain from FILE at start and dumps it there when anvil
stops on SIGTERM (anvil 1.7.1: deployed contracts, balances and the block number come
back). A SIGKILL loses what happened since the last start.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from tssnode import launch
from tssnode.cli.processes import wait_started

ROOT = Path(__file__).resolve().parents[2]
#: where `npm ci` puts the binary (package-lock.json pins @foundry-rs/anvil-linux-amd64)
BINARY = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
#: overrides BINARY (another checkout's node_modules, or an anvil from elsewhere)
ENV_BINARY = "TSSNODE_ANVIL"
#: ready in 0.07–0.16 s here; the margin is for a loaded machine
START_TIMEOUT = 20.0
#: anvil's chain id unless told otherwise (the local network's)
CHAIN_ID = 31337
#: anvil's dev accounts (its default mnemonic: the same every run): account 0's private key
#: (public knowledge, good for a dev chain only) and account 1's address
ACCOUNT_0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ACCOUNT_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ACCOUNT_1_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"

_LISTENING = re.compile(r"Listening on 127\.0\.0\.1:(\d+)")


class AnvilError(RuntimeError):
    """anvil is missing, exited, or did not say where it listens in time."""


@dataclass(frozen=True)
class Anvil:
    """One running anvil: its JSON-RPC `url`, chain id and process."""

    url: str
    port: int
    chain_id: int
    process: subprocess.Popen[str]


def anvil_binary() -> Path:
    """$TSSNODE_ANVIL if set, else node_modules' anvil; refused if it is not a file."""
    chosen = os.environ.get(ENV_BINARY)
    path = Path(chosen) if chosen else BINARY
    if not path.is_file():
        hint = f"${ENV_BINARY}" if chosen else "`npm ci` (or `make`) installs it"
        raise AnvilError(f"no anvil at {path} ({hint})")
    return path


def anvil_argv(host: str, port: int, chain_id: int, *extra: str) -> list[str]:
    return [
        str(anvil_binary()),
        *("--host", host, "--port", str(port), "--chain-id", str(chain_id)),
        *extra,
    ]


class _Output:
    """Reads anvil's output to its end: finds the port, keeps the last lines for errors."""

    def __init__(self, stream: IO[str]) -> None:
        self.port: int | None = None
        self.ended = False
        self.ready = threading.Event()
        self.tail: deque[str] = deque(maxlen=40)
        self._thread = threading.Thread(
            target=self._read, args=(stream,), name="anvil-output", daemon=True
        )
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.tail.append(line.rstrip())
            if self.port is None and (match := _LISTENING.search(line)):
                self.port = int(match.group(1))
                self.ready.set()
        self.ended = True  # end of output: anvil is exiting, so waiting longer is pointless
        self.ready.set()

    def join(self) -> None:
        self._thread.join()


def _wait_for_port(process: subprocess.Popen[str], output: _Output, timeout: float) -> int:
    """The port anvil says it listens on; AnvilError with its output if it does not."""
    output.ready.wait(timeout)
    if output.port is not None:
        return output.port
    if output.ended:
        # its output closes a moment before its exit status can be collected
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    code = process.poll()
    state = "still running" if code is None else f"exited with {code}"
    shown = "\n".join(output.tail) or "(no output)"
    raise AnvilError(
        f"anvil did not print 'Listening on 127.0.0.1:<port>' within {timeout} s ({state}):\n"
        f"{shown}"
    )


@contextlib.contextmanager
def running_anvil(
    chain_id: int = CHAIN_ID, accounts: int = 2, *, timeout: float = START_TIMEOUT
) -> Iterator[Anvil]:
    """An anvil on 127.0.0.1 with `accounts` funded, unlocked dev accounts (anvil's default
    mnemonic, so the same addresses every run); killed and reaped on exit, error or not."""
    command = anvil_argv("127.0.0.1", 0, chain_id, "--accounts", str(accounts))
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None  # PIPE was asked for
    output = _Output(process.stdout)
    try:
        port = _wait_for_port(process, output, timeout)
        yield Anvil(f"http://127.0.0.1:{port}", port, chain_id, process)
    finally:
        process.kill()
        process.wait()
        output.join()  # the pipe is at its end once the process is gone
        process.stdout.close()


# -- detached, with a pid file (the local network) --------------------------------------------


def is_anvil(pid: int | None) -> bool:
    """Whether `pid` is a live anvil process (a pid the system gave to another program
    since is not)."""
    return pid is not None and launch.alive(pid, b"anvil", in_argv0=True)


def chain_id_at(url: str, timeout: float = 2.0) -> int | None:
    """The chain id of the EVM node answering JSON-RPC at `url`, or None if none does."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        answer = httpx.post(url, json=body, timeout=timeout).json()
        return int(answer["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def start_detached(
    host: str,
    port: int,
    *,
    state: Path,
    log: Path,
    chain_id: int = CHAIN_ID,
    timeout: float = START_TIMEOUT,
) -> int:
    """anvil on host:port as nobody's child (it outlives this process), its chain loaded
    from and dumped to `state`, its output appended to `log`; returns its pid once it
    answers JSON-RPC. AnvilError (with the end of its log) if it exits or never answers."""
    state.parent.mkdir(parents=True, exist_ok=True)
    argv = anvil_argv(host, port, chain_id, "--state", str(state))
    try:
        pid = launch.start_orphan(Path("anvil"), log, argv=argv)
    except launch.LaunchError as exc:
        raise AnvilError(str(exc)) from None
    url = f"http://{host}:{port}"
    failed = wait_started(pid, is_anvil, lambda: chain_id_at(url, 1.0) is not None, log, timeout)
    if failed is not None:
        raise AnvilError(f"anvil {failed}")
    return pid
