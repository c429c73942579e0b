"""Equivocation evidence: two messages signed by one validator that cannot both be honest.

Two pre-prepares, prepares or commits for the same (view, sequence) with different
digests, or two checkpoints for the same sequence with different state digests, signed by
the same key. Anyone who knows the validator's public key can check the evidence; the
ledger records it (a `Misbehaviour` transaction) and the store keeps it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tssnode.crypto.encoding import Wire, decode_any, wire
from tssnode.errors import EncodingError
from tssnode.ledger.envelope import Signed, verify
from tssnode.ledger.messages import Checkpoint, Commit, Prepare, PrePrepare


@wire("tssnode.ledger.equivocation/1")
@dataclass(frozen=True)
class EquivocationEvidence(Wire):
    """Two conflicting messages signed by `culprit` (canonical order: smaller body first)."""

    culprit: bytes
    first: Signed
    second: Signed

    def digest(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()


def slot_of(body: Wire) -> tuple[int, int, int, bytes] | None:
    """(kind, view, seq, value) of a vote body that has a single honest value per slot."""
    if isinstance(body, PrePrepare | Prepare | Commit):
        return (body.kind, body.view, body.seq, body.digest)
    if isinstance(body, Checkpoint):
        return (body.kind, 0, body.seq, body.state_digest)
    return None


def make_evidence(a: Signed, b: Signed) -> EquivocationEvidence:
    first, second = sorted((a, b), key=lambda s: s.body)
    return EquivocationEvidence(a.signer, first, second)


def check_evidence(chain_id: bytes, ev: EquivocationEvidence) -> str | None:
    """None when the evidence holds; otherwise why it does not."""
    if ev.first.signer != ev.culprit or ev.second.signer != ev.culprit:
        return "evidence messages are not signed by the culprit"
    if ev.first.body >= ev.second.body:
        return "evidence messages are identical or not in canonical order"
    if not (verify(chain_id, ev.first) and verify(chain_id, ev.second)):
        return "evidence signature does not verify"
    try:
        a, b = decode_any(ev.first.body), decode_any(ev.second.body)
    except EncodingError:
        return "evidence message is undecodable"
    sa, sb = slot_of(a), slot_of(b)
    if sa is None or sb is None:
        return "evidence messages are not votes"
    if sa[:3] != sb[:3]:
        return "evidence messages are for different slots"
    if sa[3] == sb[3]:
        return "evidence messages agree"
    return None
