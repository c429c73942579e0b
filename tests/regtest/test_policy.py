"""The mempool's policy and the kernel's script verdicts, in process: each rejection with
Bitcoin Core's code and reason, through the RPC methods (not the HTTP layer)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.regtest.helpers import Coin, Key, high_s, spend, tampered
from tssnode.regtest import blocks, scripts
from tssnode.regtest.errors import RPCError
from tssnode.regtest.methods import Methods
from tssnode.regtest.node import RegtestNode
from tssnode.regtest.txs import Tx
from tssnode.regtest.units import COIN

KEY = Key.from_seed("policy")
OTHER = Key.from_seed("other")


@pytest.fixture
def methods(node: RegtestNode) -> Methods:
    node.generate(110, KEY.script)  # coinbases of heights 1..10 are mature
    return Methods(node)


def coinbase(methods: Methods, height: int) -> Coin:
    chain = methods.chain
    tx = chain.block(chain.active[height]).vtx[0]
    return Coin(bytes(tx.GetTxid())[::-1].hex(), 0, int(tx.vout[0].nValue), KEY)


def send(methods: Methods, tx: Tx) -> str:
    return str(methods.call("sendrawtransaction", [tx.raw.hex()]))


def rejected(methods: Methods, tx: Tx) -> RPCError:
    with pytest.raises(RPCError) as caught:
        send(methods, tx)
    return caught.value


def pay(coin: Coin, value: int, fee: int = 1000, to: bytes = OTHER.script, **kw: int) -> Tx:
    outputs = [(to, value)]
    change = coin.value - value - fee
    if change:
        outputs.append((KEY.script, change))
    return spend([coin], outputs, **kw)


def test_a_valid_spend_enters_the_mempool(methods):
    tx = pay(coinbase(methods, 1), COIN)
    assert send(methods, tx) == tx.txid[::-1].hex()
    assert tx.txid in methods.mempool.entries
    # sending it again answers its txid, like bitcoind
    assert send(methods, tx) == tx.txid[::-1].hex()


def test_a_tampered_signature_is_refused_by_the_kernel(methods):
    bad = tampered(pay(coinbase(methods, 1), COIN))
    error = rejected(methods, bad)
    assert error.code == -26
    assert error.message == (
        "mandatory-script-verify-flag-failed (Script evaluated without error but finished "
        "with a false/empty top stack element)"
    )


def test_a_signature_for_another_amount_is_refused(methods):
    coin = coinbase(methods, 1)
    lying = Coin(coin.txid, coin.vout, coin.value - 1, KEY)  # BIP-143 commits to the amount
    tx = spend([lying], [(OTHER.script, COIN), (KEY.script, coin.value - COIN - 1000)])
    assert rejected(methods, tx).message.startswith("mandatory-script-verify-flag-failed")


def test_a_high_s_signature_is_policy_not_consensus(methods):
    tx = high_s(pay(coinbase(methods, 1), COIN))
    assert methods.chain.kernel.verify_inputs(tx.raw, [(50 * COIN, KEY.script)]) is None
    error = rejected(methods, tx)
    assert error.code == -26
    assert error.message == (
        "non-mandatory-script-verify-flag (Non-canonical signature: S value is unnecessarily high)"
    )


def test_dust_limits_follow_core(methods):
    p2wpkh, p2pkh = OTHER.script, b"\x76\xa9\x14" + bytes(20) + b"\x88\xac"
    p2sh, p2tr = b"\xa9\x14" + bytes(20) + b"\x87", b"\x51\x20" + bytes(32)
    assert [scripts.dust_threshold(s) for s in (p2wpkh, p2pkh, p2sh, p2tr)] == [294, 546, 540, 330]
    coin = coinbase(methods, 1)
    error = rejected(methods, pay(coin, 293))
    assert (error.code, error.message) == (-26, "dust")
    assert send(methods, pay(coin, 294))


def test_op_return_of_83_bytes_is_standard_84_is_not(methods):
    coin = coinbase(methods, 1)

    def data_tx(size: int) -> Tx:
        script = b"\x6a\x4c" + bytes([size - 3]) + bytes(size - 3)
        assert len(script) == size
        return spend([coin], [(script, 0), (KEY.script, coin.value - 1000)])

    assert rejected(methods, data_tx(84)).message == "scriptpubkey"
    assert send(methods, data_tx(83))


def test_below_one_sat_per_vbyte_is_refused(methods):
    tx = pay(coinbase(methods, 1), COIN, fee=100)
    error = rejected(methods, tx)
    assert error.code == -26
    assert error.message == f"min relay fee not met, 100 < {tx.vsize}"
    assert send(methods, pay(coinbase(methods, 1), COIN, fee=tx.vsize))


def test_missing_or_spent_inputs_are_minus_25(methods):
    ghost = Coin("11" * 32, 0, COIN, KEY)
    error = rejected(methods, spend([ghost], [(OTHER.script, COIN - 1000)]))
    assert (error.code, error.message) == (-25, "bad-txns-inputs-missingorspent")
    result = methods.call("testmempoolaccept", [[spend([ghost], [(OTHER.script, 1000)]).raw.hex()]])
    assert result[0]["allowed"] is False and result[0]["reject-reason"] == "missing-inputs"


def test_an_immature_coinbase_is_refused(methods):
    young = coinbase(methods, 100)  # spent at height 111: depth 11
    error = rejected(methods, pay(young, COIN))
    assert error.code == -26
    assert error.message == (
        "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth 11"
    )


def test_outputs_above_inputs_and_non_final_locktime(methods):
    coin = coinbase(methods, 1)
    greedy = spend([coin], [(OTHER.script, coin.value + 1)])
    assert rejected(methods, greedy).message == (
        "bad-txns-in-belowout, value in (50.00) < value out (50.00000001)"
    )
    future = pay(coin, COIN, locktime=methods.chain.height + 5)
    assert rejected(methods, future).message == "non-final"


def test_double_spend_and_replace_by_fee(methods):
    coin = coinbase(methods, 1)
    first = pay(coin, COIN, fee=2000)
    send(methods, first)
    same_fee = pay(coin, COIN, fee=2000, to=KEY.script)
    error = rejected(methods, same_fee)
    assert error.code == -26 and error.message.startswith(
        f"insufficient fee, rejecting replacement {same_fee.txid[::-1].hex()}; new feerate"
    )
    # a higher rate but no more than the relay fee for its own size on top: rule 4
    thin = pay(coin, COIN, fee=2000 + 10, to=KEY.script)
    assert "not enough additional fees to relay" in rejected(methods, thin).message
    better = pay(coin, COIN, fee=2000 + 200, to=KEY.script)
    assert send(methods, better)
    assert first.txid not in methods.mempool.entries
    assert better.txid in methods.mempool.entries
    # a confirmed output cannot be spent twice either
    methods.node.generate(1, KEY.script)
    error = rejected(methods, pay(coin, COIN, fee=50_000))
    assert (error.code, error.message) == (-25, "bad-txns-inputs-missingorspent")


def test_a_replacement_may_not_add_unconfirmed_inputs(methods):
    a, b = coinbase(methods, 1), coinbase(methods, 2)
    parent = pay(b, COIN)
    send(methods, parent)
    send(methods, pay(a, COIN))
    unconfirmed = Coin(parent.txid[::-1].hex(), 1, b.value - COIN - 1000, KEY)
    replacement = spend([a, unconfirmed], [(OTHER.script, COIN)])
    error = rejected(methods, replacement)
    assert error.message.startswith("replacement-adds-unconfirmed")


def test_chains_of_unconfirmed_spends_and_block_template(methods):
    coin = coinbase(methods, 1)
    parent = pay(coin, COIN, fee=1000)
    send(methods, parent)
    change = Coin(parent.txid[::-1].hex(), 1, coin.value - COIN - 1000, KEY)
    child = spend([change], [(OTHER.script, COIN), (KEY.script, change.value - COIN - 5000)])
    send(methods, child)
    entry = methods.call("getmempoolentry", [child.txid[::-1].hex()])
    assert entry["ancestorcount"] == 2 and entry["depends"] == [parent.txid[::-1].hex()]
    txs, fees = methods.mempool.select()
    assert [t.txid for t in txs] == [parent.txid, child.txid] and fees == 6000
    block_hash = methods.node.mine(KEY.script)
    assert not methods.mempool.entries
    coinbase_tx = methods.chain.block(block_hash).vtx[0]
    height = methods.chain.height
    assert coinbase_tx.vout[0].nValue == blocks.subsidy(height) + 6000


def test_version_3_and_nonstandard_outputs(methods):
    coin = coinbase(methods, 1)
    assert rejected(methods, pay(coin, COIN, version=3)).message == "version"
    bare = spend([coin], [(b"\x51", COIN), (KEY.script, coin.value - COIN - 1000)])
    assert rejected(methods, bare).message == "scriptpubkey"


def test_testmempoolaccept_shape_and_maxfeerate(methods):
    coin = coinbase(methods, 1)
    tx = pay(coin, COIN, fee=1410)
    [result] = methods.call("testmempoolaccept", [[tx.raw.hex()]])
    assert result == {
        "txid": tx.txid[::-1].hex(),
        "wtxid": tx.wtxid[::-1].hex(),
        "allowed": True,
        "vsize": tx.vsize,
        "fees": {
            "base": Decimal("0.00001410"),
            "effective-feerate": Decimal(1410 * 1000 // tx.vsize) / COIN,
            "effective-includes": [tx.wtxid[::-1].hex()],
        },
    }
    assert not methods.mempool.entries  # only a test
    rich = pay(coin, COIN, fee=COIN)
    [result] = methods.call("testmempoolaccept", [[rich.raw.hex()]])
    assert result["reject-reason"] == "max-fee-exceeded"
    with pytest.raises(RPCError) as caught:
        send(methods, rich)
    assert caught.value.code == -25 and caught.value.message.startswith("Fee exceeds maximum")
    assert methods.call("sendrawtransaction", {"hexstring": rich.raw.hex(), "maxfeerate": 0})


def test_a_package_in_testmempoolaccept(methods):
    coin = coinbase(methods, 1)
    parent = pay(coin, COIN)
    child = spend([Coin(parent.txid[::-1].hex(), 0, COIN, OTHER)], [(KEY.script, COIN - 1000)])
    results = methods.call("testmempoolaccept", [[parent.raw.hex(), child.raw.hex()]])
    assert [r["allowed"] for r in results] == [True, True]
    assert not methods.mempool.entries


def test_sequence_locks_bip68(methods):
    coin = coinbase(methods, 1)  # confirmed at height 1, tip 110
    too_soon = pay(coin, COIN, sequence=200)
    assert rejected(methods, too_soon).message == "non-BIP68-final"
    assert send(methods, pay(coin, COIN, sequence=110))
