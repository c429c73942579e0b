"""The chain in process: the kernel's verdicts read from its callbacks (not from
process_block's return value), reorgs inside the kernel, invalidateblock by replay, and
a data directory that survives a restart."""

from __future__ import annotations

import pytest

from tests.regtest.helpers import Coin, Key, spend
from tssnode.regtest import blocks
from tssnode.regtest.chain import DataDirLocked
from tssnode.regtest.methods import Methods
from tssnode.regtest.node import RegtestNode, Settings
from tssnode.regtest.units import COIN

KEY = Key.from_seed("chain")
OTHER = Key.from_seed("chain-other")


def test_the_kernel_verdict_comes_from_block_checked_not_process_block(node):
    node.generate(3, KEY.script)
    chain = node.chain
    tip = chain.tip.hash
    greedy = chain.build_on(tip, KEY.script, coinbase_value=blocks.subsidy(4) + 1)
    # the gotcha, on the kernel itself: "new block" and no exception, yet invalid
    processed = chain.kernel.process_block(greedy.raw, greedy.hash)
    assert processed.new is True and not processed.failed
    verdict = processed.verdict()
    assert verdict is not None and not verdict.valid
    assert verdict.reason == "INVALID/CONSENSUS"
    assert processed.connected == [] and chain.kernel.hash_at(3) == tip


def test_a_block_the_kernel_rejects_is_refused_and_the_tip_stays(node):
    node.generate(3, KEY.script)
    chain = node.chain
    tip, height = chain.tip.hash, chain.height
    greedy = chain.build_on(tip, KEY.script, coinbase_value=blocks.subsidy(4) + 1)
    result = node.submit_block(greedy.raw)
    assert result.status == "rejected"
    assert result.reason == "rejected by the kernel: INVALID/CONSENSUS"
    assert (chain.tip.hash, chain.height) == (tip, height)
    assert greedy.hash not in chain.records
    assert node.submit_block(greedy.raw).status == "duplicate-invalid"
    # a wrong BIP-34 height makes process_block raise: refused all the same
    wrong = blocks.build(tip, height + 5, chain.next_block_time(tip), KEY.script)
    assert node.submit_block(wrong.raw).status == "rejected"
    # the chain goes on from the same tip
    assert chain.records[node.mine(KEY.script)].prev == tip


def test_a_longer_branch_reorgs_inside_the_kernel(node):
    node.generate(101, KEY.script)
    methods = Methods(node)
    coin = Coin(
        node.chain.block(node.chain.active[1]).vtx[0].GetTxid()[::-1].hex(), 0, 50 * COIN, KEY
    )
    tx = spend([coin], [(OTHER.script, COIN), (KEY.script, 49 * COIN - 1000)])
    methods.call("sendrawtransaction", [tx.raw.hex()])
    mined = node.mine(KEY.script)
    assert node.chain.txindex[tx.txid][0] == mined
    # a branch of the same length: stored, not connected ("inconclusive")
    side = node.chain.build_on(node.chain.active[-2], OTHER.script)
    assert node.submit_block(side.raw).status == "inconclusive"
    assert node.chain.tip.hash == mined
    # one more on it: more work, the kernel disconnects `mined`
    result = node.submit_block(node.chain.build_on(side.hash, OTHER.script).raw)
    assert result.status == "accepted"
    assert [h for h, _ in result.delta.disconnected] == [mined]
    assert result.delta.connected[0][0] == side.hash
    assert tx.txid not in node.chain.txindex and tx.txid in node.mempool.entries
    tips = {t["hash"]: t["status"] for t in methods.call("getchaintips", [])}
    assert tips[mined[::-1].hex()] == "valid-fork"


