"""The blockchain, mempool and mining RPC methods, as Bitcoin Core's."""

from __future__ import annotations

from typing import Any

from tssnode.regtest import addresses, views
from tssnode.regtest.chain import BlockDecodeError, Coin
from tssnode.regtest.errors import (
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_VERIFY_ERROR,
    RPCError,
)
from tssnode.regtest.mempool import INCREMENTAL_RELAY_FEE, MIN_RELAY_FEE
from tssnode.regtest.rpc_base import (
    Json,
    MethodsBase,
    as_bool,
    as_hash,
    as_int,
    as_str,
    as_verbosity,
    expected,
    payout_script,
    rpc,
)
from tssnode.regtest.txs import Tx, TxDecodeError
from tssnode.regtest.units import btc, feerate_btc_kvb


class ChainMethods(MethodsBase):
    """getblock…, getrawmempool…, generatetoaddress…: the chain and its mempool."""

    # -- blockchain ------------------------------------------------------------------------------

    @rpc
    def getblockchaininfo(self) -> Json:
        return views.blockchain_info(self.chain)

    @rpc
    def getblockcount(self) -> int:
        return self.chain.height

    @rpc
    def getbestblockhash(self) -> str:
        return views.hexhash(self.chain.tip.hash)

    @rpc
    def getblockhash(self, height: Any) -> str:
        h = as_int(height)
        if not 0 <= h <= self.chain.height:
            raise RPCError(RPC_INVALID_PARAMETER, "Block height out of range")
        return views.hexhash(self.chain.active[h])

    @rpc
    def getdifficulty(self) -> float:
        return float(views.blockchain_info(self.chain)["difficulty"])

    @rpc
    def getblockheader(self, blockhash: Any, verbose: Any = True) -> Any:
        record = self._record(as_hash(blockhash, "hash"))
        if not as_bool(verbose):
            return record.header.hex()
        return views.header_json(self.chain, record)

    @rpc
    def getblock(self, blockhash: Any, verbosity: Any = 1) -> Any:
        record = self._record(as_hash(blockhash, "blockhash"))
        level = as_verbosity(verbosity)
        if level <= 0:
            return record.raw.hex()
        return views.block_json(self.chain, record, level)

    @rpc
    def getchaintips(self) -> list[Json]:
        chain = self.chain
        tips: list[Json] = []
        for tip in chain.tips():
            record = chain.records[tip]
            fork = record
            while not chain.in_active(fork.hash):
                fork = chain.records[fork.prev]
            branch = record.height - fork.height
            if branch == 0:
                status = "active"
            elif chain.is_invalid(tip):
                status = "invalid"
            else:
                walk, connected = record, True
                while walk.hash != fork.hash:
                    connected = connected and walk.hash in chain.undo
                    walk = chain.records[walk.prev]
                status = "valid-fork" if connected else "valid-headers"
            tips.append(
                {
                    "height": record.height,
                    "hash": views.hexhash(tip),
                    "branchlen": branch,
                    "status": status,
                }
            )
        tips.sort(key=lambda t: (t["status"] != "active", -t["height"]))
        return tips

    @rpc
    def gettxout(self, txid: Any, n: Any, include_mempool: Any = True) -> Json | None:
        op = (as_hash(txid, "txid"), as_int(n))
        coin: Coin | None
        if as_bool(include_mempool):
            if op in self.mempool.spenders:
                return None
            coin = self.mempool.coin(op)
        else:
            coin = self.chain.utxo.get(op)
        if coin is None:
            return None
        confirmed = op in self.chain.utxo
        return {
            "bestblock": views.hexhash(self.chain.tip.hash),
            "confirmations": self.chain.height - coin.height + 1 if confirmed else 0,
            "value": btc(coin.value),
            "scriptPubKey": views.script_pubkey(coin.script),
            "coinbase": coin.coinbase,
        }

    @rpc
    def invalidateblock(self, blockhash: Any) -> None:
        block_hash = as_hash(blockhash, "blockhash")
        self._record(block_hash)
        if block_hash == self.chain.genesis:
            raise RPCError(RPC_INVALID_PARAMETER, "The genesis block cannot be invalidated")
        self.node.invalidate(block_hash)

    @rpc
    def reconsiderblock(self, blockhash: Any) -> None:
        block_hash = as_hash(blockhash, "blockhash")
        self._record(block_hash)
        self.node.reconsider(block_hash)

    # -- mempool ---------------------------------------------------------------------------------

    @rpc
    def getmempoolinfo(self) -> Json:
        entries = self.mempool.entries.values()
        return {
            "loaded": True,
            "size": len(entries),
            "bytes": sum(e.vsize for e in entries),
            "usage": sum(e.tx.size * 4 for e in entries),
            "total_fee": btc(sum(e.fee for e in entries)),
            "maxmempool": 300_000_000,
            "mempoolminfee": feerate_btc_kvb(MIN_RELAY_FEE),
            "minrelaytxfee": feerate_btc_kvb(MIN_RELAY_FEE),
            "incrementalrelayfee": feerate_btc_kvb(INCREMENTAL_RELAY_FEE),
            "unbroadcastcount": 0,
            "fullrbf": True,
        }

    @rpc
    def getrawmempool(self, verbose: Any = False, mempool_sequence: Any = False) -> Any:
        if as_bool(verbose):
            if as_bool(mempool_sequence):
                raise RPCError(
                    RPC_INVALID_PARAMETER,
                    "Verbose results cannot contain mempool sequence values.",
                )
            return {
                views.hexhash(txid): views.mempool_entry(self.mempool, entry)
                for txid, entry in self.mempool.entries.items()
            }
        txids = [views.hexhash(txid) for txid in self.mempool.entries]
        if as_bool(mempool_sequence):
            return {"txids": txids, "mempool_sequence": self.mempool.sequence}
        return txids

    @rpc
    def getmempoolentry(self, txid: Any) -> Json:
        entry = self.mempool.entries.get(as_hash(txid, "txid"))
        if entry is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")
        return views.mempool_entry(self.mempool, entry)

    # -- mining ----------------------------------------------------------------------------------

    @rpc
    def generatetoaddress(self, nblocks: Any, address: Any, maxtries: Any = 1_000_000) -> list[str]:
        count = as_int(nblocks)
        as_int(maxtries)
        payout = payout_script(address)
        return [views.hexhash(h) for h in self.node.generate(count, payout)]

    @rpc
    def generateblock(self, output: Any, transactions: Any, submit: Any = True) -> Json:
        """A block on the tip with exactly these transactions (txids from the mempool or
        raw hex), the coinbase paying the subsidy only, as Core's generateblock."""
        text = as_str(output)
        if text.startswith("addr(") and ")" in text:
            text = text[5 : text.index(")")]
        try:
            payout = addresses.to_script(text)
        except addresses.AddressError:
            raise RPCError(
                RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address or descriptor"
            ) from None
        if not isinstance(transactions, list):
            raise expected(transactions, "array")
        txs: list[Tx] = []
        for item in transactions:
            text = as_str(item)
            if len(text) == 64:
                entry = self.mempool.entries.get(as_hash(text, "txid"))
                if entry is None:
                    raise RPCError(
                        RPC_INVALID_ADDRESS_OR_KEY, f"Transaction {text} not in mempool."
                    )
                txs.append(entry.tx)
                continue
            try:
                txs.append(Tx.from_hex(text))
            except TxDecodeError:
                raise RPCError(
                    RPC_DESERIALIZATION_ERROR,
                    f"Transaction decode failed for {text}. Make sure the tx has at least one "
                    "input.",
                ) from None
        built = self.chain.build_on(self.chain.tip.hash, payout, [t.obj for t in txs])
        if not as_bool(submit):
            return {"hash": views.hexhash(built.hash), "hex": built.raw.hex()}
        result = self.node.submit_block(built.raw)
        if not result.accepted:
            raise RPCError(RPC_VERIFY_ERROR, f"TestBlockValidity failed: {result.reason}")
        return {"hash": views.hexhash(built.hash)}

    @rpc
    def submitblock(self, hexdata: Any, dummy: Any = None) -> str | None:
        """null when the block joins the active chain; else Core's "duplicate",
        "duplicate-invalid", "inconclusive", or the kernel's reason."""
        try:
            raw = bytes.fromhex(as_str(hexdata))
            block = self.chain.parse(raw)
        except (ValueError, BlockDecodeError):
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block decode failed") from None
        if not block.vtx or not block.vtx[0].is_coinbase():
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block does not start with a coinbase")
        result = self.node.submit_block(raw)
        return None if result.status == "accepted" else result.reason or result.status

    @rpc
    def tssnode_reorg(self, depth: Any, new_blocks: Any, address: Any = None) -> Json:
        """Not a Bitcoin Core method: a competing branch from `depth` blocks below the tip,
        `new_blocks` (empty) blocks long, each validated by the kernel; longer than `depth`
        it becomes the active chain through a reorg inside the kernel."""
        d, n = as_int(depth), as_int(new_blocks)
        if not 0 <= d <= self.chain.height or n < 1:
            raise RPCError(RPC_INVALID_PARAMETER, "need 0 <= depth <= height and new_blocks >= 1")
        payout = payout_script(address) if address is not None else self.wallet.new_key().script
        old_tip = self.chain.tip.hash
        fork_height = self.chain.height - d
        before = self.chain.active[fork_height + 1 :]
        hashes = self.node.reorg(d, n, payout)
        return {
            "fork_height": fork_height,
            "old_tip": views.hexhash(old_tip),
            "new_blocks": [views.hexhash(h) for h in hashes],
            "disconnected": [views.hexhash(h) for h in before if not self.chain.in_active(h)],
            "tip": views.hexhash(self.chain.tip.hash),
            "height": self.chain.height,
        }
