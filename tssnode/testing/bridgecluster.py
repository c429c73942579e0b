"""The bridge's tests on processes share this: the regtest service (Bitcoin Core's engine
behind Bitcoin Core's RPC) with 101 blocks mined to its wallet, anvil, four `tssnode run`
nodes watching both, and the bridge brought up as `tssnode cluster up --bridge` brings it
up (a bridge key of threshold 1 here, the gateway, the settings voted at every node)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from tssnode.api.client import ApiClient
from tssnode.bridge.btcrpc import Rpc
from tssnode.bridge.gateway import Gateway
from tssnode.cli.bridgenet import BridgeUp, ReleaseSettings, Settings, bring_up
from tssnode.testing.anvil import running_anvil
from tssnode.testing.cluster import NodeProc, running_cluster, wait_for
from tssnode.testing.regtest import running_regtest

TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
#: anvil's first dev account (its default mnemonic) pays for the mints
RELAYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
FEE = 10_000
CONFIRMATIONS = 2


def bridge_up(
    api: list[ApiClient],
    anvil_url: str,
    release: ReleaseSettings | None = None,
    threshold: int = 1,
) -> tuple[BridgeUp, Contract]:
    """The bridge brought up on running nodes: (it, the token contract)."""
    settings = Settings(confirmations=CONFIRMATIONS, fee_sats=FEE)
    up = bring_up(api, anvil_url, threshold=threshold, settings=settings, release=release)
    return up, Gateway(Web3(Web3.HTTPProvider(anvil_url)), up.gateway).token


def watching(btc: Any, cookie: Path) -> dict[str, Any]:
    """A node's [bridge.bitcoin] for the regtest service `btc`."""
    return {"url": btc.url, "cookie_file": str(cookie), "poll": 0.5}


@dataclass
class Network:
    nodes: list[NodeProc]
    api: list[ApiClient]
    rpc: Rpc
    anvil_url: str
    up: BridgeUp
    token: Contract

    def gateway(self) -> Gateway:
        return Gateway.connect(self.anvil_url, self.up.gateway, 31337)


@contextlib.contextmanager
def bridge_network(
    tmp_path: Path,
    *,
    evm: bool = True,
    release: ReleaseSettings | None = None,
    threshold: int = 1,
    **options: Any,
) -> Iterator[Network]:
    """Four nodes with the bridge set up (and its release side: `release`, or the
    bring-up's defaults); `evm`: each also watches the gateway ([bridge.evm]); `options`
    go to `running_cluster`."""
    with (
        running_regtest(tmp_path / "btc") as btc,
        running_anvil(chain_id=31337, accounts=2) as anvil,
        contextlib.ExitStack() as stack,
    ):
        rpc = Rpc(btc.service_url)
        stack.callback(rpc.close)
        rpc.generatetoaddress(101, rpc.getnewaddress())
        bitcoin = watching(btc, tmp_path / "btc" / ".cookie")
        evm_rpc = {"url": anvil.url, "poll": 0.5} if evm else None
        with running_cluster(
            tmp_path / "net", 4, bitcoin_rpc=bitcoin, evm_rpc=evm_rpc, **options
        ) as nodes:
            api = [n.client(timeout=60) for n in nodes]
            for c in api:
                stack.callback(c.http.close)
            up, token = bridge_up(api, anvil.url, release, threshold)
            yield Network(nodes, api, rpc, anvil.url, up, token)


def pay(net: Network, btc: float = 0.5, *, mine: int = CONFIRMATIONS) -> str:
    """A deposit address asked of node 2, `btc` paid to it, `mine` blocks mined: the txid."""
    address = net.api[1].post("/bridge/deposit-address", {"to": TO})["address"]
    wait_for(lambda: all(c.get("/bridge/addresses") for c in net.api), "the address recorded")
    txid: str = net.rpc.sendtoaddress(address, btc)
    if mine:
        net.rpc.generatetoaddress(mine, net.rpc.getnewaddress())
    return txid


def app_sign_requests(c: ApiClient) -> list[str]:
    """The hashes of the mint-signature requests in the chain, oldest first."""
    height = c.get("/status")["height"]
    blocks = c.get("/blocks", **{"from": 1, "limit": min(500, max(1, height))})
    return [t["hash"] for b in blocks for t in b["txs"] if t["kind"] == "AppSignRequest"]


def shown(c: ApiClient, txid: str) -> dict[str, Any] | None:
    """The deposit of `txid` as node `c` shows it."""
    return next((d for d in c.get("/bridge/deposits") if d["txid"] == txid), None)


def signed_everywhere(
    clients: list[ApiClient], txid: str, what: str, timeout: float = 180
) -> list[Any]:
    """Wait until every client shows the deposit signed (or minted): their views."""

    def all_signed() -> list[Any] | None:
        views = [shown(c, txid) for c in clients]
        ok = all(v is not None and v["status"] in ("signed", "minted") for v in views)
        return views if ok else None

    return wait_for(all_signed, what, timeout, 0.2) or []  # (it waits for a list)
