"""Building regtest blocks with python-bitcoinlib, the way Bitcoin Core's miner does.

    coinbase   scriptSig = <height (BIP-34)> <extra nonce>; outputs: subsidy + fees to the
               miner, then the witness commitment (BIP-141): OP_RETURN aa21a9ed ‖
               SHA256d(witness merkle root ‖ reserved value), the reserved value (32 zero
               bytes) as the coinbase's witness
    header     version 0x20000000, merkle root of the txids, time = max(MTP + 1, now),
               bits 0x207fffff (regtest: no retargeting), a nonce ground until the hash is
               below the target (half of all hashes are, so about two tries)

The extra nonce keeps two blocks built on the same parent in the same second apart (a
new branch after `invalidateblock`). Whether a block is valid is never decided here: the
kernel decides (`chain.Chain.submit`).
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bitcoin.core import (
    CBlock,
    CMutableTransaction,
    COutPoint,
    CTransaction,
    CTxIn,
    CTxInWitness,
    CTxOut,
    CTxWitness,
)
from bitcoin.core.script import CScript, CScriptWitness

from tssnode.regtest.units import COIN

REGTEST_BITS = 0x207FFFFF
VERSION = 0x20000000
HALVING_INTERVAL = 150  # regtest's nSubsidyHalvingInterval
COINBASE_MATURITY = 100
MAX_BLOCK_WEIGHT = 4_000_000
MAX_BLOCK_SIGOPS_COST = 80_000
WITNESS_MAGIC = b"\xaa\x21\xa9\xed"
WITNESS_RESERVED = b"\x00" * 32

_extra_nonce = itertools.count(int.from_bytes(os.urandom(3), "big"))


def subsidy(height: int) -> int:
    """`GetBlockSubsidy` with regtest's halving every 150 blocks."""
    halvings = height // HALVING_INTERVAL
    return 0 if halvings >= 64 else (50 * COIN) >> halvings


def target(bits: int) -> int:
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    return mantissa << (8 * (exponent - 3)) if exponent > 3 else mantissa >> (8 * (3 - exponent))


def work(bits: int) -> int:
    """`GetBlockProof`: the expected number of hashes, 2^256 / (target + 1)."""
    return (1 << 256) // (target(bits) + 1)


def difficulty(bits: int) -> float:
    """`GetDifficulty`: the minimum-difficulty target over this one."""
    shift = (bits >> 24) & 0xFF
    diff = float(0x0000FFFF) / float(bits & 0x00FFFFFF)
    while shift < 29:
        diff *= 256.0
        shift += 1
    while shift > 29:
        diff /= 256.0
        shift -= 1
    return diff


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """The merkle root as Core computes it (the last of an odd level paired with itself)."""
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def bip34_script(height: int, extra: bytes) -> Any:
    """The coinbase scriptSig: the height as CScriptNum, then the extra nonce."""
    return CScript([height, extra])


@dataclass(frozen=True)
class Built:
    """A block ready for the kernel: the python-bitcoinlib object and its serialization."""

    block: Any
    raw: bytes
    hash: bytes  # internal byte order (the display hash reversed)


def build(
    prev_hash: bytes,
    height: int,
    time: int,
    payout: bytes,
    txs: Sequence[Any] = (),
    fees: int = 0,
    *,
    coinbase_value: int | None = None,
) -> Built:
    """A block on `prev_hash` paying `subsidy(height) + fees` (or `coinbase_value`, for
    tests that need an invalid block) to the scriptPubKey `payout`."""
    value = subsidy(height) + fees if coinbase_value is None else coinbase_value
    extra = next(_extra_nonce).to_bytes(4, "little")
    wtxids = [b"\x00" * 32] + [tx.GetHash() for tx in txs]
    commitment = sha256d(merkle_root(wtxids) + WITNESS_RESERVED)
    coinbase = CMutableTransaction(
        [CTxIn(COutPoint(), bip34_script(height, extra), 0xFFFFFFFF)],
        [
            CTxOut(value, CScript(payout)),
            CTxOut(0, CScript(b"\x6a\x24" + WITNESS_MAGIC + commitment)),
        ],
        0,
        2,
    )
    coinbase.wit = CTxWitness([CTxInWitness(CScriptWitness([WITNESS_RESERVED]))])
    vtx = [CTransaction.from_tx(coinbase), *txs]
    root = merkle_root([tx.GetTxid() for tx in vtx])
    header = (
        VERSION.to_bytes(4, "little")
        + prev_hash
        + root
        + time.to_bytes(4, "little")
        + REGTEST_BITS.to_bytes(4, "little")
    )
    limit = target(REGTEST_BITS)
    for nonce in range(1 << 32):
        block_hash = sha256d(header + nonce.to_bytes(4, "little"))
        if int.from_bytes(block_hash, "little") <= limit:
            break
    else:  # pragma: no cover - a 2^-(2^32) event at regtest difficulty
        raise RuntimeError("no nonce found")
    block = CBlock(
        nVersion=VERSION,
        hashPrevBlock=prev_hash,
        hashMerkleRoot=root,
        nTime=time,
        nBits=REGTEST_BITS,
        nNonce=nonce,
        vtx=vtx,
    )
    return Built(block, bytes(block.serialize()), block_hash)
