"""The persistent chain: genesis, certified blocks, the transaction index and the state.

Executing a committed block writes, in one synced batch, the block record (block and
commit certificate) by height, its hash index, the index of its transactions, the ledger
state entries it changed and the new tip. A crash therefore leaves the chain at the old
tip or the new one, never between. Blocks are kept for good: any node can serve the
chain from genesis, and a late joiner verifies every block's certificate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tssnode import failpoints
from tssnode.crypto.encoding import Wire, wire
from tssnode.errors import EncodingError
from tssnode.ledger.app import AppFactory
from tssnode.ledger.blocks import (
    Block,
    BlockRecord,
    CommitCertificate,
    execute,
    primary_of,
    verify_record,
)
from tssnode.ledger.errors import InvalidBlock, InvalidGenesis
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.messages import Batch
from tssnode.ledger.state import LedgerState
from tssnode.store import layout
from tssnode.store.db import Batch as StoreBatch
from tssnode.store.db import KeyValueStore
from tssnode.store.errors import StoreCorrupt


@wire("tssnode.ledger.tip/1")
@dataclass(frozen=True)
class Tip(Wire):
    height: int
    block_hash: bytes


@wire("tssnode.ledger.block-note/1")
@dataclass(frozen=True)
class BlockNote(Wire):
    """This node's own note on a block, kept beside it and never part of it (so never
    agreed on): the wall-clock time it committed the block, in milliseconds since the
    epoch, and the milliseconds from its first message about that sequence number to the
    commit (None for a block fetched by state transfer, which this node did not order)."""

    committed_ms: int
    latency_ms: int | None


class Chain:
    """The chain of one node, in its store."""

    def __init__(self, store: KeyValueStore, genesis: Genesis, apps: Sequence[AppFactory]) -> None:
        self.store = store
        self.genesis = genesis
        stored = store.get(layout.meta("genesis"))
        if stored is None:
            self.state = LedgerState.from_genesis(genesis, apps)
            self.tip = Tip(0, genesis.chain_id)
            with store.batch() as b:
                b.put(layout.meta("genesis"), genesis.to_bytes())
                b.put(layout.meta("tip"), self.tip.to_bytes())
                for key, value in self.state.entries().items():
                    b.put(key, value)
            return
        if stored != genesis.to_bytes():
            raise InvalidGenesis("the data directory holds a different chain's genesis")
        try:
            self.tip = Tip.from_bytes(store.get(layout.meta("tip")) or b"")
            entries = dict(store.iterate(layout.STATE))
            self.state = LedgerState.from_entries(genesis, entries, apps)
        except (EncodingError, KeyError) as exc:
            raise StoreCorrupt("the stored ledger state is unreadable") from exc
        if self.state.height != self.tip.height:
            raise StoreCorrupt("the stored state and tip disagree")

    @staticmethod
    def stored_genesis(store: KeyValueStore) -> Genesis | None:
        raw = store.get(layout.meta("genesis"))
        return None if raw is None else Genesis.from_bytes(raw)

    @property
    def height(self) -> int:
        return self.tip.height

    @property
    def chain_id(self) -> bytes:
        return self.genesis.chain_id

    def _write(
        self,
        b: StoreBatch,
        block: Block,
        cert: CommitCertificate,
        proposer: bytes,
        changes: dict[bytes, bytes | None],
    ) -> None:
        b.put(layout.block(block.height), BlockRecord(block, cert, proposer).to_bytes())
        b.put(layout.block_by_hash(block.hash), layout.u64(block.height))
        rejected = {i for i, _ in block.rejected}  # only applied transactions are indexed
        for i, raw in enumerate(block.batch.txs):
            if i not in rejected:
                # SignedTx.hash is SHA-256 of its (canonical) encoding, which `raw` is.
                tx_hash = hashlib.sha256(raw).digest()
                b.put(layout.tx(tx_hash), layout.u64(block.height) + layout.u32(i))
        for key, value in changes.items():
            if value is None:
                b.delete(key)
            else:
                b.put(key, value)
        self.tip = Tip(block.height, block.hash)
        b.put(layout.meta("tip"), self.tip.to_bytes())

    def execute(
        self,
        view: int,
        batch: Batch,
        cert: CommitCertificate,
        extra: StoreBatch | None = None,
        note: BlockNote | None = None,
    ) -> Block:
        """Execute a batch this node saw committed and store the block (in `extra`, if
        given, so the caller's own writes go in the same atomic batch), with `note`."""
        if cert.seq != self.height + 1 or cert.digest != batch.digest:
            raise InvalidBlock("the certificate does not name the next block's batch")
        proposer = primary_of(self.state.config_for(cert.seq), view)
        block, changes = execute(self.state, self.tip.block_hash, batch)
        b = self.store.batch() if extra is None else extra
        self._write(b, block, cert, proposer, changes)
        if note is not None:
            b.put(layout.block_note(block.height), note.to_bytes())
        if extra is None:
            failpoints.hit("block.before-commit")
            b.commit()
            failpoints.hit("block.committed")
        return block

    def adopt(self, records: list[BlockRecord], at_ms: int | None = None) -> list[Block]:
        """Verify fetched blocks (certificates and re-execution) and store them all (noted
        as committed at `at_ms`, if given); on any failure nothing is stored and the state
        is unchanged."""
        trial = self.state.copy()
        prev = self.tip.block_hash
        done: list[tuple[Block, BlockRecord, dict[bytes, bytes | None]]] = []
        for rec in records:
            block, changes = verify_record(trial, prev, rec)
            done.append((block, rec, changes))
            prev = block.hash
        with self.store.batch() as b:
            for block, rec, changes in done:
                self._write(b, block, rec.certificate, rec.proposer, changes)
                if at_ms is not None:
                    b.put(layout.block_note(block.height), BlockNote(at_ms, None).to_bytes())
        self.state = trial
        return [d[0] for d in done]

    def record(self, height: int) -> BlockRecord | None:
        raw = self.store.get(layout.block(height))
        return None if raw is None else BlockRecord.from_bytes(raw)

    def records(self, start: int, count: int) -> Iterator[BlockRecord]:
        for _, raw in self.store.iterate(layout.BLOCK, start=layout.block(max(start, 1))):
            if count <= 0:
                return
            count -= 1
            yield BlockRecord.from_bytes(raw)

    def note(self, height: int) -> BlockNote | None:
        """This node's note on the block at `height` (None if it kept none)."""
        raw = self.store.get(layout.block_note(height))
        if raw is None:
            return None
        try:
            return BlockNote.from_bytes(raw)
        except EncodingError:
            return None  # a note is informational: a damaged one is no note

    def block_height(self, block_hash: bytes) -> int | None:
        raw = self.store.get(layout.block_by_hash(block_hash))
        return None if raw is None else layout.read_u64(raw)

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        raw = self.store.get(layout.tx(tx_hash))
        return None if raw is None else (layout.read_u64(raw), layout.read_u32(raw, 8))


def verify_chain(
    genesis: Genesis, records: list[BlockRecord], apps: Sequence[AppFactory]
) -> LedgerState:
    """Verify a chain from genesis (every certificate, every re-executed block, with the
    applications `apps`); the final state."""
    state = LedgerState.from_genesis(genesis, apps)
    prev = genesis.chain_id
    for rec in records:
        block, _ = verify_record(state, prev, rec)
        prev = block.hash
    return state
