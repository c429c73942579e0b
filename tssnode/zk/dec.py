"""Π^dec: a Paillier ciphertext decrypts to a claimed value modulo q (CGGMP21 appendix,
"Paillier decryption modulo q"; the identification steps of presign and sign use it).

Statement: the prover's Paillier key N0, a ciphertext C, the claimed x ∈ Z_q, a public
plaintext bound y_bits, and the verifier's ring-Pedersen parameters (N̂, s, t). The prover
knows y = dec_0(C) (as a signed integer, |y| ≤ 2^y_bits) and ρ with
C = (1 + N0)^y · ρ^N0 mod N0², and claims x ≡ y (mod q).

    α ← ±2^M, μ ← ±2^y_bits·N̂, ν ← ±2^M·N̂, r ← Z*_N0     with M = y_bits + ℓ + 128
    S = s^y t^μ mod N̂,  T = s^α t^ν mod N̂,  A = (1 + N0)^α r^N0 mod N0²,  γ = α mod q
    e ← ±q (Fiat–Shamir over the statement and S, T, A, γ)
    z1 = α + e·y,  z2 = ν + e·μ,  w = r·ρ^e mod N0
    verify: z1 ∈ ±2^M                            (addition, see below)
            (1 + N0)^z1 w^N0 = A·C^e mod N0²      (paper, check 1)
            z1 ≡ γ + e·x (mod q)                 (paper, check 2)
            s^z1 t^z2 = T·S^e mod N̂              (paper, check 3)
    and, before any of that, C ∈ Z*_{N0²}, A ∈ Z*_{N0²}, w ∈ Z*_N0, S, T ∈ Z*_N̂,
    γ, x ∈ [0, q), and 0 ≤ y_bits with M + 3 < |N0| (bits).

DEVIATION: the paper samples α ← ±2^(ℓ+ε), μ ← ±2^ℓ·N̂, ν ← ±2^(ℓ+ε)·N̂, as if y were in
±2^ℓ. The plaintexts the identification steps open are far larger (sums that include
products k·γ of about 2ℓ bits and MtA masks β ∈ ±2^ℓ'), and with α ← ±2^(ℓ+ε) the
response z1 = α + e·y would hand the verifier the high bits of e·y, hence of y. The
masks are sized from the public bound y_bits instead: α ← ±2^(y_bits+ℓ+128) hides e·y
(|e·y| < 2^(y_bits+ℓ), since |e| < q ≤ 2^ℓ) with statistical distance 2^−128. The slack
is 128 bits rather than the paper's ε − ℓ because sign identification opens plaintexts of
about ℓ + ℓ' bits and those, masked, must stay below N0/8 (M + 3 < |N0|).
multi-party-sig (pkg/zk/dec) keeps ±2^(ℓ+ε) and has no range check at all.

Addition (not in the paper): the range check on z1 and the bound on y_bits. Without
them the proof shows only that some integer y* ≡ dec_0(C) (mod N0) has y* ≡ x (mod q);
with them the extracted y* satisfies |y*| ≤ 2^(M+1) ≤ N0/4, so y* is the centred plaintext
itself and x ≡ dec_0(C) (mod q). An honest z1 leaves the range with probability below
2^−128.
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
from tssnode.crypto.encoding import Big, Scalar, Wire, wire
from tssnode.crypto.group import Q
from tssnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from tssnode.crypto.pedersen import PedersenParams
from tssnode.zk.common import ProofContext, require

NAME = "dec"

#: Statistical slack (bits) of the masks over |e·y|.
SLACK = 128


def mask_bits(ell: int, y_bits: int) -> int:
    """M = y_bits + ℓ + 128: the bit size of α and of the z1 range."""
    return y_bits + ell + SLACK


def max_plaintext_bits(ell: int, modulus_bits: int) -> int:
    """The largest y_bits a modulus of `modulus_bits` bits supports (M + 3 < |N0|)."""
    return modulus_bits - 4 - ell - SLACK


@wire("tssnode.zk.dec.statement/1")
@dataclass(frozen=True)
class DecStatement(Wire):
    N0: PaillierPublicKey  # prover's Paillier key
    C: Big  # C = enc_0(y; ρ)
    x: Scalar  # claimed x ≡ dec_0(C) (mod q)
    y_bits: int  # public plaintext bound: |dec_0(C)| ≤ 2^y_bits
    aux: PedersenParams  # verifier's ring-Pedersen (N̂, s, t)


@dataclass(frozen=True, repr=False)
class DecWitness:
    y: mpz  # dec_0(C) as a signed integer
    rho: mpz
    sk: PaillierSecretKey | None = None  # the prover's own key, when known, for CRT

    def __repr__(self) -> str:
        return "DecWitness(secret hidden)"


@wire("tssnode.zk.dec/1")
@dataclass(frozen=True)
class DecProof(Wire):
    S: Big  # S = s^y t^μ
    T: Big  # T = s^α t^ν
    A: Big  # A = enc_0(α; r)
    gamma: Scalar  # γ = α mod q
    z1: Big  # z1 = α + e·y
    z2: Big  # z2 = ν + e·μ
    w: Big  # w = r·ρ^e mod N0


def _challenge(ctx: ProofContext, stmt: DecStatement, S: mpz, T: mpz, A: mpz, gamma: int) -> mpz:
    t = ctx.transcript(NAME, stmt)
    t.append("S", S).append("T", T).append("A", A).append("gamma", gamma)
    return t.challenge_pm_q()


def prove(
    ctx: ProofContext, stmt: DecStatement, wit: DecWitness, rng: random.Random | None = None
) -> DecProof:
    p = ctx.params
    n0 = mpz(stmt.N0.n)
    nhat = mpz(stmt.aux.n)
    # DEVIATION (see the module docstring): masks sized from y_bits.
    m_bits = mask_bits(p.ell, stmt.y_bits)
    alpha = sample_pm(m_bits, rng)
    mu = sample_pm_times(stmt.y_bits, nhat, rng)
    nu = sample_pm_times(m_bits, nhat, rng)
    r = sample_unit(n0, rng)
    S = stmt.aux.commit_secret(wit.y, mu)
    T = stmt.aux.commit_secret(alpha, nu)
    A = wit.sk.encrypt_with(alpha, r) if wit.sk is not None else stmt.N0.encrypt_with(alpha, r)
    gamma = int(alpha % Q)
    e = _challenge(ctx, stmt, S, T, A, gamma)
    z1 = alpha + e * wit.y
    z2 = nu + e * mu
    w = r * powmod_secret(wit.rho, e, n0) % n0
    return DecProof(S, T, A, gamma, z1, z2, w)


def verify(ctx: ProofContext, stmt: DecStatement, proof: DecProof) -> None:
    p = ctx.params
    pk, aux = stmt.N0, stmt.aux
    n0, n2, nhat = mpz(pk.n), pk.n2, mpz(aux.n)
    m_bits = mask_bits(p.ell, stmt.y_bits)
    require(
        stmt.y_bits >= 0 and m_bits + 3 < n0.bit_length(),
        NAME,
        "y_bits out of range for N0",
    )
    require(0 <= stmt.x < Q, NAME, "x not in [0, q)")
    require(pk.is_ciphertext(stmt.C), NAME, "C not in Z*_{N0²}")
    require(pk.is_ciphertext(proof.A), NAME, "A not in Z*_{N0²}")
    require(is_unit(proof.w, n0), NAME, "w not in Z*_N0")
    require(is_unit(proof.S, nhat) and is_unit(proof.T, nhat), NAME, "S or T not in Z*_N̂")
    require(0 <= proof.gamma < Q, NAME, "γ not in [0, q)")
    require(in_pm(proof.z1, m_bits), NAME, "z1 outside ±2^(y_bits+ℓ+128)")
    e = _challenge(ctx, stmt, proof.S, proof.T, proof.A, proof.gamma)
    lhs = pk.encrypt_with(proof.z1, proof.w)
    require(lhs == proof.A * powmod_public(stmt.C, e, n2) % n2, NAME, "enc(z1; w) ≠ A·C^e")
    require((proof.z1 - proof.gamma - e * stmt.x) % Q == 0, NAME, "z1 ≢ γ + e·x (mod q)")
    require(aux.verify(proof.z1, proof.z2, proof.T, proof.S, e), NAME, "s^z1 t^z2 ≠ T·S^e")
