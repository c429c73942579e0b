"""Π^mul: Paillier multiplication (CGGMP21 App. C.6, Fig. 29 in the revision PROTOCOL.md cites).

Used by presign's identification step: P_i shows that H_i = enc_i(k_i·γ_i) really is k_i
times the plaintext of G_i, with X = K_i.

Statement: the prover's own Paillier key N and ciphertexts X, Y, C under N. The prover
knows x and ρ, ρ_x ∈ Z*_N with X = (1 + N)^x · ρ_x^N mod N² and C = Y^x · ρ^N mod N².

    α ← ±2^(ℓ+ε), r, s ← Z*_N
    A = Y^α · r^N mod N²,  B = (1 + N)^α · s^N mod N²
    e ← ±q (Fiat–Shamir over the statement and A, B)
    z = α + e·x,  u = r·ρ^e mod N,  v = s·ρ_x^e mod N
    verify: z ∈ ±2^(ℓ+ε)                         (DEVIATION, see below)
            Y^z · u^N = A·C^e mod N²             (Fig. 29, first equality)
            (1 + N)^z · v^N = B·X^e mod N²       (Fig. 29, second equality)
    and, before any of that, X, Y, C, A, B ∈ Z*_{N²} and u, v ∈ Z*_N.

Challenge range: e ∈ ±q, i.e. the integers (−q, q), exactly as in Fig. 29. Soundness needs
no range: two accepting transcripts with e ≠ e' give x = (z − z')/(e − e') mod N, and e − e'
is invertible mod N because |e − e'| < 2q is far below N's prime factors.

DEVIATION: the paper samples α ← Z_N and checks no range on z. We sample α ← ±2^(ℓ+ε) as
multi-party-sig (pkg/zk/mul) does, which hides e·x statistically (distance about
2^(256−ε)) when x ∈ ±2^ℓ, as it is in the identification step (x = k_i ∈ [0, q)). On top
of multi-party-sig we check z ∈ ±2^(ℓ+ε): it caps the exponent of Y^z that a peer can make
the verifier compute (the only unbounded cost in this proof) and costs an honest prover a
completeness error of about 2^(256−ε). The check is not a range proof on x: without a
ring-Pedersen commitment the integer x is not extracted, only x mod N.
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
    sample_unit,
)
from tssnode.crypto.encoding import Big, Wire, wire
from tssnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from tssnode.zk.common import ProofContext, Trapdoor, require

NAME = "mul"


@wire("tssnode.zk.mul.statement/1")
@dataclass(frozen=True)
class MulStatement(Wire):
    N: PaillierPublicKey  # prover's own Paillier key
    X: Big  # X = enc(x; ρ_x)
    Y: Big  # any ciphertext under N
    C: Big  # C = Y^x · ρ^N mod N²


@dataclass(frozen=True, repr=False)
class MulWitness:
    x: mpz
    rho: mpz  # nonce of C
    rho_x: mpz  # nonce of X
    sk: PaillierSecretKey | None = None  # the prover's own key, when known, for CRT

    def __repr__(self) -> str:
        return "MulWitness(secret hidden)"


@wire("tssnode.zk.mul/1")
@dataclass(frozen=True)
class MulProof(Wire):
    A: Big  # Y^α · r^N mod N²
    B: Big  # enc(α; s)
    z: Big  # α + e·x
    u: Big  # r·ρ^e mod N
    v: Big  # s·ρ_x^e mod N


def _challenge(ctx: ProofContext, stmt: MulStatement, A: mpz, B: mpz) -> mpz:
    t = ctx.transcript(NAME, stmt)
    t.append("A", A).append("B", B)
    return t.challenge_pm_q()


def prove(
    ctx: ProofContext, stmt: MulStatement, wit: MulWitness, rng: random.Random | None = None
) -> MulProof:
    p = ctx.params
    pk, sk = stmt.N, wit.sk
    n, n2 = mpz(pk.n), pk.n2
    alpha = sample_pm(p.ell + p.eps, rng)
    r = sample_unit(n, rng)
    s = sample_unit(n, rng)
    if sk is not None:
        A = sk.crt_n2.pow(stmt.Y, alpha, secret=True) * sk.crt_n2.pow(r, n, secret=False) % n2
        B = sk.encrypt_with(alpha, s)
    else:
        A = powmod_secret(stmt.Y, alpha, n2) * powmod_public(r, n, n2) % n2
        B = pk.encrypt_with(alpha, s)
    e = _challenge(ctx, stmt, A, B)
    z = alpha + e * wit.x
    if sk is not None:
        u = r * sk.crt_n.pow(wit.rho, e, secret=True) % n
        v = s * sk.crt_n.pow(wit.rho_x, e, secret=True) % n
    else:
        u = r * powmod_secret(wit.rho, e, n) % n
        v = s * powmod_secret(wit.rho_x, e, n) % n
    return MulProof(A, B, z, u, v)


def verify(
    ctx: ProofContext, stmt: MulStatement, proof: MulProof, own: Trapdoor | None = None
) -> None:
    p = ctx.params
    pk = stmt.N
    n, n2 = mpz(pk.n), pk.n2
    require(pk.is_ciphertext(stmt.X), NAME, "X not in Z*_{N²}")
    require(pk.is_ciphertext(stmt.Y), NAME, "Y not in Z*_{N²}")
    require(pk.is_ciphertext(stmt.C), NAME, "C not in Z*_{N²}")
    require(pk.is_ciphertext(proof.A), NAME, "A not in Z*_{N²}")
    require(pk.is_ciphertext(proof.B), NAME, "B not in Z*_{N²}")
    require(is_unit(proof.u, n) and is_unit(proof.v, n), NAME, "u or v not in Z*_N")
    require(in_pm(proof.z, p.ell + p.eps), NAME, "z outside ±2^(ℓ+ε)")
    e = _challenge(ctx, stmt, proof.A, proof.B)
    lhs = powmod_public(stmt.Y, proof.z, n2) * powmod_public(proof.u, n, n2) % n2
    require(lhs == proof.A * powmod_public(stmt.C, e, n2) % n2, NAME, "Y^z u^N ≠ A·C^e")
    lhs = pk.encrypt_with(proof.z, proof.v)
    require(lhs == proof.B * powmod_public(stmt.X, e, n2) % n2, NAME, "enc(z; v) ≠ B·X^e")