def test_invalidateblock_returns_transactions_and_a_new_branch_follows(node):
    methods = Methods(node)
    methods.call("generatetoaddress", [101, methods.call("getnewaddress", [])])
    txid = methods.call("sendtoaddress", [OTHER.address, "1.25"])
    [first] = methods.call("generatetoaddress", [1, KEY.address])
    height = node.chain.height
    assert not node.mempool.entries
    methods.call("invalidateblock", [first])
    assert node.chain.height == height - 1
    assert methods.call("getrawmempool", []) == [txid]
    [second] = methods.call("generatetoaddress", [1, KEY.address])
    assert second != first and methods.call("getblockhash", [height]) == second
    assert methods.call("getrawtransaction", [txid, True])["blockhash"] == second
    # the invalid block stays known, as Core's
    assert methods.call("getblock", [first])["confirmations"] == -1
    assert (
        methods.call("submitblock", [methods.call("getblock", [first, 0])]) == "duplicate-invalid"
    )
    # reconsidered with a longer branch: the kernel switches to it
    methods.call("invalidateblock", [second])
    methods.call("reconsiderblock", [first])
    assert methods.call("getbestblockhash", []) == first
    more = node.chain.build_on(bytes.fromhex(first)[::-1], KEY.script)
    node.submit_block(more.raw)
    methods.call("reconsiderblock", [second])
    assert node.chain.tip.hash == more.hash


def test_tssnode_reorg_disconnects_depth_blocks(node):
    node.generate(105, KEY.script)
    methods = Methods(node)
    old = node.chain.active[-2:]
    result = methods.call("tssnode_reorg", {"depth": 2, "new_blocks": 3})
    assert result["fork_height"] == 103 and result["height"] == 106
    assert result["disconnected"] == [h[::-1].hex() for h in old]
    assert all(not node.chain.in_active(h) for h in old)


def test_subsidy_halves_at_150_and_the_kernel_agrees(node):
    node.generate(151, KEY.script)
    chain = node.chain
    assert chain.block(chain.active[149]).vtx[0].vout[0].nValue == 50 * COIN
    assert chain.block(chain.active[150]).vtx[0].vout[0].nValue == 25 * COIN


def test_merkle_root_matches_python_bitcoinlib(node):
    methods = Methods(node)
    methods.call("generatetoaddress", [103, methods.call("getnewaddress", [])])
    for _ in range(3):
        methods.call("sendtoaddress", [OTHER.address, 1])
    block = node.chain.block(node.mine(KEY.script))
    assert len(block.vtx) == 4
    assert blocks.merkle_root([tx.GetTxid() for tx in block.vtx]) == block.calc_merkle_root()


def test_a_data_directory_survives_a_restart(tmp_path):
    first = RegtestNode(Settings(datadir=tmp_path))
    methods = Methods(first)
    address = methods.call("getnewaddress", [])
    methods.call("generatetoaddress", [101, address])
    txid = methods.call("sendtoaddress", [OTHER.address, 2])
    [doomed] = methods.call("generatetoaddress", [1, address])
    methods.call("invalidateblock", [doomed])
    best, balance = methods.call("getbestblockhash", []), methods.call("getbalance", [])
    first.close()
    assert (tmp_path / "regtest" / "blocks.dat").exists()

    second = RegtestNode(Settings(datadir=tmp_path))
    try:
        again = Methods(second)
        assert again.call("getbestblockhash", []) == best
        assert again.call("getblockcount", []) == 101
        assert again.call("getrawmempool", []) == [txid]  # saved on close, re-admitted
        assert again.call("getbalance", []) == balance  # the wallet's keys came back
        assert again.call("getblock", [doomed])["confirmations"] == -1  # still invalid
        again.call("generatetoaddress", [1, address])
        assert again.call("getrawmempool", []) == []
    finally:
        second.close()


def test_a_data_directory_is_locked_while_in_use(tmp_path):
    first = RegtestNode(Settings(datadir=tmp_path))
    try:
        with pytest.raises(DataDirLocked):
            RegtestNode(Settings(datadir=tmp_path))
    finally:
        first.close()
    RegtestNode(Settings(datadir=tmp_path)).close()  # free again once closed
