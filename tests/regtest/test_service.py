"""`tssnode regtest` as a real subprocess, spoken to with python-bitcoinlib's RawProxy as
a client speaks to bitcoind: the wallet flow, the kernel's refusals, reorgs, fee
estimates, the JSON-RPC protocol, and a data directory across a restart."""

from __future__ import annotations

import subprocess
import time
from decimal import Decimal

import httpx
import pytest
from bitcoin.core import COutPoint, lx
from bitcoin.rpc import JSONRPCError, Proxy, RawProxy

from tests.regtest.helpers import Coin, Key, spend, tampered
from tssnode import launch
from tssnode.regtest import addresses, blocks
from tssnode.testing.regtest import RegtestStartError, running_regtest

KEY = Key.from_seed("service")
OTHER = Key.from_seed("service-other")


def rpc_error(call, *args) -> dict:
    with pytest.raises(JSONRPCError) as caught:
        call(*args)
    return caught.value.error


def fund_key(rpc: RawProxy, key: Key) -> Coin:
    """A mature coinbase output paying `key`."""
    [block_hash] = rpc.generatetoaddress(1, key.address)
    rpc.generatetoaddress(100, rpc.getnewaddress())
    txid = rpc.getblock(block_hash)["tx"][0]
    value = int(rpc.gettxout(txid, 0)["value"] * 100_000_000)
    return Coin(txid, 0, value, key)


def test_wallet_pays_an_address_and_the_block_shows_it(rpc):
    mine = rpc.getnewaddress()
    start = rpc.getbalance()
    rpc.generatetoaddress(101, mine)
    assert rpc.getbalance() >= start + Decimal("50.00000000")
    dest = rpc.getnewaddress()
    txid = rpc.sendtoaddress(dest, 1.5)  # RawProxy cannot send a Decimal
    assert txid in rpc.getrawmempool()
    entry = rpc.getrawmempool(True)[txid]
    assert entry["bip125-replaceable"] is True and entry["fees"]["base"] > 0
    [block_hash] = rpc.generatetoaddress(1, mine)
    assert txid not in rpc.getrawmempool()
    block = rpc.getblock(block_hash, 2)
    [tx] = [t for t in block["tx"] if t["txid"] == txid]
    paid = [o for o in tx["vout"] if o["scriptPubKey"].get("address") == dest]
    assert len(paid) == 1 and paid[0]["value"] == Decimal("1.50000000")
    assert paid[0]["scriptPubKey"]["type"] == "witness_v0_keyhash"
    assert tx["fee"] == entry["fees"]["base"]
    assert block["height"] == rpc.getblockcount() and block["confirmations"] == 1
    assert block["previousblockhash"] == rpc.getblockhash(block["height"] - 1)
    verbose = rpc.getrawtransaction(txid, True)
    assert verbose["blockhash"] == block_hash and verbose["confirmations"] == 1
    assert rpc.getrawtransaction(txid) == tx["hex"]


def test_the_kernel_refuses_a_tampered_signature(rpc):
    coin = fund_key(rpc, KEY)
    good = spend([coin], [(OTHER.script, coin.value - 1000)])
    error = rpc_error(rpc.sendrawtransaction, tampered(good).raw.hex())
    assert error["code"] == -26
    assert error["message"].startswith("mandatory-script-verify-flag-failed (")
    assert "false/empty top stack element" in error["message"]
    assert rpc.sendrawtransaction(good.raw.hex()) == good.txid[::-1].hex()


