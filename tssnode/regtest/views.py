"""Bitcoin Core's JSON shapes: `TxToUniv`, `blockheaderToJSON`, `blockToJSON`, the
scriptPubKey object and the mempool entry, field for field and in Core's key order.

Hashes are shown in display order (the internal bytes reversed), amounts as exact
`Decimal` BTC (`units.btc`), which `jsonrpc` writes as JSON numbers with 8 decimals.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from tssnode.regtest import addresses, blocks, scripts
from tssnode.regtest.chain import BlockRecord, Chain, Coin
from tssnode.regtest.mempool import Entry, Mempool
from tssnode.regtest.txs import Tx
from tssnode.regtest.units import btc

Json = dict[str, Any]


def hexhash(h: bytes) -> str:
    return h[::-1].hex()


def script_pubkey(spk: bytes) -> Json:
    out: Json = {
        "asm": scripts.asm(spk),
        "desc": addresses.descriptor(spk),
        "hex": spk.hex(),
    }
    address = addresses.from_script(spk)
    if address is not None:
        out["address"] = address
    out["type"] = scripts.classify(spk)
    return out


def tx_json(
    tx: Tx,
    *,
    spent: Sequence[Coin] | None = None,
    fee: int | None = None,
    prevouts: bool = False,
    include_hex: bool = True,
) -> Json:
    """`TxToUniv`: with `spent` (the coins the inputs spend) the fee is shown, and with
    `prevouts` each input's prevout (getblock verbosity 3, getrawtransaction 2)."""
    vin: list[Json] = []
    for index, txin in enumerate(tx.vin):
        item: Json = {}
        if tx.is_coinbase:
            item["coinbase"] = txin.script_sig.hex()
        else:
            item["txid"] = hexhash(txin.prevout[0])
            item["vout"] = txin.prevout[1]
            item["scriptSig"] = {
                "asm": scripts.asm(txin.script_sig, sighash_decode=True),
                "hex": txin.script_sig.hex(),
            }
        if txin.witness:
            item["txinwitness"] = [w.hex() for w in txin.witness]
        if prevouts and spent is not None and not tx.is_coinbase:
            coin = spent[index]
            item["prevout"] = {
                "generated": coin.coinbase,
                "height": coin.height,
                "value": btc(coin.value),
                "scriptPubKey": script_pubkey(coin.script),
            }
        item["sequence"] = txin.sequence
        vin.append(item)
    out: Json = {
        "txid": hexhash(tx.txid),
        "hash": hexhash(tx.wtxid),
        "version": tx.version,
        "size": tx.size,
        "vsize": tx.vsize,
        "weight": tx.weight,
        "locktime": tx.locktime,
        "vin": vin,
        "vout": [
            {"value": btc(out.value), "n": n, "scriptPubKey": script_pubkey(out.script)}
            for n, out in enumerate(tx.vout)
        ],
    }
    if fee is None and spent is not None and not tx.is_coinbase:
        fee = sum(c.value for c in spent) - sum(o.value for o in tx.vout)
    if fee is not None and not tx.is_coinbase:
        out["fee"] = btc(fee)
    if include_hex:
        out["hex"] = tx.raw.hex()
    return out


def header_json(chain: Chain, record: BlockRecord) -> Json:
    """`blockheaderToJSON` (confirmations -1 off the active chain, as Core)."""
    active = chain.in_active(record.hash)
    out: Json = {
        "hash": hexhash(record.hash),
        "confirmations": chain.height - record.height + 1 if active else -1,
        "height": record.height,
        "version": record.version,
        "versionHex": f"{record.version & 0xFFFFFFFF:08x}",
        "merkleroot": hexhash(record.merkle),
        "time": record.time,
        "mediantime": chain.median_time_past(record.hash),
        "nonce": record.nonce,
        "bits": f"{record.bits:08x}",
        "target": f"{blocks.target(record.bits):064x}",
        "difficulty": blocks.difficulty(record.bits),
        "chainwork": f"{record.chainwork:064x}",
        "nTx": record.ntx,
    }
    if record.height:
        out["previousblockhash"] = hexhash(record.prev)
    if active and record.height < chain.height:
        out["nextblockhash"] = hexhash(chain.active[record.height + 1])
    return out


def block_json(chain: Chain, record: BlockRecord, verbosity: int) -> Json:
    """`blockToJSON`: txids (1), decoded transactions with fees (2), and prevouts (3)."""
    out = header_json(chain, record)
    out["strippedsize"] = record.stripped_size
    out["size"] = record.size
    out["weight"] = record.weight
    block = chain.block(record.hash)
    txs = [Tx.from_obj(obj) for obj in block.vtx]
    if verbosity <= 1:
        out["tx"] = [hexhash(tx.txid) for tx in txs]
        return out
    spent = chain.spent_coins(record.hash)
    out["tx"] = [
        tx_json(
            tx,
            spent=spent[i - 1] if spent is not None and i else None,
            prevouts=verbosity >= 3,
        )
        for i, tx in enumerate(txs)
    ]
    return out


def mempool_entry(mempool: Mempool, entry: Entry) -> Json:
    """`entryToJSON`."""
    txid = entry.tx.txid
    ancestors = mempool.ancestors(txid)
    descendants = mempool.descendants(txid)
    e = mempool.entries
    return {
        "vsize": entry.vsize,
        "weight": entry.tx.weight,
        "time": entry.time,
        "height": entry.height,
        "descendantcount": len(descendants) + 1,
        "descendantsize": entry.vsize + sum(e[t].vsize for t in descendants),
        "ancestorcount": len(ancestors) + 1,
        "ancestorsize": entry.vsize + sum(e[t].vsize for t in ancestors),
        "wtxid": hexhash(entry.tx.wtxid),
        "fees": {
            "base": btc(entry.fee),
            "modified": btc(entry.fee),
            "ancestor": btc(entry.fee + sum(e[t].fee for t in ancestors)),
            "descendant": btc(entry.fee + sum(e[t].fee for t in descendants)),
        },
        "depends": sorted(hexhash(t) for t in mempool.parents(txid)),
        "spentby": sorted(hexhash(t) for t in mempool.children(txid)),
        "bip125-replaceable": mempool.replaceable(txid),
        "unbroadcast": False,
    }


def blockchain_info(chain: Chain) -> Json:
    tip = chain.tip
    return {
        "chain": "regtest",
        "blocks": chain.height,
        "headers": chain.best_header_height(),
        "bestblockhash": hexhash(tip.hash),
        "bits": f"{tip.bits:08x}",
        "target": f"{blocks.target(tip.bits):064x}",
        "difficulty": blocks.difficulty(tip.bits),
        "time": tip.time,
        "mediantime": chain.median_time_past(tip.hash),
        "verificationprogress": Decimal(1),
        "initialblockdownload": tip.time < time.time() - 24 * 3600,
        "chainwork": f"{tip.chainwork:064x}",
        "size_on_disk": sum(r.size for r in chain.records.values()),
        "pruned": False,
        "warnings": [],
    }
