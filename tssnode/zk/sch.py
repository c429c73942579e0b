"""Π^sch: knowledge of x with X = x·G (CGGMP21 Fig. 22, Schnorr proof of knowledge).

Keygen (Fig. 5) sends the first message A before the challenge's inputs are known, so the
prover can draw the nonce first (`commit`) and answer later (`prove(..., nonce=...)`).

    A = α·G            α ← Z_q
    e = H(ssid, i, X, A)
    z = α + e·x mod q
    verify: z·G = A + e·X
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tssnode.crypto.arith import sample_scalar
from tssnode.crypto.encoding import Scalar, Wire, wire
from tssnode.crypto.group import Point, Q, base_mul
from tssnode.zk.common import ProofContext, Trapdoor, require

NAME = "sch"


@wire("tssnode.zk.sch.statement/1")
@dataclass(frozen=True)
class SchStatement(Wire):
    X: Point  # X = x·G


@dataclass(frozen=True, repr=False)
class SchWitness:
    x: int

    def __repr__(self) -> str:
        return "SchWitness(secret hidden)"


@dataclass(frozen=True, repr=False)
class SchNonce:
    """The prover's first-message secret α and its public commitment A = α·G."""

    alpha: int
    A: Point

    def __repr__(self) -> str:
        return f"SchNonce(A={self.A!r}, alpha hidden)"


@wire("tssnode.zk.sch/1")
@dataclass(frozen=True)
class SchProof(Wire):
    A: Point
    z: Scalar


def commit(rng: random.Random | None = None) -> SchNonce:
    alpha = sample_scalar(rng)
    return SchNonce(alpha, base_mul(alpha))


def _challenge(ctx: ProofContext, stmt: SchStatement, A: Point) -> int:
    t = ctx.transcript(NAME, stmt)
    t.append("A", A)
    return t.challenge_scalar()


def prove(
    ctx: ProofContext,
    stmt: SchStatement,
    wit: SchWitness,
    rng: random.Random | None = None,
    *,
    nonce: SchNonce | None = None,
) -> SchProof:
    nonce = nonce or commit(rng)
    e = _challenge(ctx, stmt, nonce.A)
    return SchProof(nonce.A, (nonce.alpha + e * wit.x) % Q)


def verify(
    ctx: ProofContext, stmt: SchStatement, proof: SchProof, own: Trapdoor | None = None
) -> None:
    require(not stmt.X.is_identity, NAME, "X is the identity")
    require(0 <= proof.z < Q, NAME, "z out of range")
    e = _challenge(ctx, stmt, proof.A)
    require(base_mul(proof.z) == proof.A + stmt.X * e, NAME, "z·G ≠ A + e·X")
