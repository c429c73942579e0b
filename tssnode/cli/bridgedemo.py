"""`tssnode cluster demo [N] --bridge` (what `make demo` runs): one Bitcoin deposit to a
minted balance, headless, on a throw-away network of its own: a regtest Bitcoin service
(in memory), anvil and N `tssnode run` processes in a temporary directory, on loopback
ports the system picks (never the network of `make run`). It brings the bridge up
(`bridgenet.bring_up`: a bridge key, the gateway, the settings voted at every node), asks
node 2 for a deposit address, pays 0.5 BTC to it from the regtest wallet, mines it to the
bridge's depth, waits for the deposit to be final and for the nodes' mint signature,
checks the signature with ecrecover (eth-keys) against the mint authority, mints through
the gateway with web3 as `tssnode bridge mint` does, waits for the nodes to see the mint
(their `[bridge.evm]` watch), and checks that the wrapped balance is the deposit less the
bridge's fee; every step is printed with its numbers. Then everything
is stopped and the directory removed (kept after a failure, or with --keep)."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from tssnode.api.client import ApiClient
from tssnode.cli.common import CommandError, kv

#: what the demo pays to its deposit address
AMOUNT_BTC = Decimal("0.5")


def _deposit(api: ApiClient, txid: str, statuses: tuple[str, ...]) -> dict[str, Any] | None:
    for d in api.get("/bridge/deposits"):
        if d["txid"] == txid and d["status"] in statuses:
            return dict(d)
    return None


class BridgeDemo:
    """One run; `step` says what it was doing when something failed."""

    def __init__(self, n: int, tier: str) -> None:
        self.n, self.tier = n, tier
        self.step = "starting the regtest service"

    def run(self, root: Path, stack: contextlib.ExitStack) -> None:
        from eth_account import Account
        from eth_keys.datatypes import Signature

        from tssnode.bridge.btcrpc import Rpc
        from tssnode.bridge.gateway import Gateway
        from tssnode.cli.anvil import CHAIN_ID, running_anvil
        from tssnode.cli.bridgenet import PAYER_KEY, RECIPIENT, bring_up, until
        from tssnode.cli.btcregtest import running_regtest
        from tssnode.cli.cluster import demo_threshold
        from tssnode.ledger.state import quorum
        from tssnode.testing.cluster import make_cluster

        n = self.n
        print(
            f"bridge demo: {n} nodes, a regtest Bitcoin service and anvil of its own in {root} "
            "(loopback ports the system picks)"
        )
        btc = stack.enter_context(running_regtest(root / "btc"))
        rpc = Rpc(btc.service_url, timeout=60)  # (a step may idle past the server's 30 s)
        stack.callback(rpc.close)
        rpc.generatetoaddress(101, rpc.getnewaddress())
        print(
            f"regtest: RPC {btc.url} (cookie auth), 101 blocks mined to its wallet: "
            f"{rpc.getbalance()} BTC spendable"
        )
        self.step = "starting anvil"
        evm = stack.enter_context(running_anvil(chain_id=CHAIN_ID, accounts=2))
        print(f"anvil: RPC {evm.url}, chain {evm.chain_id}")

        self.step = "starting the nodes"
        watch = {"url": btc.url, "cookie_file": str(root / "btc" / ".cookie"), "poll": 0.5}
        nodes = make_cluster(
            root / "net", n, tier=self.tier, bitcoin_rpc=watch,
            evm_rpc={"url": evm.url, "poll": 0.5},
        )  # fmt: skip

        def stop_nodes() -> None:
            for node in nodes:
                node.stop()

        stack.callback(stop_nodes)
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_api(timeout=90)
        clients = [node.client(timeout=60) for node in nodes]
        for c in clients:
            stack.callback(c.http.close)
        print(f"nodes up: APIs {', '.join(c.base_url for c in clients)} (tier {self.tier})")

        self.step = "bringing the bridge up"
        # (the settings of `cluster up --bridge`: 6 confirmations, a fee of 10,000 sats)
        up = bring_up(clients, evm.url, threshold=demo_threshold(n), say=print)

        self.step = "asking for a deposit address"
        address = clients[1].post("/bridge/deposit-address", {"to": RECIPIENT})
        print(
            f"deposit address: node 2 gives {address['address']} for {address['to']}\n"
            f"  gHash {address['gHash']}, nonce {address['nonce']}"
        )
        until(
            lambda: all(
                any(a["address"] == address["address"] for a in c.get("/bridge/addresses"))
                for c in clients
            ),
            "the deposit address recorded at every node", 60,
        )  # fmt: skip
        print("deposit address: recorded in the ledger (every node watches it)")

        self.step = "paying the deposit address"
        txid = rpc.sendtoaddress(address["address"], float(AMOUNT_BTC))
        tx = rpc.getrawtransaction(txid, True)
        vout = next(
            o["n"] for o in tx["vout"] if o["scriptPubKey"].get("address") == address["address"]
        )
        print(f"payment: {AMOUNT_BTC} BTC from the regtest wallet, txid {txid}, output {vout}")
        depth = int(up.info["confirmations"])
        rpc.generatetoaddress(depth, rpc.getnewaddress())
        confirmations = rpc.getrawtransaction(txid, True)["confirmations"]
        print(f"mined {depth} blocks: the payment has {confirmations} confirmations")

        self.step = "waiting for the deposit to be final"
        final = until(
            lambda: _deposit(clients[-1], txid, ("final", "signed")), "the deposit final", 180
        )
        print(
            f"final: {quorum(n)} of {n} validators saw it at depth; ledger block "
            f"{final['height']}; value {final['value_sats']} sats, to mint {final['amount']} "
            f"(fee {up.info['fee_sats']})\n  nHash {final['nHash']}\n  sigHash {final['sigHash']}"
        )
        self.step = "waiting for the mint signature"
        dep = until(lambda: _deposit(clients[-1], txid, ("signed",)), "the mint signature", 300)
        sig = dep["signature"]
        print(f"mint signature: r {sig['r']}\n  s {sig['s']}, v {sig['v']}")
        self.step = "checking the signature"
        signature = Signature(vrs=(sig["v"] - 27, int(sig["r"], 16), int(sig["s"], 16)))
        signer = signature.recover_public_key_from_msg_hash(
            bytes.fromhex(dep["sigHash"].removeprefix("0x"))
        ).to_checksum_address()
        if signer != up.mint_authority:
            raise CommandError(f"ecrecover gives {signer}, not the mint authority")
        print(f"ecrecover (eth-keys): {signer} = the mint authority")

        self.step = "minting"
        gateway = Gateway.connect(evm.url, up.gateway, up.info["chain_id"])
        minted = gateway.mint(dep, Account.from_key(PAYER_KEY))
        print(
            f"mint: transaction {minted.tx_hash}, block {minted.block}, gas {minted.gas_used} "
            f"(paid by anvil's dev account 0)"
        )
        until(lambda: _deposit(clients[0], txid, ("minted",)), "the deposit shown minted", 60)
        print("node 1 shows the deposit minted (its watch of the gateway saw the nHash spent)")
        expected = int(AMOUNT_BTC * 10**8) - int(up.info["fee_sats"])
        balance = gateway.balance(dep["to"])
        if balance != expected or minted.balance != expected:
            raise CommandError(f"the wrapped balance is {balance}, not {expected}")
        print(
            kv(
                [
                    ("wrapped balance", f"{balance} sats of WBTC ({Decimal(balance) / 10**8} "
                                        f"BTC) at {dep['to']}"),
                    ("", f"= {int(AMOUNT_BTC * 10**8)} deposited − {up.info['fee_sats']} fee"),
                    ("gateway", up.gateway),
                    ("token", up.token),
                    ("mint authority", up.mint_authority),
                ]
            )
        )  # fmt: skip


def bridge_demo(n: int = 4, *, tier: str = "standard", keep: bool = False) -> int:
    """The demo; its exit code (0: the balance was minted and every check passed)."""
    from tssnode.cli.cluster import demo_failed

    root = Path(tempfile.mkdtemp(prefix="tssnode-demo-"))
    demo = BridgeDemo(n, tier)
    ok = False
    try:
        with contextlib.ExitStack() as stack:
            demo.run(root, stack)
            demo.step = "stopping"
        ok = True
        print("demo network stopped")
        return 0
    except (Exception, KeyboardInterrupt) as exc:
        code = demo_failed(demo.step, exc)
        print("demo network stopped", file=sys.stderr)
        return code
    finally:
        if ok and not keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"its configs, data and logs are in {root}", file=sys.stderr)
