from __future__ import annotations

import dataclasses
import random

import pytest
from gmpy2 import mpz
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import STANDARD, TEST, KeyFactory
from tests.zk.helpers import assert_every_tamper_rejected, assert_round_trip
from tssnode.crypto.arith import randbelow, sample_pm
from tssnode.crypto.group import Q, base_mul
from tssnode.crypto.paillier import PaillierSecretKey
from tssnode.crypto.pedersen import PedersenParams
from tssnode.errors import ProofError
from tssnode.zk import affg
from tssnode.zk.common import ProofContext


def _instance(
    sk0: PaillierSecretKey,
    sk1: PaillierSecretKey,
    aux: PedersenParams,
    x: int,
    y: int,
    rng: random.Random,
    k: int | None = None,
) -> tuple[affg.AffgStatement, affg.AffgWitness, mpz]:
    """The MtA sender's message for the receiver's C = enc_0(k): D = x⊙C ⊕ enc_0(y), Y = enc_1(y).

    Returns the statement, the witness (with the prover's key for CRT) and k.
    """
    k = mpz(randbelow(Q, rng) if k is None else k)
    C, _ = sk0.public.encrypt(k, rng)
    masked, rho = sk0.public.encrypt(y, rng)
    D = sk0.public.add(sk0.public.mul(C, x), masked)
    Y, rho_y = sk1.public.encrypt(y, rng)
    stmt = affg.AffgStatement(sk0.public, sk1.public, C, D, Y, base_mul(int(x)), aux)
    return stmt, affg.AffgWitness(mpz(x), mpz(y), rho, rho_y, sk1), k


@pytest.fixture
def parties(keys):
    """(receiver's Paillier key N0, prover's Paillier key N1, verifier's ring-Pedersen)."""
    return keys.paillier(), keys.paillier(), keys.pedersen().public


@pytest.fixture
def setup(parties, rng):
    sk0, sk1, aux = parties
    x = randbelow(Q, rng)
    y = sample_pm(TEST.ell_prime, rng)
    stmt, wit, _ = _instance(sk0, sk1, aux, x, y, rng)
    return stmt, wit, parties


def test_honest_proof_verifies_with_and_without_crt(ctx, setup, rng):
    stmt, wit, _ = setup
    for w in (wit, dataclasses.replace(wit, sk=None)):
        proof = affg.prove(ctx, stmt, w, rng)
        affg.verify(ctx, stmt, proof)
        assert_round_trip(proof)
    assert_round_trip(stmt)


def test_witness_at_its_bounds_verifies(ctx, parties, rng):
    sk0, sk1, aux = parties
    for x, y in ((1 << TEST.ell, 1 << TEST.ell_prime), (-(1 << TEST.ell), -(1 << TEST.ell_prime))):
        stmt, wit, _ = _instance(sk0, sk1, aux, x, y, rng)
        affg.verify(ctx, stmt, affg.prove(ctx, stmt, wit, rng))


def test_mta_relation_of_presign(ctx, parties, rng):
    """Fig. 7's MtA as multi-party-sig runs it: the sender proves with y = −β.

    The receiver j decrypts D and gets α = x·k + y = x·k − β exactly (no wrap mod N0), so
    α + β = x·k; the proof verifies for exactly that message, and F = Y decrypts to −β.
    """
    sk0, sk1, aux = parties
    k = randbelow(Q, rng)  # receiver's k_j, sent as K_j = C
    x = randbelow(Q, rng)  # sender's γ_i
    beta = sample_pm(TEST.ell_prime, rng)  # sender keeps β_{i,j}
    stmt, wit, _ = _instance(sk0, sk1, aux, x, -beta, rng, k=k)
    affg.verify(ctx, stmt, affg.prove(ctx, stmt, wit, rng))
    alpha = sk0.decrypt(stmt.D)
    assert alpha == x * k - beta
    assert (alpha + beta) % Q == x * k % Q
    assert sk0.decrypt_mod_n(stmt.D) == (x * sk0.decrypt(stmt.C) + wit.y) % sk0.n
    assert sk1.decrypt(stmt.Y) == -beta


