"""The replica: its inputs, restart, equivocation and retransmission, over its parts."""

from __future__ import annotations

import logging

from tssnode.crypto.encoding import Wire
from tssnode.errors import EncodingError
from tssnode.ledger.envelope import Signed, decode_cached
from tssnode.ledger.errors import (
    Equivocation,
    ForkDetected,
    InvalidMessage,
    InvalidTransaction,
    LedgerError,
)
from tssnode.ledger.evidence import EquivocationEvidence, make_evidence
from tssnode.ledger.messages import (
    FRAME_TYPES,
    KIND_CHECKPOINT,
    KIND_COMMIT,
    KIND_NEW_VIEW,
    KIND_PRE_PREPARE,
    KIND_PREPARE,
    KIND_VIEW_CHANGE,
    BlocksFrame,
    Checkpoint,
    Commit,
    FetchBlocks,
    NewView,
    Prepare,
    PrePrepare,
    ProposeFrame,
    RequestFrame,
    Status,
    StatusRequest,
    ViewChange,
    VoteFrame,
)
from tssnode.ledger.replica.base import ReplicaBase
from tssnode.ledger.replica.catchup import CatchUp
from tssnode.ledger.replica.checkpoints import Checkpoints
from tssnode.ledger.replica.normal import NormalCase
from tssnode.ledger.replica.viewchange import ViewChanges
from tssnode.ledger.transactions import Misbehaviour, SignedTx, make_tx

log = logging.getLogger(__name__)


