"""Π^mul*: Paillier multiplication with group commitment (CGGMP21 App. C.6, Fig. 31 in the
revision PROTOCOL.md cites).

Used by sign's identification step: P_i shows that a ciphertext under its own key is x_i
times K_i, where X_i = x_i·G is its public share.

Statement: the prover's own Paillier key N0, ciphertexts C, D under N0, a point X, and
the verifier's ring-Pedersen parameters (N̂, s, t). The prover knows x ∈ ±2^ℓ and
ρ ∈ Z*_N0 with D = C^x · ρ^N0 mod N0² and X = x·G.

    α ← ±2^(ℓ+ε), r ← Z*_N0, γ ← ±2^(ℓ+ε)·N̂, m ← ±2^ℓ·N̂
    A = C^α · r^N0 mod N0²,  B_x = α·G,  E = s^α t^γ,  S = s^x t^m  (mod N̂)
    e ← ±q (Fiat–Shamir over the statement and A, B_x, E, S)
    z1 = α + e·x,  z2 = γ + e·m,  w = r·ρ^e mod N0
    verify: z1 ∈ ±2^(ℓ+ε)                    (Fig. 31, range check)
            C^z1 · w^N0 = A·D^e mod N0²      (Fig. 31, equality: Paillier)
            z1·G = B_x + e·X                 (Fig. 31, equality: group)
            s^z1 t^z2 = E·S^e mod N̂           (Fig. 31, equality: x's commitment)
    and, before any of that, C, D, A ∈ Z*_{N0²}, w ∈ Z*_N0, E, S ∈ Z*_N̂, X and B_x not the
    identity, and the statement's s, t ∈ Z*_N̂ (so a malformed statement is a ProofError).

m is drawn from ±2^ℓ·N̂ as in the paper (multi-party-sig, pkg/zk/mulstar, draws it from
±2^(ℓ+ε)·N̂, which is also sound but hides nothing more). multi-party-sig calls N0 the
"verifier" key; in the identification use it is the prover's own key, so the prover may
pass its secret key for CRT. Nonces and witness terms use constant-time exponentiation.
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
from tssnode.crypto.group import Point, base_mul
from tssnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from tssnode.crypto.pedersen import PedersenParams
from tssnode.zk.common import ProofContext, Trapdoor, require, ring_of

NAME = "mulstar"


@wire("tssnode.zk.mulstar.statement/1")
@dataclass(frozen=True)
class MulStarStatement(Wire):
    N0: PaillierPublicKey  # prover's own Paillier key, C and D live here
    C: Big  # any ciphertext under N0
    D: Big  # D = C^x · ρ^N0 mod N0²
    X: Point  # X = x·G
    aux: PedersenParams  # verifier's ring-Pedersen (N̂, s, t)


@dataclass(frozen=True, repr=False)
class MulStarWitness:
    x: mpz
    rho: mpz  # nonce of D
    sk: PaillierSecretKey | None = None  # the prover's own key, when known, for CRT

    def __repr__(self) -> str:
        return "MulStarWitness(secret hidden)"


@wire("tssnode.zk.mulstar/1")
@dataclass(frozen=True)
class MulStarProof(Wire):
    A: Big  # C^α · r^N0 mod N0²
    B_x: Point  # α·G
    E: Big  # s^α t^γ mod N̂
    S: Big  # s^x t^m mod N̂
    z1: Big  # α + e·x
    z2: Big  # γ + e·m
    w: Big  # r·ρ^e mod N0


def _challenge(
    ctx: ProofContext, stmt: MulStarStatement, A: mpz, B_x: Point, E: mpz, S: mpz
) -> mpz:
    t = ctx.transcript(NAME, stmt)
    t.append("A", A).append("B_x", B_x).append("E", E).append("S", S)
    return t.challenge_pm_q()


def prove(
    ctx: ProofContext,
    stmt: MulStarStatement,
    wit: MulStarWitness,
    rng: random.Random | None = None,
) -> MulStarProof:
    p = ctx.params
    pk, sk, aux = stmt.N0, wit.sk, stmt.aux
    n0, n0_2, nhat = mpz(pk.n), pk.n2, mpz(aux.n)
    alpha = sample_pm(p.ell + p.eps, rng)
    r = sample_unit(n0, rng)
    gamma = sample_pm_times(p.ell + p.eps, nhat, rng)
    m = sample_pm_times(p.ell, nhat, rng)
    if sk is not None:
        A = sk.crt_n2.pow(stmt.C, alpha, secret=True) * sk.crt_n2.pow(r, n0, secret=False) % n0_2
    else:
        A = powmod_secret(stmt.C, alpha, n0_2) * powmod_public(r, n0, n0_2) % n0_2
    B_x = base_mul(int(alpha))
    E = aux.commit_secret(alpha, gamma)
    S = aux.commit_secret(wit.x, m)
    e = _challenge(ctx, stmt, A, B_x, E, S)
    z1 = alpha + e * wit.x
    z2 = gamma + e * m
    if sk is not None:
        w = r * sk.crt_n.pow(wit.rho, e, secret=True) % n0
    else:
        w = r * powmod_secret(wit.rho, e, n0) % n0
    return MulStarProof(A, B_x, E, S, z1, z2, w)


def verify(
    ctx: ProofContext, stmt: MulStarStatement, proof: MulStarProof, own: Trapdoor | None = None
) -> None:
    p = ctx.params
    pk, aux = stmt.N0, stmt.aux
    ring = ring_of(aux, own)  # ours: CRT with the trapdoor
    n0, n0_2, nhat = mpz(pk.n), pk.n2, mpz(aux.n)
    require(pk.is_ciphertext(stmt.C), NAME, "C not in Z*_{N0²}")
    require(pk.is_ciphertext(stmt.D), NAME, "D not in Z*_{N0²}")
    require(is_unit(aux.s, nhat) and is_unit(aux.t, nhat), NAME, "s or t not in Z*_N̂")
    require(not stmt.X.is_identity, NAME, "X is the identity")
    require(pk.is_ciphertext(proof.A), NAME, "A not in Z*_{N0²}")
    require(not proof.B_x.is_identity, NAME, "B_x is the identity")
    require(is_unit(proof.w, n0), NAME, "w not in Z*_N0")
    require(is_unit(proof.E, nhat) and is_unit(proof.S, nhat), NAME, "E or S not in Z*_N̂")
    require(in_pm(proof.z1, p.ell + p.eps), NAME, "z1 outside ±2^(ℓ+ε)")
    e = _challenge(ctx, stmt, proof.A, proof.B_x, proof.E, proof.S)
    lhs = powmod_public(stmt.C, proof.z1, n0_2) * powmod_public(proof.w, n0, n0_2) % n0_2
    require(lhs == proof.A * powmod_public(stmt.D, e, n0_2) % n0_2, NAME, "C^z1 w^N0 ≠ A·D^e")
    require(base_mul(int(proof.z1)) == proof.B_x + stmt.X * int(e), NAME, "z1·G ≠ B_x + e·X")
    require(ring.verify(proof.z1, proof.z2, proof.E, proof.S, e), NAME, "s^z1 t^z2 ≠ E·S^e")