def test_every_field_tampered_is_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = affg.prove(ctx, stmt, wit, rng)
    assert_every_tamper_rejected(proof, lambda p: affg.verify(ctx, stmt, p))


def test_every_statement_field_changed_is_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = affg.prove(ctx, stmt, wit, rng)
    assert_every_tamper_rejected(stmt, lambda s: affg.verify(ctx, s, proof))


def test_wrong_statement_session_or_prover_rejected(ctx, make_ctx, setup, rng):
    stmt, wit, (sk0, _, _) = setup
    proof = affg.prove(ctx, stmt, wit, rng)
    other_C, _ = sk0.public.encrypt(5, rng)
    bad_stmt = dataclasses.replace(stmt, C=other_C)
    for c, s in ((ctx, bad_stmt), (make_ctx(ssid=b"x"), stmt), (make_ctx(prover=9), stmt)):
        with pytest.raises(ProofError):
            affg.verify(c, s, proof)


def test_lying_prover_rejected_by_each_equality(ctx, setup, rng):
    """A witness that does not fit the statement fails the equality that ties it down."""
    stmt, wit, (sk0, sk1, _) = setup
    # D adds y + 1 while Y encrypts y: the N0 equality fails.
    masked, rho = sk0.public.encrypt(wit.y + 1, rng)
    D = sk0.public.add(sk0.public.mul(stmt.C, wit.x), masked)
    bad = dataclasses.replace(stmt, D=D)
    with pytest.raises(ProofError, match="C\\^z1"):
        affg.verify(ctx, bad, affg.prove(ctx, bad, dataclasses.replace(wit, rho=rho), rng))
    # X is not x·G.
    bad = dataclasses.replace(stmt, X=base_mul(int(wit.x) + 1))
    with pytest.raises(ProofError, match="z1·G"):
        affg.verify(ctx, bad, affg.prove(ctx, bad, wit, rng))
    # Y encrypts y + 1 while D adds y.
    Y, rho_y = sk1.public.encrypt(wit.y + 1, rng)
    bad = dataclasses.replace(stmt, Y=Y)
    with pytest.raises(ProofError, match="enc_1"):
        affg.verify(ctx, bad, affg.prove(ctx, bad, dataclasses.replace(wit, rho_y=rho_y), rng))


def test_x_out_of_range_is_caught(ctx, parties, rng):
    """x far beyond ±2^ℓ makes z1 leave ±2^(ℓ+ε): the range check rejects it."""
    sk0, sk1, aux = parties
    x = 1 << (TEST.ell + TEST.eps + 300)
    stmt, wit, _ = _instance(sk0, sk1, aux, x, 7, rng)
    proof = affg.prove(ctx, stmt, wit, rng)
    with pytest.raises(ProofError, match="z1 outside"):
        affg.verify(ctx, stmt, proof)


def test_y_out_of_range_is_caught(ctx, parties, rng):
    """y far beyond ±2^ℓ' (the mask that must never be reduced mod q) makes z2 leave ±2^(ℓ'+ε)."""
    sk0, sk1, aux = parties
    y = -(1 << (TEST.ell_prime + TEST.eps + 60))
    stmt, wit, _ = _instance(sk0, sk1, aux, 3, y, rng)
    proof = affg.prove(ctx, stmt, wit, rng)
    with pytest.raises(ProofError, match="z2 outside"):
        affg.verify(ctx, stmt, proof)


def test_invalid_ciphertexts_in_statement_rejected(ctx, setup, rng):
    stmt, wit, (sk0, sk1, _) = setup
    proof = affg.prove(ctx, stmt, wit, rng)
    n0, n1 = stmt.N0, stmt.N1
    for field, pk, sk in (("C", n0, sk0), ("D", n0, sk0), ("Y", n1, sk1)):
        for bad in (0, pk.n, pk.n2, pk.n2 + 1, sk.p):
            with pytest.raises(ProofError, match=f"{field} not in"):
                affg.verify(ctx, dataclasses.replace(stmt, **{field: bad}), proof)


