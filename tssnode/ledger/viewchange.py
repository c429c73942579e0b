"""View change (Castro–Liskov §4.4): checking VIEW-CHANGE messages, computing NEW-VIEW.

The new primary collects 2f+1 valid VIEW-CHANGE messages V for view v+1 and computes O:
min-s is the latest stable checkpoint in V, max-s the highest sequence with a prepared
certificate in V; for every n in (min-s, max-s] O re-proposes the digest of the prepared
certificate with the highest view, or the null batch if none. Backups recompute O from V
and accept the NEW-VIEW only if it matches, so a faulty new primary can neither drop a
request that may have committed nor invent one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tssnode.crypto.encoding import decode_any
from tssnode.errors import EncodingError
from tssnode.ledger.blocks import check_votes, primary_of
from tssnode.ledger.envelope import Signed, check_signature, open_as
from tssnode.ledger.errors import InvalidCertificate, InvalidMessage, InvalidNewView
from tssnode.ledger.messages import (
    NULL_BATCH,
    Batch,
    Checkpoint,
    CheckpointCertificate,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    ViewChange,
)
from tssnode.ledger.state import quorum

#: The validator set (sorted keys) that orders a given sequence number.
ConfigFor = Callable[[int], tuple[bytes, ...]]


def checkpoint_certificate(
    chain_id: bytes, seq: int, msgs: tuple[Signed, ...], validators: tuple[bytes, ...]
) -> CheckpointCertificate:
    """2f+1 signed checkpoints for `seq` with one digest, as a certificate (or raise)."""
    bodies = {m.body for m in msgs}
    if len(bodies) != 1:
        raise InvalidCertificate("checkpoint proof mixes digests")
    try:
        cp = Checkpoint.from_bytes(next(iter(bodies)))
    except EncodingError as exc:
        raise InvalidCertificate("checkpoint proof is not a checkpoint") from exc
    if cp.seq != seq:
        raise InvalidCertificate("checkpoint proof is for another sequence")
    votes = tuple(sorted((m.signer, m.signature) for m in msgs))
    check_votes(chain_id, cp.to_bytes(), votes, validators, f"checkpoint {seq}")
    return CheckpointCertificate(seq, cp.state_digest, cp.block_hash, votes)


def check_prepared(
    chain_id: bytes, proof: PreparedProof, validators: tuple[bytes, ...], before_view: int
) -> PrePrepare:
    """A prepared certificate: the primary's pre-prepare for a view < `before_view`, the
    batch it names and 2f prepares from distinct other validators citing it."""
    pp_msg = proof.pre_prepare
    pp = open_as(chain_id, pp_msg, PrePrepare)
    if pp.view >= before_view:
        raise InvalidMessage("prepared certificate from a view not before the change")
    primary = primary_of(validators, pp.view)
    if pp_msg.signer != primary:
        raise InvalidMessage("prepared certificate's pre-prepare is not from the primary")
    if proof.batch.digest != pp.digest:
        raise InvalidMessage("prepared certificate's batch does not match its digest")
    signers: set[bytes] = set()
    for m in proof.prepares:
        if m.signer not in validators or m.signer == primary or m.signer in signers:
            raise InvalidMessage("prepared certificate has a bad or repeated signer")
        p = open_as(chain_id, m, Prepare)
        if (p.view, p.seq, p.digest, p.pp_signature) != (
            pp.view,
            pp.seq,
            pp.digest,
            pp_msg.signature,
        ):
            raise InvalidMessage("prepared certificate's prepares do not match")
        signers.add(m.signer)
    if len(signers) < quorum(len(validators)) - 1:
        raise InvalidMessage("prepared certificate has fewer than 2f prepares")
    return pp


@dataclass(frozen=True)
class CheckedViewChange:
    signed: Signed
    vc: ViewChange
    checkpoint: CheckpointCertificate | None
    prepared: dict[int, tuple[PrePrepare, PreparedProof]]


def check_view_change(
    chain_id: bytes, signed: Signed, config_for: ConfigFor, window: int
) -> CheckedViewChange:
    """Every part of a VIEW-CHANGE: sender, checkpoint proof, prepared certificates."""
    vc = open_as(chain_id, signed, ViewChange)
    validators = config_for(vc.stable_seq + 1)
    if signed.signer not in validators:
        raise InvalidMessage("view change from a non-validator")
    cert = None
    if vc.stable_seq:
        cert = checkpoint_certificate(
            chain_id, vc.stable_seq, vc.checkpoint, config_for(vc.stable_seq)
        )
    elif vc.checkpoint:
        raise InvalidMessage("view change carries a checkpoint proof for sequence 0")
    prepared: dict[int, tuple[PrePrepare, PreparedProof]] = {}
    for proof in vc.prepared:
        pp = check_prepared(chain_id, proof, validators, vc.view)
        if not vc.stable_seq < pp.seq <= vc.stable_seq + window:
            raise InvalidMessage("prepared certificate outside the view change's window")
        if pp.seq in prepared:
            raise InvalidMessage("two prepared certificates for one sequence")
        prepared[pp.seq] = (pp, proof)
    return CheckedViewChange(signed, vc, cert, prepared)


@dataclass(frozen=True)
class NewViewPlan:
    """O: what the new primary re-proposes, and the checkpoint it starts from."""

    min_s: int
    checkpoint: CheckpointCertificate | None
    proposals: tuple[tuple[int, bytes], ...]  # (seq, digest)
    batches: dict[bytes, Batch]


def plan_new_view(checked: list[CheckedViewChange]) -> NewViewPlan:
    best = max(checked, key=lambda c: c.vc.stable_seq)
    min_s = best.vc.stable_seq
    chosen: dict[int, tuple[int, bytes]] = {}
    batches: dict[bytes, Batch] = {NULL_BATCH.digest: NULL_BATCH}
    for c in checked:
        for seq, (pp, proof) in c.prepared.items():
            if seq <= min_s:
                continue
            if seq not in chosen or pp.view > chosen[seq][0]:
                chosen[seq] = (pp.view, pp.digest)
            batches[pp.digest] = proof.batch
    max_s = max(chosen, default=min_s)
    proposals = tuple(
        (n, chosen[n][1] if n in chosen else NULL_BATCH.digest) for n in range(min_s + 1, max_s + 1)
    )
    return NewViewPlan(min_s, best.checkpoint, proposals, batches)


def check_new_view(
    chain_id: bytes, signed: Signed, config_for: ConfigFor, window: int, low: int
) -> tuple[NewView, NewViewPlan, list[CheckedViewChange]]:
    """A NEW-VIEW as a backup checks it: from the primary of its view, 2f+1 valid view
    changes for that view from distinct validators, and O exactly as recomputed."""
    try:
        view = NewView.from_bytes(signed.body).view
    except EncodingError as exc:
        raise InvalidNewView("undecodable new view") from exc
    validators = config_for(low + 1)
    if signed.signer != primary_of(validators, view):  # before any signature is checked
        raise InvalidNewView("new view not from the primary of that view")
    nv = open_as(chain_id, signed, NewView)
    checked: list[CheckedViewChange] = []
    seen: set[bytes] = set()
    for m in nv.view_changes:
        try:
            c = check_view_change(chain_id, m, config_for, window)
        except (InvalidMessage, InvalidCertificate) as exc:
            raise InvalidNewView(f"new view carries a bad view change: {exc}") from exc
        if c.vc.view != nv.view or m.signer in seen:
            raise InvalidNewView("new view carries a view change for another view, or twice")
        seen.add(m.signer)
        checked.append(c)
    if len(seen) < quorum(len(validators)):
        raise InvalidNewView("new view with fewer than 2f+1 view changes")
    plan = plan_new_view(checked)
    got: list[tuple[int, bytes]] = []
    for m in nv.pre_prepares:
        if m.signer != signed.signer or not check_signature(
            chain_id, m.signer, m.body, m.signature
        ):
            raise InvalidNewView("new view pre-prepare not signed by the primary")
        try:
            pp = decode_any(m.body)
        except EncodingError as exc:
            raise InvalidNewView("new view pre-prepare undecodable") from exc
        if not isinstance(pp, PrePrepare) or pp.view != nv.view:
            raise InvalidNewView("new view pre-prepare for another view")
        got.append((pp.seq, pp.digest))
    if tuple(got) != plan.proposals:
        raise InvalidNewView("new view pre-prepares differ from the ones computed from V")
    return nv, plan, checked
