"""Π^mod: N is a Paillier–Blum modulus (CGGMP21 Fig. 16).

Statement: N. The prover knows N = p·q with primes p ≡ q ≡ 3 (mod 4) and
gcd(N, φ(N)) = 1 (safe primes give both).

    w ← Z*_N with Jacobi(w, N) = −1
    y_1, …, y_m ∈ Z*_N   (Fiat–Shamir over the statement and w; y_i from index i alone)
    for each i: (a_i, b_i) ∈ {0, 1}² the pair with y'_i = (−1)^a_i · w^b_i · y_i a square,
                x_i = y'_i^(1/4) mod N,   z_i = y_i^(N^(−1) mod φ(N)) mod N
    verify: N odd, N > 1, N not prime                        (Fig. 16, check 1)
            z_i^N ≡ y_i (mod N)                               (Fig. 16, check 2)
            x_i^4 ≡ (−1)^a_i · w^b_i · y_i (mod N), a_i, b_i ∈ {0, 1}   (Fig. 16, check 3)
    and, before those, w ∈ Z*_N with Jacobi(w, N) = −1, exactly m repetitions, and every
    x_i, z_i ∈ Z*_N (PROTOCOL.md, "Π^mod").

z_i shows that N-th powering is a bijection (so gcd(N, φ(N)) = 1 and N is square-free);
x_i shows that ±1, ±w cover every square class, which holds only for a product of two
primes ≡ 3 (mod 4). For any other N a random y_i can be answered with probability at
most ½, so m = 80 repetitions leave 2^−80. The y_i are derived by the verifier, never
read from the proof, and each from its own index (multi-party-sig once drew them all
from one stream). The bit length of N is not checked here: `validate_modulus` does that.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property

import gmpy2
from gmpy2 import mpz

from tssnode.crypto.arith import (
    CrtModulus,
    is_not_prime,
    is_unit,
    powmod_public,
    powmod_secret,
    sample_unit,
)
from tssnode.crypto.encoding import Big, Wire, wire
from tssnode.crypto.transcript import Transcript
from tssnode.errors import InvalidModulus
from tssnode.zk.common import ProofContext, Trapdoor, require

NAME = "mod"


@wire("tssnode.zk.mod.statement/1")
@dataclass(frozen=True)
class ModStatement(Wire):
    N: Big  # the prover's Paillier modulus


@dataclass(frozen=True, repr=False)
class ModWitness:
    """The factorisation N = p·q, p ≡ q ≡ 3 (mod 4)."""

    p: mpz
    q: mpz

    def __repr__(self) -> str:
        return "ModWitness(secret hidden)"

    @cached_property
    def crt(self) -> CrtModulus:
        return CrtModulus(self.p, self.q, self.p - 1, self.q - 1)

    @cached_property
    def n_inv_mod_phi(self) -> mpz:
        return gmpy2.invert(mpz(self.p) * self.q, (self.p - 1) * (self.q - 1))

    @cached_property
    def root_exponents(self) -> tuple[mpz, mpz]:
        """((p+1)/4)² mod (p−1) and likewise for q: u ↦ u^that is a fourth root of a square u."""
        return _fourth_root_exponent(self.p), _fourth_root_exponent(self.q)


@wire("tssnode.zk.mod/1")
@dataclass(frozen=True)
class ModProof(Wire):
    w: Big  # Jacobi(w, N) = −1
    x: tuple[Big, ...]  # x_i^4 = (−1)^a_i · w^b_i · y_i mod N
    a: tuple[int, ...]  # a_i ∈ {0, 1}
    b: tuple[int, ...]  # b_i ∈ {0, 1}
    z: tuple[Big, ...]  # z_i^N = y_i mod N


def _fourth_root_exponent(p: mpz) -> mpz:
    # For p ≡ 3 (mod 4) and a square u, u^((p+1)/4) is the square root of u that is itself
    # a square (a power of a square), so applying it twice gives a fourth root of u.
    # Reduced mod p − 1, which is even, so the exponent keeps its parity.
    return mpz((p + 1) // 4) ** 2 % (p - 1)


def _transcript(ctx: ProofContext, stmt: ModStatement, w: int) -> Transcript:
    return ctx.transcript(NAME, stmt).append("w", w)


def _challenges(ctx: ProofContext, stmt: ModStatement, w: int) -> list[mpz]:
    """y_1, …, y_m ∈ Z*_N, each a function of the transcript and its own index."""
    return _transcript(ctx, stmt, w).challenge_units(stmt.N, ctx.params.m)


def _sample_w(n: mpz, rng: random.Random | None) -> mpz:
    while True:
        w = sample_unit(n, rng)
        if gmpy2.jacobi(w, n) == -1:
            return w


def prove(
    ctx: ProofContext, stmt: ModStatement, wit: ModWitness, rng: random.Random | None = None
) -> ModProof:
    n, p, q = mpz(stmt.N), mpz(wit.p), mpz(wit.q)
    if p * q != n or p % 4 != 3 or q % 4 != 3:
        raise InvalidModulus("Π^mod witness is not N = p·q with p ≡ q ≡ 3 (mod 4)")
    e_p, e_q = wit.root_exponents
    w = _sample_w(n, rng)
    xs: list[mpz] = []
    as_: list[int] = []
    bs: list[int] = []
    zs: list[mpz] = []
    for y in _challenges(ctx, stmt, w):
        # w is a square modulo exactly one of p, q, so b is fixed by the public Jacobi
        # symbol: u = w^b·y has Jacobi(u, N) = +1, i.e. u is a square mod both or neither.
        b = 1 if gmpy2.jacobi(y, n) == -1 else 0
        u = y * w % n if b else y
        x_p = powmod_secret(u % p, e_p, p)
        x_q = powmod_secret(u % q, e_q, q)
        # −1 is a non-square mod p and q, so exactly one of ±u is a square; a = 1 picks −u.
        # (−u)^e = (−1)^e·u^e, so its fourth root is x_p or −x_p by the parity of e_p.
        a = 0 if powmod_public(x_p, 4, p) == u % p else 1
        if a:
            x_p = (p - x_p) if e_p % 2 else x_p
            x_q = (q - x_q) if e_q % 2 else x_q
        xs.append(wit.crt.combine(x_p, x_q))
        as_.append(a)
        bs.append(b)
        zs.append(wit.crt.pow(y, wit.n_inv_mod_phi, secret=True))
    return ModProof(w, tuple(xs), tuple(as_), tuple(bs), tuple(zs))


def verify(
    ctx: ProofContext, stmt: ModStatement, proof: ModProof, own: Trapdoor | None = None
) -> None:
    m = ctx.params.m
    n, w = mpz(stmt.N), mpz(proof.w)
    # Fig. 16, check 1: N is an odd composite.
    require(n > 1, NAME, "N ≤ 1")
    require(n % 2 == 1, NAME, "N is even")
    require(is_not_prime(n), NAME, "N is prime")
    # Fig. 16, step 1: w ∈ Z*_N with Jacobi(w, N) = −1.
    require(is_unit(w, n), NAME, "w not in Z*_N")
    require(gmpy2.jacobi(w, n) == -1, NAME, "Jacobi(w, N) ≠ −1")
    # Fig. 16, step 3: m answers, each in its domain.
    lengths = {len(proof.x), len(proof.a), len(proof.b), len(proof.z)}
    require(lengths == {m}, NAME, "not exactly m repetitions")
    require(all(is_unit(x, n) for x in proof.x), NAME, "x_i not in Z*_N")
    require(all(is_unit(z, n) for z in proof.z), NAME, "z_i not in Z*_N")
    require(all(v in (0, 1) for v in proof.a + proof.b), NAME, "a_i or b_i not in {0, 1}")
    # Fig. 16, step 2: the challenges, recomputed here from the transcript.
    ys = _challenges(ctx, stmt, w)
    # Fig. 16, check 3 (cheap, so first): x_i^4 ≡ (−1)^a_i · w^b_i · y_i (mod N).
    for x, a, b, y in zip(proof.x, proof.a, proof.b, ys, strict=True):
        rhs = y * w % n if b else y
        rhs = n - rhs if a else rhs
        require(powmod_public(x, 4, n) == rhs, NAME, "x_i^4 ≠ (−1)^a_i·w^b_i·y_i")
    # Fig. 16, check 2: z_i^N ≡ y_i (mod N).
    for z, y in zip(proof.z, ys, strict=True):
        require(powmod_public(z, n, n) == y, NAME, "z_i^N ≠ y_i")
