"""The demo wallet's RPC methods, as Bitcoin Core's wallet answers them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tssnode.regtest import views
from tssnode.regtest.addresses import AddressError, descriptor_checksum, to_script
from tssnode.regtest.errors import (
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_MISC_ERROR,
    RPC_TYPE_ERROR,
    RPCError,
    TxRejected,
)
from tssnode.regtest.mempool import MIN_RELAY_FEE
from tssnode.regtest.rpc_base import (
    Json,
    MethodsBase,
    as_bool,
    as_int,
    as_str,
    expected,
    payout_script,
    rpc,
)
from tssnode.regtest.units import COIN, amount_from_value, btc


class WalletMethods(MethodsBase):
    """getnewaddress, getbalance(s), listunspent, sendtoaddress."""

    # -- wallet ------------------------------------------------------------------------------------

    @rpc
    def getnewaddress(self, label: Any = "", address_type: Any = None) -> str:
        if address_type is not None and as_str(address_type) != "bech32":
            raise RPCError(
                RPC_INVALID_PARAMETER,
                f"Unknown address type '{address_type}' (this wallet makes bech32 only)",
            )
        return self.wallet.new_key(as_str(label)).address

    @rpc
    def getbalance(
        self,
        dummy: Any = None,
        minconf: Any = 0,
        include_watchonly: Any = None,
        avoid_reuse: Any = None,
    ) -> Decimal:
        if dummy is not None and dummy != "*":
            raise RPCError(-32, 'dummy first argument must be excluded or set to "*".')
        return btc(self.wallet.balance(self.chain, self.mempool, as_int(minconf)))

    @rpc
    def getbalances(self) -> Json:
        mine = self.wallet.balances(self.chain, self.mempool)
        return {
            "mine": {k: btc(v) for k, v in mine.items()},
            "lastprocessedblock": {
                "hash": views.hexhash(self.chain.tip.hash),
                "height": self.chain.height,
            },
        }

    @rpc
    def listunspent(
        self,
        minconf: Any = 1,
        maxconf: Any = 9_999_999,
        addresses: Any = None,
        include_unsafe: Any = True,
        query_options: Any = None,
    ) -> list[Json]:
        low, high = as_int(minconf), as_int(maxconf)
        wanted: set[bytes] | None = None
        if addresses is not None:
            if not isinstance(addresses, list):
                raise expected(addresses, "array")
            wanted = {payout_script(a) for a in addresses}
        unsafe = as_bool(include_unsafe)
        out: list[Json] = []
        for coin in self.wallet.coins(self.chain, self.mempool):
            if not coin.mature or not low <= coin.depth <= high:
                continue
            if (wanted is not None and coin.script not in wanted) or (
                not coin.trusted and not unsafe
            ):
                continue
            key = self.wallet.keys[coin.script]
            desc = f"wpkh({key.pubkey.hex()})"
            out.append(
                {
                    "txid": views.hexhash(coin.op[0]),
                    "vout": coin.op[1],
                    "address": key.address,
                    "label": key.label,
                    "scriptPubKey": coin.script.hex(),
                    "amount": btc(coin.value),
                    "confirmations": coin.depth,
                    "spendable": True,
                    "solvable": True,
                    "desc": f"{desc}#{descriptor_checksum(desc)}",
                    "parent_descs": [],
                    "safe": coin.trusted,
                }
            )
        return out

    @rpc
    def sendtoaddress(
        self,
        address: Any,
        amount: Any,
        comment: Any = None,
        comment_to: Any = None,
        subtractfeefromamount: Any = False,
        replaceable: Any = None,
        conf_target: Any = None,
        estimate_mode: Any = "unset",
        avoid_reuse: Any = None,
        fee_rate: Any = None,
        verbose: Any = False,
    ) -> Any:
        """Pay `amount` BTC from the wallet; the fee rate is `fee_rate` (sat/vB), else
        estimatesmartfee for `conf_target` (default 6)."""
        try:
            payee = to_script(as_str(address))
        except AddressError as exc:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, str(exc)) from None
        sats = amount_from_value(amount)
        if sats <= 0:
            raise RPCError(RPC_TYPE_ERROR, "Invalid amount for send")
        if fee_rate is not None:
            rate = amount_from_value(fee_rate) * 1000 // COIN
        else:
            rate = self.node.feerate_estimate(6 if conf_target is None else as_int(conf_target))
        rate = max(rate, MIN_RELAY_FEE)
        tx = self.wallet.create_payment(
            self.chain, self.mempool, payee, sats, rate,
            subtract_fee=as_bool(subtractfeefromamount),
        )  # fmt: skip
        try:
            self.mempool.accept(tx)
        except TxRejected as exc:
            raise RPCError(RPC_MISC_ERROR, f"Transaction rejected by the mempool: {exc}") from None
        txid = views.hexhash(tx.txid)
        if as_bool(verbose):
            return {
                "txid": txid,
                "fee_reason": "Fallback fee" if fee_rate is None else "User-specified fee rate",
            }
        return txid
