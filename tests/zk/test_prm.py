from __future__ import annotations

import dataclasses
import random

import gmpy2
import pytest
from gmpy2 import mpz
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import TEST, KeyFactory
from tests.zk.helpers import assert_every_tamper_rejected, assert_round_trip
from tssnode.crypto.arith import powmod_public, randbelow, sample_unit
from tssnode.crypto.pedersen import PedersenParams, PedersenSecret
from tssnode.errors import ProofError
from tssnode.zk import prm
from tssnode.zk.common import ProofContext


@pytest.fixture
def secret(keys) -> PedersenSecret:
    return keys.pedersen()


@pytest.fixture
def honest(ctx, secret, rng):
    return secret.public, prm.prove(ctx, secret.public, secret, rng)


def _short_ctx(ctx: ProofContext, m: int) -> ProofContext:
    return dataclasses.replace(ctx, params=dataclasses.replace(ctx.params, m=m))


def test_honest_proof_verifies_and_round_trips(ctx, secret, honest):
    stmt, proof = honest
    prm.verify(ctx, stmt, proof)
    assert_round_trip(proof)
    assert_round_trip(stmt)
    assert len(proof.A) == len(proof.z) == TEST.m
    assert all(0 <= z < secret.phi for z in proof.z)
    # Both challenge values occur, so both branches of z_i = a_i + e_i·λ were exercised.
    assert set(prm._challenges(ctx, stmt, proof.A)) == {0, 1}


def test_every_field_tampered_is_rejected(ctx, honest):
    stmt, proof = honest
    assert_every_tamper_rejected(proof, lambda p: prm.verify(ctx, stmt, p))


def test_wrong_statement_session_or_prover_rejected(ctx, make_ctx, keys, honest):
    stmt, proof = honest
    other = keys.pedersen().public
    swapped = PedersenParams(stmt.n, stmt.t, stmt.s)
    for c, s in (
        (ctx, other),
        (ctx, swapped),
        (make_ctx(ssid=b"other"), stmt),
        (make_ctx(prover=2), stmt),
    ):
        with pytest.raises(ProofError):
            prm.verify(c, s, proof)


def test_challenge_bits_are_derived_per_index(ctx, honest):
    stmt, proof = honest
    t = ctx.transcript(prm.NAME, stmt).append("A", proof.A)
    bits = t.challenge_bits(TEST.m)
    assert bits == prm._challenges(ctx, stmt, proof.A)
    assert t.challenge_bits(3) == bits[:3]
    assert t.challenge_bits(TEST.m + 20)[: TEST.m] == bits


def test_malformed_parameters_rejected(ctx, secret, honest):
    stmt, proof = honest
    n, s, t = stmt.n, stmt.s, stmt.t
    p = secret.p
    cases = [
        (PedersenParams(p, s % p, t % p), "N̂ is prime"),
        (PedersenParams(2 * n, s, t), "N̂ is even"),
        (PedersenParams(1, 0, 0), "N̂ ≤ 1"),
        (PedersenParams(-n, s, t), "N̂ ≤ 1"),
        (PedersenParams(n, p, t), "s or t not in Z"),
        (PedersenParams(n, s, p), "s or t not in Z"),
        (PedersenParams(n, 0, t), "s or t not in Z"),
        (PedersenParams(n, s, n + t), "s or t not in Z"),
        (PedersenParams(n, 1, t), "s or t is 1"),
        (PedersenParams(n, s, 1), "s or t is 1"),
        (PedersenParams(n, t, t), "s = t"),
    ]
    for bad, check in cases:
        with pytest.raises(ProofError, match=check):
            prm.verify(ctx, bad, proof)


def test_answers_outside_their_domain_or_count_rejected(ctx, secret, honest, rng):
    stmt, proof = honest
    n = stmt.n

    def at(values, i, v):
        return (*values[:i], v, *values[i + 1 :])

    for bad in (0, n, secret.p, n + proof.A[7], -proof.A[7]):
        with pytest.raises(ProofError, match="A_i not in Z"):
            prm.verify(ctx, stmt, dataclasses.replace(proof, A=at(proof.A, 7, bad)))
    for bad in (-1, n, n + proof.z[7]):
        with pytest.raises(ProofError, match=r"z_i outside \[0, N̂\)"):
            prm.verify(ctx, stmt, dataclasses.replace(proof, z=at(proof.z, 7, bad)))
    for cut in (0, 1, TEST.m - 1):
        bad_proof = prm.PrmProof(proof.A[:cut], proof.z[:cut])
        with pytest.raises(ProofError, match="not exactly m repetitions"):
            prm.verify(ctx, stmt, bad_proof)
    for bad_proof in (
        dataclasses.replace(proof, A=proof.A[:-1]),
        dataclasses.replace(proof, z=(*proof.z, proof.z[0])),
    ):
        with pytest.raises(ProofError, match="not exactly m repetitions"):
            prm.verify(ctx, stmt, bad_proof)


