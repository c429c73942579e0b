"""Π^fac: the prover's Paillier modulus has no small factor (CGGMP21 Fig. 28).

Statement: the prover's Paillier modulus N0 and the VERIFIER's ring-Pedersen parameters
(N̂, s, t). The prover knows p, q with N0 = p·q. Aux-info (Fig. 6) sends one proof per
recipient, each built with that recipient's (N̂, s, t): verified against anyone else's
parameters it is worthless, because the prover could know their trapdoor.

    α, β ← ±2^(ℓ+ε)·√N0,  μ, ν ← ±2^ℓ·N̂,  σ ← ±2^ℓ·N0·N̂,
    r ← ±2^(ℓ+ε)·N0·N̂,    x, y ← ±2^(ℓ+ε)·N̂
    P = s^p t^μ,  Q = s^q t^ν,  A = s^α t^x,  B = s^β t^y,  T = Q^α t^r   (mod N̂)
    e ← ±q (Fiat–Shamir over the statement and P, Q, A, B, T, σ)
    σ̂ = σ − ν·p
    z1 = α + e·p,  z2 = β + e·q,  w1 = x + e·μ,  w2 = y + e·ν,  v = r + e·σ̂
    verify, with R = s^N0 t^σ mod N̂:
            z1, z2 ∈ ±2^(ℓ+ε)·√N0                 (Fig. 28, range check)
            s^z1 t^w1 = A·P^e mod N̂              (Fig. 28, check 1)
            s^z2 t^w2 = B·Q^e mod N̂              (Fig. 28, check 2)
            Q^z1 t^v  = T·R^e mod N̂              (Fig. 28, check 3)
    and, before any of that, P, Q, A, B, T ∈ Z*_N̂.

Check 3 holds because Q^p = s^(pq) t^(νp) = s^N0 t^(νp), so R = Q^p·t^σ̂. It ties the
exponent of s in Q^p to N0, which with checks 1-2 makes p·q = N0 for the p, q bound by the
range check.

σ: the prover sends σ with its first message, and the verifier builds R = s^N0·t^σ from
it. This is the statement of Fig. 28 as taurusgroup/multi-party-sig (pkg/zk/fac) and
entropyxyz/synedrion implement it: σ is a field of the proof. Since σ is public, t^σ adds
nothing; the LFDT-Lockness paillier-zk crate (the cggmp24 revision) drops it and checks
Q^z1 t^v = T·(s^N0)^e with v = r − e·ν·p, which is the same proof. We keep the paper's
form, and σ enters the challenge hash like every other first-message value
(multi-party-sig leaves it out of its hash, which lets anyone shift σ and v together).

√N0 is ⌈√N0⌉ (the paper's authors accept either bound). With z1 ∈ ±2^(ℓ+ε)·√N0 the
extracted p, q are below about 2^(ℓ+ε)·√N0, so each is above about N0 / (2^(ℓ+ε)·√N0),
which is 2^ℓ exactly when N0 has 4ℓ + 2ε bits: 2048 at the standard tier. At the
insecure-test tier (1536-bit N0, ℓ + ε = 768) that bound exceeds N0 itself (2^768 > √N0)
and the proof shows nothing about factor sizes; the small-factor tests run at the
standard tier, and at 1024 bits with ℓ and ε halved to meet 4ℓ + 2ε. An honest z1 leaves
the range when |α| lies within |e·p| ≤ q·p of its bound, probability about 2^(−ε)
(multi-party-sig widens the check by one bit; we keep the paper's bound).

Every exponent in the prover's commitments is secret (p, q and their masks), so they all
go through `powmod_secret`; the prover does not know N̂'s factorisation and cannot use CRT.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gmpy2 import mpz

from tssnode.crypto.arith import (
    in_pm_times,
    is_unit,
    isqrt_ceil,
    powmod_public,
    powmod_secret,
    sample_pm_times,
)
from tssnode.crypto.encoding import Big, Wire, wire
from tssnode.crypto.paillier import PaillierPublicKey
from tssnode.crypto.pedersen import PedersenParams
from tssnode.zk.common import ProofContext, Trapdoor, require, ring_of

NAME = "fac"


@wire("tssnode.zk.fac.statement/1")
@dataclass(frozen=True)
class FacStatement(Wire):
    N0: PaillierPublicKey  # prover's Paillier modulus N0 = p·q
    aux: PedersenParams  # VERIFIER's ring-Pedersen (N̂, s, t)


@dataclass(frozen=True, repr=False)
class FacWitness:
    p: mpz
    q: mpz

    def __repr__(self) -> str:
        return "FacWitness(secret hidden)"


@wire("tssnode.zk.fac/1")
@dataclass(frozen=True)
class FacProof(Wire):
    P: Big  # P = s^p t^μ
    Q: Big  # Q = s^q t^ν
    A: Big  # A = s^α t^x
    B: Big  # B = s^β t^y
    T: Big  # T = Q^α t^r
    sigma: Big  # σ, public: R = s^N0 t^σ
    z1: Big  # z1 = α + e·p
    z2: Big  # z2 = β + e·q
    w1: Big  # w1 = x + e·μ
    w2: Big  # w2 = y + e·ν
    v: Big  # v = r + e·(σ − ν·p)


def _challenge(
    ctx: ProofContext, stmt: FacStatement, P: mpz, Q: mpz, A: mpz, B: mpz, T: mpz, sigma: mpz
) -> mpz:
    t = ctx.transcript(NAME, stmt)
    t.append("P", P).append("Q", Q).append("A", A).append("B", B).append("T", T)
    t.append("sigma", sigma)
    return t.challenge_pm_q()


def prove(
    ctx: ProofContext, stmt: FacStatement, wit: FacWitness, rng: random.Random | None = None
) -> FacProof:
    prm = ctx.params
    l, le = prm.ell, prm.ell + prm.eps
    n0, nhat = mpz(stmt.N0.n), mpz(stmt.aux.n)
    root = isqrt_ceil(n0)
    p, q = mpz(wit.p), mpz(wit.q)
    alpha = sample_pm_times(le, root, rng)
    beta = sample_pm_times(le, root, rng)
    mu = sample_pm_times(l, nhat, rng)
    nu = sample_pm_times(l, nhat, rng)
    sigma = sample_pm_times(l, n0 * nhat, rng)
    r = sample_pm_times(le, n0 * nhat, rng)
    x = sample_pm_times(le, nhat, rng)
    y = sample_pm_times(le, nhat, rng)
    P = stmt.aux.commit_secret(p, mu)
    Q = stmt.aux.commit_secret(q, nu)
    A = stmt.aux.commit_secret(alpha, x)
    B = stmt.aux.commit_secret(beta, y)
    T = powmod_secret(Q, alpha, nhat) * powmod_secret(stmt.aux.t, r, nhat) % nhat
    e = _challenge(ctx, stmt, P, Q, A, B, T, sigma)
    sigma_hat = sigma - nu * p
    return FacProof(
        P,
        Q,
        A,
        B,
        T,
        sigma,
        z1=alpha + e * p,
        z2=beta + e * q,
        w1=x + e * mu,
        w2=y + e * nu,
        v=r + e * sigma_hat,
    )


def verify(
    ctx: ProofContext, stmt: FacStatement, proof: FacProof, own: Trapdoor | None = None
) -> None:
    prm = ctx.params
    aux = stmt.aux
    ring = ring_of(aux, own)  # ours: CRT with the trapdoor
    n0, nhat = mpz(stmt.N0.n), mpz(aux.n)
    for name in ("P", "Q", "A", "B", "T"):
        require(is_unit(getattr(proof, name), nhat), NAME, f"{name} not in Z*_N̂")
    root = isqrt_ceil(n0)
    require(in_pm_times(proof.z1, prm.ell + prm.eps, root), NAME, "z1 outside ±2^(ℓ+ε)·√N0")
    require(in_pm_times(proof.z2, prm.ell + prm.eps, root), NAME, "z2 outside ±2^(ℓ+ε)·√N0")
    e = _challenge(ctx, stmt, proof.P, proof.Q, proof.A, proof.B, proof.T, proof.sigma)
    require(ring.verify(proof.z1, proof.w1, proof.A, proof.P, e), NAME, "s^z1 t^w1 ≠ A·P^e")
    require(ring.verify(proof.z2, proof.w2, proof.B, proof.Q, e), NAME, "s^z2 t^w2 ≠ B·Q^e")
    R = ring.commit(n0, proof.sigma)
    lhs = ring.pow(proof.Q, proof.z1) * ring.pow(aux.t, proof.v) % nhat
    require(lhs == proof.T * powmod_public(R, e, nhat) % nhat, NAME, "Q^z1 t^v ≠ T·R^e")
