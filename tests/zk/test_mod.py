from __future__ import annotations

import dataclasses
import itertools
import random

import gmpy2
import pytest
from gmpy2 import mpz
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import STANDARD, TEST, KeyFactory
from tests.zk.helpers import assert_every_tamper_rejected, assert_round_trip
from tssnode.crypto.arith import is_unit, powmod_public, sample_unit
from tssnode.errors import InvalidModulus, ProofError
from tssnode.zk import mod, prm
from tssnode.zk.common import ProofContext


@pytest.fixture
def setup(keys):
    sk = keys.paillier()
    return mod.ModStatement(sk.n), mod.ModWitness(sk.p, sk.q)


@pytest.fixture
def honest(ctx, setup, rng):
    stmt, wit = setup
    return stmt, wit, mod.prove(ctx, stmt, wit, rng)


def _short_ctx(ctx: ProofContext, m: int) -> ProofContext:
    return dataclasses.replace(ctx, params=dataclasses.replace(ctx.params, m=m))


def test_honest_proof_verifies_and_round_trips(ctx, honest):
    stmt, _, proof = honest
    mod.verify(ctx, stmt, proof)
    assert_round_trip(proof)
    assert_round_trip(stmt)
    assert len(proof.x) == TEST.m
    # All four (a, b) cases turn up in 80 repetitions, so every prover branch was taken.
    assert set(zip(proof.a, proof.b, strict=True)) == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_every_field_tampered_is_rejected(ctx, honest):
    stmt, _, proof = honest
    assert_every_tamper_rejected(proof, lambda p: mod.verify(ctx, stmt, p))


def test_wrong_statement_session_or_prover_rejected(ctx, make_ctx, keys, honest):
    stmt, _, proof = honest
    other = mod.ModStatement(keys.paillier().n)
    for c, s in ((ctx, other), (make_ctx(ssid=b"other"), stmt), (make_ctx(prover=2), stmt)):
        with pytest.raises(ProofError):
            mod.verify(c, s, proof)


def test_witness_never_printed_and_prover_refuses_a_wrong_one(ctx, keys, setup, rng):
    stmt, wit = setup
    assert str(wit.p) not in repr(wit) and str(wit.q) not in repr(wit)
    other = keys.paillier()
    with pytest.raises(InvalidModulus) as err:
        mod.prove(ctx, stmt, mod.ModWitness(other.p, other.q), rng)
    assert str(other.p) not in str(err.value)
    # p ≡ 1 (mod 4): not a Blum integer, the prover refuses instead of emitting junk.
    p1 = gmpy2.next_prime(mpz(1) << 40)
    while p1 % 4 != 1:
        p1 = gmpy2.next_prime(p1)
    with pytest.raises(InvalidModulus):
        mod.prove(ctx, mod.ModStatement(p1 * wit.q), mod.ModWitness(p1, wit.q), rng)


def test_challenges_are_derived_per_index_and_distinct(ctx, honest):
    """y_i depends on (transcript, i) alone: no challenge set can be made to repeat."""
    stmt, _, proof = honest
    n = stmt.N
    t = mod._transcript(ctx, stmt, proof.w)
    ys = t.challenge_units(n, TEST.m)
    assert t.challenge_units(n, 5) == ys[:5]
    assert t.challenge_units(n, TEST.m + 40)[: TEST.m] == ys
    assert len(set(map(int, ys))) == TEST.m
    assert all(is_unit(y, n) for y in ys)
    # These are exactly what the proof answers (the verifier recomputes them, the proof
    # carries none), and another w gives an unrelated set.
    assert [powmod_public(z, n, n) for z in proof.z] == ys
    other_w = mod._transcript(ctx, stmt, proof.w + 1).challenge_units(n, TEST.m)
    assert not set(map(int, ys)) & set(map(int, other_w))


def test_w_not_a_jacobi_minus_one_unit_rejected(ctx, setup, honest):
    stmt, wit, proof = honest
    n = stmt.N
    w_plus = proof.w * proof.w % n  # a square: Jacobi +1
    assert gmpy2.jacobi(w_plus, n) == 1
    for bad in (w_plus, n - 1):  # −1 has Jacobi +1 for a Blum N
        with pytest.raises(ProofError, match=r"Jacobi\(w, N\) ≠ −1"):
            mod.verify(ctx, stmt, dataclasses.replace(proof, w=bad))
    for bad in (wit.p, 0, n, n + proof.w):
        with pytest.raises(ProofError, match="w not in Z"):
            mod.verify(ctx, stmt, dataclasses.replace(proof, w=bad))


def test_prime_even_or_trivial_modulus_rejected(ctx, setup, honest):
    stmt, wit, proof = honest
    for n, check in (
        (wit.p, "N is prime"),
        (2 * wit.p * wit.q, "N is even"),
        (2 * wit.p, "N is even"),
        (1, "N ≤ 1"),
        (0, "N ≤ 1"),
        (-stmt.N, "N ≤ 1"),
    ):
        with pytest.raises(ProofError, match=check):
            mod.verify(ctx, mod.ModStatement(n), proof)


