from __future__ import annotations

import dataclasses
import random

import pytest
from gmpy2 import mpz
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import STANDARD, TEST, KeyFactory
from tests.zk.helpers import assert_every_tamper_rejected, assert_round_trip
from tssnode.crypto.arith import sample_pm
from tssnode.crypto.group import Q
from tssnode.errors import ProofError
from tssnode.zk import dec
from tssnode.zk.common import ProofContext

# An identification-sized plaintext: an MtA mask β ∈ ±2^ℓ' plus products of ~2ℓ bits.
Y_BITS = TEST.ell_prime + 8


def _make(keys, rng, y_bits: int = Y_BITS, y=None):
    sk = keys.paillier()
    aux = keys.pedersen().public
    y = sample_pm(y_bits, rng) if y is None else y
    C, rho = sk.public.encrypt(y, rng)
    assert sk.decrypt(C) == y
    stmt = dec.DecStatement.single(sk.public, C, int(y % Q), y_bits, aux)
    return stmt, dec.DecWitness((y,), (rho,), sk), sk


@pytest.fixture
def setup(keys, rng):
    return _make(keys, rng)


def test_honest_proof_verifies_with_and_without_crt(ctx, setup, rng):
    stmt, wit, _ = setup
    for w in (wit, dec.DecWitness(wit.y, wit.rho)):
        proof = dec.prove(ctx, stmt, w, rng)
        dec.verify(ctx, stmt, proof)
        assert_round_trip(proof)
    assert_round_trip(stmt)


def test_negative_and_zero_plaintexts(ctx, keys, rng):
    for y in (0, -1, -(1 << Y_BITS), 1 << Y_BITS):
        stmt, wit, _ = _make(keys, rng, y=y)
        dec.verify(ctx, stmt, dec.prove(ctx, stmt, wit, rng))


def test_witness_repr_hides_secrets(setup):
    _, wit, _ = setup
    text = repr(wit) + str(wit)
    assert str(wit.y[0]) not in text and str(wit.rho[0]) not in text
    assert "hidden" in text


def test_every_field_tampered_is_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = dec.prove(ctx, stmt, wit, rng)
    assert assert_every_tamper_rejected(proof, lambda p: dec.verify(ctx, stmt, p)) == 14


def test_wrong_statement_session_or_prover_rejected(ctx, make_ctx, setup, rng):
    stmt, wit, sk = setup
    proof = dec.prove(ctx, stmt, wit, rng)
    other_C, _ = sk.public.encrypt(wit.y[0], rng)  # same plaintext, other ciphertext
    bad = [
        (ctx, dataclasses.replace(stmt, C=(other_C,))),
        (ctx, dataclasses.replace(stmt, y_bits=(stmt.y_bits[0] + 1,))),
        (ctx, dataclasses.replace(stmt, coeffs=(2,))),
        (make_ctx(ssid=b"x"), stmt),
        (make_ctx(prover=9), stmt),
    ]
    for c, s in bad:
        with pytest.raises(ProofError):
            dec.verify(c, s, proof)


