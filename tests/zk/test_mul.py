from __future__ import annotations

import dataclasses
import random

import pytest
from gmpy2 import mpz
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import STANDARD, TEST, KeyFactory
from tests.zk.helpers import assert_every_tamper_rejected, assert_round_trip
from tssnode.crypto.arith import randbelow, sample_pm, sample_unit
from tssnode.crypto.group import Q
from tssnode.crypto.paillier import PaillierSecretKey
from tssnode.errors import ProofError
from tssnode.zk import mul
from tssnode.zk.common import ProofContext


def _instance(
    sk: PaillierSecretKey, x: int, rng: random.Random, y: int | None = None
) -> tuple[mul.MulStatement, mul.MulWitness, mpz]:
    """Presign identification's shape: X = K_i = enc(k_i), Y = G_i = enc(γ_i), C = k_i ⊙ G_i."""
    y = mpz(randbelow(Q, rng) if y is None else y)
    X, rho_x = sk.public.encrypt(x, rng)
    Y, _ = sk.public.encrypt(y, rng)
    rho = sample_unit(sk.n, rng)
    C = sk.public.mul(Y, x) * sk.public.encrypt_with(0, rho) % sk.public.n2
    return mul.MulStatement(sk.public, X, Y, C), mul.MulWitness(mpz(x), rho, rho_x, sk), y


@pytest.fixture
def setup(keys, rng):
    sk = keys.paillier()
    stmt, wit, _ = _instance(sk, randbelow(Q, rng), rng)
    return stmt, wit, sk


def test_honest_proof_verifies_with_and_without_crt(ctx, setup, rng):
    stmt, wit, _ = setup
    for w in (wit, dataclasses.replace(wit, sk=None)):
        proof = mul.prove(ctx, stmt, w, rng)
        mul.verify(ctx, stmt, proof)
        assert_round_trip(proof)
    assert_round_trip(stmt)


def test_statement_is_the_product_it_claims(ctx, keys, rng):
    """C decrypts to x·y: the relation the identification step relies on."""
    sk = keys.paillier()
    x = randbelow(Q, rng)
    stmt, wit, y = _instance(sk, x, rng)
    mul.verify(ctx, stmt, mul.prove(ctx, stmt, wit, rng))
    assert sk.decrypt(stmt.C) == x * y
    assert sk.decrypt(stmt.X) == x


def test_negative_witness_at_its_bound_verifies(ctx, keys, rng):
    sk = keys.paillier()
    for x in (-(1 << TEST.ell), 1 << TEST.ell, 0):
        stmt, wit, _ = _instance(sk, x, rng)
        mul.verify(ctx, stmt, mul.prove(ctx, stmt, wit, rng))


def test_every_field_tampered_is_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = mul.prove(ctx, stmt, wit, rng)
    assert_every_tamper_rejected(proof, lambda p: mul.verify(ctx, stmt, p))


def test_every_statement_field_changed_is_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = mul.prove(ctx, stmt, wit, rng)
    assert_every_tamper_rejected(stmt, lambda s: mul.verify(ctx, s, proof))


def test_wrong_statement_session_or_prover_rejected(ctx, make_ctx, setup, rng):
    stmt, wit, sk = setup
    proof = mul.prove(ctx, stmt, wit, rng)
    other_Y, _ = sk.public.encrypt(5, rng)
    bad_stmt = dataclasses.replace(stmt, Y=other_Y)
    for c, s in ((ctx, bad_stmt), (make_ctx(ssid=b"x"), stmt), (make_ctx(prover=9), stmt)):
        with pytest.raises(ProofError):
            mul.verify(c, s, proof)


