"""The chain: the kernel's verdicts, and what bitcoind knows beside them.

libbitcoinkernel validates every block and picks the active chain; this module keeps what
its C API does not expose (see `kernel.py`): every block it accepted (all branches, in
arrival order), the UTXO set with undo data, a transaction index (bitcoind with
`-txindex=1`) and an index of outputs by script for the wallet. After every kernel call
`_sync` walks the kernel's active chain against ours from the top, disconnects what left
it and connects what joined it, so a reorg inside the kernel and a rebuild look the same.

`invalidateblock` has no kernel call: the block is marked invalid and a fresh
ChainstateManager is fed every known block in arrival order except the invalid subtree.
The kernel validates each block again and picks the best remaining chain itself (another
branch, if one has more work); `reconsiderblock` clears the mark and rebuilds the same way.
With a data directory the archive of blocks (`blocks.dat`) and the marks
(`invalidated.json`) are kept on disk, and a restart is such a replay: every block is
validated again by the kernel.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import struct
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitcoin.core import CBlock

from tssnode.regtest import blocks, scripts
from tssnode.regtest.errors import RegtestError
from tssnode.regtest.kernel import Checked, Kernel

log = logging.getLogger("tssnode.regtest.chain")

OutPoint = tuple[bytes, int]  # (txid in internal byte order, output index)

#: kernel results that are one of Core's reject reasons exactly
_REASONS = {
    "MISSING_PREV": "prev-blk-not-found",
    "INVALID_PREV": "bad-prevblk",
    "CACHED_INVALID": "duplicate-invalid",
    "TIME_FUTURE": "time-too-new",
}
#: kernel results that condemn the block itself (Core marks it failed)
_FATAL = {"CONSENSUS", "INVALID_HEADER", "INVALID_PREV", "CACHED_INVALID"}


class BlockDecodeError(ValueError):
    """The bytes are not a block."""


class DataDirLocked(RegtestError):
    """Another process holds the data directory."""


@dataclass(frozen=True)
class Coin:
    """An unspent output: value in satoshis, scriptPubKey, height of its block."""

    value: int
    script: bytes
    height: int
    coinbase: bool


@dataclass(frozen=True)
class BlockRecord:
    """A block the kernel accepted, with the header fields the RPC shows."""

    hash: bytes
    prev: bytes
    height: int
    time: int
    bits: int
    version: int
    nonce: int
    merkle: bytes
    raw: bytes
    ntx: int
    size: int
    stripped_size: int
    chainwork: int

    @property
    def weight(self) -> int:
        return self.stripped_size * 3 + self.size

    @property
    def header(self) -> bytes:
        return self.raw[:80]


@dataclass
class Delta:
    """How the active chain changed: blocks that left it (tip first) and that joined it
    (oldest first), each as (hash, python-bitcoinlib CBlock)."""

    disconnected: list[tuple[bytes, Any]] = field(default_factory=list)
    connected: list[tuple[bytes, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.disconnected or self.connected)


@dataclass(frozen=True)
class SubmitResult:
    """Core's `submitblock` outcome: accepted (connected), inconclusive (stored on a branch
    with less work), duplicate, duplicate-invalid, or rejected with the kernel's reason."""

    status: str
    block_hash: bytes
    reason: str | None = None
    delta: Delta = field(default_factory=Delta)
    checked: Checked | None = None

    @property
    def accepted(self) -> bool:
        return self.status in ("accepted", "inconclusive")


def _lock(network_dir: Path) -> Any:
    """Hold `.lock` in the data directory for as long as the chain is open (bitcoind's
    lock): a second service on the same directory would replay and rewrite it."""
    handle = (network_dir / ".lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise DataDirLocked(
            f"cannot lock {network_dir}: another tssnode regtest is probably using it"
        ) from None
    return handle


def _reason(checked: Checked) -> str:
    return _REASONS.get(checked.result, f"rejected by the kernel: {checked.reason}")


