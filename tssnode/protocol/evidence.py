"""Re-verify a blame with nothing but the parties' identity keys.

A `Blame` carries the culprit's own signed messages and, for a failed proof, the proof
with its statement. `verify_blame` checks what a third party can check on its own:

- every message is signed by its sender, for the blamed session;
- equivocation: the culprit signed two different broadcasts for one round (its message,
  and another party's echo carrying the culprit's signature over a different body);
- conflicting messages: two different signed messages for one round and recipient;
- a failed proof: the proof is the one the culprit signed and sent, under a known tier,
  and running the verifier on the recorded statement fails again. The statement and the
  proof's session id (the blame's, or for keygen and aux-info proofs after the commit
  round, H(ssid ‖ rid)) come from the accuser: they are not rebuilt from signed messages
  (for the identification proofs the statement depends on every party's broadcasts and
  the aux info), so "proven" means the culprit's signed proof fails against them, and a
  third party who doubts the accuser must check them against the session's public
  transcript (docs/protocol.md, "Echo broadcast and evidence");
- a reshare dealer's wrong constant term: the F_j it signed has F_j(0) ≠ λ_j·X_j, given
  the session's public input (`reshare`, which the caller knows from the request).

What needs private data (a share that only its recipient can decrypt) or session state
(a timeout) is reported as not independently verifiable rather than accepted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tssnode.crypto.encoding import Wire, decode_any
from tssnode.crypto.identity import verify_signature
from tssnode.crypto.params import TIERS
from tssnode.errors import EncodingError, ProofError, TssError
from tssnode.protocol import auxinfo, keygen
from tssnode.protocol.base import BROADCAST, Blame, Echo, envelope_digest
from tssnode.zk import affg, dec, enc, fac, logstar, mod, mul, mulstar, prm, sch
from tssnode.zk.common import ProofContext

PROOFS: dict[str, ModuleType] = {
    m.NAME: m for m in (sch, enc, logstar, affg, mod, prm, fac, mul, mulstar, dec)
}


class BlameRejected(TssError):
    """Evidence that does not support the blame it comes with."""


@dataclass(frozen=True)
class Verdict:
    proven: bool
    reason: str


def verify_blame(
    blame: Blame, identities: Mapping[int, bytes], *, reshare: auxinfo.Reshare | None = None
) -> Verdict:
    """Check a blame's evidence. Raises BlameRejected when the evidence contradicts it.

    `reshare` is the public input of a reshare session, needed (and trusted) to re-check
    a dealer's constant term; without it that blame is reported as not re-checkable."""
    for msg in blame.messages:
        if msg.ssid != blame.ssid:
            raise BlameRejected("evidence from another session")
        key = identities.get(msg.sender)
        if key is None or not verify_signature(key, msg.digest(), msg.signature):
            raise BlameRejected(f"message from party {msg.sender} is not signed by it")
    if blame.proofs:
        return _proofs(blame)
    if len(blame.culprits) != 1:
        return Verdict(False, "several culprits without proofs: not independently verifiable")
    culprit = blame.culprits[0]
    if blame.check.startswith("equivocation"):
        return _equivocation(blame, culprit, identities)
    if blame.check == "two different messages for one round":
        return _conflict(blame, culprit)
    if blame.check == "opening does not match commitment":
        return _decommitment(blame, culprit)
    if blame.check == auxinfo.WRONG_CONSTANT and reshare is not None:
        return _constant_term(blame, culprit, reshare)
    return Verdict(False, f"{blame.check!r} needs private data or session state to re-check")