class Replica(NormalCase, Checkpoints, ViewChanges, CatchUp, ReplicaBase):
    """One PBFT replica (or observer) over one node's chain and journal."""

    # -- restart ------------------------------------------------------------------------------

    def _restore(self) -> None:
        """Rebuild the log from the journal after a restart (own votes only)."""
        for (kind, view, seq), vote in sorted(self.journal.votes.items()):
            if seq <= self.low and kind != KIND_VIEW_CHANGE and kind != KIND_NEW_VIEW:
                continue
            msg = vote.message
            if kind == KIND_PRE_PREPARE and vote.batch is not None:
                pp = PrePrepare.from_bytes(msg.body)
                slot = self._slot(seq)
                slot.pre_prepares[view] = (msg, pp)
                slot.batches[pp.digest] = vote.batch
                if view == self.view:
                    self.next_seq = max(self.next_seq, seq)
            elif kind == KIND_PREPARE:
                p = Prepare.from_bytes(msg.body)
                self._slot(seq).prepares.setdefault((view, p.digest), {})[self.me] = msg
            elif kind == KIND_COMMIT:
                c = Commit.from_bytes(msg.body)
                self._slot(seq).commits.setdefault((view, c.digest), {})[self.me] = msg
            elif kind == KIND_CHECKPOINT:
                self.checkpoints.setdefault(seq, {})[self.me] = msg
        for seq, proof in self.journal.prepared.items():
            if seq <= self.low:
                continue
            pp = PrePrepare.from_bytes(proof.pre_prepare.body)
            slot = self._slot(seq)
            slot.pre_prepares.setdefault(pp.view, (proof.pre_prepare, pp))
            slot.batches[pp.digest] = proof.batch
            prepares = slot.prepares.setdefault((pp.view, pp.digest), {})
            for m in proof.prepares:
                prepares.setdefault(m.signer, m)
            slot.prepared = (pp.view, pp.digest)

    def start(self) -> None:
        """Resume after construction: re-send a pending view change and the last
        checkpoint, and ask the peers how far the chain has got."""
        if not self.active and self.is_validator:
            own = self.journal.vote(KIND_VIEW_CHANGE, self.view, 0)
            if own is not None:
                self._on_view_change(own.message)
                self._broadcast_vote(own.message)
            else:
                view, self.view = self.view, self.view - 1
                self._start_view_change(view)
        h = self.height
        if h and h % self.genesis.checkpoint_interval == 0 and h > self.low:
            self._checkpoint_vote(h)
        # Whatever was committed while this node was down, its peers will say.
        self.out.broadcast(StatusRequest(self.height).to_bytes())
        self._update_timers()

    # -- inputs -------------------------------------------------------------------------------

    def submit(self, tx: SignedTx) -> bytes:
        """Accept a client transaction (checked now; `InvalidTransaction` says why not),
        relay it to every replica and return its hash."""
        self.chain.state.check(tx)
        if len(self.pending) >= self.opt.max_pending:
            raise InvalidTransaction("the pending pool is full")
        raw = tx.to_bytes()
        if tx.hash not in self.pending:
            self.pending[tx.hash] = (raw, tx.expiry)
        self.out.broadcast(RequestFrame(raw).to_bytes())
        self._propose()
        self._update_timers()
        return tx.hash

    def sign_payload(self, payload: Wire, *, nonce: bytes | None = None) -> SignedTx:
        """`payload` as a transaction signed by this validator (not submitted)."""
        expiry = self.height + 1 + self.genesis.tx_lifetime // 2
        return make_tx(self.key, self.chain_id, payload, expiry=expiry, nonce=nonce)

    def submit_payload(self, payload: Wire, *, nonce: bytes | None = None) -> bytes:
        """Sign `payload` as this validator and submit it."""
        return self.submit(self.sign_payload(payload, nonce=nonce))

    def receive(self, sender: bytes, data: bytes) -> None:
        """One frame from the transport. Bad frames are dropped and counted."""
        try:
            frame = decode_cached(data)
        except EncodingError as exc:
            self._drop(f"undecodable frame: {exc}")
            return
        if not isinstance(frame, FRAME_TYPES):
            self._drop(f"unexpected frame {type(frame).__name__}")
            return
        try:
            self._dispatch(sender, frame)
        except Equivocation as exc:  # a bug elsewhere; never sign the conflicting message
            log.error("replica %s refused to equivocate: %s", self.me.hex()[:8], exc)
            self._drop(str(exc))
        except (LedgerError, EncodingError) as exc:
            self._drop(f"{type(frame).__name__}: {exc}")
        self._update_timers()

    def on_timer(self, name: str) -> None:
        self._timers.discard(name)
        if self.halted:
            return
        if name == "request":
            self._prune_pending()
            if self.active and self.pending and self.is_validator:
                log.info(
                    "view %d: %d requests waited %.0f s unordered; changing view",
                    self.view, len(self.pending), self._timeout(),
                )  # fmt: skip
                self._start_view_change(self.view + 1)
        elif name == "view-change":
            if not self.active:
                log.info(
                    "no NEW-VIEW for view %d in %.0f s; changing view", self.view, self._timeout()
                )
                self.vc_attempts += 1
                self._start_view_change(self.view + 1)
        elif name == "fetch":
            log.info(
                "state transfer: no blocks from %s within %.0f s; asking again",
                (self._fetch_peer or b"?").hex()[:8], self.opt.view_timeout,
            )  # fmt: skip
            self._fetching = False
            self._fetch_peer = None
            self._catch_up()
        elif name == "tick":
            self._tick()
        elif name == "idle":
            self._ask_status()
        self._update_timers()

    def _dispatch(self, sender: bytes, frame: Wire) -> None:
        if isinstance(frame, StatusRequest):
            self._on_status_request(sender)
        elif isinstance(frame, FetchBlocks):
            self._on_fetch(sender, frame)
        elif isinstance(frame, BlocksFrame):
            self._on_blocks(sender, frame)
        elif isinstance(frame, Status):
            self._on_status(sender, frame)
        elif self.halted:
            return
        elif isinstance(frame, RequestFrame):
            self._on_request(frame)
        elif isinstance(frame, ProposeFrame):
            self._on_pre_prepare(sender, frame.pre_prepare, frame.batch)
        elif isinstance(frame, VoteFrame):
            self._on_vote(sender, frame.message)

    def _on_vote(self, sender: bytes, signed: Signed) -> None:
        body = decode_cached(signed.body)
        if isinstance(body, Prepare):
            self._on_prepare(signed, body)
        elif isinstance(body, Commit):
            self._on_commit(signed, body)
        elif isinstance(body, Checkpoint):
            self._on_checkpoint(signed, body)
        elif isinstance(body, ViewChange):
            self._on_view_change(signed)
        elif isinstance(body, NewView):
            self._on_new_view(signed)
        else:
            raise InvalidMessage(f"{type(body).__name__} is not a vote")

    # -- equivocation and forks ---------------------------------------------------------------

    def _evidence(self, a: Signed, b: Signed) -> None:
        if a.signer != b.signer:
            return
        ev = make_evidence(a, b)
        if not self.journal.add_evidence(ev):
            return
        log.warning("validator %s equivocated", a.signer.hex()[:8])
        for fn in self.on_evidence:
            fn(ev)
        # One record per culprit in the ledger is proof enough. Reporting every piece of
        # evidence fed a loop: a validator that double-votes on every block made each
        # honest replica submit a Misbehaviour per block, which made more blocks to
        # double-vote on, until the load changed the view (found by a test that failed
        # for some hash seeds). All evidence stays in this node's journal.
        recorded = any(m.culprit == ev.culprit for m in self.chain.state.misbehaviour.values())
        if recorded or ev.culprit in self._reported:
            return
        self._reported.add(ev.culprit)
        if self.is_validator and not self.halted:
            try:
                self.submit_payload(Misbehaviour(ev), nonce=ev.digest()[:16])
            except InvalidTransaction as exc:
                self._reported.discard(ev.culprit)
                self._drop(f"evidence not submitted: {exc}")

    def _forked(self, why: str) -> None:
        if self.fork is None:
            self.fork = ForkDetected(why)
            log.error("replica %s halts: %s", self.me.hex()[:8], why)
            for fn in self.on_fork:
                fn(self.fork)

    def evidence(self) -> list[EquivocationEvidence]:
        return self.journal.evidence()

    # -- retransmission -----------------------------------------------------------------------

    def _has_work(self) -> bool:
        if self.halted:
            return False
        if not self.is_validator:
            return True  # an observer keeps asking its peers how far the chain is
        uncommitted = any(s > self.height for s in self.slots)
        return bool(self.pending) or uncommitted or not self.active or self._fetching

    def _tick(self) -> None:
        """Re-send what others may have missed; ask a peer how far it is."""
        self._status_asked = False
        if not self.is_validator:
            self._ask_status()
            return
        self._ticks += 1
        revote = self._ticks % self.opt.revote_every == 0
        if not self.active:
            own = self.journal.vote(KIND_VIEW_CHANGE, self.view, 0)
            if own is not None and revote:
                self._broadcast_vote(own.message)
        else:
            nv = self.journal.view.new_view
            if (
                revote
                and nv is not None
                and self.is_primary
                and NewView.from_bytes(nv.body).view == self.view
            ):
                self._broadcast_vote(nv)
            for seq in sorted(self.slots):
                age = self._ticks - self.slots[seq].since
                if seq <= self.height or age < self.opt.revote_every or not revote:
                    continue
                for kind in (KIND_PRE_PREPARE, KIND_PREPARE, KIND_COMMIT):
                    vote = self.journal.vote(kind, self.view, seq)
                    if vote is None:
                        continue
                    if kind == KIND_PRE_PREPARE and vote.batch is not None:
                        self.out.broadcast(ProposeFrame(vote.message, vote.batch).to_bytes())
                    else:
                        self._broadcast_vote(vote.message)
        # Requests wait at every replica until executed; whoever is primary must have them.
        # `submit` broadcast each one already, so this only repairs a lost frame: a few,
        # now and then, to the primary of the view (of the next one during a view change).
        # Re-sending the whole pool to everyone every tick outgrew what the transport could
        # send under a burst and buried the votes behind it (the stall of issue 12).
        # During a view change the trickle goes to everyone: the replicas may not all be
        # heading for the same view, and those still in the old one order it there.
        primary = self.primary()
        due = self._ticks % self.opt.resend_every == 0
        if self.pending and due and (primary != self.me or not self.active):
            waiting = list(self.pending.values())
            start = self._relay_turn % len(waiting)
            chosen = (waiting[start:] + waiting[:start])[: self.opt.resend_count]
            self._relay_turn = start + len(chosen)
            for raw, _ in chosen:
                frame = RequestFrame(raw).to_bytes()
                if self.active:
                    self.out.send(primary, frame)
                else:
                    self.out.broadcast(frame)
        last = self.height - self.height % self.genesis.checkpoint_interval
        if last > self.low and self.me in self.checkpoints.get(last, {}):
            self._broadcast_vote(self.checkpoints[last][self.me])
        self._ask_status()

    def _update_timers(self) -> None:
        if self.halted:
            for name in list(self._timers):
                self._cancel_timer(name)
            return
        waiting = self.pending or self._membership_pending(self.height + 1)
        if self.active and waiting and self.is_validator:
            # (a decided membership change counts as work: if the primary does not order
            # the empty blocks that activate it, the backups change view)
            if "request" not in self._timers:
                self._set_timer("request", self._timeout())
        else:
            self._cancel_timer("request")
        if self._has_work():
            if "tick" not in self._timers:
                self._set_timer("tick", self.opt.tick)
        elif "idle" not in self._timers and "tick" not in self._timers:
            self._set_timer("idle", self.opt.idle_poll)