def test_dust_low_fee_double_spend_and_replacement(rpc):
    coin = fund_key(rpc, KEY)
    change = coin.value - 100_000 - 2000
    dust = spend([coin], [(OTHER.script, 293), (KEY.script, coin.value - 293 - 2000)])
    assert rpc_error(rpc.sendrawtransaction, dust.raw.hex()) == {"code": -26, "message": "dust"}
    cheap = spend([coin], [(OTHER.script, coin.value - 50)])
    error = rpc_error(rpc.sendrawtransaction, cheap.raw.hex())
    assert error["code"] == -26 and error["message"].startswith("min relay fee not met, 50 < ")
    first = spend([coin], [(OTHER.script, 100_000), (KEY.script, change)])
    rpc.sendrawtransaction(first.raw.hex())
    twin = spend([coin], [(KEY.script, 100_000), (OTHER.script, change)])  # same fee
    error = rpc_error(rpc.sendrawtransaction, twin.raw.hex())
    assert error["code"] == -26 and error["message"].startswith(
        "insufficient fee, rejecting replacement"
    )
    bumped = spend([coin], [(OTHER.script, 100_000), (KEY.script, change - 1000)])
    assert rpc.sendrawtransaction(bumped.raw.hex()) == bumped.txid[::-1].hex()
    pool = rpc.getrawmempool()
    assert bumped.txid[::-1].hex() in pool and first.txid[::-1].hex() not in pool
    rpc.generatetoaddress(1, KEY.address)
    again = spend([coin], [(OTHER.script, coin.value - 10_000)])
    error = rpc_error(rpc.sendrawtransaction, again.raw.hex())
    assert error == {"code": -25, "message": "bad-txns-inputs-missingorspent"}


def test_a_block_the_kernel_rejects_leaves_the_tip(rpc):
    rpc.generatetoaddress(1, KEY.address)
    info = rpc.getblockchaininfo()
    tip, height = info["bestblockhash"], info["blocks"]
    parent = bytes.fromhex(tip)[::-1]
    when = max(info["mediantime"] + 1, int(time.time()))
    greedy = blocks.build(
        parent, height + 1, when, KEY.script, coinbase_value=blocks.subsidy(height + 1) + 1
    )
    reason = rpc.submitblock(greedy.raw.hex())
    assert reason == "rejected by the kernel: INVALID/CONSENSUS"
    assert rpc.getbestblockhash() == tip and rpc.getblockcount() == height
    assert rpc_error(rpc.getblock, greedy.hash[::-1].hex())["code"] == -5
    honest = blocks.build(parent, height + 1, when, KEY.script)
    assert rpc.submitblock(honest.raw.hex()) is None
    assert rpc.getbestblockhash() == honest.hash[::-1].hex()
    assert rpc.submitblock(honest.raw.hex()) == "duplicate"


def test_invalidateblock_reorgs_and_the_transaction_returns(rpc):
    mine = rpc.getnewaddress()
    rpc.generatetoaddress(101, mine)
    txid = rpc.sendtoaddress(OTHER.address, 2)
    [mined] = rpc.generatetoaddress(1, mine)
    height = rpc.getblockcount()
    rpc.invalidateblock(mined)
    assert rpc.getblockcount() == height - 1
    assert txid in rpc.getrawmempool()
    [replacement] = rpc.generatetoaddress(1, mine)
    assert replacement != mined and rpc.getblockhash(height) == replacement
    assert txid not in rpc.getrawmempool()
    assert rpc.getrawtransaction(txid, 1)["blockhash"] == replacement
    tips = {t["hash"]: t["status"] for t in rpc.getchaintips()}
    assert tips[replacement] == "active" and tips[mined] == "invalid"


def test_estimatesmartfee_has_core_shape(rpc):
    estimate = rpc.estimatesmartfee(6)
    assert set(estimate) == {"feerate", "blocks"}
    assert isinstance(estimate["feerate"], Decimal) and estimate["feerate"] >= Decimal("0.00001")
    assert estimate["blocks"] >= 2
    error = rpc_error(rpc.estimatesmartfee, 0)
    assert error["code"] == -8


