"""The RPC surface: Bitcoin Core's methods (28.x), named and shaped as Core's, with
parameters by position or by name and Core's checks and error codes.

    rpc_chain    blockchain, mempool, mining (and `tssnode_reorg`)
    rpc_tx       raw transactions
    rpc_wallet   the demo wallet
    here         dispatch, fee estimates, util/control/network

Every method runs under the node's lock. Methods that are not Bitcoin Core's carry the
`tssnode_` prefix (`tssnode_reorg`). `help` lists them all.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from tssnode.regtest import addresses, scripts
from tssnode.regtest.errors import (
    RPC_INVALID_PARAMETER,
    RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPCError,
)
from tssnode.regtest.mempool import INCREMENTAL_RELAY_FEE, MIN_RELAY_FEE
from tssnode.regtest.node import RegtestNode
from tssnode.regtest.rpc_base import RPC_NAMES, Json, as_int, as_str, rpc
from tssnode.regtest.rpc_chain import ChainMethods
from tssnode.regtest.rpc_tx import TxMethods
from tssnode.regtest.rpc_wallet import WalletMethods
from tssnode.regtest.units import feerate_btc_kvb

VERSION = 280000
SUBVERSION = "/tssnode-regtest:0.1.0/"
ESTIMATE_MODES = ("unset", "economical", "conservative")
#: Core's older parameter names, still accepted by name
ALIASES = {"getrawtransaction": {"verbose": "verbosity"}}


class Methods(ChainMethods, TxMethods, WalletMethods):
    """The RPC surface of one `RegtestNode`."""

    def __init__(self, node: RegtestNode) -> None:
        super().__init__(node)
        #: set by the service: called by `stop` (from a worker thread)
        self.on_stop: Callable[[], None] | None = None

    # -- dispatch ------------------------------------------------------------------------------

    @staticmethod
    def names() -> list[str]:
        return sorted(RPC_NAMES)

    def usage(self, name: str) -> str:
        params = inspect.signature(getattr(self, name)).parameters.values()
        words = [
            p.name if p.default is inspect.Parameter.empty else f"( {p.name} )" for p in params
        ]
        return " ".join([name, *words])

    def call(self, name: str, params: list[Any] | dict[str, Any] | None) -> Any:
        """Run a method with positional (list) or named (dict) parameters; null parameters
        count as omitted, as in Core."""
        if name not in RPC_NAMES:
            raise RPCError(RPC_METHOD_NOT_FOUND, "Method not found")
        fn = getattr(self, name)
        signature = inspect.signature(fn)
        names = list(signature.parameters)
        kwargs: dict[str, Any] = {}
        if isinstance(params, dict):
            aliases = ALIASES.get(name, {})
            for key, value in params.items():
                key = aliases.get(key, key)
                if key not in names:
                    raise RPCError(RPC_INVALID_PARAMETER, f"Unknown named parameter {key}")
                if value is not None:
                    kwargs[key] = value
        elif params:
            if len(params) > len(names):
                raise RPCError(RPC_MISC_ERROR, self.usage(name))
            kwargs = {k: v for k, v in zip(names, params, strict=False) if v is not None}
        missing = [
            p.name
            for p in signature.parameters.values()
            if p.default is inspect.Parameter.empty and p.name not in kwargs
        ]
        if missing:
            raise RPCError(RPC_MISC_ERROR, self.usage(name))
        with self.node.lock:
            return fn(**kwargs)

    # -- fees ------------------------------------------------------------------------------------

    @rpc
    def estimatesmartfee(self, conf_target: Any, estimate_mode: Any = "economical") -> Json:
        """Fee rates of the last 10 blocks' transactions and of the mempool: the 90th
        percentile for a target of 1-2 blocks, 75th up to 6, median up to 24, 25th beyond;
        never below the minimum relay fee; the configured fallback fee when there is no
        transaction to learn from (where Core answers "Insufficient data")."""
        target = as_int(conf_target)
        if not 1 <= target <= 1008:
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid conf_target, must be between 1 and 1008")
        if as_str(estimate_mode).lower() not in ESTIMATE_MODES:
            raise RPCError(
                RPC_INVALID_PARAMETER,
                'Invalid estimate_mode parameter, must be one of: "unset", "economical", '
                '"conservative"',
            )
        rate = self.node.feerate_estimate(target)
        return {"feerate": feerate_btc_kvb(rate), "blocks": max(2, target)}

    # -- util / control / network ------------------------------------------------------------------

    @rpc
    def validateaddress(self, address: Any) -> Json:
        text = as_str(address)
        try:
            spk = addresses.to_script(text)
        except addresses.AddressError as exc:
            return {"isvalid": False, "error_locations": [], "error": str(exc)}
        out: Json = {
            "isvalid": True,
            "address": text,
            "scriptPubKey": spk.hex(),
            "isscript": scripts.classify(spk) in ("scripthash", "witness_v0_scripthash"),
            "iswitness": scripts.witness_program(spk) is not None,
        }
        program = scripts.witness_program(spk)
        if program is not None:
            out["witness_version"] = program[0]
            out["witness_program"] = program[1].hex()
        return out

    @rpc
    def getnetworkinfo(self) -> Json:
        return {
            "version": VERSION,
            "subversion": SUBVERSION,
            "protocolversion": 70016,
            "localservices": "0000000000000c09",
            "localservicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED", "P2P_V2"],
            "localrelay": True,
            "timeoffset": 0,
            "networkactive": False,
            "connections": 0,
            "connections_in": 0,
            "connections_out": 0,
            "networks": [],
            "relayfee": feerate_btc_kvb(MIN_RELAY_FEE),
            "incrementalfee": feerate_btc_kvb(INCREMENTAL_RELAY_FEE),
            "localaddresses": [],
            "warnings": [],
        }

    @rpc
    def uptime(self) -> int:
        return int(time.time() - self.node.started)

    @rpc
    def stop(self) -> str:
        if self.on_stop is not None:
            self.on_stop()
        return "tssnode regtest stopping"

    @rpc
    def help(self, command: Any = None) -> str:
        if command is not None:
            name = as_str(command)
            if name not in RPC_NAMES:
                return f"help: unknown command: {name}"
            doc = inspect.getdoc(getattr(self, name)) or ""
            return f"{self.usage(name)}\n\n{doc}".rstrip()
        return "\n".join(self.usage(name) for name in self.names())
