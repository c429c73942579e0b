"""The chains of a local network's bridge, run beside its nodes: `tssnode cluster up
--bridge` (what `make run` runs) starts them and brings the bridge up; `tssnode cluster
down` stops them with the nodes. They live in the network's directory, beside the nodes'
data directories (`.local/` of a checkout):

    regtest/      `tssnode regtest`: regtest/ (its chain, wallet and mempool), regtest.pid,
                  regtest.log; it listens at the nodes' `[bridge.bitcoin] url` and writes
                  the cookie they read (`cookie_file`)
    anvil/        anvil: state.json (its chain: loaded at start, dumped when it stops),
                  anvil.pid, anvil.log, payer.key (anvil's dev account 0, which pays mints)
    bridge.json   where everything is: the RPC URLs, the bridge key, its mint authority,
                  the gateway and its token (what the next `up --bridge` reuses)

Both are started detached (they outlive the command, as the nodes do) unless their pid
file names one running, so a second `up --bridge` changes nothing. The first start mines
101 blocks to the regtest wallet (its first coinbase is then spendable).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tssnode import launch
from tssnode.cli import anvil, btcregtest
from tssnode.cli.common import CommandError, kv
from tssnode.cli.processes import stop_recorded
from tssnode.config import NodeConfig
from tssnode.launch import read_pid, write_atomic

#: where anvil listens unless `--evm-rpc` or the nodes' `[bridge.evm] url` say otherwise
DEFAULT_EVM_URL = "http://127.0.0.1:8545"
RECORD = "bridge.json"


@dataclass(frozen=True)
class Chains:
    """Where a local network's chains live and listen."""

    root: Path  # the network's directory
    bitcoin_url: str
    cookie: Path
    evm_url: str

    @property
    def regtest(self) -> Path:
        return self.root / "regtest"

    @property
    def anvil(self) -> Path:
        return self.root / "anvil"


def network_root(configs: Sequence[Path]) -> Path:
    """The network's directory: where its first node's data directory is."""
    return Path(os.path.normpath(NodeConfig.load(configs[0]).data_dir.parent))


def chains_of(configs: Sequence[Path], evm_url: str | None = None) -> Chains:
    """The chains of the network of `configs`: the regtest service where the first node's
    `[bridge.bitcoin]` says; anvil at `evm_url`, else where it was the last time
    (bridge.json), else at the node's `[bridge.evm] url`, else at 127.0.0.1:8545."""
    cfg = NodeConfig.load(configs[0])
    rpc = cfg.bridge.bitcoin
    if rpc.url is None or rpc.cookie_file is None:
        raise CommandError(
            f"{configs[0]} has no [bridge.bitcoin] url and cookie_file: its nodes would not "
            "watch the regtest service that --bridge starts (configs/local/node1.toml shows "
            "the section)",
            2,
        )
    root = Path(os.path.normpath(cfg.data_dir.parent))
    url = evm_url or load_record(root).get("evm_url") or cfg.bridge.evm.url or DEFAULT_EVM_URL
    return Chains(root, rpc.url, Path(os.path.normpath(rpc.cookie_file)), url)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise CommandError(f"{url}: give the host and port (http://127.0.0.1:8545)", 2)
    return parts.hostname, parts.port


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def _start(
    name: str, pid_file: Path, url: str, alive: Callable[[int], bool], start: Callable[[], int]
) -> int:
    """The pid of the process named in `pid_file` if it runs, else of one `start` made."""
    pid = read_pid(pid_file)
    if pid is not None and alive(pid):
        print(f"{name}: already running (pid {pid})")
        return pid
    host, port = _host_port(url)
    if _listening(host, port):
        raise CommandError(
            f"{name}: {host}:{port} is taken by another program (this network's {name} is "
            f"not running: {pid_file} names none)"
        )
    pid = start()
    write_atomic(pid_file, f"{pid}\n")
    print(f"{name}: started (pid {pid})")
    return pid


