"""Keys, spends and signatures the tests build themselves, to hand the service exactly
the transaction a test needs (a tampered signature, a high S, dust, a double spend)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import coincurve
from bitcoin.core import (
    CMutableTransaction,
    COutPoint,
    CTxIn,
    CTxInWitness,
    CTxOut,
    CTxWitness,
)
from bitcoin.core.script import CScript, CScriptWitness

from tssnode.regtest import addresses
from tssnode.regtest.txs import Tx
from tssnode.regtest.wallet import sign_p2wpkh

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
RBF = 0xFFFFFFFD


def hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


@dataclass(frozen=True)
class Key:
    """A P2WPKH key the test holds."""

    secret: bytes

    @classmethod
    def from_seed(cls, seed: str) -> Key:
        return cls(hashlib.sha256(seed.encode()).digest())

    @property
    def pubkey(self) -> bytes:
        return coincurve.PrivateKey(self.secret).public_key.format(compressed=True)

    @property
    def script(self) -> bytes:
        return b"\x00\x14" + hash160(self.pubkey)

    @property
    def address(self) -> str:
        return addresses.encode_segwit(0, self.script[2:])


@dataclass(frozen=True)
class Coin:
    """An output the test can spend: txid in display hex, index, value, key."""

    txid: str
    vout: int
    value: int
    key: Key


def spend(
    coins: list[Coin],
    outputs: list[tuple[bytes, int]],
    *,
    sequence: int = RBF,
    locktime: int = 0,
    version: int = 2,
) -> Tx:
    """A signed P2WPKH spend of `coins` paying (scriptPubKey, sats) `outputs`."""
    tx = CMutableTransaction(
        [CTxIn(COutPoint(bytes.fromhex(c.txid)[::-1], c.vout), CScript(), sequence) for c in coins],
        [CTxOut(value, CScript(spk)) for spk, value in outputs],
        locktime,
        version,
    )
    return sign_p2wpkh(tx, [(c.key.secret, c.value) for c in coins])


def with_witness(tx: Tx, index: int, stack: list[bytes]) -> Tx:
    """The same transaction with input `index`'s witness replaced."""
    mutable = CMutableTransaction.from_tx(tx.obj)
    witnesses = [CTxInWitness(CScriptWitness(list(txin.witness))) for txin in tx.vin]
    witnesses[index] = CTxInWitness(CScriptWitness(stack))
    mutable.wit = CTxWitness(witnesses)
    return Tx.from_obj(mutable)


def der(r: int, s: int) -> bytes:
    def integer(v: int) -> bytes:
        body = v.to_bytes((v.bit_length() + 8) // 8, "big")  # a leading 0 when the top bit is set
        return b"\x02" + bytes([len(body)]) + body

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


def parse_der(sig: bytes) -> tuple[int, int]:
    len_r = sig[3]
    r = int.from_bytes(sig[4 : 4 + len_r], "big")
    len_s = sig[5 + len_r]
    s = int.from_bytes(sig[6 + len_r : 6 + len_r + len_s], "big")
    return r, s


def high_s(tx: Tx, index: int = 0) -> Tx:
    """The same spend with input `index`'s signature as (r, n - s): valid by consensus,
    refused by the LOW_S policy."""
    sig, key = tx.vin[index].witness
    r, s = parse_der(sig[:-1])
    return with_witness(tx, index, [der(r, N - s) + sig[-1:], key])


def tampered(tx: Tx, index: int = 0) -> Tx:
    """The same spend with one byte of input `index`'s signature flipped (inside S)."""
    sig, key = tx.vin[index].witness
    broken = bytearray(sig)
    broken[-3] ^= 0x01
    return with_witness(tx, index, [bytes(broken), key])