@pytest.mark.parametrize("delta", [1, -1, Q // 2])
def test_wrong_claimed_value_rejected(ctx, setup, rng, delta):
    """An honest prover run on a false claim x' ≢ dec(C) (mod q) is rejected by the mod-q check."""
    stmt, wit, _ = setup
    lie = dataclasses.replace(stmt, x=(stmt.x + delta) % Q)
    proof = dec.prove(ctx, lie, wit, rng)
    with pytest.raises(ProofError, match="mod q"):
        dec.verify(ctx, lie, proof)


def test_claim_about_other_plaintext_rejected(ctx, setup, rng):
    """Claiming x = y' mod q for a y' ≠ dec(C), with a witness built around y', fails the
    Paillier check: the prover does not know an opening of C to y'."""
    stmt, wit, _ = setup
    y2 = wit.y[0] + 1
    lie = dataclasses.replace(stmt, x=int(y2 % Q))
    proof = dec.prove(ctx, lie, dataclasses.replace(wit, y=(y2,)), rng)
    with pytest.raises(ProofError, match="enc"):
        dec.verify(ctx, lie, proof)


def test_z1_out_of_range_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = dec.prove(ctx, stmt, wit, rng)
    bound = 1 << dec.mask_bits(TEST, stmt.y_bits[0])
    for bad in (bound + 1, -bound - 1):
        with pytest.raises(ProofError, match="z1 outside"):
            dec.verify(ctx, stmt, dataclasses.replace(proof, z1=(bad,)))


def test_plaintext_above_the_claimed_bound_is_caught(ctx, keys, rng):
    """y far beyond the statement's 2^y_bits makes z1 leave ±2^(y_bits+c+128)."""
    y_bits = 64
    stmt, wit, _ = _make(keys, rng, y_bits=y_bits, y=1 << (dec.mask_bits(TEST, y_bits) + 200))
    with pytest.raises(ProofError, match="z1 outside"):
        dec.verify(ctx, stmt, dec.prove(ctx, stmt, wit, rng))


def test_masks_scale_with_y_bits(ctx, setup, rng):
    """DEVIATION 1: α ← ±2^(y_bits+c+128), so z1 = α + e·y is dominated by α, not e·y.

    With the paper's α ← ±2^(ℓ+ε), |z1| would stay below about 2^(ℓ+ε+1) + |e·y|, far under
    2^(M−32) here; at the standard tier e·y would dominate and reveal y's top bits.
    """
    stmt, wit, _ = setup
    for _ in range(4):
        (z1,) = dec.prove(ctx, stmt, wit, rng).z1
        assert abs(z1).bit_length() > dec.mask_bits(TEST, stmt.y_bits[0]) - 32


@pytest.mark.parametrize("y_bits", [-1, dec.max_plaintext_bits(TEST) + 1])
def test_y_bits_out_of_range_for_modulus_rejected(ctx, setup, rng, y_bits):
    """With M + 3 ≥ |N0|, z1 could wrap mod N0 and the proof would not pin dec(C)."""
    stmt, wit, _ = setup
    proof = dec.prove(ctx, stmt, wit, rng)
    with pytest.raises(ProofError, match="y_bits out of range"):
        dec.verify(ctx, dataclasses.replace(stmt, y_bits=(y_bits,)), proof)


def test_largest_allowed_y_bits_verifies(ctx, keys, rng):
    y_bits = dec.max_plaintext_bits(TEST)
    stmt, wit, _ = _make(keys, rng, y_bits=y_bits)
    dec.verify(ctx, stmt, dec.prove(ctx, stmt, wit, rng))


def test_invalid_ciphertexts_units_and_scalars_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = dec.prove(ctx, stmt, wit, rng)
    n, n2, nhat = stmt.N0.n, stmt.N0.n2, stmt.aux.n
    for bad_C in (0, n, n2 + 1):
        with pytest.raises(ProofError, match="C not in"):
            dec.verify(ctx, dataclasses.replace(stmt, C=(bad_C,)), proof)
    with pytest.raises(ProofError, match="x not in"):
        dec.verify(ctx, dataclasses.replace(stmt, x=stmt.x + Q), proof)
    with pytest.raises(ProofError, match="coefficient not in"):
        dec.verify(ctx, dataclasses.replace(stmt, coeffs=(Q + 1,)), proof)
    cases = [
        ("A", (n2,), "A not in"),
        ("w", (0,), "w not in"),
        ("S", (nhat,), "S or T not in"),
        ("T", (-1,), "S or T not in"),
        ("z2", (), "term counts differ"),
        ("gamma", proof.gamma + Q, "γ not in"),
        ("gamma", -1, "γ not in"),
    ]
    for field, bad, msg in cases:
        with pytest.raises(ProofError, match=msg):
            dec.verify(ctx, stmt, dataclasses.replace(proof, **{field: bad}))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32), y_bits=st.integers(0, TEST.ell_prime + 16))
def test_property_random_witnesses(seed, y_bits):
    r = random.Random(seed)
    keys = KeyFactory(TEST, r)
    stmt, wit, _ = _make(keys, r, y_bits=y_bits)
    ctx = ProofContext(b"prop", 2, TEST)
    dec.verify(ctx, stmt, dec.prove(ctx, stmt, wit, r))


