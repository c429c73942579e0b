"""Π^prm: ring-Pedersen parameters with s ∈ ⟨t⟩ (CGGMP21 Fig. 17).

Statement: the ring-Pedersen parameters (N̂, s, t). The prover knows λ with s = t^λ mod N̂
and φ(N̂) (the `PedersenSecret`).

    a_i ← Z_φ(N̂),  A_i = t^a_i mod N̂                         (i = 1, …, m)
    e_i ∈ {0, 1}   (Fiat–Shamir over the statement and every A_i; e_i from index i alone)
    z_i = a_i + e_i·λ mod φ(N̂)
    verify: t^z_i ≡ A_i · s^e_i (mod N̂) for every i           (Fig. 17, check)
    and, before that, N̂ odd, > 1 and not prime; s, t ∈ Z*_N̂, s ≠ t, neither 1; exactly m
    repetitions; every A_i ∈ Z*_N̂; every z_i ∈ [0, N̂) (Z_φ(N̂) ⊂ Z_N̂: the verifier does
    not know φ(N̂)) (PROTOCOL.md, "Paillier and ring-Pedersen moduli").

If A_i could answer both e_i = 0 and e_i = 1 then s = t^(z_i(1) − z_i(0)) ∈ ⟨t⟩, so a prover
with s ∉ ⟨t⟩ passes each repetition with probability at most ½ and the proof with 2^−m.
The challenge is m independent bits: with one repetition (TSSHOCK's "c-guess") a forger
only has to guess, or grind the hash for, a single bit. The bit length of N̂ is not
checked here: `PedersenParams.validate` does that.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gmpy2 import mpz

from tssnode.crypto.arith import FixedBase, is_not_prime, is_unit, randbelow
from tssnode.crypto.encoding import Big, Wire, wire
from tssnode.crypto.pedersen import PedersenParams, PedersenSecret
from tssnode.zk.common import ProofContext, Trapdoor, require

NAME = "prm"

#: The statement is the public parameters themselves; the witness is their `PedersenSecret`.
PrmStatement = PedersenParams
PrmWitness = PedersenSecret


@wire("tssnode.zk.prm/1")
@dataclass(frozen=True)
class PrmProof(Wire):
    A: tuple[Big, ...]  # A_i = t^a_i mod N̂
    z: tuple[Big, ...]  # z_i = a_i + e_i·λ mod φ(N̂)


def _challenges(ctx: ProofContext, stmt: PrmStatement, A: tuple[mpz, ...]) -> list[int]:
    """e_1, …, e_m ∈ {0, 1}, each a function of the transcript and its own index."""
    t = ctx.transcript(NAME, stmt).append("A", A)
    return t.challenge_bits(ctx.params.m)


def prove(
    ctx: ProofContext, stmt: PrmStatement, wit: PrmWitness, rng: random.Random | None = None
) -> PrmProof:
    phi = wit.phi
    a = [randbelow(phi, rng) for _ in range(ctx.params.m)]
    A = tuple(wit.crt.pow(stmt.t, a_i, secret=True) for a_i in a)
    e = _challenges(ctx, stmt, A)
    z = tuple((a_i + e_i * wit.lam) % phi for a_i, e_i in zip(a, e, strict=True))
    return PrmProof(A, z)


def verify(
    ctx: ProofContext, stmt: PrmStatement, proof: PrmProof, own: Trapdoor | None = None
) -> None:
    m = ctx.params.m
    n, s, t = mpz(stmt.n), mpz(stmt.s), mpz(stmt.t)
    # The modulus: odd and composite (its bit length is `PedersenParams.validate`'s job).
    require(n > 1, NAME, "N̂ ≤ 1")
    require(n % 2 == 1, NAME, "N̂ is even")
    require(is_not_prime(n), NAME, "N̂ is prime")
    # The parameters: s, t ∈ Z*_N̂, distinct, neither 1.
    require(is_unit(s, n) and is_unit(t, n), NAME, "s or t not in Z*_N̂")
    require(s != 1 and t != 1, NAME, "s or t is 1")
    require(s != t, NAME, "s = t")
    # Fig. 17, steps 1 and 3: m commitments in Z*_N̂ and m responses in [0, N̂).
    require(len(proof.A) == m and len(proof.z) == m, NAME, "not exactly m repetitions")
    require(all(is_unit(A_i, n) for A_i in proof.A), NAME, "A_i not in Z*_N̂")
    require(all(0 <= z_i < n for z_i in proof.z), NAME, "z_i outside [0, N̂)")
    # Fig. 17, step 2: the challenge bits, recomputed here from the transcript.
    e = _challenges(ctx, stmt, proof.A)
    # Fig. 17, check: t^z_i ≡ A_i · s^e_i (mod N̂). All m powers share the base t, so a
    # fixed-base table for t (FixedBase: one squaring chain, then about 400 products a
    # power) replaces m full exponentiations.
    t_pow = FixedBase(t, n, n.bit_length())
    for A_i, z_i, e_i in zip(proof.A, proof.z, e, strict=True):
        rhs = A_i * s % n if e_i else A_i
        require(t_pow.pow(z_i) == rhs, NAME, "t^z_i ≠ A_i·s^e_i")
