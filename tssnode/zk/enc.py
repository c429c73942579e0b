"""Π^enc: Paillier encryption in range (CGGMP21 Fig. 14).

Statement: the prover's Paillier key N0, a ciphertext K, and the verifier's ring-Pedersen
parameters (N̂, s, t). The prover knows k ∈ ±2^ℓ and ρ with K = (1 + N0)^k · ρ^N0 mod N0².

    α ← ±2^(ℓ+ε), μ ← ±2^ℓ·N̂, r ← Z*_N0, γ ← ±2^(ℓ+ε)·N̂
    S = s^k t^μ mod N̂,  A = (1 + N0)^α r^N0 mod N0²,  C = s^α t^γ mod N̂
    e ← ±q (Fiat–Shamir over the statement and S, A, C)
    z1 = α + e·k,  z2 = r·ρ^e mod N0,  z3 = γ + e·μ
    verify: z1 ∈ ±2^(ℓ+ε)                       (Fig. 14, check 2)
            (1 + N0)^z1 z2^N0 = A·K^e mod N0²    (Fig. 14, check 1a)
            s^z1 t^z3 = C·S^e mod N̂              (Fig. 14, check 1b)
    and, before any of that, K ∈ Z*_{N0²}, A ∈ Z*_{N0²}, z2 ∈ Z*_N0, S, C ∈ Z*_N̂.
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
from tssnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from tssnode.crypto.pedersen import PedersenParams
from tssnode.zk.common import ProofContext, Trapdoor, require, ring_of

NAME = "enc"


@wire("tssnode.zk.enc.statement/1")
@dataclass(frozen=True)
class EncStatement(Wire):
    N0: PaillierPublicKey  # prover's Paillier key
    K: Big  # K = enc_0(k; ρ)
    aux: PedersenParams  # verifier's ring-Pedersen (N̂, s, t)


@dataclass(frozen=True, repr=False)
class EncWitness:
    k: mpz
    rho: mpz
    sk: PaillierSecretKey | None = None  # the prover's own key, when known, for CRT

    def __repr__(self) -> str:
        return "EncWitness(secret hidden)"


@wire("tssnode.zk.enc/1")
@dataclass(frozen=True)
class EncProof(Wire):
    S: Big
    A: Big
    C: Big
    z1: Big
    z2: Big
    z3: Big


def _challenge(ctx: ProofContext, stmt: EncStatement, S: mpz, A: mpz, C: mpz) -> mpz:
    t = ctx.transcript(NAME, stmt)
    t.append("S", S).append("A", A).append("C", C)
    return t.challenge_pm_q()


def prove(
    ctx: ProofContext, stmt: EncStatement, wit: EncWitness, rng: random.Random | None = None
) -> EncProof:
    p = ctx.params
    n0 = mpz(stmt.N0.n)
    nhat = mpz(stmt.aux.n)
    alpha = sample_pm(p.ell + p.eps, rng)
    mu = sample_pm_times(p.ell, nhat, rng)
    r = sample_unit(n0, rng)
    gamma = sample_pm_times(p.ell + p.eps, nhat, rng)
    S = stmt.aux.commit_secret(wit.k, mu)
    A = wit.sk.encrypt_with(alpha, r) if wit.sk is not None else stmt.N0.encrypt_with(alpha, r)
    C = stmt.aux.commit_secret(alpha, gamma)
    e = _challenge(ctx, stmt, S, A, C)
    z1 = alpha + e * wit.k
    z2 = r * powmod_secret(wit.rho, e, n0) % n0
    z3 = gamma + e * mu
    return EncProof(S, A, C, z1, z2, z3)


def verify(
    ctx: ProofContext, stmt: EncStatement, proof: EncProof, own: Trapdoor | None = None
) -> None:
    p = ctx.params
    pk, aux = stmt.N0, stmt.aux
    ring = ring_of(aux, own)  # ours: CRT with the trapdoor
    n0, n2, nhat = mpz(pk.n), pk.n2, mpz(aux.n)
    require(pk.is_ciphertext(stmt.K), NAME, "K not in Z*_{N0²}")
    require(pk.is_ciphertext(proof.A), NAME, "A not in Z*_{N0²}")
    require(is_unit(proof.z2, n0), NAME, "z2 not in Z*_N0")
    require(is_unit(proof.S, nhat) and is_unit(proof.C, nhat), NAME, "S or C not in Z*_N̂")
    require(in_pm(proof.z1, p.ell + p.eps), NAME, "z1 outside ±2^(ℓ+ε)")
    e = _challenge(ctx, stmt, proof.S, proof.A, proof.C)
    lhs = pk.encrypt_with(proof.z1, proof.z2)
    require(lhs == proof.A * powmod_public(stmt.K, e, n2) % n2, NAME, "enc(z1; z2) ≠ A·K^e")
    require(ring.verify(proof.z1, proof.z3, proof.C, proof.S, e), NAME, "s^z1 t^z3 ≠ C·S^e")
