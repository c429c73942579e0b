"""Transactions as typed values: python-bitcoinlib parses and serializes them, and this
module copies out the fields (txid, inputs, witnesses, outputs, sizes) the policy and the
RPC read, so the untyped library stays at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bitcoin.core import CTransaction

OutPoint = tuple[bytes, int]
SEQUENCE_FINAL = 0xFFFFFFFF
WITNESS_SCALE_FACTOR = 4


class TxDecodeError(ValueError):
    """Not a transaction (Core: "TX decode failed")."""


@dataclass(frozen=True)
class TxIn:
    prevout: OutPoint
    script_sig: bytes
    sequence: int
    witness: tuple[bytes, ...]


@dataclass(frozen=True)
class TxOut:
    value: int
    script: bytes


@dataclass(frozen=True)
class Tx:
    """A transaction: `obj` is python-bitcoinlib's CTransaction, the rest copied from it.
    Hashes are in internal byte order (display order reversed)."""

    obj: Any
    raw: bytes
    txid: bytes
    wtxid: bytes
    version: int
    locktime: int
    vin: tuple[TxIn, ...]
    vout: tuple[TxOut, ...]
    stripped_size: int

    @classmethod
    def from_obj(cls, obj: Any) -> Tx:
        obj = CTransaction.from_tx(obj)
        witnesses = list(obj.wit.vtxinwit) if not obj.wit.is_null() else []
        vin = tuple(
            TxIn(
                (bytes(txin.prevout.hash), int(txin.prevout.n)),
                bytes(txin.scriptSig),
                int(txin.nSequence),
                tuple(bytes(item) for item in witnesses[i].scriptWitness.stack)
                if i < len(witnesses)
                else (),
            )
            for i, txin in enumerate(obj.vin)
        )
        vout = tuple(TxOut(int(out.nValue), bytes(out.scriptPubKey)) for out in obj.vout)
        return cls(
            obj,
            bytes(obj.serialize()),
            bytes(obj.GetTxid()),
            bytes(obj.GetHash()),
            int(obj.nVersion),
            int(obj.nLockTime),
            vin,
            vout,
            len(obj.serialize(params={"include_witness": False})),
        )

    @classmethod
    def from_raw(cls, raw: bytes) -> Tx:
        try:
            obj = CTransaction.deserialize(raw)
        except Exception as exc:  # python-bitcoinlib raises several kinds
            raise TxDecodeError(str(exc)) from None
        return cls.from_obj(obj)

    @classmethod
    def from_hex(cls, text: str) -> Tx:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise TxDecodeError("not hex") from None
        return cls.from_raw(raw)

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def weight(self) -> int:
        return self.stripped_size * (WITNESS_SCALE_FACTOR - 1) + self.size

    @property
    def vsize(self) -> int:
        return (self.weight + WITNESS_SCALE_FACTOR - 1) // WITNESS_SCALE_FACTOR

    def sigop_vsize(self, sigop_cost: int, bytes_per_sigop: int = 20) -> int:
        """`GetVirtualTransactionSize(weight, sigop cost, bytes per sigop)`."""
        weight = max(self.weight, sigop_cost * bytes_per_sigop)
        return (weight + WITNESS_SCALE_FACTOR - 1) // WITNESS_SCALE_FACTOR

    @property
    def is_coinbase(self) -> bool:
        return len(self.vin) == 1 and self.vin[0].prevout == (b"\0" * 32, 0xFFFFFFFF)

    @property
    def has_witness(self) -> bool:
        return any(txin.witness for txin in self.vin)

    @property
    def signals_rbf(self) -> bool:
        """BIP-125 opt-in: an input with nSequence below 0xfffffffe."""
        return any(txin.sequence < 0xFFFFFFFE for txin in self.vin)
