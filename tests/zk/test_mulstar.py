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
from tssnode.crypto.group import Q, base_mul
from tssnode.crypto.paillier import PaillierSecretKey
from tssnode.crypto.pedersen import PedersenParams
from tssnode.errors import ProofError
from tssnode.zk import mulstar
from tssnode.zk.common import ProofContext


def _instance(
    sk: PaillierSecretKey, aux: PedersenParams, x: int, rng: random.Random
) -> tuple[mulstar.MulStarStatement, mulstar.MulStarWitness, mpz]:
    """Sign identification's shape: C = K_i = enc_i(k_i), D = x_i ⊙ K_i, X = x_i·G."""
    k = randbelow(Q, rng)
    C, _ = sk.public.encrypt(k, rng)
    rho = sample_unit(sk.n, rng)
    D = sk.public.mul(C, x) * sk.public.encrypt_with(0, rho) % sk.public.n2
    stmt = mulstar.MulStarStatement(sk.public, C, D, base_mul(int(x)), aux)
    return stmt, mulstar.MulStarWitness(mpz(x), rho, sk), k


@pytest.fixture
def parties(keys):
    """(prover's Paillier key N0, verifier's ring-Pedersen)."""
    return keys.paillier(), keys.pedersen().public


@pytest.fixture
def setup(parties, rng):
    sk, aux = parties
    stmt, wit, _ = _instance(sk, aux, randbelow(Q, rng), rng)
    return stmt, wit, parties


def test_honest_proof_verifies_with_and_without_crt(ctx, setup, rng):
    stmt, wit, _ = setup
    for w in (wit, dataclasses.replace(wit, sk=None)):
        proof = mulstar.prove(ctx, stmt, w, rng)
        mulstar.verify(ctx, stmt, proof)
        assert_round_trip(proof)
    assert_round_trip(stmt)


def test_statement_is_the_product_it_claims(ctx, parties, rng):
    sk, aux = parties
    x = randbelow(Q, rng)
    stmt, wit, k = _instance(sk, aux, x, rng)
    mulstar.verify(ctx, stmt, mulstar.prove(ctx, stmt, wit, rng))
    assert sk.decrypt(stmt.D) == x * k


def test_witness_at_its_bounds_verifies(ctx, parties, rng):
    sk, aux = parties
    for x in (1 << TEST.ell, -(1 << TEST.ell)):
        stmt, wit, _ = _instance(sk, aux, x, rng)
        mulstar.verify(ctx, stmt, mulstar.prove(ctx, stmt, wit, rng))


def test_every_field_tampered_is_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = mulstar.prove(ctx, stmt, wit, rng)
    assert_every_tamper_rejected(proof, lambda p: mulstar.verify(ctx, stmt, p))


def test_every_statement_field_changed_is_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = mulstar.prove(ctx, stmt, wit, rng)
    assert_every_tamper_rejected(stmt, lambda s: mulstar.verify(ctx, s, proof))


def test_wrong_statement_session_or_prover_rejected(ctx, make_ctx, setup, rng):
    stmt, wit, (sk, _) = setup
    proof = mulstar.prove(ctx, stmt, wit, rng)
    other_C, _ = sk.public.encrypt(5, rng)
    bad_stmt = dataclasses.replace(stmt, C=other_C)
    for c, s in ((ctx, bad_stmt), (make_ctx(ssid=b"x"), stmt), (make_ctx(prover=9), stmt)):
        with pytest.raises(ProofError):
            mulstar.verify(c, s, proof)


def test_lying_prover_rejected_by_each_equality(ctx, setup, rng):
    stmt, wit, (sk, _) = setup
    # D is (x + 1) ⊙ C while X = x·G.
    D = sk.public.mul(stmt.C, wit.x + 1) * sk.public.encrypt_with(0, wit.rho) % sk.public.n2
    bad = dataclasses.replace(stmt, D=D)
    with pytest.raises(ProofError, match="C\\^z1"):
        mulstar.verify(ctx, bad, mulstar.prove(ctx, bad, wit, rng))
    # X is not x·G.
    bad = dataclasses.replace(stmt, X=base_mul(int(wit.x) + 1))
    with pytest.raises(ProofError, match="z1·G"):
        mulstar.verify(ctx, bad, mulstar.prove(ctx, bad, wit, rng))


