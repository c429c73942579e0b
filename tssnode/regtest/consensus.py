"""The mempool's copy of Bitcoin Core's transaction-level consensus checks that need no
script interpreter: `CheckTransaction`, `Consensus::CheckTxInputs`, `IsFinalTx`, BIP-68
sequence locks and the signature-operation cost.

They give a sendrawtransaction its reason before anything reaches a block. The authority
stays with the kernel: input scripts are verified by libbitcoinkernel when a transaction
enters the mempool (`mempool.Mempool._check_scripts`), and every rule here is applied again
by the kernel to each block that includes the transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from tssnode.regtest import scripts
from tssnode.regtest.blocks import COINBASE_MATURITY, MAX_BLOCK_WEIGHT
from tssnode.regtest.chain import Coin
from tssnode.regtest.errors import TxRejected
from tssnode.regtest.txs import SEQUENCE_FINAL, Tx, TxIn
from tssnode.regtest.units import MAX_MONEY, format_money

LOCKTIME_THRESHOLD = 500_000_000
SEQUENCE_LOCKTIME_DISABLE_FLAG = 1 << 31
SEQUENCE_LOCKTIME_TYPE_FLAG = 1 << 22
SEQUENCE_LOCKTIME_MASK = 0x0000FFFF
SEQUENCE_LOCKTIME_GRANULARITY = 9
NULL_PREVOUT = (b"\0" * 32, 0xFFFFFFFF)


def check_transaction(tx: Tx) -> None:
    """`CheckTransaction`: the context-free rules."""
    if not tx.vin:
        raise TxRejected("bad-txns-vin-empty")
    if not tx.vout:
        raise TxRejected("bad-txns-vout-empty")
    if tx.stripped_size * 4 > MAX_BLOCK_WEIGHT:
        raise TxRejected("bad-txns-oversize")
    total = 0
    for out in tx.vout:
        if out.value < 0:
            raise TxRejected("bad-txns-vout-negative")
        if out.value > MAX_MONEY:
            raise TxRejected("bad-txns-vout-toolarge")
        total += out.value
        if total > MAX_MONEY:
            raise TxRejected("bad-txns-txouttotal-toolarge")
    if len({txin.prevout for txin in tx.vin}) != len(tx.vin):
        raise TxRejected("bad-txns-inputs-duplicate")
    if tx.is_coinbase:
        if not 2 <= len(tx.vin[0].script_sig) <= 100:
            raise TxRejected("bad-cb-length")
    elif any(txin.prevout == NULL_PREVOUT for txin in tx.vin):
        raise TxRejected("bad-txns-prevout-null")


def is_final(tx: Tx, height: int, block_time: int) -> bool:
    """`IsFinalTx` at the next block's height and the tip's median time past."""
    if tx.locktime == 0:
        return True
    limit = height if tx.locktime < LOCKTIME_THRESHOLD else block_time
    if tx.locktime < limit:
        return True
    return all(txin.sequence == SEQUENCE_FINAL for txin in tx.vin)


def sequence_locks_ok(
    tx: Tx,
    coin_heights: Sequence[int],
    next_height: int,
    mtp_at: Callable[[int], int],
) -> bool:
    """BIP-68 (`CalculateSequenceLocks` + `EvaluateSequenceLocks`) for a block at
    `next_height`; `mtp_at(h)` is the median time past of the active block at height h,
    and a coin still in the mempool counts as at `next_height`."""
    if tx.version < 2:
        return True
    min_height = min_time = -1
    for txin, coin_height in zip(tx.vin, coin_heights, strict=True):
        if txin.sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG:
            continue
        value = txin.sequence & SEQUENCE_LOCKTIME_MASK
        if txin.sequence & SEQUENCE_LOCKTIME_TYPE_FLAG:
            coin_time = mtp_at(max(coin_height - 1, 0))
            min_time = max(min_time, coin_time + (value << SEQUENCE_LOCKTIME_GRANULARITY) - 1)
        else:
            min_height = max(min_height, coin_height + value - 1)
    return min_height < next_height and min_time < mtp_at(next_height - 1)


def check_tx_inputs(tx: Tx, coins: Sequence[Coin], spend_height: int) -> int:
    """`Consensus::CheckTxInputs`: maturity, ranges, inputs cover outputs; the fee."""
    value_in = 0
    for coin in coins:
        if coin.coinbase and spend_height - coin.height < COINBASE_MATURITY:
            raise TxRejected(
                "bad-txns-premature-spend-of-coinbase",
                f"tried to spend coinbase at depth {spend_height - coin.height}",
            )
        value_in += coin.value
        if not 0 <= coin.value <= MAX_MONEY or value_in > MAX_MONEY:
            raise TxRejected("bad-txns-inputvalues-outofrange")
    value_out = sum(out.value for out in tx.vout)
    if value_in < value_out:
        raise TxRejected(
            "bad-txns-in-belowout",
            f"value in ({format_money(value_in)}) < value out ({format_money(value_out)})",
        )
    return value_in - value_out


def _witness_sigops(version: int, program: bytes, witness: Sequence[bytes]) -> int:
    if version == 0 and len(program) == 20:
        return 1
    if version == 0 and len(program) == 32 and witness:
        return scripts.sigop_count(witness[-1], True)
    return 0


def sigop_cost(tx: Tx, coins: Sequence[Coin]) -> int:
    """`GetTransactionSigOpCost`: legacy ×4, P2SH redeem scripts ×4, witness ×1."""
    legacy = sum(scripts.sigop_count(txin.script_sig, False) for txin in tx.vin)
    legacy += sum(scripts.sigop_count(out.script, False) for out in tx.vout)
    cost = legacy * 4
    if tx.is_coinbase:
        return cost
    for txin, coin in zip(tx.vin, coins, strict=True):
        spk = coin.script
        stack = scripts.pushes(txin.script_sig) if scripts.is_p2sh(spk) else None
        if stack:
            cost += scripts.sigop_count(stack[-1], True) * 4
        program = scripts.witness_program(spk)
        if program is None and stack:
            program = scripts.witness_program(stack[-1])
        if program is not None:
            cost += _witness_sigops(*program, txin.witness)
    return cost


# -- why the kernel said no ------------------------------------------------------------------

_GENERIC = "Script failed (libbitcoinkernel reports no script error code)"


def hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def _key_hash_failure(stack: Sequence[bytes], key_hash: bytes) -> str:
    sig, key = stack
    if hash160(key) != key_hash:
        return "Script failed an OP_EQUALVERIFY operation"
    if sig and not scripts.is_valid_signature_encoding(sig):
        return "Non-canonical DER signature"
    return "Script evaluated without error but finished with a false/empty top stack element"


def describe_script_failure(spk: bytes, txin: TxIn) -> str:
    """Core's `ScriptErrorString` for an input the kernel rejected, for key-hash spends
    (P2WPKH, P2PKH), whose failure has few causes; a generic text otherwise. The kernel's
    C API returns only valid/invalid, so this text is inferred, never the verdict."""
    kind = scripts.classify(spk)
    if kind == "witness_v0_keyhash":
        if txin.script_sig:
            return "Witness requires empty scriptSig"
        if not txin.witness:
            return "Witness program was passed an empty witness"
        if len(txin.witness) != 2:
            return "Witness program hash mismatch"
        return _key_hash_failure(txin.witness, spk[2:])
    if kind == "pubkeyhash":
        stack = scripts.pushes(txin.script_sig)
        if stack is not None and len(stack) == 2:
            return _key_hash_failure(stack, spk[3:23])
    return _GENERIC