def test_non_units_in_proof_rejected(ctx, setup, rng):
    stmt, wit, (sk0, sk1, _) = setup
    proof = affg.prove(ctx, stmt, wit, rng)
    nhat = stmt.aux.n
    cases = [
        ("A", 0, "A not in"),
        ("A", sk0.q, "A not in"),
        ("B_y", stmt.N1.n2, "B_y not in"),
        ("w", stmt.N0.n, "w not in"),
        ("w", sk0.p, "w not in"),
        ("w_y", 0, "w_y not in"),
        ("w_y", sk1.q, "w_y not in"),
        ("E", 0, "E, S, F or T"),
        ("S", nhat, "E, S, F or T"),
        ("F", nhat + 1, "E, S, F or T"),
        ("T", -1, "E, S, F or T"),
    ]
    for field, value, msg in cases:
        with pytest.raises(ProofError, match=msg):
            affg.verify(ctx, stmt, dataclasses.replace(proof, **{field: value}))


def test_witness_repr_hides_secrets(setup):
    _, wit, _ = setup
    text = repr(wit)
    for secret in (wit.x, wit.y, wit.rho, wit.rho_y):
        assert str(secret) not in text


@settings(max_examples=5, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    x_bits=st.integers(0, TEST.ell),
    y_bits=st.integers(0, TEST.ell_prime),
)
def test_property_random_witnesses(seed, x_bits, y_bits):
    r = random.Random(seed)
    keys = KeyFactory(TEST, r)
    sk0, sk1, aux = keys.paillier(), keys.paillier(), keys.pedersen().public
    x, y = sample_pm(x_bits, r), sample_pm(y_bits, r)
    stmt, wit, k = _instance(sk0, sk1, aux, x, y, r)
    ctx = ProofContext(b"prop", 2, TEST)
    affg.verify(ctx, stmt, affg.prove(ctx, stmt, wit, r))
    assert sk0.decrypt(stmt.D) == x * k + y


@pytest.mark.slow
def test_standard_tier_prove_and_verify(rng):
    keys = KeyFactory(STANDARD, rng)
    sk0, sk1, aux = keys.paillier(), keys.paillier(), keys.pedersen().public
    ctx = ProofContext(b"slow", 1, STANDARD)
    x, y = randbelow(Q, rng), sample_pm(STANDARD.ell_prime, rng)
    stmt, wit, k = _instance(sk0, sk1, aux, x, y, rng)
    proof = affg.prove(ctx, stmt, wit, rng)
    affg.verify(ctx, stmt, proof)
    assert_round_trip(proof)
    assert sk0.decrypt(stmt.D) == x * k + y
    with pytest.raises(ProofError):
        affg.verify(ctx, stmt, dataclasses.replace(proof, z2=proof.z2 + 1))


def test_challenge_binds_statement_and_every_first_message(ctx, setup, rng):
    """Fiat–Shamir: changing any first message (or the statement) changes e."""
    stmt, wit, _ = setup
    proof = affg.prove(ctx, stmt, wit, rng)
    first = ("A", "B_x", "B_y", "E", "S", "F", "T")
    args = [getattr(proof, f) for f in first]
    e = affg._challenge(ctx, stmt, *args)
    for i, name in enumerate(first):
        changed = list(args)
        changed[i] = changed[i] + (base_mul(1) if name == "B_x" else 1)
        assert affg._challenge(ctx, stmt, *changed) != e, name
    other = dataclasses.replace(stmt, D=stmt.D + 1)
    assert affg._challenge(ctx, other, *args) != e


def test_malformed_pedersen_in_statement_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = affg.prove(ctx, stmt, wit, rng)
    aux = stmt.aux
    for bad in (dataclasses.replace(aux, s=0), dataclasses.replace(aux, t=aux.n)):
        with pytest.raises(ProofError, match="s or t"):
            affg.verify(ctx, dataclasses.replace(stmt, aux=bad), proof)
