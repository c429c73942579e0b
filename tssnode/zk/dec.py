"""Π^dec: a linear combination of Paillier plaintexts equals a claimed value modulo q
(CGGMP21 appendix, "Paillier decryption modulo q", generalised to several ciphertexts; the
identification steps of presign and sign use it).

Statement: the prover's Paillier key N0, ciphertexts C_1..C_k under N0, public
coefficients c_1..c_k ∈ Z_q, public plaintext bounds b_1..b_k, the claimed x ∈ Z_q, and
the verifier's ring-Pedersen parameters (N̂, s, t). The prover knows y_i = dec_0(C_i) (as
signed integers, |y_i| ≤ 2^b_i) and ρ_i with C_i = (1 + N0)^y_i · ρ_i^N0 mod N0², and
claims x ≡ Σ c_i·y_i (mod q). The paper's Π^dec is the case k = 1, c_1 = 1.

    for each i:  α_i ← ±2^M_i, μ_i ← ±2^B_i·N̂, ν_i ← ±2^(B_i+c+128)·N̂, r_i ← Z*_N0
                 with M_i = b_i + c + 128 (c = challenge_bits, below), B_i = max(b_i, ℓ)
                 S_i = s^y_i t^μ_i,  T_i = s^α_i t^ν_i (mod N̂),  A_i = (1 + N0)^α_i r_i^N0
    γ = Σ c_i·α_i mod q
    e ← ±2^c (Fiat–Shamir over the statement and every S_i, T_i, A_i, γ)
    z1_i = α_i + e·y_i,  z2_i = ν_i + e·μ_i,  w_i = r_i·ρ_i^e mod N0
    verify: z1_i ∈ ±2^M_i                                 (addition, see below)
            (1 + N0)^z1_i w_i^N0 = A_i·C_i^e mod N0²      (paper, check 1, per ciphertext)
            Σ c_i·z1_i ≡ γ + e·x (mod q)                  (paper, check 2)
            s^z1_i t^z2_i = T_i·S_i^e mod N̂               (paper, check 3, per ciphertext)
    and, before any of that, 1 ≤ k ≤ MAX_TERMS with matching lengths, every C_i and A_i ∈
    Z*_{N0²}, w_i ∈ Z*_N0, S_i, T_i ∈ Z*_N̂, γ, x, c_i ∈ [0, q), and 0 ≤ b_i with M_i + 3 < |N0|.

Soundness: two accepting transcripts with e ≠ e' give, by the ring-Pedersen check and the
strong-RSA assumption, integers y*_i = (z1_i − z1'_i)/(e − e') with |y*_i| ≤ 2^(M_i+1) ≤ N0/4;
the Paillier check then makes C_i·enc(−y*_i) an N0-th residue provided gcd(e − e', N0) = 1,
which Π^fac guarantees for the prover's N0 (no factor below about 2^256 at the standard
tier, far above |e − e'| < 2^(c+1); the test tier's Π^fac means nothing, see params.py), so
y*_i is the centred plaintext of C_i itself; and (e − e')·(Σ c_i·y*_i − x) ≡ 0 (mod q) with
0 < |e − e'| < 2^(c+1) < q, so x ≡ Σ c_i·dec_0(C_i) (mod q). Each y*_i is pinned by its own
C_i: a prover cannot trade value between terms.

DEVIATION 1 (mask sizes): the paper samples α ← ±2^(ℓ+ε), μ ← ±2^ℓ·N̂, ν ← ±2^(ℓ+ε)·N̂, as
if y were in ±2^ℓ. The plaintexts the identification steps open are far larger: sums that
include MtA shares a malicious sender may push to the edge of its Π^aff-g ranges (about
ℓ'+ε bits, see presign.mta_bound). With α ← ±2^(ℓ+ε), z1 = α + e·y would hand the
verifier the high bits of e·y. Here α ← ±2^(b+c+128) hides e·y (|e·y| < 2^(b+c)) with
statistical distance 2^−128 per term. μ and ν are sized from max(b, ℓ), so S_i hides y_i
to 2^−(ℓ+3) or better even for a small declared bound (the paper's μ ← ±2^ℓ·N̂).

DEVIATION 2 (challenge size): e ← ±2^c with c = 112 for moduli under 3072 bits (128 for
the `high` tier) instead of ±q. With a q-sized challenge the largest plaintext a 2048-bit
N0 can carry is 2048 − 4 − 256 − 128 = 1660 bits, below the 1798 bits that presign
identification must declare at the standard tier (mta_bound 1794 + 1 + bitlen(4)): the
step could not declare a plaintext bound that every proof-valid MtA sender respects (a
sender who does not grind Fiat–Shamir reaches about 2^(ℓ'+ε−ℓ), 1536 bits; the bound must
cover the extraction edge). What it costs: the soundness error per hash query falls from
about 2^−257 to 2^−113, so a prover spending 2^t cheap hash attempts (one multiplication
and one SHAKE call each) passes a false claim with probability about 2^(t−113). What such
a prover gains is to escape identification (the session then ends "every party's proofs
hold"); it cannot forge a signature or frame another party. 112 bits is the security
level of a 2048-bit RSA modulus (NIST SP 800-57), on which the tier rests, and the tier's
Π^mod and Π^prm already stop at 2^−80. Two parallel runs with independent challenges would
give 2^−224 at twice the cost, with the same masks. With c = 112, M = b + 240 and b ≤ 1804
fits a 2048-bit N0 (n ≤ 511 signers).

DEVIATION 3 (several ciphertexts): sign identification must show σ_i ≡ m·k_i + r·χ_i (mod q)
with k_i in K_i and χ_i in a ciphertext of about 1798 bits. The paper folds both into one
ciphertext K_i^m ⊕ r ⊙ C_χ, whose plaintext (ℓ + 1798 bits) exceeds N0 itself and would wrap
modulo N0, so an honest party's proof would fail. Proving the linear combination over the
two ciphertexts keeps every plaintext exact.

Addition (not in the paper): the range check on z1_i and the bound on b_i. Without them the
proof shows only that some y* ≡ dec_0(C) (mod N0) has the claimed residue mod q; with them
the extracted y* is the centred plaintext. An honest z1 leaves the range with probability
below 2^−128. multi-party-sig (pkg/zk/dec) keeps ±2^(ℓ+ε) and has no range check at all.
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
from tssnode.crypto.params import Parameters
from tssnode.crypto.pedersen import PedersenParams
from tssnode.zk.common import ProofContext, Trapdoor, require, ring_of

NAME = "dec"

#: Statistical slack (bits) of the masks over |e·y|.
SLACK = 128
#: Most ciphertexts one statement may combine (sign identification uses two).
MAX_TERMS = 8


def challenge_bits(params: Parameters) -> int:
    """c: 112 bits below 3072-bit moduli (the security of RSA-2048), 128 from 3072 bits."""
    return 128 if params.paillier_bits >= 3072 else 112


def mask_bits(params: Parameters, y_bits: int) -> int:
    """M = b + c + 128: the bit size of α and of the z1 range for a term of bound b."""
    return y_bits + challenge_bits(params) + SLACK


def max_plaintext_bits(params: Parameters, modulus_bits: int | None = None) -> int:
    """The largest bound b a modulus of `modulus_bits` bits (default: the tier's) supports."""
    bits = params.paillier_bits if modulus_bits is None else modulus_bits
    return bits - 4 - challenge_bits(params) - SLACK


@wire("tssnode.zk.dec.statement/2")
@dataclass(frozen=True)
class DecStatement(Wire):
    N0: PaillierPublicKey  # prover's Paillier key
    C: tuple[Big, ...]  # C_i = enc_0(y_i; ρ_i)
    coeffs: tuple[Scalar, ...]  # c_i
    x: Scalar  # claimed x ≡ Σ c_i·dec_0(C_i) (mod q)
    y_bits: tuple[int, ...]  # public plaintext bounds: |dec_0(C_i)| ≤ 2^y_bits[i]
    aux: PedersenParams  # verifier's ring-Pedersen (N̂, s, t)

    @classmethod
    def single(
        cls, N0: PaillierPublicKey, C: int, x: int, y_bits: int, aux: PedersenParams
    ) -> DecStatement:
        """The paper's statement: x ≡ dec_0(C) (mod q)."""
        return cls(N0, (mpz(C),), (1,), x, (y_bits,), aux)


@dataclass(frozen=True, repr=False)
class DecWitness:
    y: tuple[mpz, ...]  # dec_0(C_i) as signed integers
    rho: tuple[mpz, ...]
    sk: PaillierSecretKey | None = None  # the prover's own key, when known, for CRT

    def __repr__(self) -> str:
        return "DecWitness(secret hidden)"


@wire("tssnode.zk.dec/2")
@dataclass(frozen=True)
class DecProof(Wire):
    S: tuple[Big, ...]  # S_i = s^y_i t^μ_i
    T: tuple[Big, ...]  # T_i = s^α_i t^ν_i
    A: tuple[Big, ...]  # A_i = enc_0(α_i; r_i)
    gamma: Scalar  # γ = Σ c_i·α_i mod q
    z1: tuple[Big, ...]  # z1_i = α_i + e·y_i
    z2: tuple[Big, ...]  # z2_i = ν_i + e·μ_i
    w: tuple[Big, ...]  # w_i = r_i·ρ_i^e mod N0


def _challenge(ctx: ProofContext, stmt: DecStatement, proof_first: tuple[object, ...]) -> mpz:
    S, T, A, gamma = proof_first
    t = ctx.transcript(NAME, stmt)
    t.append("S", S).append("T", T).append("A", A).append("gamma", gamma)
    return t.challenge_pm_bits(challenge_bits(ctx.params))


def prove(
    ctx: ProofContext, stmt: DecStatement, wit: DecWitness, rng: random.Random | None = None
) -> DecProof:
    n0 = mpz(stmt.N0.n)
    nhat = mpz(stmt.aux.n)
    S, T, A, alphas, mus, nus, rs = [], [], [], [], [], [], []
    gamma = 0
    for y, b, c in zip(wit.y, stmt.y_bits, stmt.coeffs, strict=True):
        # DEVIATION 1 (see the module docstring): masks sized from the term's bound.
        m_bits = mask_bits(ctx.params, b)
        alpha = sample_pm(m_bits, rng)
        b_hat = max(b, ctx.params.ell)
        mu = sample_pm_times(b_hat, nhat, rng)
        nu = sample_pm_times(mask_bits(ctx.params, b_hat), nhat, rng)
        r = sample_unit(n0, rng)
        S.append(stmt.aux.commit_secret(y, mu))
        T.append(stmt.aux.commit_secret(alpha, nu))
        A.append(
            wit.sk.encrypt_with(alpha, r) if wit.sk is not None else stmt.N0.encrypt_with(alpha, r)
        )
        gamma = (gamma + c * alpha) % Q
        alphas.append(alpha)
        mus.append(mu)
        nus.append(nu)
        rs.append(r)
    first = (tuple(S), tuple(T), tuple(A), int(gamma))
    e = _challenge(ctx, stmt, first)
    z1 = tuple(a + e * y for a, y in zip(alphas, wit.y, strict=True))
    z2 = tuple(nu + e * mu for nu, mu in zip(nus, mus, strict=True))
    w = tuple(r * powmod_secret(rho, e, n0) % n0 for r, rho in zip(rs, wit.rho, strict=True))
    return DecProof(*first, z1, z2, w)


def verify(
    ctx: ProofContext, stmt: DecStatement, proof: DecProof, own: Trapdoor | None = None
) -> None:
    p = ctx.params
    pk, aux = stmt.N0, stmt.aux
    ring = ring_of(aux, own)  # ours: CRT with the trapdoor
    n0, n2, nhat = mpz(pk.n), pk.n2, mpz(aux.n)
    k = len(stmt.C)
    require(1 <= k <= MAX_TERMS, NAME, "number of ciphertexts out of range")
    require(
        len(stmt.coeffs) == len(stmt.y_bits) == k
        and all(len(v) == k for v in (proof.S, proof.T, proof.A, proof.z1, proof.z2, proof.w)),
        NAME,
        "term counts differ",
    )
    require(
        all(b >= 0 and mask_bits(p, b) + 3 < n0.bit_length() for b in stmt.y_bits),
        NAME,
        "y_bits out of range for N0",
    )
    require(0 <= stmt.x < Q, NAME, "x not in [0, q)")
    require(all(0 <= c < Q for c in stmt.coeffs), NAME, "coefficient not in [0, q)")
    require(all(pk.is_ciphertext(c) for c in stmt.C), NAME, "C not in Z*_{N0²}")
    require(all(pk.is_ciphertext(a) for a in proof.A), NAME, "A not in Z*_{N0²}")
    require(all(is_unit(w, n0) for w in proof.w), NAME, "w not in Z*_N0")
    require(all(is_unit(v, nhat) for v in (*proof.S, *proof.T)), NAME, "S or T not in Z*_N̂")
    require(0 <= proof.gamma < Q, NAME, "γ not in [0, q)")
    require(
        all(in_pm(z, mask_bits(p, b)) for z, b in zip(proof.z1, stmt.y_bits, strict=True)),
        NAME,
        "z1 outside ±2^(y_bits+c+128)",
    )
    e = _challenge(ctx, stmt, (proof.S, proof.T, proof.A, proof.gamma))
    for C, A, z1, w in zip(stmt.C, proof.A, proof.z1, proof.w, strict=True):
        lhs = pk.encrypt_with(z1, w)
        require(lhs == A * powmod_public(C, e, n2) % n2, NAME, "enc(z1; w) ≠ A·C^e")
    combined = sum(c * z for c, z in zip(stmt.coeffs, proof.z1, strict=True))
    require((combined - proof.gamma - e * stmt.x) % Q == 0, NAME, "Σ c·z1 ≢ γ + e·x (mod q)")
    for z1, z2, T, S in zip(proof.z1, proof.z2, proof.T, proof.S, strict=True):
        require(ring.verify(z1, z2, T, S, e), NAME, "s^z1 t^z2 ≠ T·S^e")
