"""Throw-away local networks: N `tssnode run` processes on loopback ports in a directory,
with generated configs and a genesis from the nodes' own identities. Used by the
multi-node tests, the fault runner (`tssnode.testing.faults`), `tssnode bench cluster`
and `tssnode cluster demo`.

Each node gets a random vault passphrase of its own, handed to its process in
`TSSNODE_PASSPHRASE` (never written to disk), so these networks run the way a real node
does; `vault={"insecure_local_key": True}` makes a node keep a key in its data directory
instead."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tssnode import launch
from tssnode.api.client import ApiClient, ApiError, ApiUnavailable, get_or_none
from tssnode.config import render
from tssnode.ledger.genesis import Validator, genesis_toml, make_genesis
from tssnode.node.datadir import init_data_dir
from tssnode.node.vaultkey import NEW_PASSPHRASE_ENV, PASSPHRASE_ENV
from tssnode.testing.ports import free_port

T = TypeVar("T")


@dataclass
class NodeProc:
    index: int
    config: Path
    data_dir: Path
    api_url: str
    validator_key: str
    peer_id: str
    p2p: str = ""  # the listen multiaddr
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default=Path())
    #: handed to the process in TSSNODE_PASSPHRASE (None: none, e.g. insecure_local_key)
    passphrase: str | None = field(default=None, repr=False)
    #: more environment for the next start (e.g. TSSNODE_FAILPOINT)
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Prometheus metrics (`make_cluster(metrics=True)`), e.g. http://127.0.0.1:9601/metrics
    metrics_url: str | None = None
    #: argv put before the node's command, e.g. `["ip", "netns", "exec", NAME]` to run it in
    #: a network namespace (that command execs, so the pid and its signals are the node's)
    command_prefix: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The node process's environment: ours, with its own passphrase (or none)."""
        env = {k: v for k, v in os.environ.items() if k not in (PASSPHRASE_ENV, NEW_PASSPHRASE_ENV)}
        env["TSSNODE_ALLOW_INSECURE"] = "1"
        if self.passphrase is not None:
            env[PASSPHRASE_ENV] = self.passphrase
        env.pop("TSSNODE_FAILPOINT", None)
        env.update(self.extra_env)
        return env

    def client(self, timeout: float = 30.0) -> ApiClient:
        token = (self.data_dir / "api.token").read_text().strip()
        return ApiClient(self.api_url, token, timeout=timeout)

    def start(self) -> None:
        self.log = self.data_dir / "node.log"
        self.proc = launch.start(self.config, self.log, env=self.env(), prefix=self.command_prefix)

    def wait_api(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with self.client(timeout=2.0) as api:
            while True:
                try:
                    api.get("/status")
                    return
                except (ApiUnavailable, ApiError):
                    if self.proc is not None and self.proc.poll() is not None:
                        raise RuntimeError(
                            f"node {self.index} exited:\n{self.log.read_text()[-3000:]}"
                        ) from None
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _new_node(
    root: Path,
    index: int,
    *,
    keys: dict[str, Any],
    net: dict[str, Any],
    ledger: dict[str, Any],
    vault: dict[str, Any] | None = None,
    p2p_host: str = "127.0.0.1",
    api_host: str = "127.0.0.1",
    metrics: bool = False,
    bitcoin_rpc: dict[str, Any] | None = None,
    evm_rpc: dict[str, Any] | None = None,
) -> NodeProc:
    """Data directory `root/node<index>` (identity, token), its config on free ports (of
    `p2p_host` and `api_host`: loopback, or a network namespace's own addresses), and its
    passphrase (unless `vault` sets insecure_local_key)."""
    data_dir = root / f"node{index}"
    info = init_data_dir(data_dir)
    p2p, api = free_port(), free_port()
    listen = f"/ip4/{p2p_host}/tcp/{p2p}"
    config = root / f"node{index}.toml"
    sections: dict[str, Any] = {
        "node": {"network_id": "tssnode-test", "data_dir": str(data_dir)},
        "net": {"listen": listen, **net},
        "api": {"listen": f"{api_host}:{api}"},
        "keys": {"prime_reserve": 2, "btc_network": "regtest", **keys},
    }
    if ledger:
        sections["ledger"] = ledger
    if vault:
        sections["vault"] = vault
    if bitcoin_rpc:
        sections["bridge.bitcoin"] = bitcoin_rpc
    if evm_rpc:
        sections["bridge.evm"] = evm_rpc
    metrics_url = None
    if metrics:
        port = free_port()
        sections["metrics"] = {"listen": f"{api_host}:{port}"}
        metrics_url = f"http://{api_host}:{port}/metrics"
    config.write_text(render(sections))
    local = bool(vault and vault.get("insecure_local_key"))
    return NodeProc(
        index,
        config,
        data_dir,
        f"http://{api_host}:{api}",
        info["validator_key"],
        info["peer_id"],
        listen,
        passphrase=None if local else secrets.token_urlsafe(24),
        metrics_url=metrics_url,
    )


def make_cluster(
    root: Path,
    n: int,
    tier: str = "insecure-test",
    *,
    presign_pool: int = 0,
    round_timeout: float = 120.0,
    vault: dict[str, Any] | None = None,
    stall_after: float | None = None,
    p2p_hosts: Sequence[str] | None = None,
    api_hosts: Sequence[str] | None = None,
    metrics: bool = False,
    bitcoin_rpc: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
    evm_rpc: dict[str, Any] | None = None,
) -> list[NodeProc]:
    """n validators with a genesis of their own identities (`root/genesis.toml`); `vault`:
    the [vault] section of every node's config; `stall_after`: [ledger] stall_after;
    `p2p_hosts` / `api_hosts`: node i's P2P and API listen addresses at [i - 1] (default
    127.0.0.1); the genesis carries the P2P ones, so the nodes dial exactly those;
    `metrics`: a [metrics] listener each, on a free port; `bitcoin_rpc`: the
    [bridge.bitcoin] section of every node (the Bitcoin node each one watches), or node
    i's at [i - 1]; `evm_rpc`: the [bridge.evm] section of every node."""
    genesis_path = root / "genesis.toml"
    keys = {"tier": tier, "presign_pool": presign_pool, "round_timeout": round_timeout}
    ledger: dict[str, Any] = {"genesis": str(genesis_path)}
    if stall_after is not None:
        ledger["stall_after"] = stall_after
    nodes = [
        _new_node(
            root,
            i,
            keys=keys,
            net={},
            ledger=ledger,
            vault=vault,
            p2p_host=p2p_hosts[i - 1] if p2p_hosts else "127.0.0.1",
            api_host=api_hosts[i - 1] if api_hosts else "127.0.0.1",
            metrics=metrics,
            bitcoin_rpc=bitcoin_rpc if isinstance(bitcoin_rpc, dict | None) else bitcoin_rpc[i - 1],
            evm_rpc=evm_rpc,
        )
        for i in range(1, n + 1)
    ]
    validators = [
        Validator(bytes.fromhex(node.validator_key), f"node{node.index}", node.p2p)
        for node in nodes
    ]
    genesis = make_genesis(validators, chain_name="tssnode-test", checkpoint_interval=4, window=8)
    genesis_path.write_text(genesis_toml(genesis))
    return nodes


@contextmanager
def running_cluster(
    root: Path, n: int = 4, *, env: dict[int, dict[str, str]] | None = None, **options: Any
) -> Iterator[list[NodeProc]]:
    """`make_cluster(root, n, **options)`, every node started and answering (node i with
    `env[i]` added to its environment, e.g. a failpoint); on the way out every node is
    resumed (a test may have paused it with SIGSTOP) and stopped."""
    nodes = make_cluster(root, n, **options)
    for index, extra in (env or {}).items():
        nodes[index - 1].extra_env.update(extra)
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_api()
        yield nodes
    finally:
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGCONT)
            node.stop()


def add_node(root: Path, index: int, bootstrap: NodeProc, tier: str = "insecure-test") -> NodeProc:
    """A node that is not in the genesis and knows only `bootstrap`: no genesis file, so it
    learns the genesis from that peer and follows the chain until it is voted in."""
    net = {"bootstrap": [f"{bootstrap.p2p}/p2p/{bootstrap.peer_id}"]}
    return _new_node(root, index, keys={"tier": tier}, net=net, ledger={})


def wait_for(fn: Callable[[], T], what: str, timeout: float = 120.0, every: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def new_key(
    make_at: ApiClient,
    read_at: ApiClient,
    *,
    threshold: int = 2,
    pool: int = 0,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """A key of every validator requested at `make_at`, once `read_at` lists it active
    with at least `pool` presignatures ready (its `GET /keys/{id}` body)."""
    req = make_at.post("/keygen", {"threshold": threshold, "parties": None})
    return wait_for(
        lambda: (
            (k := get_or_none(read_at, f"/keys/{req['key_id']}"))
            and k["status"] == "active"
            and k["presignatures"] >= pool
            and k
        ),
        f"the key active with a pool of {pool}",
        timeout,
        0.5,
    )