@pytest.mark.slow
def test_standard_tier_proves_and_verifies(rng):
    keys = KeyFactory(STANDARD, rng)
    ctx = ProofContext(b"standard", 3, STANDARD)
    from tssnode.protocol.presign import plaintext_bound

    # the largest plaintext presign identification opens at the standard tier (4 signers)
    stmt, wit, _ = _make(keys, rng, y_bits=plaintext_bound(STANDARD, 4))
    for w in (wit, dec.DecWitness(wit.y, wit.rho)):
        proof = dec.prove(ctx, stmt, w, rng)
        dec.verify(ctx, stmt, proof)
    assert_round_trip(proof)


# -- several ciphertexts (sign identification: σ ≡ m·k + r·χ) -----------------------------------


def _make_pair(keys, rng, bits=(TEST.ell, Y_BITS), coeffs=None):
    sk = keys.paillier()
    aux = keys.pedersen().public
    ys = tuple(sample_pm(b, rng) for b in bits)
    coeffs = coeffs or (rng.randrange(Q), rng.randrange(Q))
    enc = [sk.public.encrypt(y, rng) for y in ys]
    x = sum(c * y for c, y in zip(coeffs, ys, strict=True)) % Q
    stmt = dec.DecStatement(sk.public, tuple(C for C, _ in enc), coeffs, x, bits, aux)
    return stmt, dec.DecWitness(ys, tuple(r for _, r in enc), sk)


def test_linear_combination_of_two_ciphertexts_verifies(ctx, keys, rng):
    stmt, wit = _make_pair(keys, rng)
    proof = dec.prove(ctx, stmt, wit, rng)
    dec.verify(ctx, stmt, proof)
    assert_round_trip(proof)
    assert_round_trip(stmt)


def test_linear_combination_every_field_tampered_is_rejected(ctx, keys, rng):
    stmt, wit = _make_pair(keys, rng)
    proof = dec.prove(ctx, stmt, wit, rng)
    assert assert_every_tamper_rejected(proof, lambda p: dec.verify(ctx, stmt, p)) == 26


def test_linear_combination_wrong_claim_or_coefficient_rejected(ctx, keys, rng):
    stmt, wit = _make_pair(keys, rng)
    for lie in (
        dataclasses.replace(stmt, x=(stmt.x + 1) % Q),
        dataclasses.replace(stmt, coeffs=(stmt.coeffs[0], (stmt.coeffs[1] + 1) % Q)),
        dataclasses.replace(stmt, C=stmt.C[::-1], y_bits=stmt.y_bits[::-1]),
    ):
        proof = dec.prove(ctx, lie, dataclasses.replace(wit), rng)
        with pytest.raises(ProofError):
            dec.verify(ctx, lie, proof)


def test_too_many_terms_rejected(ctx, keys, rng):
    stmt, wit = _make_pair(keys, rng)
    proof = dec.prove(ctx, stmt, wit, rng)
    k = dec.MAX_TERMS + 1
    big = dataclasses.replace(
        stmt, C=stmt.C[:1] * k, coeffs=stmt.coeffs[:1] * k, y_bits=stmt.y_bits[:1] * k
    )
    with pytest.raises(ProofError, match="number of ciphertexts"):
        dec.verify(ctx, big, proof)


def test_challenge_is_sized_to_the_tier():
    """DEVIATION 2: c = 112 below 3072-bit moduli, 128 from there; never as large as q."""
    from tssnode.crypto.params import HIGH

    assert dec.challenge_bits(STANDARD) == 112 and dec.challenge_bits(TEST) == 112
    assert dec.challenge_bits(HIGH) == 128
    assert dec.max_plaintext_bits(STANDARD) == 2048 - 4 - 112 - 128


