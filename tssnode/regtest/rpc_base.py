"""What every RPC method module shares: the registry of method names, Bitcoin Core's
parameter checks (`RPCTypeCheck`, `ParseHashV`, `AmountFromValue` texts) and the base class
holding the node's parts."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tssnode.regtest import addresses
from tssnode.regtest.chain import BlockRecord
from tssnode.regtest.errors import (
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_TYPE_ERROR,
    RPC_VERIFY_ERROR,
    RPC_VERIFY_REJECTED,
    RPCError,
    TxRejected,
)
from tssnode.regtest.node import RegtestNode
from tssnode.regtest.txs import Tx, TxDecodeError

Json = dict[str, Any]

#: the names of the methods callable over JSON-RPC (filled by `@rpc`)
RPC_NAMES: list[str] = []


def rpc(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a method as callable over JSON-RPC under its own name."""
    RPC_NAMES.append(fn.__name__)
    return fn


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def expected(value: object, wanted: str) -> RPCError:
    return RPCError(
        RPC_TYPE_ERROR,
        f"JSON value of type {_type_name(value)} is not of expected type {wanted}",
    )


def as_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise expected(value, "number")
    if value != int(value):
        raise expected(value, "integer")
    return int(value)


def as_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise expected(value, "bool")
    return value


def as_str(value: object) -> str:
    if not isinstance(value, str):
        raise expected(value, "string")
    return value


def as_hash(value: object, name: str) -> bytes:
    """`ParseHashV`: 64 hex characters in display order, as internal bytes."""
    text = as_str(value)
    if len(text) != 64:
        raise RPCError(
            RPC_INVALID_PARAMETER, f"{name} must be of length 64 (not {len(text)}, for '{text}')"
        )
    try:
        return bytes.fromhex(text)[::-1]
    except ValueError:
        raise RPCError(
            RPC_INVALID_PARAMETER, f"{name} must be hexadecimal string (not '{text}')"
        ) from None


def as_verbosity(value: object) -> int:
    """Core accepts a bool or a number for verbosity."""
    if isinstance(value, bool):
        return int(value)
    return as_int(value)


def payout_script(address: object) -> bytes:
    try:
        return addresses.to_script(as_str(address))
    except addresses.AddressError:
        raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None


def decode_tx(value: object) -> Tx:
    try:
        return Tx.from_hex(as_str(value))
    except TxDecodeError:
        raise RPCError(
            RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input."
        ) from None


def sendrawtx_error(exc: TxRejected) -> RPCError:
    """`JSONRPCTransactionError`: missing inputs -25, every other rejection -26."""
    code = RPC_VERIFY_ERROR if exc.missing_inputs else RPC_VERIFY_REJECTED
    return RPCError(code, str(exc))


class MethodsBase:
    """The node's parts, for the method classes (`methods.Methods` joins them)."""

    def __init__(self, node: RegtestNode) -> None:
        self.node = node
        self.chain = node.chain
        self.mempool = node.mempool
        self.wallet = node.wallet

    def _record(self, block_hash: bytes) -> BlockRecord:
        record = self.chain.records.get(block_hash)
        if record is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
        return record
