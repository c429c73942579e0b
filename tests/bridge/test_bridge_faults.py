"""The bridge through kills, restarts and a burst, on real processes: four `tssnode run`
nodes watching the regtest service (Bitcoin Core's engine behind Bitcoin Core's RPC), the
gateway on anvil.

- A signer of a mint killed (kill -9) as soon as the mint's signing is in a block: the
  others sign without it; restarted, it catches up to the same signature, and the next
  deposit is minted with it back.
- Every node killed while a mint is being signed, then restarted: the mint is signed,
  once.
- A burst of 200 deposit-address requests over the four nodes, then a dozen deposits in
  one block: every address recorded alike everywhere, every deposit signed and minted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bitcoin.rpc import RawProxy
from eth_account import Account

from tests.bridge.test_bridge_cluster import FEE, RELAYER_KEY, TO, _app_sign_requests, _bridge_up
from tssnode.bridge.gateway import Gateway
from tssnode.testing.anvil import running_anvil
from tssnode.testing.cluster import NodeProc, running_cluster, wait_for
from tssnode.testing.regtest import running_regtest

pytestmark = pytest.mark.slow


class _Rpc:
    """The regtest service's RPC, each call on a fresh connection: like bitcoind, it
    closes a connection idle for 30 s, and python-bitcoinlib's proxy does not reconnect."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> Any:
            proxy = RawProxy(service_url=self.url)
            try:
                return getattr(proxy, name)(*args)
            finally:
                proxy.close()

        return call


@contextlib.contextmanager
def _network(
    tmp_path: Path, **options: Any
) -> Iterator[tuple[list[NodeProc], list[Any], Any, Any]]:
    """(nodes, their API clients, the regtest RPC, anvil) with the bridge set up."""
    with (
        running_regtest(tmp_path / "btc") as btc,
        running_anvil(chain_id=31337, accounts=2) as anvil,
        contextlib.ExitStack() as stack,
    ):
        rpc = _Rpc(btc.service_url)
        rpc.generatetoaddress(101, rpc.getnewaddress())
        bitcoin = {"url": btc.url, "cookie_file": str(tmp_path / "btc" / ".cookie"), "poll": 0.5}
        evm = {"url": anvil.url, "poll": 0.5}
        with running_cluster(
            tmp_path / "net", 4, bitcoin_rpc=bitcoin, evm_rpc=evm, **options
        ) as nodes:
            api = [n.client(timeout=60) for n in nodes]
            for c in api:
                stack.callback(c.http.close)
            _bridge_up(api, anvil.url)
            yield nodes, api, rpc, anvil


def _deposit(api: list[Any], rpc: Any, btc: float = 0.5) -> str:
    address = api[1].post("/bridge/deposit-address", {"to": TO})["address"]
    wait_for(lambda: all(c.get("/bridge/addresses") for c in api), "the address recorded")
    txid: str = rpc.sendtoaddress(address, btc)
    rpc.generatetoaddress(2, rpc.getnewaddress())
    return txid


def _status(c: Any, txid: str) -> dict[str, Any] | None:
    return next((d for d in c.get("/bridge/deposits") if d["txid"] == txid), None)


def _signed(clients: list[Any], txid: str, what: str, timeout: float = 180) -> list[Any]:
    def all_signed() -> list[Any] | None:
        views = [_status(c, txid) for c in clients]
        ok = all(v is not None and v["status"] in ("signed", "minted") for v in views)
        return views if ok else None

    return wait_for(all_signed, what, timeout, 0.2)


def test_a_mint_signer_killed_is_left_out_and_catches_up_after_a_restart(tmp_path: Path) -> None:
    with _network(tmp_path, round_timeout=10.0) as (nodes, api, rpc, _):
        txid = _deposit(api, rpc)
        first = wait_for(lambda: _app_sign_requests(api[0]), "the mint asked for", 60, 0.05)[0]
        signers = api[0].get(f"/signatures/{first}")["signers"]
        victim = next(n for n in nodes[1:] if n.peer_id in signers)
        victim.kill()
        live = [c for n, c in zip(nodes, api, strict=True) if n is not victim]
        views = _signed(live, txid, "the mint signed without the killed node")
        assert len({str(v["signature"]) for v in views}) == 1
        if api[0].get(f"/signatures/{first}")["status"] != "done":
            retry = api[0].get(f"/signatures/{_app_sign_requests(api[0])[-1]}")
            assert victim.peer_id not in retry["signers"] and retry["status"] == "done"

        victim.start()
        victim.wait_api()
        back = victim.client(timeout=60)
        (caught_up,) = _signed([back], txid, "the restarted node caught up")
        assert caught_up["signature"] == views[0]["signature"]
        # and it works with it back: the next deposit is signed everywhere
        second = _deposit(api, rpc, 0.25)
        _signed([back, *live], second, "the next mint")
        back.http.close()


def test_every_node_killed_while_a_mint_is_signed_then_restarted_signs_it_once(
    tmp_path: Path,
) -> None:
    with _network(tmp_path, round_timeout=10.0) as (nodes, api, rpc, anvil):
        txid = _deposit(api, rpc)
        wait_for(lambda: _app_sign_requests(api[0]), "the mint asked for", 60, 0.05)
        for node in nodes:
            node.kill()
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_api()
        views = _signed(api, txid, "the mint signed after every node restarted", 240)
        assert len({str(v["signature"]) for v in views}) == 1
        gateway = Gateway.connect(anvil.url, api[0].get("/bridge")["gateway"], 31337)
        gateway.mint(views[0], Account.from_key(RELAYER_KEY))
        assert gateway.balance(TO) == 50_000_000 - FEE


def test_a_burst_of_deposit_addresses_and_a_block_of_deposits(tmp_path: Path) -> None:
    with _network(tmp_path) as (_, api, rpc, anvil):
        answers = [
            api[i % 4].post("/bridge/deposit-address", {"to": TO, "nonce": f"0x{i:064x}"})
            for i in range(200)
        ]
        assert len({a["address"] for a in answers}) == 200
        wait_for(
            lambda: all(len(c.get("/bridge/addresses")) == 200 for c in api),
            "200 addresses recorded everywhere",
            120,
        )
        listed = [{a["address"]: a for a in c.get("/bridge/addresses")} for c in api]
        assert all(view == listed[0] for view in listed)
        for a in answers:  # what each node answered at once is what the ledger recorded
            assert listed[0][a["address"]]["gHash"] == a["gHash"]
        paid = [rpc.sendtoaddress(a["address"], 0.01 * (i + 1)) for i, a in enumerate(answers[:12])]
        rpc.generatetoaddress(2, rpc.getnewaddress())
        signed = [_signed(api, txid, f"deposit {i} signed", 300)[0] for i, txid in enumerate(paid)]
        gateway = Gateway.connect(anvil.url, api[0].get("/bridge")["gateway"], 31337)
        relayer = Account.from_key(RELAYER_KEY)
        for view in signed:
            gateway.mint(view, relayer)
        expected = sum(1_000_000 * (i + 1) - FEE for i in range(12))
        assert gateway.balance(TO) == gateway.token.functions.totalSupply().call() == expected