def _proofs(blame: Blame) -> Verdict:
    if len(blame.proofs) != len(blame.culprits):
        raise BlameRejected("one proof per culprit expected")
    for culprit, ev in zip(blame.culprits, blame.proofs, strict=True):
        if ev.prover != culprit:
            raise BlameRejected("the failed proof is not the culprit's")
        if TIERS.get(ev.params.name) != ev.params:
            raise BlameRejected("the failed proof names parameters that are no known tier")
        module = PROOFS.get(ev.proof_name)
        if module is None:
            raise BlameRejected(f"unknown proof {ev.proof_name!r}")
        try:
            stmt, proof = decode_any(ev.statement), decode_any(ev.proof)
        except EncodingError as exc:
            raise BlameRejected(f"evidence does not decode: {exc}") from None
        sent = [m for m in blame.messages if m.sender == culprit]
        if not any(proof in _values(decode_any(m.body)) for m in sent):
            raise BlameRejected(f"party {culprit} never signed the proof in the evidence")
        try:
            module.verify(ProofContext(ev.ssid, ev.prover, ev.params), stmt, proof)
        except ProofError:
            continue
        raise BlameRejected(f"party {culprit}'s {ev.proof_name} proof verifies")
    names = ", ".join(
        f"party {c}: {e.proof_name}" for c, e in zip(blame.culprits, blame.proofs, strict=True)
    )
    return Verdict(True, f"failed proofs re-checked ({names})")


def _equivocation(blame: Blame, culprit: int, identities: Mapping[int, bytes]) -> Verdict:
    own = [m for m in blame.messages if m.sender == culprit and m.recipient == BROADCAST]
    echoes = blame.messages  # the culprit's own echo can carry its other signature too
    for first in own:
        for carrier in echoes:
            for echo in (v for v in _values(decode_any(carrier.body)) if isinstance(v, Echo)):
                entry = echo.entries.get(culprit)
                if entry is None or entry.body_hash == first.body_hash():
                    continue
                digest = envelope_digest(
                    blame.ssid, first.round, culprit, BROADCAST, entry.body_hash
                )
                if verify_signature(identities[culprit], digest, entry.signature):
                    return Verdict(
                        True, f"party {culprit} signed two broadcasts for round {first.round}"
                    )
    raise BlameRejected("no two different signed broadcasts of the culprit in the evidence")


def _conflict(blame: Blame, culprit: int) -> Verdict:
    own = [m for m in blame.messages if m.sender == culprit]
    for i, a in enumerate(own):
        for b in own[i + 1 :]:
            if (a.round, a.recipient) == (b.round, b.recipient) and a.body != b.body:
                return Verdict(True, f"party {culprit} signed two messages for round {a.round}")
    raise BlameRejected("no two conflicting signed messages of the culprit in the evidence")


def _decommitment(blame: Blame, culprit: int) -> Verdict:
    """The culprit's signed commitment and its signed opening do not match."""
    bodies = [decode_any(m.body) for m in blame.messages if m.sender == culprit]
    commits = [b for b in bodies if isinstance(b, keygen.Commit | auxinfo.Commit)]
    opens = [b for b in bodies if isinstance(b, keygen.Open | auxinfo.Open)]
    if not commits or not opens:
        raise BlameRejected("the evidence lacks the culprit's commitment or opening")
    o = opens[0]
    again = (
        keygen.open_commitment(blame.ssid, culprit, o)
        if isinstance(o, keygen.Open)
        else auxinfo.commitment(blame.ssid, culprit, o)
    )
    if again == commits[0].V:
        raise BlameRejected("the opening matches the commitment")
    return Verdict(True, f"party {culprit}'s opening does not match its commitment")


def _constant_term(blame: Blame, culprit: int, reshare: auxinfo.Reshare) -> Verdict:
    """The culprit's signed opening deals F_j(0) ≠ λ_j·X_j of the old key."""
    opens = [
        b
        for b in (decode_any(m.body) for m in blame.messages if m.sender == culprit)
        if isinstance(b, auxinfo.Open)
    ]
    if not opens or not opens[0].F:
        raise BlameRejected("the evidence lacks the culprit's opening")
    if opens[0].F[0] == reshare.constant_point(culprit):
        raise BlameRejected("the dealt constant term is the right one")
    return Verdict(True, f"party {culprit} dealt a constant term other than λ_j·X_j")


def _values(value: Any) -> Iterator[Any]:
    """Every value nested in a decoded body (the body itself included)."""
    yield value
    if isinstance(value, Wire) and dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _values(getattr(value, f.name))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _values(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _values(v)
