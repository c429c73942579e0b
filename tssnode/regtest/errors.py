"""Bitcoin Core's JSON-RPC error codes (src/rpc/protocol.h) and the exceptions that carry
them, so every refusal reaches a client with the code and message shape bitcoind uses."""

from __future__ import annotations

# -- Bitcoin Core's codes (the subset this service returns) ---------------------------------
RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_INVALID_PARAMS = -32602
RPC_INTERNAL_ERROR = -32603
RPC_PARSE_ERROR = -32700

RPC_MISC_ERROR = -1
RPC_TYPE_ERROR = -3
RPC_WALLET_ERROR = -4
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_WALLET_INSUFFICIENT_FUNDS = -6
RPC_INVALID_PARAMETER = -8
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25  # also RPC_TRANSACTION_ERROR
RPC_VERIFY_REJECTED = -26  # also RPC_TRANSACTION_REJECTED
RPC_VERIFY_ALREADY_IN_UTXO_SET = -27


class RegtestError(Exception):
    """Anything the regtest chain service refuses or fails at."""


class RPCError(RegtestError):
    """A JSON-RPC error object: Bitcoin Core's `code` and `message`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


class TxRejected(RegtestError):
    """The mempool refused a transaction: Core's reject reason and debug text.

    `missing_inputs` is Core's TX_MISSING_INPUTS result (RPC code -25 instead of -26, and
    "missing-inputs" in testmempoolaccept); `str()` is Core's `ValidationState::ToString`.
    """

    def __init__(self, reason: str, debug: str = "", *, missing_inputs: bool = False) -> None:
        super().__init__(reason + (f", {debug}" if debug else ""))
        self.reason = reason
        self.debug = debug
        self.missing_inputs = missing_inputs


class KernelUnavailable(RegtestError):
    """libbitcoinkernel (py-bitcoinkernel) could not be loaded or refused to start."""
