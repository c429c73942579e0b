"""Π^log*: knowledge of exponent vs Paillier encryption (CGGMP21 Fig. 25).

Statement: the prover's Paillier key N0, a ciphertext C, a base point g (the generator in
keygen, Γ in presign round 3), X = x·g, and the verifier's ring-Pedersen parameters
(N̂, s, t). The prover knows x ∈ ±2^ℓ and ρ with C = (1 + N0)^x · ρ^N0 mod N0² and X = x·g.

    α ← ±2^(ℓ+ε), μ ← ±2^ℓ·N̂, r ← Z*_N0, γ ← ±2^(ℓ+ε)·N̂
    S = s^x t^μ mod N̂,  A = (1 + N0)^α r^N0 mod N0²,  Y = α·g,  D = s^α t^γ mod N̂
    e ← ±q (Fiat–Shamir over the statement and S, A, Y, D)
    z1 = α + e·x,  z2 = r·ρ^e mod N0,  z3 = γ + e·μ
    verify: z1 ∈ ±2^(ℓ+ε)                       (Fig. 25, check 2)
            (1 + N0)^z1 z2^N0 = A·C^e mod N0²    (Fig. 25, check 1a)
            z1·g = Y + e·X                       (Fig. 25, check 1b)
            s^z1 t^z3 = D·S^e mod N̂              (Fig. 25, check 1c)
    and, before any of that, g is not the identity, C ∈ Z*_{N0²}, A ∈ Z*_{N0²},
    z2 ∈ Z*_N0, S, D ∈ Z*_N̂.

The base point is part of the statement and of the challenge hash: a proof made for g
says nothing about any other base. A g equal to the identity would make check 1b hold for
every x, so it is refused.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gmpy2 import mpz

from tssnode.crypto.arith import (
    in_pm,
    is_unit,
    powmod_public,
    powmod_secret,
    sample_pm,
    sample_pm_times,
    sample_unit,
)
from tssnode.crypto.encoding import Big, Wire, wire
from tssnode.crypto.group import Point
from tssnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from tssnode.crypto.pedersen import PedersenParams
from tssnode.zk.common import ProofContext, Trapdoor, require, ring_of

NAME = "logstar"


@wire("tssnode.zk.logstar.statement/1")
@dataclass(frozen=True)
class LogStarStatement(Wire):
    N0: PaillierPublicKey  # prover's Paillier key
    C: Big  # C = enc_0(x; ρ)
    X: Point  # X = x·g
    g: Point  # base point: G in keygen, Γ in presign
    aux: PedersenParams  # verifier's ring-Pedersen (N̂, s, t)


@dataclass(frozen=True, repr=False)
class LogStarWitness:
    x: mpz
    rho: mpz
    sk: PaillierSecretKey | None = None  # the prover's own key, when known, for CRT

    def __repr__(self) -> str:
        return "LogStarWitness(secret hidden)"


@wire("tssnode.zk.logstar/1")
@dataclass(frozen=True)
class LogStarProof(Wire):
    S: Big  # S = s^x t^μ
    A: Big  # A = enc_0(α; r)
    Y: Point  # Y = α·g
    D: Big  # D = s^α t^γ
    z1: Big  # z1 = α + e·x
    z2: Big  # z2 = r·ρ^e mod N0
    z3: Big  # z3 = γ + e·μ


def _challenge(ctx: ProofContext, stmt: LogStarStatement, S: mpz, A: mpz, Y: Point, D: mpz) -> mpz:
    t = ctx.transcript(NAME, stmt)
    t.append("S", S).append("A", A).append("Y", Y).append("D", D)
    return t.challenge_pm_q()


def prove(
    ctx: ProofContext,
    stmt: LogStarStatement,
    wit: LogStarWitness,
    rng: random.Random | None = None,
) -> LogStarProof:
    p = ctx.params
    n0 = mpz(stmt.N0.n)
    nhat = mpz(stmt.aux.n)
    alpha = sample_pm(p.ell + p.eps, rng)
    mu = sample_pm_times(p.ell, nhat, rng)
    r = sample_unit(n0, rng)
    gamma = sample_pm_times(p.ell + p.eps, nhat, rng)
    S = stmt.aux.commit_secret(wit.x, mu)
    A = wit.sk.encrypt_with(alpha, r) if wit.sk is not None else stmt.N0.encrypt_with(alpha, r)
    Y = stmt.g * int(alpha)
    D = stmt.aux.commit_secret(alpha, gamma)
    e = _challenge(ctx, stmt, S, A, Y, D)
    z1 = alpha + e * wit.x
    z2 = r * powmod_secret(wit.rho, e, n0) % n0
    z3 = gamma + e * mu
    return LogStarProof(S, A, Y, D, z1, z2, z3)


def verify(
    ctx: ProofContext, stmt: LogStarStatement, proof: LogStarProof, own: Trapdoor | None = None
) -> None:
    p = ctx.params
    pk, aux = stmt.N0, stmt.aux
    ring = ring_of(aux, own)  # ours: CRT with the trapdoor
    n0, n2, nhat = mpz(pk.n), pk.n2, mpz(aux.n)
    require(not stmt.g.is_identity, NAME, "g is the identity")
    require(pk.is_ciphertext(stmt.C), NAME, "C not in Z*_{N0²}")
    require(pk.is_ciphertext(proof.A), NAME, "A not in Z*_{N0²}")
    require(is_unit(proof.z2, n0), NAME, "z2 not in Z*_N0")
    require(is_unit(proof.S, nhat) and is_unit(proof.D, nhat), NAME, "S or D not in Z*_N̂")
    require(in_pm(proof.z1, p.ell + p.eps), NAME, "z1 outside ±2^(ℓ+ε)")
    e = _challenge(ctx, stmt, proof.S, proof.A, proof.Y, proof.D)
    lhs = pk.encrypt_with(proof.z1, proof.z2)
    require(lhs == proof.A * powmod_public(stmt.C, e, n2) % n2, NAME, "enc(z1; z2) ≠ A·C^e")
    require(stmt.g * int(proof.z1) == proof.Y + stmt.X * int(e), NAME, "z1·g ≠ Y + e·X")
    require(ring.verify(proof.z1, proof.z3, proof.D, proof.S, e), NAME, "s^z1 t^z3 ≠ D·S^e")
