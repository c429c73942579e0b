"""A throw-away EVM dev chain: anvil (Foundry's), from node_modules, on a loopback port.

    with running_anvil(chain_id=31337) as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.url))

anvil takes `--port 0` (the kernel picks a free port) and prints `Listening on
127.0.0.1:<port>` when it serves: the port is read from that line, so there is no window
in which another process could take a port chosen beforehand. `--silent` and `--quiet`
suppress that line too, so anvil's output is read, and drained by a thread for as long as
it runs (its request log would otherwise fill the pipe and stall it).
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

ROOT = Path(__file__).resolve().parents[2]
#: where `npm ci` puts the binary (package-lock.json pins @foundry-rs/anvil-linux-amd64)
BINARY = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
#: overrides BINARY (another checkout's node_modules, or an anvil from elsewhere)
ENV_BINARY = "TSSNODE_ANVIL"
#: ready in 0.07–0.16 s here; the margin is for a loaded machine
START_TIMEOUT = 20.0

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
    chain_id: int = 31337, accounts: int = 2, *, timeout: float = START_TIMEOUT
) -> Iterator[Anvil]:
    """An anvil on 127.0.0.1 with `accounts` funded, unlocked dev accounts (anvil's default
    mnemonic, so the same addresses every run); killed and reaped on exit, error or not."""
    command = [
        str(anvil_binary()),
        *("--host", "127.0.0.1", "--port", "0"),
        *("--chain-id", str(chain_id), "--accounts", str(accounts)),
    ]
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