def test_x_out_of_range_is_caught(ctx, parties, rng):
    """x ≡ x' (mod q) but far beyond ±2^ℓ: the group check passes, the range check does not."""
    sk, aux = parties
    x = randbelow(Q, rng) + Q * (1 << (TEST.ell + TEST.eps + 100))
    stmt, wit, _ = _instance(sk, aux, x, rng)
    proof = mulstar.prove(ctx, stmt, wit, rng)
    with pytest.raises(ProofError, match="z1 outside"):
        mulstar.verify(ctx, stmt, proof)


def test_invalid_ciphertexts_in_statement_rejected(ctx, setup, rng):
    stmt, wit, (sk, _) = setup
    proof = mulstar.prove(ctx, stmt, wit, rng)
    for field in ("C", "D"):
        for bad in (0, stmt.N0.n, stmt.N0.n2, stmt.N0.n2 + 1, sk.p):
            with pytest.raises(ProofError, match=f"{field} not in"):
                mulstar.verify(ctx, dataclasses.replace(stmt, **{field: bad}), proof)


def test_non_units_in_proof_rejected(ctx, setup, rng):
    stmt, wit, (sk, _) = setup
    proof = mulstar.prove(ctx, stmt, wit, rng)
    nhat = stmt.aux.n
    cases = [
        ("A", 0, "A not in"),
        ("A", sk.p, "A not in"),
        ("w", stmt.N0.n, "w not in"),
        ("w", sk.q, "w not in"),
        ("E", 0, "E or S"),
        ("S", nhat, "E or S"),
        ("S", -1, "E or S"),
    ]
    for field, value, msg in cases:
        with pytest.raises(ProofError, match=msg):
            mulstar.verify(ctx, stmt, dataclasses.replace(proof, **{field: value}))


def test_witness_repr_hides_secrets(setup):
    _, wit, _ = setup
    text = repr(wit)
    for secret in (wit.x, wit.rho):
        assert str(secret) not in text


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32), x_bits=st.integers(0, TEST.ell))
def test_property_random_witnesses(seed, x_bits):
    r = random.Random(seed)
    keys = KeyFactory(TEST, r)
    sk, aux = keys.paillier(), keys.pedersen().public
    x = sample_pm(x_bits, r)
    if x % Q == 0:  # X = x·G must not be the identity
        x += 1
    stmt, wit, k = _instance(sk, aux, x, r)
    ctx = ProofContext(b"prop", 2, TEST)
    mulstar.verify(ctx, stmt, mulstar.prove(ctx, stmt, wit, r))
    assert sk.decrypt(stmt.D) == x * k


@pytest.mark.slow
def test_standard_tier_prove_and_verify(rng):
    keys = KeyFactory(STANDARD, rng)
    sk, aux = keys.paillier(), keys.pedersen().public
    ctx = ProofContext(b"slow", 1, STANDARD)
    stmt, wit, _ = _instance(sk, aux, randbelow(Q, rng), rng)
    proof = mulstar.prove(ctx, stmt, wit, rng)
    mulstar.verify(ctx, stmt, proof)
    assert_round_trip(proof)
    with pytest.raises(ProofError):
        mulstar.verify(ctx, stmt, dataclasses.replace(proof, z1=proof.z1 + 1))


def test_challenge_binds_statement_and_every_first_message(ctx, setup, rng):
    """Fiat–Shamir: changing any of A, B_x, E, S or the statement changes e."""
    stmt, wit, _ = setup
    proof = mulstar.prove(ctx, stmt, wit, rng)
    args = [proof.A, proof.B_x, proof.E, proof.S]
    e = mulstar._challenge(ctx, stmt, *args)
    for i in range(len(args)):
        changed = list(args)
        changed[i] = changed[i] + (base_mul(1) if i == 1 else 1)
        assert mulstar._challenge(ctx, stmt, *changed) != e, i
    other = dataclasses.replace(stmt, D=stmt.D + 1)
    assert mulstar._challenge(ctx, other, *args) != e


def test_malformed_pedersen_in_statement_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = mulstar.prove(ctx, stmt, wit, rng)
    aux = stmt.aux
    for bad in (dataclasses.replace(aux, s=0), dataclasses.replace(aux, t=aux.n)):
        with pytest.raises(ProofError, match="s or t"):
            mulstar.verify(ctx, dataclasses.replace(stmt, aux=bad), proof)
