"""View changes: VIEW-CHANGE, NEW-VIEW, entering a view (checks and O: `ledger.viewchange`)."""

from __future__ import annotations

import logging

from tssnode import failpoints
from tssnode.ledger.blocks import (
    primary_of,
)
from tssnode.ledger.envelope import Signed, sign
from tssnode.ledger.errors import (
    InvalidMessage,
)
from tssnode.ledger.journal import ViewRecord
from tssnode.ledger.messages import (
    KIND_NEW_VIEW,
    KIND_PRE_PREPARE,
    KIND_VIEW_CHANGE,
    NewView,
    PrePrepare,
    RequestFrame,
    ViewChange,
    VoteFrame,
)
from tssnode.ledger.replica.base import MAX_FUTURE_VIEW_CHANGES, ReplicaBase
from tssnode.ledger.state import max_faulty, quorum
from tssnode.ledger.viewchange import (
    NewViewPlan,
    check_new_view,
    check_view_change,
    plan_new_view,
)

log = logging.getLogger(__name__)


class ViewChanges(ReplicaBase):
    """View changes: VIEW-CHANGE, NEW-VIEW, entering a view (checks and O: `ledger.viewchange`)."""

    # -- view change --------------------------------------------------------------------------

    def _checkpoint_proof(self) -> tuple[Signed, ...]:
        cert = self.stable_cert
        if cert is None:
            return ()
        body = cert.body()
        return tuple(Signed(body, s, sig) for s, sig in cert.votes)

    def _start_view_change(self, view: int) -> None:
        if view <= self.view and not (view == self.view and not self.active):
            return
        if view == self.view and self.journal.vote(KIND_VIEW_CHANGE, view, 0) is not None:
            return
        self.stats.view_changes += 1
        self.view, self.active = view, False
        self._cancel_timer("request")
        # the wait for an older view's NEW-VIEW is over (re-armed on 2f+1 changes to
        # `view`); left armed, it would push this replica on to view + 1 before `view`'s
        # NEW-VIEW could arrive, and the replicas would never meet in one view
        self._cancel_timer("view-change")
        self.proposed.clear()
        if not self.is_validator:
            self.journal.set_view(ViewRecord(view, False, None))
            return
        window = self.low + self.genesis.window
        prepared = tuple(
            self.journal.prepared[s]
            for s in sorted(self.journal.prepared)
            if self.low < s <= window
        )
        vc = ViewChange(view, self.low, self._checkpoint_proof(), prepared)
        mine = self._vote(KIND_VIEW_CHANGE, view, 0, vc, view_record=ViewRecord(view, False, None))
        failpoints.hit("pbft.view-change")
        self._broadcast_vote(mine)
        self._on_view_change(mine)

    def _on_view_change(self, signed: Signed) -> None:
        vc = ViewChange.from_bytes(signed.body)
        if vc.view > self.view + 1000:
            raise InvalidMessage("view change for a view too far ahead")
        if vc.view < self.view or (vc.view == self.view and self.active):
            if vc.view == self.view and self.is_primary and self.journal.view.new_view:
                # a validator still asking for this view missed our NEW-VIEW: send it again,
                # but once per `revote_every` ticks (each view change it re-sends arrived
                # here as a 30-50 KB NEW-VIEW back, 9 MB per 10 s under load: issue 12)
                last = self._new_view_sent.get(signed.signer)
                if last is None or self._ticks - last >= self.opt.revote_every:
                    self._new_view_sent[signed.signer] = self._ticks
                    self.out.send(signed.signer, VoteFrame(self.journal.view.new_view).to_bytes())
            return
        if signed.signer not in self.config():
            raise InvalidMessage("view change from a non-validator")
        checked = check_view_change(
            self.chain_id, signed, self.chain.state.config_for, self.genesis.window
        )
        self.view_changes.setdefault(vc.view, {})[signed.signer] = checked
        if vc.view > self.view:
            self._bound_view_changes(signed.signer)
            # f+1 replicas want a higher view: join the smallest of them.
            higher: dict[bytes, int] = {}
            for v, msgs in self.view_changes.items():
                if v > self.view:
                    for s in msgs:
                        higher[s] = min(higher.get(s, v), v)
            if len(higher) > max_faulty(len(self.config())) and self.me not in higher:
                log.info("f + 1 validators want view %d; joining", min(higher.values()))
                self._start_view_change(min(higher.values()))
            return
        if len(self.view_changes[vc.view]) >= quorum(len(self.config())):
            if "view-change" not in self._timers:
                self._set_timer("view-change", self._timeout())
            if self.is_primary:
                self._send_new_view()

    def _bound_view_changes(self, signer: bytes) -> None:
        """Keep a validator's `MAX_FUTURE_VIEW_CHANGES` lowest view changes above ours."""
        ahead = sorted(v for v, vcs in self.view_changes.items() if v > self.view and signer in vcs)
        for v in ahead[MAX_FUTURE_VIEW_CHANGES:]:
            del self.view_changes[v][signer]
            if not self.view_changes[v]:
                del self.view_changes[v]
            self._drop("a validator's view changes far ahead are at their bound")

    def _send_new_view(self) -> None:
        view = self.view
        if self.journal.vote(KIND_NEW_VIEW, view, 0) is not None:
            return
        checked = [self.view_changes[view][s] for s in sorted(self.view_changes[view])]
        plan = plan_new_view(checked)
        pps = tuple(
            self._vote(KIND_PRE_PREPARE, view, n, PrePrepare(view, n, d), batch=plan.batches[d])
            for n, d in plan.proposals
        )
        nv = NewView(view, tuple(c.signed for c in checked), pps)
        signed = sign(self.key, self.chain_id, nv)
        signed = self.journal.record(
            KIND_NEW_VIEW,
            view,
            0,
            signed,
            view_record=ViewRecord(view, True, signed),
            conflict_free=False,
        )
        self._broadcast_vote(signed)
        self._enter_view(view, signed, plan)

    def _on_new_view(self, signed: Signed) -> None:
        nv = NewView.from_bytes(signed.body)
        if nv.view < self.view or (nv.view == self.view and self.active):
            return
        _, plan, _ = check_new_view(
            self.chain_id, signed, self.chain.state.config_for, self.genesis.window, self.low
        )
        self._enter_view(nv.view, signed, plan)

    def _enter_view(self, view: int, nv_signed: Signed, plan: NewViewPlan) -> None:
        log.info(
            "entered view %d (primary %s) at height %d, %d proposals carried over",
            view, primary_of(self.config(), view).hex()[:8], self.height, len(plan.proposals),
        )  # fmt: skip
        self.view, self.active = view, True
        if self.journal.view != ViewRecord(view, True, nv_signed):
            self.journal.set_view(ViewRecord(view, True, nv_signed))
        self._cancel_timer("view-change")
        for v in [v for v in self.view_changes if v <= view]:
            del self.view_changes[v]
        self.proposed.clear()
        self._new_view_sent.clear()
        # Each view entered without a commit since the last one waits longer for its
        # requests (and its successor's NEW-VIEW): on a slow network a fixed request
        # timeout changed view again before the new primary could order anything, over
        # and over (issue 12). A committed block resets it (`_after_blocks`).
        self.vc_attempts += 1
        nv = NewView.from_bytes(nv_signed.body)
        top = plan.proposals[-1][0] if plan.proposals else plan.min_s
        self.next_seq = max(top, self.low, self.height)
        if plan.checkpoint is not None and plan.min_s > self.low:
            self._certified_checkpoint(plan.checkpoint)
        for pp_signed in nv.pre_prepares:
            pp = PrePrepare.from_bytes(pp_signed.body)
            if self.low < pp.seq and pp.seq > self.height:
                self._accept_pre_prepare(pp_signed, pp, plan.batches[pp.digest])
        self._propose()
        # the new primary may not have every waiting request (the old one may have been
        # the only one a client reached): hand it ours once, then trickle (`_tick`)
        primary = self.primary()
        if primary != self.me:
            for raw, _ in list(self.pending.values())[: self.opt.relay_on_new_view]:
                self.out.send(primary, RequestFrame(raw).to_bytes())