def test_two_term_statement_tampered_anywhere_is_rejected(ctx, keys, rng):
    """Every element of a two-term statement (ciphertexts, coefficients, claim, bounds)
    changed against a fixed proof: the proof no longer verifies."""
    from tests.zk.helpers import tampered_variants

    stmt, wit = _make_pair(keys, rng)
    proof = dec.prove(ctx, stmt, wit, rng)
    tried = 0
    for name, bad in tampered_variants(stmt):
        if name in ("N0", "aux"):
            continue  # keys: covered by the context and Paillier checks elsewhere
        tried += 1
        with pytest.raises(ProofError):
            dec.verify(ctx, bad, proof)
            pytest.fail(f"tampered statement field {name} was accepted")
    assert tried == 2 * 2 + 2 * 2 + 2 + 2 * 2


def test_second_term_out_of_range_is_caught(ctx, keys, rng):
    """A plaintext beyond its own term's bound (the second one) leaves its z1 range."""
    stmt, wit = _make_pair(keys, rng, bits=(TEST.ell, 64))
    big = 1 << (dec.mask_bits(TEST, 64) + 200)
    C, r = stmt.N0.encrypt(big, rng)
    x = (stmt.coeffs[0] * wit.y[0] + stmt.coeffs[1] * big) % Q
    lie = dataclasses.replace(stmt, C=(stmt.C[0], C), x=x)
    with pytest.raises(ProofError, match="z1 outside"):
        dec.verify(
            ctx, lie, dec.prove(ctx, lie, dec.DecWitness((wit.y[0], big), (wit.rho[0], r)), rng)
        )


def test_folding_sigma_into_one_ciphertext_wraps_at_the_standard_tier(rng):
    """DEVIATION 3's reason, with real 2048-bit numbers: K^m ⊕ r⊙C_χ with χ at the bound a
    proof-valid sender can push it to decrypts to something ≢ m·k + r·χ (mod q), while the
    two ciphertexts decrypt exactly."""
    from tssnode.protocol.presign import plaintext_bound

    keys = KeyFactory(STANDARD, rng)
    sk = keys.paillier()
    k = rng.randrange(Q)
    chi = (1 << (plaintext_bound(STANDARD, 4) - 1)) + rng.randrange(1 << 64)
    m, r = rng.randrange(Q), Q - 1 - rng.randrange(1 << 32)
    K, _ = sk.public.encrypt(k, rng)
    C_chi, _ = sk.public.encrypt(chi, rng)
    folded = sk.public.add(sk.public.mul(K, m), sk.public.mul(C_chi, r))
    assert (sk.decrypt(folded) - (m * k + r * chi)) % Q != 0  # wrapped mod N
    assert sk.decrypt(K) == k and sk.decrypt(C_chi) == chi  # each term exact
    stmt = dec.DecStatement(
        sk.public, (K, C_chi), (m, r), (m * k + r * chi) % Q,
        (STANDARD.ell, plaintext_bound(STANDARD, 4)), keys.pedersen().public,
    )  # fmt: skip
    assert all(dec.mask_bits(STANDARD, b) + 3 < 2048 for b in stmt.y_bits)


@pytest.mark.slow
def test_standard_tier_two_terms_at_the_identification_bound(rng):
    """Sign identification's statement at full size: bounds (ℓ, plaintext_bound) with χ at
    the bound, proved and verified with and without the prover's CRT."""
    from tssnode.protocol.presign import plaintext_bound

    keys = KeyFactory(STANDARD, rng)
    ctx = ProofContext(b"standard-2", 3, STANDARD)
    bits = (STANDARD.ell, plaintext_bound(STANDARD, 4))
    stmt, wit = _make_pair(keys, rng, bits=bits)
    chi = (1 << bits[1]) - 1
    sk_pub = stmt.N0
    C, rho = sk_pub.encrypt(chi, rng)
    x = (stmt.coeffs[0] * wit.y[0] + stmt.coeffs[1] * chi) % Q
    stmt = dataclasses.replace(stmt, C=(stmt.C[0], C), x=x)
    wit = dec.DecWitness((wit.y[0], mpz(chi)), (wit.rho[0], rho), wit.sk)
    for w in (wit, dec.DecWitness(wit.y, wit.rho)):
        dec.verify(ctx, stmt, dec.prove(ctx, stmt, w, rng))