def test_too_few_or_too_many_repetitions_rejected(ctx, setup, honest, rng):
    stmt, wit, proof = honest
    # A proof made for a one-repetition tier is sound only to ½; ours refuses it.
    short_ctx = _short_ctx(ctx, 1)
    short = mod.prove(short_ctx, stmt, wit, rng)
    mod.verify(short_ctx, stmt, short)
    with pytest.raises(ProofError, match="not exactly m repetitions"):
        mod.verify(ctx, stmt, short)
    m = TEST.m
    for cut in (0, 1, m - 1):
        bad = dataclasses.replace(
            proof, x=proof.x[:cut], a=proof.a[:cut], b=proof.b[:cut], z=proof.z[:cut]
        )
        with pytest.raises(ProofError, match="not exactly m repetitions"):
            mod.verify(ctx, stmt, bad)
    for field in ("x", "a", "b", "z"):  # one list shorter or longer than the others
        values = getattr(proof, field)
        for alt in (values[:-1], (*values, values[0])):
            with pytest.raises(ProofError, match="not exactly m repetitions"):
                mod.verify(ctx, stmt, dataclasses.replace(proof, **{field: alt}))


def test_answers_outside_their_domain_rejected(ctx, setup, honest):
    stmt, wit, proof = honest
    n = stmt.N

    def at(values, i, v):
        return (*values[:i], v, *values[i + 1 :])

    for bad in (0, n, wit.p, n + proof.x[3], -proof.x[3]):
        with pytest.raises(ProofError, match="x_i not in Z"):
            mod.verify(ctx, stmt, dataclasses.replace(proof, x=at(proof.x, 3, bad)))
        with pytest.raises(ProofError, match="z_i not in Z"):
            mod.verify(ctx, stmt, dataclasses.replace(proof, z=at(proof.z, 3, bad)))
    for field in ("a", "b"):
        for bad in (2, -1, 3):
            bad_proof = dataclasses.replace(proof, **{field: at(getattr(proof, field), 5, bad)})
            with pytest.raises(ProofError, match=r"a_i or b_i not in \{0, 1\}"):
                mod.verify(ctx, stmt, bad_proof)


def test_x_and_z_each_checked(ctx, honest):
    """Flipping every a_i, or answering y_0 with y_1's root: each equation catches its own."""
    stmt, _, proof = honest
    flipped = dataclasses.replace(proof, a=tuple(1 - a for a in proof.a))
    with pytest.raises(ProofError, match=r"x_i\^4"):
        mod.verify(ctx, stmt, flipped)
    with pytest.raises(ProofError, match=r"z_i\^N"):
        mod.verify(ctx, stmt, dataclasses.replace(proof, z=(proof.z[1], *proof.z[1:])))


# -- moduli that are not Paillier–Blum: the best a prover knowing the factors can do ------


