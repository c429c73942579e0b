from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import TEST
from tests.zk.helpers import assert_every_tamper_rejected, assert_round_trip
from tssnode.crypto.group import Q, base_mul
from tssnode.errors import EncodingError, ProofError
from tssnode.zk import sch
from tssnode.zk.common import ProofContext


def _setup(rng, x=None):
    x = x or rng.randrange(1, Q)
    return sch.SchStatement(base_mul(x)), sch.SchWitness(x)


def test_honest_proof_verifies_and_round_trips(ctx, rng):
    stmt, wit = _setup(rng)
    proof = sch.prove(ctx, stmt, wit, rng)
    sch.verify(ctx, stmt, proof)
    assert_round_trip(proof)
    assert_round_trip(stmt)


def test_every_field_tampered_is_rejected(ctx, rng):
    stmt, wit = _setup(rng)
    proof = sch.prove(ctx, stmt, wit, rng)
    assert_every_tamper_rejected(proof, lambda p: sch.verify(ctx, stmt, p))


def test_wrong_statement_session_or_prover_rejected(ctx, make_ctx, rng):
    stmt, wit = _setup(rng)
    proof = sch.prove(ctx, stmt, wit, rng)
    other, _ = _setup(rng)
    for c, s in ((ctx, other), (make_ctx(ssid=b"other"), stmt), (make_ctx(prover=2), stmt)):
        with pytest.raises(ProofError):
            sch.verify(c, s, proof)


def test_commit_first_then_prove(ctx, rng):
    stmt, wit = _setup(rng)
    nonce = sch.commit(rng)
    proof = sch.prove(ctx, stmt, wit, nonce=nonce)
    assert proof.A == nonce.A
    sch.verify(ctx, stmt, proof)
    assert str(nonce.alpha) not in repr(nonce)


def test_wrong_witness_does_not_verify(ctx, rng):
    stmt, _ = _setup(rng)
    proof = sch.prove(ctx, stmt, sch.SchWitness(12345), rng)
    with pytest.raises(ProofError, match="z·G"):
        sch.verify(ctx, stmt, proof)


def test_out_of_range_response_rejected_by_decoder(ctx, rng):
    stmt, wit = _setup(rng)
    proof = sch.prove(ctx, stmt, wit, rng)
    from tssnode.crypto.encoding import dumps

    raw = dumps([sch.SchProof.WIRE_TAG, proof.A, proof.z + Q])
    with pytest.raises(EncodingError):
        sch.SchProof.from_bytes(raw)


@settings(max_examples=25, deadline=None)
@given(x=st.integers(min_value=1, max_value=Q - 1), seed=st.integers(0, 2**32))
def test_property_random_witnesses(x, seed):
    import random

    r = random.Random(seed)
    ctx = ProofContext(b"prop", 3, TEST)
    stmt, wit = _setup(r, x)
    sch.verify(ctx, stmt, sch.prove(ctx, stmt, wit, r))