# -- s outside ⟨t⟩ ------------------------------------------------------------------------


def _non_residue_s(stmt: PedersenParams, secret: PedersenSecret, rng: random.Random) -> mpz:
    """A unit that is a non-square mod p: t is a square, so s is no power of t."""
    while True:
        s = sample_unit(stmt.n, rng)
        if gmpy2.legendre(s, secret.p) == -1 and s != stmt.t:
            return s


def _guessing_proof(
    stmt: PedersenParams, m: int, rng: random.Random
) -> tuple[prm.PrmProof, list[int]]:
    """A forger without λ: guess e_i, pick z_i, set A_i = t^z_i / s^guess_i."""
    n = stmt.n
    guesses = [rng.getrandbits(1) for _ in range(m)]
    z = tuple(randbelow(n, rng) for _ in range(m))
    A = tuple(
        powmod_public(stmt.t, z_i, n) * powmod_public(stmt.s, -g, n) % n
        for z_i, g in zip(z, guesses, strict=True)
    )
    return prm.PrmProof(A, z), guesses


def test_s_outside_t_with_a_guessing_prover_rejected(ctx, secret, rng):
    bad = PedersenParams(
        secret.public.n, _non_residue_s(secret.public, secret, rng), secret.public.t
    )
    proof, guesses = _guessing_proof(bad, TEST.m, rng)
    # The forgery answers exactly the repetitions whose bit it guessed right ...
    e = prm._challenges(ctx, bad, proof.A)
    n, t, s = bad.n, bad.t, bad.s
    holds = [
        powmod_public(t, z_i, n) == A_i * powmod_public(s, e_i, n) % n
        for A_i, z_i, e_i in zip(proof.A, proof.z, e, strict=True)
    ]
    assert holds == [g == e_i for g, e_i in zip(guesses, e, strict=True)]
    assert 20 <= sum(holds) <= 60
    # ... and m = 80 independent bits leave it 2^−80.
    with pytest.raises(ProofError, match=r"t\^z_i ≠ A_i·s\^e_i"):
        prm.verify(ctx, bad, proof)


def test_s_outside_t_with_the_honest_prover_rejected(ctx, secret, rng):
    """The honest prover run with s ∉ ⟨t⟩ (its λ is then wrong) fails on every e_i = 1."""
    bad = PedersenParams(
        secret.public.n, _non_residue_s(secret.public, secret, rng), secret.public.t
    )
    wit = PedersenSecret(secret.p, secret.q, secret.lam, bad)
    with pytest.raises(ProofError, match=r"t\^z_i ≠ A_i·s\^e_i"):
        prm.verify(ctx, bad, prm.prove(ctx, bad, wit, rng))


def test_single_repetition_c_guess_forgery_is_refused(ctx, secret, rng):
    """TSSHOCK "c-guess": with one repetition a forger grinds A until the one bit is its guess.

    Against a one-repetition verifier that forgery verifies (so the attack is real); the
    tier's m = 80 refuses it, and repeating the one forged pair 80 times does not help
    because every e_i is drawn from its own index.
    """
    bad = PedersenParams(
        secret.public.n, _non_residue_s(secret.public, secret, rng), secret.public.t
    )
    one = _short_ctx(ctx, 1)
    for _ in range(64):
        forged, guesses = _guessing_proof(bad, 1, rng)
        if prm._challenges(one, bad, forged.A) == guesses:
            break
    else:
        pytest.fail("grinding one bit failed 64 times")
    prm.verify(one, bad, forged)  # the attack works against one repetition
    with pytest.raises(ProofError, match="not exactly m repetitions"):
        prm.verify(ctx, bad, forged)
    repeated = prm.PrmProof(forged.A * TEST.m, forged.z * TEST.m)
    bits = prm._challenges(ctx, bad, repeated.A)
    assert 0 < sum(bits) < TEST.m  # the bits differ across indices, even for equal A_i
    with pytest.raises(ProofError, match=r"t\^z_i ≠ A_i·s\^e_i"):
        prm.verify(ctx, bad, repeated)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_property_random_keys(seed):
    r = random.Random(seed)
    ped = KeyFactory(TEST, r).pedersen()
    ctx = ProofContext(b"prop", 4, TEST)
    prm.verify(ctx, ped.public, prm.prove(ctx, ped.public, ped, r))