def _fourth_root_mod(u: mpz, r: mpz) -> mpz | None:
    """A fourth root of u mod a prime r ≡ 3 (mod 4), or None when u is not a square."""
    if gmpy2.legendre(u, r) != 1:
        return None
    x = powmod_public(u, ((r + 1) // 4) ** 2, r)
    assert powmod_public(x, 4, r) == u % r
    return x


def _with_legendre(r: mpz, symbol: int, rng: random.Random) -> mpz:
    while True:
        v = sample_unit(r, rng)
        if gmpy2.legendre(v, r) == symbol:
            return v


def _crt(residues: list[mpz], moduli: list[mpz]) -> mpz:
    n = mpz(1)
    for r in moduli:
        n *= r
    x = mpz(0)
    for v, r in zip(residues, moduli, strict=True):
        c = n // r
        x += v * c * gmpy2.invert(c, r)
    return x % n


def _best_effort_proof(
    ctx: ProofContext, primes: list[mpz], rng: random.Random
) -> tuple[mod.ModStatement, mod.ModProof, list[int]]:
    """A cheating prover that knows every factor of N = Π primes (all ≡ 3 mod 4).

    It answers every y_i that some (a, b) makes a fourth power and sends a random unit for
    the rest; z_i is always honest (gcd(N, φ(N)) = 1 here). Returns the indices answered.
    """
    n = mpz(1)
    phi = mpz(1)
    for r in primes:
        assert r % 4 == 3
        n, phi = n * r, phi * (r - 1)
    assert gmpy2.gcd(n, phi) == 1
    stmt = mod.ModStatement(n)
    # The best w: a non-square mod the first prime only, so ⟨−1, w⟩ covers 4 square classes.
    w = _crt([_with_legendre(r, -1 if j == 0 else 1, rng) for j, r in enumerate(primes)], primes)
    assert gmpy2.jacobi(w, n) == -1
    d = gmpy2.invert(n, phi)
    xs, as_, bs, zs, answered = [], [], [], [], []
    for i, y in enumerate(mod._challenges(ctx, stmt, w)):
        choice = (0, 0, sample_unit(n, rng))
        for a, b in itertools.product((0, 1), repeat=2):
            u = (-1) ** a * (w if b else 1) * y % n
            roots = [_fourth_root_mod(u % r, r) for r in primes]
            if all(x is not None for x in roots):
                choice = (a, b, _crt(roots, primes))
                answered.append(i)
                break
        a, b, x = choice
        xs.append(x)
        as_.append(a)
        bs.append(b)
        zs.append(powmod_public(y, d, n))
    return stmt, mod.ModProof(w, tuple(xs), tuple(as_), tuple(bs), tuple(zs)), answered


def _small_blum_primes(count: int, start: int) -> list[mpz]:
    """Primes ≡ 3 (mod 4) with none dividing another's r − 1, so gcd(N, φ(N)) stays 1."""
    out: list[mpz] = []
    r = mpz(start)
    while len(out) < count:
        r = gmpy2.next_prime(r)
        if r % 4 == 3 and all((r - 1) % s for s in out):
            out.append(r)
    return out


def test_three_prime_modulus_with_a_small_factor_rejected(ctx, keys, rng):
    """N = p·q·r, r small: ±1, ±w cover half the square classes, so half the y_i fail."""
    p, q = keys.primes()
    (r,) = _small_blum_primes(1, 1_000_000)
    stmt, proof, answered = _best_effort_proof(ctx, [p, q, r], rng)
    assert 20 <= len(answered) <= 60  # about m/2: each y_i is answerable with probability ½
    # The forgery is as good as it gets: the answered repetitions and every z_i hold.
    n = stmt.N
    ys = mod._challenges(ctx, stmt, proof.w)
    for i in answered:
        rhs = (-1) ** proof.a[i] * (proof.w if proof.b[i] else 1) * ys[i] % n
        assert powmod_public(proof.x[i], 4, n) == rhs
    assert all(powmod_public(z, n, n) == y for z, y in zip(proof.z, ys, strict=True))
    with pytest.raises(ProofError, match=r"x_i\^4"):
        mod.verify(ctx, stmt, proof)


def test_bitforge_style_modulus_rejected(ctx, keys, rng):
    """N = P·r_1⋯r_16 with small r_j (the BitForge shape): almost no y_i is answerable."""
    (big, _) = keys.primes()
    small = _small_blum_primes(16, 2)
    stmt, proof, answered = _best_effort_proof(ctx, [big, *small], rng)
    assert len(answered) < 5
    with pytest.raises(ProofError, match=r"x_i\^4"):
        mod.verify(ctx, stmt, proof)


def test_two_prime_modulus_with_a_small_factor_is_left_to_pi_fac(ctx, keys, rng):
    """Scope: N = 7·P is a Paillier–Blum integer, so Π^mod accepts it (and the bit length
    check may too). Catching the small factor is Π^fac's job (PROTOCOL.md, BitForge)."""
    big, _ = keys.primes()
    stmt = mod.ModStatement(7 * big)
    mod.verify(ctx, stmt, mod.prove(ctx, stmt, mod.ModWitness(mpz(7), big), rng))


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_property_random_keys(seed):
    r = random.Random(seed)
    sk = KeyFactory(TEST, r).paillier()
    ctx = ProofContext(b"prop", 3, TEST)
    stmt = mod.ModStatement(sk.n)
    mod.verify(ctx, stmt, mod.prove(ctx, stmt, mod.ModWitness(sk.p, sk.q), r))


@pytest.mark.slow
def test_standard_tier_mod_and_prm(rng):
    """Both aux-info proofs at full size: 2048-bit N from two 1024-bit pool primes."""
    keys = KeyFactory(STANDARD, rng)
    ctx = ProofContext(b"standard", 1, STANDARD)
    sk = keys.paillier()
    stmt = mod.ModStatement(sk.n)
    assert int(stmt.N).bit_length() == STANDARD.paillier_bits
    proof = mod.prove(ctx, stmt, mod.ModWitness(sk.p, sk.q), rng)
    mod.verify(ctx, stmt, proof)
    ped = keys.pedersen()
    pproof = prm.prove(ctx, ped.public, ped, rng)
    prm.verify(ctx, ped.public, pproof)
    assert len(proof.x) == len(pproof.A) == STANDARD.m
    with pytest.raises(ProofError):
        mod.verify(ctx, stmt, dataclasses.replace(proof, z=(proof.z[1], *proof.z[1:])))
    with pytest.raises(ProofError):
        prm.verify(ctx, ped.public, dataclasses.replace(pproof, z=(pproof.z[1], *pproof.z[1:])))
