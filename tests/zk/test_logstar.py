from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import STANDARD, TEST, KeyFactory
from tests.zk.helpers import assert_every_tamper_rejected, assert_round_trip
from tssnode.crypto.arith import sample_pm, sample_scalar
from tssnode.crypto.group import G, Point, base_mul
from tssnode.errors import ProofError
from tssnode.zk import logstar
from tssnode.zk.common import ProofContext


def _make(keys, rng, g: Point, x_bits: int = TEST.ell):
    sk = keys.paillier()
    aux = keys.pedersen().public
    x = sample_pm(x_bits, rng)
    C, rho = sk.public.encrypt(x, rng)
    stmt = logstar.LogStarStatement(sk.public, C, g * int(x), g, aux)
    return stmt, logstar.LogStarWitness(x, rho, sk), sk


@pytest.fixture
def gamma_point(rng):
    """A base point other than G, as Γ in presign round 3."""
    return base_mul(sample_scalar(rng))


@pytest.fixture
def setup(keys, rng, gamma_point):
    return _make(keys, rng, gamma_point)


@pytest.mark.parametrize("base", ["G", "Gamma"])
def test_honest_proof_verifies_with_and_without_crt(ctx, keys, rng, gamma_point, base):
    g = G if base == "G" else gamma_point
    stmt, wit, _ = _make(keys, rng, g)
    for w in (wit, logstar.LogStarWitness(wit.x, wit.rho)):
        proof = logstar.prove(ctx, stmt, w, rng)
        logstar.verify(ctx, stmt, proof)
        assert_round_trip(proof)
    assert_round_trip(stmt)


def test_witness_repr_hides_secrets(setup):
    _, wit, _ = setup
    text = repr(wit) + str(wit)
    assert str(wit.x) not in text and str(wit.rho) not in text
    assert "hidden" in text


def test_every_field_tampered_is_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = logstar.prove(ctx, stmt, wit, rng)
    assert assert_every_tamper_rejected(proof, lambda p: logstar.verify(ctx, stmt, p)) == 13


def test_wrong_statement_session_or_prover_rejected(ctx, make_ctx, setup, rng):
    stmt, wit, sk = setup
    proof = logstar.prove(ctx, stmt, wit, rng)
    other_C, _ = sk.public.encrypt(wit.x, rng)  # same plaintext, other ciphertext
    bad = [
        (ctx, dataclasses.replace(stmt, C=other_C)),
        (ctx, dataclasses.replace(stmt, X=stmt.X + G)),
        (make_ctx(ssid=b"x"), stmt),
        (make_ctx(prover=9), stmt),
    ]
    for c, s in bad:
        with pytest.raises(ProofError):
            logstar.verify(c, s, proof)


def test_wrong_base_point_rejected(ctx, setup, rng):
    """A proof about x·Γ = X says nothing about a base G: both swapping the base alone and
    a consistent statement (G, x·G) for the same C are refused."""
    stmt, wit, _ = setup
    proof = logstar.prove(ctx, stmt, wit, rng)
    for s in (
        dataclasses.replace(stmt, g=G),
        dataclasses.replace(stmt, g=G, X=G * int(wit.x)),
        dataclasses.replace(stmt, g=stmt.g + G),
    ):
        with pytest.raises(ProofError):
            logstar.verify(ctx, s, proof)


def test_honest_prover_on_false_statement_rejected(ctx, setup, rng):
    """The prover runs the honest algorithm on a statement whose X is not x·g (another
    base, or another exponent): Paillier and ring-Pedersen checks hold, the group one fails."""
    stmt, wit, _ = setup
    x = int(wit.x)
    for s in (
        dataclasses.replace(stmt, g=G),  # X = x·Γ claimed as x·G
        dataclasses.replace(stmt, X=stmt.g * (x + 1)),
    ):
        proof = logstar.prove(ctx, s, wit, rng)
        with pytest.raises(ProofError, match="z1·g ≠ Y"):
            logstar.verify(ctx, s, proof)


def test_identity_base_point_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    s = dataclasses.replace(stmt, g=Point.identity())
    proof = logstar.prove(ctx, s, wit, rng)
    with pytest.raises(ProofError, match="g is the identity"):
        logstar.verify(ctx, s, proof)


def test_z1_out_of_range_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = logstar.prove(ctx, stmt, wit, rng)
    bound = 1 << (TEST.ell + TEST.eps)
    for bad in (bound + 1, -bound - 1):
        with pytest.raises(ProofError, match="z1 outside"):
            logstar.verify(ctx, stmt, dataclasses.replace(proof, z1=bad))


def test_plaintext_out_of_range_is_caught(ctx, setup, rng):
    """x far beyond ±2^ℓ makes z1 leave ±2^(ℓ+ε): the range check rejects it."""
    stmt, _, sk = setup
    x = 1 << (TEST.ell + TEST.eps + 100)
    C, rho = sk.public.encrypt(x, rng)
    big = dataclasses.replace(stmt, C=C, X=stmt.g * x)
    proof = logstar.prove(ctx, big, logstar.LogStarWitness(x, rho, sk), rng)
    with pytest.raises(ProofError, match="z1 outside"):
        logstar.verify(ctx, big, proof)


def test_invalid_ciphertexts_and_units_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = logstar.prove(ctx, stmt, wit, rng)
    n, n2, nhat = stmt.N0.n, stmt.N0.n2, stmt.aux.n
    for bad_C in (0, n, n2 + 1):
        with pytest.raises(ProofError, match="C not in"):
            logstar.verify(ctx, dataclasses.replace(stmt, C=bad_C), proof)
    cases = [("A", n2, "A not in"), ("z2", n, "z2 not in"), ("S", nhat, "S or D not in")]
    cases.append(("D", 0, "S or D not in"))
    for field, bad, msg in cases:
        with pytest.raises(ProofError, match=msg):
            logstar.verify(ctx, stmt, dataclasses.replace(proof, **{field: bad}))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32), x_bits=st.integers(0, TEST.ell), base=st.booleans())
def test_property_random_witnesses(seed, x_bits, base):
    r = random.Random(seed)
    keys = KeyFactory(TEST, r)
    g = G if base else base_mul(sample_scalar(r))
    stmt, wit, _ = _make(keys, r, g, x_bits)
    ctx = ProofContext(b"prop", 2, TEST)
    logstar.verify(ctx, stmt, logstar.prove(ctx, stmt, wit, r))


@pytest.mark.slow
def test_standard_tier_proves_and_verifies(rng):
    keys = KeyFactory(STANDARD, rng)
    ctx = ProofContext(b"standard", 3, STANDARD)
    stmt, wit, _ = _make(keys, rng, base_mul(sample_scalar(rng)), STANDARD.ell)
    for w in (wit, logstar.LogStarWitness(wit.x, wit.rho)):
        proof = logstar.prove(ctx, stmt, w, rng)
        logstar.verify(ctx, stmt, proof)
    assert_round_trip(proof)
