"""A small typed wrapper over py-bitcoinkernel (`pbk`, alpha): Bitcoin Core's validation
engine, libbitcoinkernel, which decides every block and every input script here.

One of the two modules that import `pbk`; the other, `tssnode.bridge.kernel`, holds the
script check `verify_inputs` delegates to, so that the bridge's releases and this chain's
mempool are judged by the same code. What it relies on, checked with pbk 0.1.0a5:

- `ChainstateManager.process_block` says nothing reliable about validity: it returned True
  ("new block") for a block the kernel rejected as INVALID/CONSENSUS (a coinbase paying
  too much) and raises for others (a wrong BIP-34 height). The verdict is the
  `block_checked` validation callback, fired during the call, in this thread; the tip moved
  iff `block_connected` fired. No `block_checked` for a block means it was stored without
  being connected (a branch with less work: Core's "inconclusive").
- The chainstate and block index live in memory; block files go to `blocks_dir`.
- Script verification (`tssnode.bridge.kernel`) takes consensus flags only; the C API
  asserts, and so aborts the whole process, on any policy bit such as LOW_S.
- There is no invalidateblock, no UTXO lookup and no block-tree walk in this API:
  `chain.Chain` keeps those itself and replays blocks into a fresh kernel instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# pbk 0.1.0a5 ships no py.typed marker: its objects are Any here, typed values leave this module
import pbk  # type: ignore[import-untyped]

from tssnode.bridge.kernel import first_script_failure


@dataclass(frozen=True)
class Checked:
    """The kernel's `block_checked` verdict on one block."""

    block_hash: bytes
    valid: bool
    mode: str  # VALID | INVALID | INTERNAL_ERROR
    result: str  # UNSET | CONSENSUS | CACHED_INVALID | INVALID_HEADER | MUTATED | ...

    @property
    def reason(self) -> str:
        return f"{self.mode}/{self.result}"


@dataclass
class Processed:
    """What one `process_block` call did, from the callbacks it fired."""

    block_hash: bytes
    new: bool = False
    failed: bool = False  # process_block raised (ProcessBlockException)
    checked: list[Checked] = field(default_factory=list)
    connected: list[bytes] = field(default_factory=list)
    disconnected: list[bytes] = field(default_factory=list)

    def verdict(self) -> Checked | None:
        """The kernel's verdict on this block itself, if it gave one."""
        for c in self.checked:
            if c.block_hash == self.block_hash:
                return c
        return None

    @property
    def first_invalid(self) -> Checked | None:
        return next((c for c in self.checked if not c.valid), None)


class Kernel:
    """One regtest ChainstateManager with in-memory databases and a lock around it."""

    def __init__(self, blocks_dir: Path, worker_threads: int = 0) -> None:
        self._lock = threading.RLock()
        self._current: Processed | None = None
        self._callbacks = pbk.ValidationInterfaceCallbacks(
            block_checked=self._on_checked,
            block_connected=self._on_connected,
            block_disconnected=self._on_disconnected,
        )
        context = pbk.make_context(pbk.ChainType.REGTEST, self._callbacks)
        blocks_dir.mkdir(parents=True, exist_ok=True)
        options = pbk.ChainstateManagerOptions(context, str(blocks_dir), str(blocks_dir / "blocks"))
        options.update_block_tree_db_in_memory(True)
        options.update_chainstate_db_in_memory(True)
        options.set_worker_threads_num(worker_threads)
        self._chainman: Any = pbk.ChainstateManager(options)
        self._context = context

    # -- callbacks (called by the kernel, in the thread that called process_block) ----------

    def _on_checked(self, _user: object, block: Any, state: Any) -> None:
        if self._current is None:
            return
        mode = state.validation_mode
        self._current.checked.append(
            Checked(
                bytes(block.block_hash),
                mode == pbk.ValidationMode.VALID,
                str(mode.name),
                str(state.block_validation_result.name),
            )
        )

    def _on_connected(self, _user: object, block: Any, _entry: Any) -> None:
        if self._current is not None:
            self._current.connected.append(bytes(block.block_hash))

    def _on_disconnected(self, _user: object, block: Any, _entry: Any) -> None:
        if self._current is not None:
            self._current.disconnected.append(bytes(block.block_hash))

    # -- blocks --------------------------------------------------------------------------------

    def process_block(self, raw: bytes, block_hash: bytes) -> Processed:
        """Hand a serialized block to the kernel; the callbacks say what became of it."""
        with self._lock:
            result = self._current = Processed(block_hash)
            try:
                result.new = bool(self._chainman.process_block(pbk.Block(raw)))
            except pbk.ProcessBlockException:
                result.failed = True
            except RuntimeError:  # pbk.Block could not parse it
                result.failed = True
            finally:
                self._current = None
            return result

    @property
    def height(self) -> int:
        with self._lock:
            return int(self._chainman.get_active_chain().height)

    def hash_at(self, height: int) -> bytes:
        """The active chain's block hash at `height` (internal byte order)."""
        with self._lock:
            chain = self._chainman.get_active_chain()
            return bytes(chain.block_tree_entries[height].block_hash)

    def active_hashes(self, start: int = 0) -> list[bytes]:
        with self._lock:
            chain = self._chainman.get_active_chain()
            entries = chain.block_tree_entries
            return [bytes(entries[h].block_hash) for h in range(start, chain.height + 1)]

    def read_block(self, height: int) -> bytes:
        """The serialized block at `height` of the active chain (the genesis block, mainly)."""
        with self._lock:
            entry = self._chainman.get_active_chain().block_tree_entries[height]
            return bytes(self._chainman.blocks[entry])

    # -- scripts -------------------------------------------------------------------------------

    def verify_inputs(self, tx_raw: bytes, spent: list[tuple[int, bytes]]) -> int | None:
        """Check every input's script against the output it spends, (amount, scriptPubKey)
        in input order, with all consensus flags; the index of the first input the kernel
        rejects, or None if it accepts them all (`tssnode.bridge.kernel`)."""
        failure = first_script_failure(tx_raw, spent)
        return None if failure is None else failure.index

    def close(self) -> None:
        """Drop the ChainstateManager (its destructor flushes and frees the kernel)."""
        with self._lock:
            self._chainman = None