def test_errors_and_the_json_rpc_protocol(rpc, service):
    assert rpc_error(rpc.getblockhash, 10**6) == {
        "code": -8,
        "message": "Block height out of range",
    }
    assert rpc_error(rpc.getblock, "00" * 32) == {"code": -5, "message": "Block not found"}
    assert rpc_error(rpc.getblock, "xyz")["code"] == -8
    assert rpc_error(rpc.getrawtransaction, "ab" * 32)["code"] == -5
    assert rpc_error(rpc.sendrawtransaction, "00")["code"] == -22
    assert rpc_error(rpc.nosuchmethod)["code"] == -32601
    auth = httpx.BasicAuth(*service.auth)
    with httpx.Client(base_url=service.url, auth=auth, timeout=30) as http:
        batch = http.post(
            "/",
            json=[
                {"jsonrpc": "2.0", "id": 1, "method": "getblockcount"},
                {"id": "b", "method": "getblockhash", "params": {"height": 0}},
                {"jsonrpc": "2.0", "method": "getblockcount"},  # a notification
            ],
        )
        assert batch.status_code == 200
        one, two = batch.json()
        assert one == {"jsonrpc": "2.0", "result": rpc.getblockcount(), "id": 1}
        assert two == {"result": rpc.getblockhash(0), "error": None, "id": "b"}
        legacy_error = http.post("/", json={"id": 7, "method": "getblock", "params": ["00" * 32]})
        assert legacy_error.status_code == 500
        assert legacy_error.json()["error"]["code"] == -5
        v2_error = http.post(
            "/wallet/",
            json={"jsonrpc": "2.0", "id": 8, "method": "getblock", "params": ["00" * 32]},
        )
        assert v2_error.status_code == 200 and v2_error.json()["error"]["code"] == -5
        assert http.post("/", content=b"{nope").status_code == 500
        amounts = http.post("/", json={"id": 1, "method": "getmempoolinfo"}).text
        assert '"minrelaytxfee":0.00001000' in amounts
    wrong = httpx.post(service.url, json={"method": "getblockcount"}, auth=("x", "y"), timeout=30)
    assert wrong.status_code == 401 and wrong.content == b""


def test_validateaddress_and_address_types(rpc):
    p2tr = addresses.encode_segwit(1, bytes(range(32)))
    info = rpc.validateaddress(p2tr)
    assert info["isvalid"] and info["witness_version"] == 1
    assert rpc.validateaddress("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")["isvalid"] is False
    assert rpc.getnewaddress().startswith("bcrt1q")


def test_the_chain_survives_a_restart_with_a_datadir(tmp_path):
    datadir = tmp_path / "data"
    with running_regtest(tmp_path / "one", datadir=datadir) as first:
        rpc = RawProxy(service_url=first.service_url, timeout=60)
        address = rpc.getnewaddress()
        rpc.generatetoaddress(101, address)
        txid = rpc.sendtoaddress(OTHER.address, 3)
        best, balance = rpc.getbestblockhash(), rpc.getbalance()
    assert first.process.returncode == 0
    assert not (datadir / "regtest" / ".cookie").exists()  # removed on exit, like bitcoind's
    with running_regtest(tmp_path / "two", datadir=datadir) as second:
        rpc = RawProxy(service_url=second.service_url, timeout=60)
        assert rpc.getbestblockhash() == best and rpc.getblockcount() == 101
        assert rpc.getrawmempool() == [txid]
        assert rpc.getbalance() == balance
        rpc.stop()
        second.process.wait(timeout=20)
    assert second.process.returncode == 0


def test_python_bitcoinlib_proxy_works_unchanged(rpc, service):
    proxy = Proxy(service_url=service.service_url, timeout=60)
    [block_hash] = proxy.generatetoaddress(1, KEY.address)
    assert proxy.getbestblockhash() == block_hash
    block = proxy.getblock(block_hash)
    assert block.GetHash() == block_hash and block.vtx[0].is_coinbase()
    info = proxy.getrawtransaction(block.vtx[0].GetTxid(), verbose=True)
    assert info["blockhash"] == block_hash
    out = proxy.gettxout(COutPoint(block.vtx[0].GetTxid(), 0))
    assert out["txout"].nValue == block.vtx[0].vout[0].nValue
    assert proxy.getblockcount() == rpc.getblockcount()
    assert lx(rpc.getbestblockhash()) == block_hash


def test_helper_reports_a_service_that_cannot_start(tmp_path):
    with (
        pytest.raises(RegtestStartError, match="exited with 2"),
        running_regtest(tmp_path, args=["--fallbackfee", "lots"]),
    ):
        pass


def test_print_port_prints_only_the_port(tmp_path):
    process = launch.start_piped(
        "tssnode.cli", "regtest", "--port", "0", "--print-port",
        "--rpcuser", "u", "--rpcpassword", "p",
        stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        answer = httpx.post(
            f"http://127.0.0.1:{port}/",
            json={"method": "getblockcount"},
            auth=("u", "p"),
            timeout=30,
        )
        assert answer.json() == {"result": 0, "error": None, "id": None}
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
        process.stdout.close()
