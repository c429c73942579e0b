"""The raw-transaction RPC methods, as Bitcoin Core's: lookups with a transaction index
(bitcoind with `-txindex=1`), `sendrawtransaction` as `BroadcastTransaction`, and
`testmempoolaccept`."""

from __future__ import annotations

from typing import Any

from tssnode.regtest import scripts, views
from tssnode.regtest.chain import Coin
from tssnode.regtest.errors import (
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_VERIFY_ALREADY_IN_UTXO_SET,
    RPC_VERIFY_ERROR,
    RPCError,
    TxRejected,
)
from tssnode.regtest.rpc_base import (
    Json,
    MethodsBase,
    as_hash,
    as_verbosity,
    decode_tx,
    expected,
    rpc,
    sendrawtx_error,
)
from tssnode.regtest.txs import Tx
from tssnode.regtest.units import (
    COIN,
    amount_from_value,
    btc,
    fee_for,
    feerate_btc_kvb,
    feerate_from_value,
)

DEFAULT_MAX_FEERATE = COIN // 10  # 0.10 BTC/kvB (sendrawtransaction, testmempoolaccept)
MAX_PACKAGE_COUNT = 25


class TxMethods(MethodsBase):
    """getrawtransaction, decoderawtransaction, sendrawtransaction, testmempoolaccept."""

    # -- raw transactions --------------------------------------------------------------------------

    def _spent(self, tx: Tx) -> list[Coin] | None:
        coins = [self.mempool.coin(txin.prevout) for txin in tx.vin]
        if any(c is None for c in coins):
            return None
        return [c for c in coins if c is not None]

    @rpc
    def getrawtransaction(self, txid: Any, verbosity: Any = 0, blockhash: Any = None) -> Any:
        tx_hash = as_hash(txid, "parameter 1")
        level = as_verbosity(verbosity)
        chain = self.chain
        if blockhash is not None:
            block_hash = as_hash(blockhash, "parameter 3")
            if block_hash not in chain.records:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block hash not found")
            found = [
                (i, obj)
                for i, obj in enumerate(chain.block(block_hash).vtx)
                if bytes(obj.GetTxid()) == tx_hash
            ]
            if not found:
                raise RPCError(
                    RPC_INVALID_ADDRESS_OR_KEY,
                    "No such transaction found in the provided block. Use gettransaction for "
                    "wallet transactions.",
                )
            where: tuple[bytes, int] | None = (block_hash, found[0][0])
        elif tx_hash in self.mempool.entries:
            entry = self.mempool.entries[tx_hash]
            if level <= 0:
                return entry.tx.raw.hex()
            if level >= 2:
                return views.tx_json(entry.tx, spent=self._spent(entry.tx), prevouts=True)
            return views.tx_json(entry.tx)
        else:
            where = chain.txindex.get(tx_hash)
            if where is None:
                genesis_coinbase = chain.block(chain.genesis).vtx[0].GetTxid()
                if bytes(genesis_coinbase) == tx_hash:
                    raise RPCError(
                        RPC_INVALID_ADDRESS_OR_KEY,
                        "The genesis block coinbase is not considered an ordinary transaction "
                        "and cannot be retrieved",
                    )
                raise RPCError(
                    RPC_INVALID_ADDRESS_OR_KEY,
                    "No such mempool or blockchain transaction. Use gettransaction for wallet "
                    "transactions.",
                )
        assert where is not None  # (each branch above returned, raised or set it)
        block_hash, index = where
        tx = Tx.from_obj(chain.block(block_hash).vtx[index])
        if level <= 0:
            return tx.raw.hex()
        out: Json = {}
        if blockhash is not None:
            out["in_active_chain"] = chain.in_active(block_hash)
        spent_all = chain.spent_coins(block_hash) if level >= 2 else None
        spent = spent_all[index - 1] if spent_all is not None and index else None
        out.update(views.tx_json(tx, spent=spent, prevouts=level >= 2))
        record = chain.records[block_hash]
        out["blockhash"] = views.hexhash(block_hash)
        if chain.in_active(block_hash):
            out["confirmations"] = chain.height - record.height + 1
            out["time"] = record.time
            out["blocktime"] = record.time
        else:
            out["confirmations"] = 0
        return out

    @rpc
    def decoderawtransaction(self, hexstring: Any, iswitness: Any = None) -> Json:
        return views.tx_json(decode_tx(hexstring), include_hex=False)

    @rpc
    def sendrawtransaction(
        self, hexstring: Any, maxfeerate: Any = None, maxburnamount: Any = None
    ) -> str:
        """`BroadcastTransaction`: already confirmed → -27, already in the mempool → its
        txid, a fee over maxfeerate → -25, every rejection with Core's code and text."""
        tx = decode_tx(hexstring)
        max_rate = DEFAULT_MAX_FEERATE if maxfeerate is None else feerate_from_value(maxfeerate)
        max_burn = 0 if maxburnamount is None else amount_from_value(maxburnamount)
        for out in tx.vout:
            if scripts.is_unspendable(out.script) and out.value > max_burn:
                raise RPCError(
                    RPC_VERIFY_ERROR,
                    "Unspendable output exceeds maximum configured by user (maxburnamount)",
                )
        if any((tx.txid, n) in self.chain.utxo for n in range(len(tx.vout))):
            raise RPCError(
                RPC_VERIFY_ALREADY_IN_UTXO_SET, "Transaction outputs already in utxo set"
            )
        if tx.txid in self.mempool.entries:
            return views.hexhash(tx.txid)
        try:
            if max_rate:
                checked = self.mempool.accept(tx, test_only=True)
                if checked.fee > fee_for(max_rate, tx.vsize):
                    raise RPCError(
                        RPC_VERIFY_ERROR,
                        "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
                    )
            self.mempool.accept(tx)
        except TxRejected as exc:
            raise sendrawtx_error(exc) from None
        return views.hexhash(tx.txid)

    @rpc
    def testmempoolaccept(self, rawtxs: Any, maxfeerate: Any = None) -> list[Json]:
        """Each transaction as if the ones before it were accepted; after the first that
        fails, only txid and wtxid (Core's package behaviour)."""
        if not isinstance(rawtxs, list):
            raise expected(rawtxs, "array")
        if not 1 <= len(rawtxs) <= MAX_PACKAGE_COUNT:
            raise RPCError(
                RPC_INVALID_PARAMETER,
                f"Array must contain between 1 and {MAX_PACKAGE_COUNT} transactions.",
            )
        txs = [decode_tx(raw) for raw in rawtxs]
        max_rate = DEFAULT_MAX_FEERATE if maxfeerate is None else feerate_from_value(maxfeerate)
        mempool = self.mempool
        saved = (dict(mempool.entries), dict(mempool.spenders), dict(mempool.by_wtxid))
        saved_sequence = mempool.sequence
        results: list[Json] = []
        failed = False
        try:
            for tx in txs:
                result: Json = {"txid": views.hexhash(tx.txid), "wtxid": views.hexhash(tx.wtxid)}
                results.append(result)
                if failed:
                    continue
                try:
                    accepted = mempool.accept(tx, test_only=len(txs) == 1)
                except TxRejected as exc:
                    failed = True
                    result["allowed"] = False
                    if exc.missing_inputs:
                        result["reject-reason"] = "missing-inputs"
                    else:
                        result["reject-reason"] = exc.reason
                        result["reject-details"] = str(exc)
                    continue
                if max_rate and accepted.fee > fee_for(max_rate, accepted.vsize):
                    failed = True
                    result["allowed"] = False
                    result["reject-reason"] = "max-fee-exceeded"
                    continue
                result["allowed"] = True
                result["vsize"] = accepted.vsize
                result["fees"] = {
                    "base": btc(accepted.fee),
                    "effective-feerate": feerate_btc_kvb(accepted.fee * 1000 // accepted.vsize),
                    "effective-includes": [views.hexhash(tx.wtxid)],
                }
        finally:
            mempool.entries, mempool.spenders, mempool.by_wtxid = saved
            mempool.sequence = saved_sequence
        return results