class Chain:
    """The kernel, the block archive and the indexes; `network_dir` is `<datadir>/regtest`
    (None: everything in memory, block files of the kernel in a temporary directory)."""

    def __init__(self, network_dir: Path | None) -> None:
        self.network_dir = network_dir
        self._lock_file: Any = None
        if network_dir is not None:
            network_dir.mkdir(parents=True, exist_ok=True)
            self._lock_file = _lock(network_dir)
            self._kernel_root = network_dir / "kernel"
            shutil.rmtree(self._kernel_root, ignore_errors=True)
            self._kernel_root.mkdir()
            self._scratch: tempfile.TemporaryDirectory[str] | None = None
        else:
            self._scratch = tempfile.TemporaryDirectory(prefix="tssnode-regtest-")
            self._kernel_root = Path(self._scratch.name)
        self._kernel_dir = Path(tempfile.mkdtemp(prefix="kernel-", dir=self._kernel_root))
        self.kernel = Kernel(self._kernel_dir)
        self.records: dict[bytes, BlockRecord] = {}
        self.children: dict[bytes, list[bytes]] = {}
        self.arrival: list[bytes] = []  # every accepted block but the genesis, in order
        self.invalidated: set[bytes] = set()  # invalidateblock marks
        self.kernel_invalid: dict[bytes, str] = {}  # the kernel's rejections, with reason
        self.active: list[bytes] = []
        self.utxo: dict[OutPoint, Coin] = {}
        self.undo: dict[bytes, list[tuple[OutPoint, Coin]]] = {}
        self.txindex: dict[bytes, tuple[bytes, int]] = {}
        self.by_script: dict[bytes, set[OutPoint]] = {}
        self._parsed: OrderedDict[bytes, Any] = OrderedDict()
        self._archive: Any = None
        genesis = self._record(self.kernel.read_block(0), None)
        self.genesis = genesis.hash
        self.active.append(genesis.hash)
        if network_dir is not None:
            self._load(network_dir)

    # -- persistence ---------------------------------------------------------------------------

    def _load(self, network_dir: Path) -> None:
        marks = network_dir / "invalidated.json"
        if marks.exists():
            self.invalidated = {bytes.fromhex(h)[::-1] for h in json.loads(marks.read_text())}
        path = network_dir / "blocks.dat"
        raws: list[bytes] = []
        if path.exists():
            data = path.read_bytes()
            pos = 0
            while pos + 4 <= len(data):
                (size,) = struct.unpack_from("<I", data, pos)
                if pos + 4 + size > len(data):
                    break
                raws.append(data[pos + 4 : pos + 4 + size])
                pos += 4 + size
            if pos != len(data):  # a write cut short by a crash: drop its tail
                log.warning("blocks.dat: dropping %d bytes of a partial record", len(data) - pos)
                with path.open("r+b") as f:
                    f.truncate(pos)
        started = time.monotonic()
        for raw in raws:
            block_hash = blocks.sha256d(raw[:80])
            if block_hash in self.records:
                continue
            if raw[4:36] not in self.records:  # never archived so: parents come first
                log.warning(
                    "blocks.dat: skipping %s, its parent is unknown", block_hash[::-1].hex()
                )
                continue
            self._record(raw, block_hash)
            self.arrival.append(block_hash)
        self._archive = path.open("ab")
        self._replay(self.kernel)
        self._sync()
        log.info(
            "replayed %d blocks through the kernel in %.2f s: height %d",
            len(raws), time.monotonic() - started, self.height,
        )  # fmt: skip

    def _save_marks(self) -> None:
        if self.network_dir is not None:
            marks = sorted(h[::-1].hex() for h in self.invalidated)
            tmp = self.network_dir / "invalidated.json.tmp"
            tmp.write_text(json.dumps(marks))
            os.replace(tmp, self.network_dir / "invalidated.json")

    def _archive_block(self, raw: bytes) -> None:
        if self._archive is not None:
            self._archive.write(struct.pack("<I", len(raw)) + raw)
            self._archive.flush()

    def close(self) -> None:
        self.kernel.close()
        shutil.rmtree(self._kernel_dir, ignore_errors=True)
        if self._archive is not None:
            self._archive.close()
            self._archive = None
        if self._scratch is not None:
            self._scratch.cleanup()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None

    # -- records and lookups -------------------------------------------------------------------

    def _record(self, raw: bytes, block_hash: bytes | None) -> BlockRecord:
        block = self.parse(raw)
        block_hash = block_hash or bytes(block.GetHash())
        prev = bytes(block.hashPrevBlock)
        parent = self.records.get(prev)
        height = parent.height + 1 if parent else 0
        chainwork = (parent.chainwork if parent else 0) + blocks.work(block.nBits)
        stripped = len(block.serialize(params={"include_witness": False}))
        record = BlockRecord(
            block_hash, prev, height, int(block.nTime), int(block.nBits), int(block.nVersion),
            int(block.nNonce), bytes(block.hashMerkleRoot), raw, len(block.vtx), len(raw),
            stripped, chainwork,
        )  # fmt: skip
        self.records[block_hash] = record
        if parent is not None:
            self.children.setdefault(prev, []).append(block_hash)
        self._cache(block_hash, block)
        return record

    @staticmethod
    def parse(raw: bytes) -> Any:
        try:
            return CBlock.deserialize(raw)
        except Exception as exc:  # python-bitcoinlib raises several kinds
            raise BlockDecodeError(str(exc)) from None

    def _cache(self, block_hash: bytes, block: Any) -> None:
        self._parsed[block_hash] = block
        self._parsed.move_to_end(block_hash)
        while len(self._parsed) > 512:
            self._parsed.popitem(last=False)

    def block(self, block_hash: bytes) -> Any:
        """The python-bitcoinlib CBlock of a known block."""
        block = self._parsed.get(block_hash)
        if block is None:
            block = self.parse(self.records[block_hash].raw)
            self._cache(block_hash, block)
        return block

    def spent_coins(self, block_hash: bytes) -> list[list[Coin]] | None:
        """The coins each non-coinbase transaction of a block spent (its undo data), if the
        block was ever connected."""
        spent = self.undo.get(block_hash)
        if spent is None:
            return None
        out: list[list[Coin]] = []
        pos = 0
        for tx in self.block(block_hash).vtx[1:]:
            out.append([coin for _, coin in spent[pos : pos + len(tx.vin)]])
            pos += len(tx.vin)
        return out

    @property
    def height(self) -> int:
        return len(self.active) - 1

    @property
    def tip(self) -> BlockRecord:
        return self.records[self.active[-1]]

    def in_active(self, block_hash: bytes) -> bool:
        record = self.records.get(block_hash)
        return (
            record is not None
            and self.height >= record.height
            and (self.active[record.height] == block_hash)
        )

    def median_time_past(self, block_hash: bytes) -> int:
        """`GetMedianTimePast`: the median time of this block and its ten ancestors."""
        times: list[int] = []
        record: BlockRecord | None = self.records[block_hash]
        while record is not None and len(times) < 11:
            times.append(record.time)
            record = self.records.get(record.prev) if record.height else None
        times.sort()
        return times[len(times) // 2]

    def next_block_time(self, parent: bytes) -> int:
        """Core's miner: max(MTP + 1, now)."""
        return max(self.median_time_past(parent) + 1, int(time.time()))

    def is_invalid(self, block_hash: bytes) -> bool:
        """Marked invalid, rejected by the kernel, or descending from either."""
        record = self.records.get(block_hash)
        while record is not None:
            if record.hash in self.invalidated or record.hash in self.kernel_invalid:
                return True
            record = self.records.get(record.prev) if record.height else None
        return block_hash in self.kernel_invalid

    def _subtree(self, roots: Iterable[bytes]) -> set[bytes]:
        out: set[bytes] = set()
        stack = list(roots)
        while stack:
            h = stack.pop()
            if h not in out:
                out.add(h)
                stack.extend(self.children.get(h, ()))
        return out

    def best_header_height(self) -> int:
        """The height of the highest known block outside the invalid subtrees."""
        invalid = self._subtree([*self.invalidated, *self.kernel_invalid])
        return max(r.height for h, r in self.records.items() if h not in invalid)

    def tips(self) -> list[bytes]:
        """Blocks without children: Core's `getchaintips`."""
        return [h for h in self.records if not self.children.get(h)]

    # -- validation ----------------------------------------------------------------------------

    def submit(self, raw: bytes) -> SubmitResult:
        """Give a block to the kernel and report what it decided, from its callbacks."""
        block = self.parse(raw)
        block_hash = bytes(block.GetHash())
        prev = bytes(block.hashPrevBlock)
        if block_hash in self.records:
            status = "duplicate-invalid" if self.is_invalid(block_hash) else "duplicate"
            return SubmitResult(status, block_hash, status)
        if block_hash in self.kernel_invalid:
            return SubmitResult("duplicate-invalid", block_hash, "duplicate-invalid")
        if prev in self.records and self.is_invalid(prev):
            return SubmitResult("rejected", block_hash, "bad-prevblk")
        processed = self.kernel.process_block(raw, block_hash)
        for checked in processed.checked:
            if not checked.valid and checked.result in _FATAL:
                self.kernel_invalid[checked.block_hash] = _reason(checked)
        verdict = processed.verdict()
        if verdict is not None and not verdict.valid:
            return SubmitResult("rejected", block_hash, _reason(verdict), self._sync(), verdict)
        if processed.failed:  # raised without a verdict on this block
            bad = processed.first_invalid
            reason = _reason(bad) if bad else "rejected by the kernel: process_block failed"
            return SubmitResult("rejected", block_hash, reason, self._sync(), bad)
        if not processed.new:
            return SubmitResult("duplicate", block_hash, "duplicate", self._sync(), verdict)
        self._record(raw, block_hash)
        self.arrival.append(block_hash)
        self._archive_block(raw)
        delta = self._sync()
        status = "accepted" if self.in_active(block_hash) else "inconclusive"
        return SubmitResult(status, block_hash, None, delta, verdict)

    def _sync(self) -> Delta:
        """Make our active chain, UTXO set and indexes the kernel's again."""
        delta = Delta()
        kernel_height = self.kernel.height
        fork = min(self.height, kernel_height)
        while fork > 0 and self.active[fork] != self.kernel.hash_at(fork):
            fork -= 1
        while self.height > fork:
            block_hash = self.active[-1]
            delta.disconnected.append((block_hash, self._disconnect(block_hash)))
        for block_hash in self.kernel.active_hashes(fork + 1):
            delta.connected.append((block_hash, self._connect(block_hash)))
        if delta.disconnected:
            log.info(
                "reorg: %d block(s) disconnected, %d connected, tip %s at %d",
                len(delta.disconnected), len(delta.connected), self.tip.hash[::-1].hex(),
                self.height,
            )  # fmt: skip
        return delta

    def _index(self, op: OutPoint, coin: Coin) -> None:
        self.utxo[op] = coin
        self.by_script.setdefault(coin.script, set()).add(op)

    def _unindex(self, op: OutPoint) -> Coin:
        coin = self.utxo.pop(op)
        ops = self.by_script[coin.script]
        ops.discard(op)
        if not ops:
            del self.by_script[coin.script]
        return coin

    def _connect(self, block_hash: bytes) -> Any:
        record = self.records[block_hash]
        block = self.block(block_hash)
        spent: list[tuple[OutPoint, Coin]] = []
        for index, tx in enumerate(block.vtx):
            txid = bytes(tx.GetTxid())
            if index:
                for txin in tx.vin:
                    op = (bytes(txin.prevout.hash), int(txin.prevout.n))
                    spent.append((op, self._unindex(op)))
            for n, out in enumerate(tx.vout):
                spk = bytes(out.scriptPubKey)
                if not scripts.is_unspendable(spk):
                    self._index((txid, n), Coin(int(out.nValue), spk, record.height, index == 0))
            self.txindex[txid] = (block_hash, index)
        self.undo[block_hash] = spent
        self.active.append(block_hash)
        return block

    def _disconnect(self, block_hash: bytes) -> Any:
        block = self.block(block_hash)
        for tx in reversed(block.vtx):
            txid = bytes(tx.GetTxid())
            for n in range(len(tx.vout)):
                if (txid, n) in self.utxo:
                    self._unindex((txid, n))
            self.txindex.pop(txid, None)
        for op, coin in reversed(self.undo[block_hash]):  # kept: getblock shows fees
            self._index(op, coin)
        self.active.pop()
        return block

    # -- invalidateblock / reconsiderblock -------------------------------------------------------

    def _replay(self, kernel: Kernel) -> None:
        """Feed every known block outside the invalid subtrees to `kernel`, in arrival order."""
        excluded = self._subtree([*self.invalidated, *self.kernel_invalid])
        for block_hash in self.arrival:
            if block_hash in excluded:
                continue
            processed = kernel.process_block(self.records[block_hash].raw, block_hash)
            for checked in processed.checked:
                if not checked.valid and checked.result in _FATAL:
                    log.warning(
                        "replay: the kernel rejects %s (%s)",
                        checked.block_hash[::-1].hex(), checked.reason,
                    )  # fmt: skip
                    self.kernel_invalid[checked.block_hash] = _reason(checked)
                    excluded |= self._subtree([checked.block_hash])

    def _rebuild(self) -> Delta:
        new_dir = Path(tempfile.mkdtemp(prefix="kernel-", dir=self._kernel_root))
        kernel = Kernel(new_dir)
        self._replay(kernel)
        old, old_dir = self.kernel, self._kernel_dir
        self.kernel, self._kernel_dir = kernel, new_dir
        old.close()
        shutil.rmtree(old_dir, ignore_errors=True)
        return self._sync()

    def invalidate(self, block_hash: bytes) -> Delta:
        """Mark a known block (and so its descendants) invalid; the kernel then picks the
        best chain among the rest."""
        self.invalidated.add(block_hash)
        self._save_marks()
        return self._rebuild()

    def reconsider(self, block_hash: bytes) -> Delta:
        """Clear the marks on this block, its ancestors and its descendants."""
        related = self._subtree([block_hash])
        record: BlockRecord | None = self.records[block_hash]
        while record is not None:
            related.add(record.hash)
            record = self.records.get(record.prev) if record.height else None
        self.invalidated -= related
        for h in related:
            self.kernel_invalid.pop(h, None)
        self._save_marks()
        return self._rebuild()

    # -- building --------------------------------------------------------------------------------

    def build_on(
        self,
        parent: bytes,
        payout: bytes,
        txs: list[Any] | tuple[Any, ...] = (),
        fees: int = 0,
        *,
        coinbase_value: int | None = None,
    ) -> blocks.Built:
        record = self.records[parent]
        return blocks.build(
            parent, record.height + 1, self.next_block_time(parent), payout, txs, fees,
            coinbase_value=coinbase_value,
        )  # fmt: skip
