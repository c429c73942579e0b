"""A real Bitcoin deposit to a mint authorisation, on four nodes in one process: the
regtest service (Bitcoin Core's engine behind Bitcoin Core's RPC, a real subprocess) is
paid at a deposit address from its demo wallet; each node's Bitcoin watch sees the
payment through the RPC, submits it at depth; the ledger makes it final on three equal
observations, and the bridge key signs the mint. A payment not yet deep enough is not
observed, and one whose block a reorg took away is observed in its new block only."""

from __future__ import annotations

import pytest
import trio
from bitcoin.rpc import RawProxy
from eth_keys import keys as eth

from tssnode.node.watch import BitcoinWatch
from tssnode.schema import sent
from tssnode.testing.regtest import running_regtest

from .test_core import _start, _wait, keys  # noqa: F401 (`keys` is a fixture)

pytestmark = pytest.mark.trio

CONFIRMATIONS = 3


async def test_a_regtest_deposit_is_observed_at_depth_and_signed(tmp_path, keys):  # noqa: F811
    with running_regtest(tmp_path / "btc") as btc:
        rpc = RawProxy(service_url=btc.service_url)
        rpc.generatetoaddress(101, rpc.getnewaddress())  # a spendable coinbase
        async with trio.open_nursery() as nursery:
            cores = await _start(nursery, tmp_path, keys)
            for c in cores:
                watch = BitcoinWatch.over_rpc(
                    lambda c=c: c.bridge, c.submit, c.identity.public_bytes(),
                    btc.service_url, poll=0.2, timeout=10.0,
                )  # fmt: skip
                await nursery.start(watch.run)
            req = await cores[0].request_keygen(1, None, "bridge")
            await _wait(
                lambda: all(getattr(c.key(req.key_id), "status", None) == "active" for c in cores)
            )
            settings = {
                "key_id": cores[0].key(req.key_id).key_id, "chain_name": "Ethereum",
                "chain_id": 31337, "gateway": "0x" + "5f" * 20, "network": "regtest",
                "confirmations": CONFIRMATIONS, "fee_sats": 1000, "min_deposit_sats": 10_000,
            }  # fmt: skip
            for c in cores[:3]:
                await c.request_bridge_setup(settings)
            await _wait(lambda: all(sent(c.bridge_info())["set_up"] for c in cores))
            made, _ = await cores[2].request_deposit_address("0x" + "70" * 20, None, None)
            view = sent(made)
            await _wait(lambda: all(sent(c.deposit_addresses()) for c in cores))

            # a payment mined in a block that a reorg takes away before it is deep enough
            moved = rpc.sendtoaddress(view["address"], 0.25)
            orphan = rpc.generatetoaddress(1, rpc.getnewaddress())[0]
            await trio.sleep(1.0)  # (every watch has seen the orphan block)
            rpc.invalidateblock(orphan)
            assert moved in rpc.getrawmempool()  # back in the mempool, as bitcoind does
            # the deposit beside it: both mined in the new branch, then buried
            txid = rpc.sendtoaddress(view["address"], 0.5)
            block = rpc.generatetoaddress(1, rpc.getnewaddress())[0]
            assert {txid, moved} <= set(rpc.getblock(block, 1)["tx"])
            await trio.sleep(1.0)
            assert all(not sent(c.deposits()) for c in cores)  # 1 deep: not yet
            rpc.generatetoaddress(CONFIRMATIONS - 1, rpc.getnewaddress())
            await _wait(lambda: all(len(sent(c.deposits())) == 2 for c in cores), 60)
            deps = {d["txid"]: d for d in sent(cores[0].deposits())}
            assert set(deps) == {txid, moved}
            assert {d["block_hash"] for d in deps.values()} == {block}  # never the orphan
            assert deps[txid]["value_sats"] == 50_000_000
            assert deps[txid]["amount"] == 50_000_000 - 1000
            await _wait(
                lambda: all(d["status"] == "signed" for c in cores for d in sent(c.deposits())), 120
            )
            dep = next(d for d in sent(cores[1].deposits()) if d["txid"] == txid)
            sig = dep["signature"]
            vrs = (sig["v"] - 27, int(sig["r"], 16), int(sig["s"], 16))
            signer = eth.Signature(vrs=vrs).recover_public_key_from_msg_hash(
                bytes.fromhex(dep["sigHash"][2:])
            )
            assert signer.to_checksum_address() == sent(cores[3].bridge_info())["mint_authority"]
            nursery.cancel_scope.cancel()