def start(chains: Chains) -> None:
    """The regtest service and anvil running (each started unless it runs), 101 blocks
    mined to the regtest wallet on a new chain; where they are goes into bridge.json."""
    host, port = _host_port(chains.bitcoin_url)
    _start(
        "regtest", chains.regtest / "regtest.pid", chains.bitcoin_url, launch.alive,
        lambda: btcregtest.start_detached(
            host, port, datadir=chains.regtest, cookie=chains.cookie,
            log=chains.regtest / "regtest.log",
        ),
    )  # fmt: skip
    rpc = btcregtest.proxy(chains.bitcoin_url, chains.cookie)
    try:
        if int(rpc.getblockcount()) == 0:
            rpc.generatetoaddress(101, rpc.getnewaddress())
            print("regtest: mined 101 blocks to its wallet (its first coinbase is spendable)")
        height, balance = rpc.getblockcount(), rpc.getbalance()
    finally:
        rpc.close()
    print(f"regtest: RPC {chains.bitcoin_url}, height {height}, wallet {balance} BTC")
    evm_host, evm_port = _host_port(chains.evm_url)
    _start(
        "anvil", chains.anvil / "anvil.pid", chains.evm_url, anvil.is_anvil,
        lambda: anvil.start_detached(
            evm_host, evm_port, state=chains.anvil / "state.json",
            log=chains.anvil / "anvil.log",
        ),
    )  # fmt: skip
    chain_id = anvil.chain_id_at(chains.evm_url)
    print(f"anvil: RPC {chains.evm_url}, chain {chain_id}, state {chains.anvil / 'state.json'}")
    payer = chains.anvil / "payer.key"
    if not payer.exists():
        fd = os.open(payer, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(anvil.ACCOUNT_0_KEY + "\n")
    remember(chains.root, {"bitcoin_url": chains.bitcoin_url, "cookie_file": str(chains.cookie),
                           "evm_url": chains.evm_url})  # fmt: skip


def bring_up_bridge(chains: Chains, configs: Sequence[Path], *, threshold: int) -> None:
    """The bridge in force on the running nodes of `configs` (`bridgenet.bring_up`: made,
    deployed and voted as far as it is not already); where each part is, printed."""
    # (web3 is imported here, not at the top: `cluster status` and `down` need none of it)
    from eth_account import Account
    from web3.exceptions import Web3Exception

    from tssnode.api.client import ApiClient, ApiError, ApiUnavailable, read_token
    from tssnode.cli.bridgenet import DEPLOYER, PAYER_KEY, bring_up
    from tssnode.cli.configs import api_url

    def say(line: str) -> None:
        print(line, flush=True)

    clients = []
    try:
        for path in configs:
            cfg = NodeConfig.load(path)
            token = read_token(cfg.data_dir / "api.token")
            clients.append(ApiClient(api_url(cfg), token, timeout=60))
        up = bring_up(
            clients, chains.evm_url, threshold=threshold, known=load_record(chains.root),
            remember=lambda fields: remember(chains.root, fields), say=say,
        )  # fmt: skip
    except ApiError as exc:
        raise CommandError(f"the bridge: {exc.message} (HTTP {exc.status})") from None
    except (ApiUnavailable, Web3Exception, OSError) as exc:  # (requests' errors are OSErrors)
        raise CommandError(f"the bridge: {exc}") from None
    finally:
        for c in clients:
            c.http.close()
    remember(chains.root, up.record())
    payer = Account.from_key(PAYER_KEY).address
    n = len(configs)
    print(
        kv(
            [
                ("regtest RPC", f"{chains.bitcoin_url} (cookie {chains.cookie})"),
                ("anvil RPC", f"{chains.evm_url} (chain {up.info['chain_id']})"),
                ("bridge key", f"{up.key_id} (threshold {up.threshold}: any "
                               f"{up.threshold + 1} of {n} sign)"),
                ("mint authority", up.mint_authority),
                ("gateway", up.gateway),
                ("token", f"{up.token} (WBTC, 8 decimals)"),
                ("settings", f"{up.info['network']} → {up.info['chain_name']}, "
                             f"{up.info['confirmations']} confirmations, fee "
                             f"{up.info['fee_sats']} sats, minimum {up.info['min_deposit_sats']}"),
                ("mint payer", f"{payer} (anvil's dev account 0), key in "
                               f"{chains.anvil / 'payer.key'}"),
                ("recorded in", str(chains.root / RECORD)),
            ]
        )
    )  # fmt: skip
    print(f"a deposit address: tssnode bridge address --config {configs[min(1, n - 1)]} "
          f"--to {DEPLOYER}")  # fmt: skip


def stop(root: Path, wait: float = 20.0) -> None:
    """Stops the network's anvil (it dumps its state) and regtest service (it saves its
    mempool), if they run; says nothing of those never started here."""
    for name, pid_file, alive in (
        ("anvil", root / "anvil" / "anvil.pid", anvil.is_anvil),
        ("regtest", root / "regtest" / "regtest.pid", launch.alive),
    ):
        if pid_file.exists():
            print(stop_recorded(name, pid_file, alive, wait))


def status_lines(root: Path) -> list[str]:
    """One line per chain whose pid file is there, and one for the bridge if recorded."""
    record = load_record(root)
    lines = []
    for name, pid_file, alive, url in (
        ("regtest", root / "regtest" / "regtest.pid", launch.alive, record.get("bitcoin_url")),
        ("anvil", root / "anvil" / "anvil.pid", anvil.is_anvil, record.get("evm_url")),
    ):
        pid = read_pid(pid_file)
        if pid is None:
            continue
        state = f"running (pid {pid})" if alive(pid) else f"not running (pid {pid} is gone)"
        lines.append(f"{name}: {state}, RPC {url or '-'}")
    if record.get("gateway"):
        lines.append(
            f"bridge: gateway {record['gateway']}, token {record.get('token', '-')}, mint "
            f"authority {record.get('mint_authority', '-')} ({root / RECORD})"
        )
    return lines


def load_record(root: Path) -> dict[str, Any]:
    """bridge.json of the network at `root` ({} if there is none)."""
    try:
        data = json.loads((root / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember(root: Path, fields: dict[str, Any]) -> None:
    """`fields` into bridge.json (written whole, in one step)."""
    record = load_record(root) | fields
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(root / RECORD, json.dumps(record, indent=2) + "\n")