def test_lying_prover_rejected_by_each_equality(ctx, setup, rng):
    stmt, wit, sk = setup
    # C is (x + 1) ⊙ Y, not x ⊙ Y.
    C = sk.public.mul(stmt.Y, wit.x + 1) * sk.public.encrypt_with(0, wit.rho) % sk.public.n2
    bad = dataclasses.replace(stmt, C=C)
    with pytest.raises(ProofError, match="Y\\^z"):
        mul.verify(ctx, bad, mul.prove(ctx, bad, wit, rng))
    # X encrypts x + 1.
    X = sk.public.encrypt_with(wit.x + 1, wit.rho_x)
    bad = dataclasses.replace(stmt, X=X)
    with pytest.raises(ProofError, match="enc\\(z; v\\)"):
        mul.verify(ctx, bad, mul.prove(ctx, bad, wit, rng))


def test_x_out_of_range_is_caught(ctx, keys, rng):
    """x far beyond ±2^ℓ makes z leave ±2^(ℓ+ε); the response range check rejects it."""
    sk = keys.paillier()
    x = 1 << (TEST.ell + TEST.eps + 100)
    stmt, wit, _ = _instance(sk, x, rng)
    proof = mul.prove(ctx, stmt, wit, rng)
    with pytest.raises(ProofError, match="z outside"):
        mul.verify(ctx, stmt, proof)


def test_invalid_ciphertexts_in_statement_rejected(ctx, setup, rng):
    stmt, wit, sk = setup
    proof = mul.prove(ctx, stmt, wit, rng)
    for field in ("X", "Y", "C"):
        for bad in (0, stmt.N.n, stmt.N.n2, stmt.N.n2 + 1, sk.p):
            with pytest.raises(ProofError, match=f"{field} not in"):
                mul.verify(ctx, dataclasses.replace(stmt, **{field: bad}), proof)


def test_non_units_in_proof_rejected(ctx, setup, rng):
    stmt, wit, sk = setup
    proof = mul.prove(ctx, stmt, wit, rng)
    cases = [
        ("A", 0, "A not in"),
        ("A", sk.p, "A not in"),
        ("B", stmt.N.n2, "B not in"),
        ("u", stmt.N.n, "u or v"),
        ("u", sk.q, "u or v"),
        ("v", 0, "u or v"),
        ("v", -1, "u or v"),
    ]
    for field, value, msg in cases:
        with pytest.raises(ProofError, match=msg):
            mul.verify(ctx, stmt, dataclasses.replace(proof, **{field: value}))


def test_witness_repr_hides_secrets(setup):
    _, wit, _ = setup
    text = repr(wit)
    for secret in (wit.x, wit.rho, wit.rho_x):
        assert str(secret) not in text


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32), x_bits=st.integers(0, TEST.ell))
def test_property_random_witnesses(seed, x_bits):
    r = random.Random(seed)
    sk = KeyFactory(TEST, r).paillier()
    x = sample_pm(x_bits, r)
    stmt, wit, y = _instance(sk, x, r)
    ctx = ProofContext(b"prop", 2, TEST)
    mul.verify(ctx, stmt, mul.prove(ctx, stmt, wit, r))
    assert sk.decrypt(stmt.C) == x * y


@pytest.mark.slow
def test_standard_tier_prove_and_verify(rng):
    sk = KeyFactory(STANDARD, rng).paillier()
    ctx = ProofContext(b"slow", 1, STANDARD)
    stmt, wit, _ = _instance(sk, randbelow(Q, rng), rng)
    for w in (wit, dataclasses.replace(wit, sk=None)):
        proof = mul.prove(ctx, stmt, w, rng)
        mul.verify(ctx, stmt, proof)
    assert_round_trip(proof)
    with pytest.raises(ProofError):
        mul.verify(ctx, stmt, dataclasses.replace(proof, z=proof.z + 1))


def test_challenge_binds_statement_and_every_first_message(ctx, setup, rng):
    """Fiat–Shamir: changing A, B or the statement changes e."""
    stmt, wit, _ = setup
    proof = mul.prove(ctx, stmt, wit, rng)
    e = mul._challenge(ctx, stmt, proof.A, proof.B)
    assert mul._challenge(ctx, stmt, proof.A + 1, proof.B) != e
    assert mul._challenge(ctx, stmt, proof.A, proof.B + 1) != e
    assert mul._challenge(ctx, dataclasses.replace(stmt, C=stmt.C + 1), proof.A, proof.B) != e
