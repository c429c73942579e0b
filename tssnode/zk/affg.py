"""Π^aff-g: Paillier affine operation with group commitment in range (CGGMP21 Fig. 15).

Statement: the verifier-side Paillier key N0 (in presign, the MtA receiver's key), the
prover's own Paillier key N1, ciphertexts C, D under N0 and Y under N1, a point X, and the
verifier's ring-Pedersen parameters (N̂, s, t). The prover knows x ∈ ±2^ℓ, y ∈ ±2^ℓ',
ρ ∈ Z*_N0 and ρ_y ∈ Z*_N1 with

    D = C^x · (1 + N0)^y · ρ^N0 mod N0²,   Y = (1 + N1)^y · ρ_y^N1 mod N1²,   X = x·G.

    α ← ±2^(ℓ+ε), β ← ±2^(ℓ'+ε), r ← Z*_N0, r_y ← Z*_N1,
    γ, δ ← ±2^(ℓ+ε)·N̂, m, μ ← ±2^ℓ·N̂
    A = C^α · (1 + N0)^β · r^N0 mod N0²,  B_x = α·G,  B_y = (1 + N1)^β · r_y^N1 mod N1²
    E = s^α t^γ,  S = s^x t^m,  F = s^β t^δ,  T = s^y t^μ  (mod N̂)
    e ← ±q (Fiat–Shamir over the statement and A, B_x, B_y, E, S, F, T)
    z1 = α + e·x,  z2 = β + e·y,  z3 = γ + e·m,  z4 = δ + e·μ
    w = r·ρ^e mod N0,  w_y = r_y·ρ_y^e mod N1
    verify: z1 ∈ ±2^(ℓ+ε)                                  (Fig. 15, range check on z1)
            z2 ∈ ±2^(ℓ'+ε)                                 (Fig. 15, range check on z2)
            C^z1 · (1 + N0)^z2 · w^N0 = A·D^e mod N0²      (Fig. 15, equality: Paillier N0)
            z1·G = B_x + e·X                               (Fig. 15, equality: group)
            (1 + N1)^z2 · w_y^N1 = B_y·Y^e mod N1²         (Fig. 15, equality: Paillier N1)
            s^z1 t^z3 = E·S^e mod N̂                         (Fig. 15, equality: x's commitment)
            s^z2 t^z4 = F·T^e mod N̂                         (Fig. 15, equality: y's commitment)
    and, before any of that, C, D, A ∈ Z*_{N0²}; Y, B_y ∈ Z*_{N1²}; w ∈ Z*_N0;
    w_y ∈ Z*_N1; E, S, F, T ∈ Z*_N̂; X and B_x not the identity. The statement's s, t are
    also checked to be units mod N̂ (aux-info validates them; the check keeps `verify` from
    raising anything but ProofError on a malformed statement).

Which key is which, and the sign of y. Everything about C and D (A, w, the first equality)
lives under N0, the key of the party that will decrypt D; everything about Y (B_y, w_y) lives
under N1, the prover's own key, so only w_y and B_y can use the prover's CRT. The statement
is Fig. 15's exactly: the same y is added into D and encrypted in Y. Presign (Fig. 7) writes
D_{j,i} = (γ_i ⊙ K_j) ⊕ enc_j(−β_{i,j}) but F_{j,i} = enc_i(β_{i,j}), which does not fit
Fig. 15 as printed. multi-party-sig (internal/mta) resolves it by proving with y = −β and
sending F = enc_i(−β); this module expects the same: the caller passes y = −β, Y = enc_1(y),
and keeps β = −y, so the receiver's α = dec_0(D) = x·k + y satisfies α + β = x·k. (synedrion
keeps F = enc_i(β) and negates y, w_y's exponent and Y^e inside the proof instead.) The
checked range of y is symmetric, so y = −β ∈ ±2^ℓ' whenever β is.

Beyond multi-party-sig's verifier, this one also checks that E, S, F, T (and s, t) are units
mod N̂. Every exponent that depends on the witness or on the prover's nonces (α, β, γ, δ,
x, y, m, μ) goes through the constant-time path; the verifier's exponents are all public.
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

NAME = "affg"


@wire("tssnode.zk.affg.statement/1")
@dataclass(frozen=True)
class AffgStatement(Wire):
    N0: PaillierPublicKey  # verifier-side key (presign: the receiver's), C and D live here
    N1: PaillierPublicKey  # prover's own Paillier key, Y lives here
    C: Big  # C = enc_0(k) for some k the prover need not know
    D: Big  # D = C^x · (1 + N0)^y · ρ^N0 mod N0²
    Y: Big  # Y = enc_1(y; ρ_y)
    X: Point  # X = x·G
    aux: PedersenParams  # verifier's ring-Pedersen (N̂, s, t)


@dataclass(frozen=True, repr=False)
class AffgWitness:
    x: mpz
    y: mpz
    rho: mpz  # nonce of D under N0
    rho_y: mpz  # nonce of Y under N1
    sk: PaillierSecretKey | None = None  # the prover's own key for N1, when known, for CRT

    def __repr__(self) -> str:
        return "AffgWitness(secret hidden)"


@wire("tssnode.zk.affg/1")
@dataclass(frozen=True)
class AffgProof(Wire):
    A: Big  # C^α · (1 + N0)^β · r^N0 mod N0²
    B_x: Point  # α·G
    B_y: Big  # enc_1(β; r_y)
    E: Big  # s^α t^γ mod N̂
    S: Big  # s^x t^m mod N̂
    F: Big  # s^β t^δ mod N̂
    T: Big  # s^y t^μ mod N̂
    z1: Big  # α + e·x
    z2: Big  # β + e·y
    z3: Big  # γ + e·m
    z4: Big  # δ + e·μ
    w: Big  # r·ρ^e mod N0
    w_y: Big  # r_y·ρ_y^e mod N1


def _challenge(
    ctx: ProofContext,
    stmt: AffgStatement,
    A: mpz,
    B_x: Point,
    B_y: mpz,
    E: mpz,
    S: mpz,
    F: mpz,
    T: mpz,
) -> mpz:
    t = ctx.transcript(NAME, stmt)
    t.append("A", A).append("B_x", B_x).append("B_y", B_y)
    t.append("E", E).append("S", S).append("F", F).append("T", T)
    return t.challenge_pm_q()


def prove(
    ctx: ProofContext, stmt: AffgStatement, wit: AffgWitness, rng: random.Random | None = None
) -> AffgProof:
    p = ctx.params
    pk0, pk1, aux = stmt.N0, stmt.N1, stmt.aux
    n0, n1, nhat = mpz(pk0.n), mpz(pk1.n), mpz(aux.n)
    sk = wit.sk
    alpha = sample_pm(p.ell + p.eps, rng)
    beta = sample_pm(p.ell_prime + p.eps, rng)
    r = sample_unit(n0, rng)
    r_y = sample_unit(n1, rng)
    gamma = sample_pm_times(p.ell + p.eps, nhat, rng)
    m = sample_pm_times(p.ell, nhat, rng)
    delta = sample_pm_times(p.ell + p.eps, nhat, rng)
    mu = sample_pm_times(p.ell, nhat, rng)

    A = powmod_secret(stmt.C, alpha, pk0.n2) * pk0.encrypt_with(beta, r) % pk0.n2
    B_x = base_mul(int(alpha))
    B_y = sk.encrypt_with(beta, r_y) if sk is not None else pk1.encrypt_with(beta, r_y)
    E = aux.commit_secret(alpha, gamma)
    S = aux.commit_secret(wit.x, m)
    F = aux.commit_secret(beta, delta)
    T = aux.commit_secret(wit.y, mu)
    e = _challenge(ctx, stmt, A, B_x, B_y, E, S, F, T)

    z1 = alpha + e * wit.x
    z2 = beta + e * wit.y
    z3 = gamma + e * m
    z4 = delta + e * mu
    w = r * powmod_secret(wit.rho, e, n0) % n0
    if sk is not None:
        rho_y_e = sk.crt_n.pow(wit.rho_y, e, secret=True)
    else:
        rho_y_e = powmod_secret(wit.rho_y, e, n1)
    w_y = r_y * rho_y_e % n1
    return AffgProof(A, B_x, B_y, E, S, F, T, z1, z2, z3, z4, w, w_y)


def verify(
    ctx: ProofContext, stmt: AffgStatement, proof: AffgProof, own: Trapdoor | None = None
) -> None:
    p = ctx.params
    pk0, pk1, aux = stmt.N0, stmt.N1, stmt.aux
    ring = ring_of(aux, own)  # ours: CRT with the trapdoor
    n0, n1, nhat = mpz(pk0.n), mpz(pk1.n), mpz(aux.n)
    n0_2, n1_2 = pk0.n2, pk1.n2
    require(pk0.is_ciphertext(stmt.C), NAME, "C not in Z*_{N0²}")
    require(pk0.is_ciphertext(stmt.D), NAME, "D not in Z*_{N0²}")
    require(pk1.is_ciphertext(stmt.Y), NAME, "Y not in Z*_{N1²}")
    require(is_unit(aux.s, nhat) and is_unit(aux.t, nhat), NAME, "s or t not in Z*_N̂")
    require(not stmt.X.is_identity, NAME, "X is the identity")
    require(pk0.is_ciphertext(proof.A), NAME, "A not in Z*_{N0²}")
    require(pk1.is_ciphertext(proof.B_y), NAME, "B_y not in Z*_{N1²}")
    require(not proof.B_x.is_identity, NAME, "B_x is the identity")
    require(is_unit(proof.w, n0), NAME, "w not in Z*_N0")
    require(is_unit(proof.w_y, n1), NAME, "w_y not in Z*_N1")
    require(
        all(is_unit(v, nhat) for v in (proof.E, proof.S, proof.F, proof.T)),
        NAME,
        "E, S, F or T not in Z*_N̂",
    )
    require(in_pm(proof.z1, p.ell + p.eps), NAME, "z1 outside ±2^(ℓ+ε)")
    require(in_pm(proof.z2, p.ell_prime + p.eps), NAME, "z2 outside ±2^(ℓ'+ε)")
    e = _challenge(ctx, stmt, proof.A, proof.B_x, proof.B_y, proof.E, proof.S, proof.F, proof.T)
    sk0 = None if own is None else own.paillier_for(pk0)
    if sk0 is None:
        lhs0 = powmod_public(stmt.C, proof.z1, n0_2) * pk0.encrypt_with(proof.z2, proof.w) % n0_2
    else:  # N0 is ours: CRT mod p² and q² (C is a unit: checked above)
        lhs0 = sk0.crt_n2.pow(stmt.C, proof.z1, secret=True) * sk0.encrypt_with(proof.z2, proof.w)
        lhs0 %= n0_2
    rhs0 = proof.A * powmod_public(stmt.D, e, n0_2) % n0_2
    require(lhs0 == rhs0, NAME, "C^z1 (1+N0)^z2 w^N0 ≠ A·D^e")
    require(base_mul(int(proof.z1)) == proof.B_x + stmt.X * int(e), NAME, "z1·G ≠ B_x + e·X")
    lhs1 = pk1.encrypt_with(proof.z2, proof.w_y)
    rhs1 = proof.B_y * powmod_public(stmt.Y, e, n1_2) % n1_2
    require(lhs1 == rhs1, NAME, "enc_1(z2; w_y) ≠ B_y·Y^e")
    require(ring.verify(proof.z1, proof.z3, proof.E, proof.S, e), NAME, "s^z1 t^z3 ≠ E·S^e")
    require(ring.verify(proof.z2, proof.z4, proof.F, proof.T, e), NAME, "s^z2 t^z4 ≠ F·T^e")
