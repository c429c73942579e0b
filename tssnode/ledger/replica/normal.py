"""The normal case: requests, proposals, pre-prepare, prepare, commit, execution."""

from __future__ import annotations

import hashlib
import logging

from tssnode import failpoints
from tssnode.ledger.blocks import (
    Block,
    CommitCertificate,
)
from tssnode.ledger.chain import BlockNote
from tssnode.ledger.envelope import Signed, check_signature, verify
from tssnode.ledger.errors import (
    InvalidMessage,
    InvalidTransaction,
)
from tssnode.ledger.messages import (
    KIND_COMMIT,
    KIND_PRE_PREPARE,
    KIND_PREPARE,
    Batch,
    Commit,
    Prepare,
    PreparedProof,
    PrePrepare,
    ProposeFrame,
    RequestFrame,
)
from tssnode.ledger.replica.base import (
    LARGE_REQUEST,
    MAX_BATCH_BYTES,
    MAX_PENDING_BYTES,
    ReplicaBase,
    Slot,
    _tx,
)
from tssnode.ledger.state import quorum

log = logging.getLogger(__name__)


class NormalCase(ReplicaBase):
    """The normal case: requests, proposals, pre-prepare, prepare, commit, execution."""

    # -- requests and proposals ---------------------------------------------------------------

    def _on_request(self, frame: RequestFrame) -> None:
        if len(frame.tx) > MAX_BATCH_BYTES or len(self.pending) >= self.opt.max_pending:
            return
        if len(frame.tx) > LARGE_REQUEST and (
            sum(len(raw) for raw, _ in self.pending.values()) + len(frame.tx) > MAX_PENDING_BYTES
        ):
            self._drop("the pending requests are at their byte bound")
            return
        tx = _tx(frame.tx)
        if tx.hash in self.pending:
            return
        self.chain.state.check(tx)
        self.pending[tx.hash] = (frame.tx, tx.expiry)
        self._propose()

    def _prune_pending(self) -> None:
        """Drop requests that can no longer enter a block (made invalid by what was
        executed since they arrived), so that nobody changes view waiting for them."""
        for t, (raw, _) in list(self.pending.items()):
            try:
                self.chain.state.check(_tx(raw))
            except InvalidTransaction:
                del self.pending[t]
                self.proposed.discard(t)

    def _propose(self) -> None:
        if not (self.active and self.is_primary) or self.halted:
            return
        while self.next_seq < self.limit() and self.next_seq - self.height < self.opt.max_inflight:
            txs: list[bytes] = []
            size = 0
            for h, (raw, _) in list(self.pending.items()):
                if h in self.proposed:
                    continue
                try:
                    self.chain.state.check(_tx(raw))
                except InvalidTransaction:
                    del self.pending[h]
                    continue
                if size + len(raw) > MAX_BATCH_BYTES:
                    break
                txs.append(raw)
                size += len(raw)
                self.proposed.add(h)
                if len(txs) >= self.opt.max_batch:
                    break
            seq = self.next_seq + 1
            if not txs and not self._membership_pending(seq):
                return
            batch = Batch(tuple(txs))
            signed = self._vote(
                KIND_PRE_PREPARE,
                self.view,
                seq,
                PrePrepare(self.view, seq, batch.digest),
                batch=batch,
            )
            self.next_seq = seq
            slot = self._slot(seq)
            slot.pre_prepares[self.view] = (signed, PrePrepare.from_bytes(signed.body))
            slot.batches[batch.digest] = batch
            self.out.broadcast(ProposeFrame(signed, batch).to_bytes())
            self._check_slot(seq)

    def _membership_pending(self, seq: int) -> bool:
        """True while a decided membership change waits for sequence `seq` or later to
        activate: the primary then orders empty blocks, so a join or leave takes effect
        on an idle chain too instead of waiting for unrelated traffic."""
        activation = self.chain.state.header.activation
        return bool(activation) and seq <= activation

    # -- normal case --------------------------------------------------------------------------

    def _note(self, slot: Slot, kind: int, view: int, signed: Signed) -> bool:
        """Remember the first message per (kind, view, signer) in a slot; on a conflicting
        second one keep evidence and return False."""
        key = (kind, view, signed.signer)
        old = slot.seen.get(key)
        if old is None:
            slot.seen[key] = signed
            return True
        if old.body != signed.body:
            self._evidence(old, signed)
            return False
        return True

    def _on_pre_prepare(self, sender: bytes, signed: Signed, batch: Batch) -> None:
        pp = PrePrepare.from_bytes(signed.body)
        if pp.view != self.view or not self.active:
            if pp.view > self.view:
                self._ask_status(sender, once=True)
            return
        if not self.height < pp.seq <= self.limit():
            if pp.seq > self.limit():
                self._ask_status(sender, once=True)
            return
        primary = self.primary()
        if signed.signer != primary or not verify(self.chain_id, signed):
            raise InvalidMessage("pre-prepare not signed by the primary")
        if batch.digest != pp.digest or len(batch.txs) > 4 * self.opt.max_batch:
            raise InvalidMessage("pre-prepare's batch does not match its digest or is too big")
        self._accept_pre_prepare(signed, pp, batch)

    def _accept_pre_prepare(self, signed: Signed, pp: PrePrepare, batch: Batch) -> None:
        slot = self._slot(pp.seq)
        if not self._note(slot, KIND_PRE_PREPARE, pp.view, signed):
            return
        old = slot.pre_prepares.get(pp.view)
        if old is not None and old[1].digest != pp.digest:
            self._evidence(old[0], signed)
            return
        if old is None:
            slot.pre_prepares[pp.view] = (signed, pp)
            slot.batches[pp.digest] = batch
            for raw in batch.txs:  # the primary has them; so does every replica now
                self.proposed.add(hashlib.sha256(raw).digest())
        # a prepared certificate restored from the journal may hold this pre-prepare too
        if self.is_validator and signed.signer != self.me:
            vote = Prepare(pp.view, pp.seq, pp.digest, signed.signature)
            mine = self._vote(KIND_PREPARE, pp.view, pp.seq, vote)
            self._slot(pp.seq).prepares.setdefault((pp.view, pp.digest), {})[self.me] = mine
            self._broadcast_vote(mine)
            failpoints.hit("pbft.vote-sent")
        self._check_slot(pp.seq)

    def _on_prepare(self, signed: Signed, p: Prepare) -> None:
        if p.view != self.view or not self.active or not self.height < p.seq <= self.limit():
            return
        primary = self.primary()
        if signed.signer not in self.config() or signed.signer == primary:
            raise InvalidMessage("prepare from a non-validator or the primary")
        if not verify(self.chain_id, signed):
            raise InvalidMessage("bad prepare signature")
        pp_body = PrePrepare(p.view, p.seq, p.digest).to_bytes()
        if not check_signature(self.chain_id, primary, pp_body, p.pp_signature):
            raise InvalidMessage("prepare cites a pre-prepare the primary did not sign")
        slot = self._slot(p.seq)
        if not self._note(slot, KIND_PREPARE, p.view, signed):
            return
        # The cited pre-prepare is itself signed by the primary: a second one for this slot.
        self._note(slot, KIND_PRE_PREPARE, p.view, Signed(pp_body, primary, p.pp_signature))
        slot.prepares.setdefault((p.view, p.digest), {})[signed.signer] = signed
        self._check_slot(p.seq)

    def _on_commit(self, signed: Signed, c: Commit) -> None:
        if not self.height < c.seq <= self.low + 2 * self.genesis.window:
            return
        if signed.signer not in self.config(c.seq):
            raise InvalidMessage("commit from a non-validator")
        if not verify(self.chain_id, signed):
            raise InvalidMessage("bad commit signature")
        slot = self._slot(c.seq)
        if not self._note(slot, KIND_COMMIT, c.view, signed):
            return
        slot.commits.setdefault((c.view, c.digest), {})[signed.signer] = signed
        self._check_slot(c.seq)

    def _check_slot(self, seq: int) -> None:
        slot = self.slots.get(seq)
        if slot is None or seq <= self.height:
            return
        config = self.config(seq)
        q = quorum(len(config))
        entry = slot.pre_prepares.get(self.view)
        if self.active and entry is not None and slot.prepared != (self.view, entry[1].digest):
            pp_signed, pp = entry
            prepares = {
                s: m
                for s, m in slot.prepares.get((pp.view, pp.digest), {}).items()
                if s != pp_signed.signer
            }
            if len(prepares) >= q - 1 and pp.digest in slot.batches:
                slot.prepared = (pp.view, pp.digest)
                if self.is_validator:
                    proof = PreparedProof(
                        pp_signed,
                        slot.batches[pp.digest],
                        tuple(prepares[s] for s in sorted(prepares)[: q - 1]),
                    )
                    mine = self._vote(
                        KIND_COMMIT, pp.view, seq, Commit(pp.view, seq, pp.digest), prepared=proof
                    )
                    slot.commits.setdefault((pp.view, pp.digest), {})[self.me] = mine
                    self._broadcast_vote(mine)
                    failpoints.hit("pbft.vote-sent")
        if slot.committed is None:
            for (view, digest), votes in slot.commits.items():
                if len(votes) >= q and digest in slot.batches:
                    pairs = tuple(sorted((s, m.signature) for s, m in votes.items()))
                    slot.committed = (view, digest, CommitCertificate(view, seq, digest, pairs[:q]))
                    break
        if slot.committed is not None:
            self._execute_ready()

    def _execute_ready(self) -> None:
        while not self.halted:
            seq = self.height + 1
            slot = self.slots.get(seq)
            if slot is None or slot.committed is None:
                return
            view, digest, cert = slot.committed
            now = self.clock()
            note = BlockNote(int(now * 1000), max(0, round((now - slot.seen_at) * 1000)))
            block = self.chain.execute(view, slot.batches[digest], cert, note=note)
            self._after_blocks([block])

    def _after_blocks(self, blocks: list[Block]) -> None:
        for block in blocks:
            self.stats.blocks += 1
            for raw in block.batch.txs:
                h = hashlib.sha256(raw).digest()  # = SignedTx.hash for a canonical encoding
                self.pending.pop(h, None)
                self.proposed.discard(h)
            self.slots.pop(block.height, None)
            for fn in self.on_block:
                fn(block)
            if block.height % self.genesis.checkpoint_interval == 0:
                self._checkpoint_vote(block.height)
        height = self.height
        for n in [n for n in self.slots if n <= height]:
            del self.slots[n]
        expired = [t for t, (_, expiry) in self.pending.items() if expiry <= height]
        for t in expired:
            del self.pending[t]
            self.proposed.discard(t)
        self.next_seq = max(self.next_seq, height)
        self.vc_attempts = 0
        self._cancel_timer("request")
        self._propose()
