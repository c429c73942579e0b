"""One regtest node: the chain, its mempool and the demo wallet, behind one lock (Core's
`cs_main`). The RPC methods (`methods.py`) call it from worker threads; every kernel call
happens under the lock, so the kernel sees one caller at a time.

It also mines: a block template from the mempool (`Mempool.select`), built on the tip
(`blocks.build`), given to the kernel like any submitted block, and the mempool follows
whatever the kernel made of it. With a data directory the mempool is saved on shutdown
(`mempool.json`) and re-admitted at the next start, as bitcoind's `-persistmempool`.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tssnode.regtest.chain import Chain, SubmitResult
from tssnode.regtest.errors import RPC_MISC_ERROR, RPCError, TxRejected
from tssnode.regtest.mempool import MIN_RELAY_FEE, Mempool
from tssnode.regtest.txs import Tx
from tssnode.regtest.wallet import Wallet

log = logging.getLogger("tssnode.regtest")

DEFAULT_FALLBACK_FEE = 20_000  # sat/kvB: 0.0002 BTC/kvB, the -fallbackfee regtest setups use


@dataclass(frozen=True)
class Settings:
    """What the command line sets."""

    datadir: Path | None = None
    fallback_fee: int = DEFAULT_FALLBACK_FEE


class RegtestNode:
    """The state every RPC method works on; hold `lock` while using it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.RLock()
        self.started = time.time()
        self.network_dir = settings.datadir / "regtest" if settings.datadir else None
        self.chain = Chain(self.network_dir)
        self.mempool = Mempool(self.chain)
        wallet_path = self.network_dir / "wallet.json" if self.network_dir else None
        self.wallet = Wallet(wallet_path)
        self._load_mempool()

    # -- blocks --------------------------------------------------------------------------------

    def submit_block(self, raw: bytes) -> SubmitResult:
        result = self.chain.submit(raw)
        self.mempool.update(result.delta)
        return result

    def mine(
        self, payout: bytes, parent: bytes | None = None, txs: list[Tx] | None = None
    ) -> bytes:
        """Build one block on `parent` (default: the tip) with `txs` (default: the mempool's
        best), have the kernel validate it; its hash, or RPCError with the kernel's reason."""
        parent = parent or self.chain.tip.hash
        if txs is None:
            txs, fees = self.mempool.select()
        else:
            fees = sum(
                self.mempool.entries[t.txid].fee for t in txs if t.txid in self.mempool.entries
            )
        built = self.chain.build_on(parent, payout, [t.obj for t in txs], fees)
        result = self.submit_block(built.raw)
        if not result.accepted:
            raise RPCError(RPC_MISC_ERROR, f"TestBlockValidity failed: {result.reason}")
        return built.hash

    def generate(self, count: int, payout: bytes) -> list[bytes]:
        return [self.mine(payout) for _ in range(count)]

    def invalidate(self, block_hash: bytes) -> None:
        self.mempool.update(self.chain.invalidate(block_hash))

    def reconsider(self, block_hash: bytes) -> None:
        self.mempool.update(self.chain.reconsider(block_hash))

    def reorg(self, depth: int, new_blocks: int, payout: bytes) -> list[bytes]:
        """A competing branch forking `depth` blocks below the tip, `new_blocks` long, fed
        to the kernel block by block (empty blocks: the disconnected transactions return
        to the mempool). With new_blocks > depth it has more work and the kernel reorgs."""
        fork = self.chain.active[self.chain.height - depth]
        hashes: list[bytes] = []
        parent = fork
        for _ in range(new_blocks):
            built = self.chain.build_on(parent, payout)
            result = self.submit_block(built.raw)
            if not result.accepted:
                raise RPCError(RPC_MISC_ERROR, f"block rejected: {result.reason}")
            hashes.append(built.hash)
            parent = built.hash
        return hashes

    # -- fees ----------------------------------------------------------------------------------

    def feerate_estimate(self, target: int) -> int:
        """Fee rates (sat/kvB) of the last 10 blocks' transactions and of the mempool: the
        90th percentile for a target of 1-2 blocks, 75th up to 6, median up to 24, 25th
        beyond; at least the minimum relay fee; the fallback fee with no data."""
        samples: list[int] = []
        chain = self.chain
        for block_hash in chain.active[-10:]:
            spent = chain.spent_coins(block_hash)
            if spent is None:
                continue
            for obj, coins in zip(chain.block(block_hash).vtx[1:], spent, strict=True):
                tx = Tx.from_obj(obj)
                fee = sum(c.value for c in coins) - sum(o.value for o in tx.vout)
                samples.append(fee * 1000 // tx.vsize)
        samples += [e.feerate for e in self.mempool.entries.values()]
        if not samples:
            return self.settings.fallback_fee
        pct = 90 if target <= 2 else 75 if target <= 6 else 50 if target <= 24 else 25
        if len(samples) == 1:
            rate = samples[0]
        else:
            cuts = statistics.quantiles(sorted(samples), n=100, method="inclusive")
            rate = int(cuts[pct - 1])
        return max(rate, MIN_RELAY_FEE)

    # -- mempool persistence -------------------------------------------------------------------

    def _load_mempool(self) -> None:
        if self.network_dir is None:
            return
        path = self.network_dir / "mempool.json"
        if not path.exists():
            return
        loaded = 0
        for raw in json.loads(path.read_text()):
            try:
                self.mempool.accept(Tx.from_hex(raw))
                loaded += 1
            except (TxRejected, ValueError) as exc:
                log.info("mempool.json: a transaction is not re-admitted: %s", exc)
        log.info("mempool.json: %d transaction(s) re-admitted", loaded)

    def close(self) -> None:
        with self.lock:
            if self.network_dir is not None:
                txs = [e.tx.raw.hex() for e in self.mempool.entries.values()]
                tmp = self.network_dir / "mempool.json.tmp"
                tmp.write_text(json.dumps(txs))
                os.replace(tmp, self.network_dir / "mempool.json")
            self.chain.close()
