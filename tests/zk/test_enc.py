from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import TEST, KeyFactory
from tests.zk.helpers import assert_every_tamper_rejected, assert_round_trip
from tssnode.crypto.arith import sample_pm
from tssnode.errors import ProofError
from tssnode.zk import enc
from tssnode.zk.common import ProofContext


@pytest.fixture
def setup(keys, rng):
    sk = keys.paillier()
    aux = keys.pedersen().public
    k = sample_pm(TEST.ell, rng)
    K, rho = sk.public.encrypt(k, rng)
    stmt = enc.EncStatement(sk.public, K, aux)
    return stmt, enc.EncWitness(k, rho, sk), sk


def test_honest_proof_verifies_with_and_without_crt(ctx, setup, rng):
    stmt, wit, _ = setup
    for w in (wit, enc.EncWitness(wit.k, wit.rho)):
        proof = enc.prove(ctx, stmt, w, rng)
        enc.verify(ctx, stmt, proof)
        assert_round_trip(proof)
    assert_round_trip(stmt)


def test_every_field_tampered_is_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = enc.prove(ctx, stmt, wit, rng)
    assert_every_tamper_rejected(proof, lambda p: enc.verify(ctx, stmt, p))


def test_wrong_statement_session_or_prover_rejected(ctx, make_ctx, setup, rng):
    stmt, wit, sk = setup
    proof = enc.prove(ctx, stmt, wit, rng)
    other_K, _ = sk.public.encrypt(5, rng)
    import dataclasses

    bad_stmt = dataclasses.replace(stmt, K=other_K)
    for c, s in ((ctx, bad_stmt), (make_ctx(ssid=b"x"), stmt), (make_ctx(prover=9), stmt)):
        with pytest.raises(ProofError):
            enc.verify(c, s, proof)


def test_plaintext_out_of_range_is_caught(ctx, setup, rng):
    """k far beyond ±2^ℓ makes z1 leave ±2^(ℓ+ε): the range check rejects it."""
    stmt, _, sk = setup
    k = 1 << (TEST.ell + TEST.eps + 300)
    K, rho = sk.public.encrypt(k, rng)
    import dataclasses

    big = dataclasses.replace(stmt, K=K)
    proof = enc.prove(ctx, big, enc.EncWitness(k, rho, sk), rng)
    with pytest.raises(ProofError, match="z1 outside"):
        enc.verify(ctx, big, proof)


def test_invalid_ciphertext_in_statement_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    import dataclasses

    proof = enc.prove(ctx, stmt, wit, rng)
    for bad_K in (0, stmt.N0.n, stmt.N0.n2 + 1):
        with pytest.raises(ProofError, match="K not in"):
            enc.verify(ctx, dataclasses.replace(stmt, K=bad_K), proof)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), k_bits=st.integers(0, TEST.ell))
def test_property_random_witnesses(seed, k_bits):
    r = random.Random(seed)
    keys = KeyFactory(TEST, r)
    sk, aux = keys.paillier(), keys.pedersen().public
    k = sample_pm(k_bits, r)
    K, rho = sk.public.encrypt(k, r)
    ctx = ProofContext(b"prop", 2, TEST)
    stmt = enc.EncStatement(sk.public, K, aux)
    enc.verify(ctx, stmt, enc.prove(ctx, stmt, enc.EncWitness(k, rho, sk), r))
