from __future__ import annotations

import dataclasses
import random

import gmpy2
import pytest
from gmpy2 import mpz
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import STANDARD, TEST, KeyFactory
from tests.zk.helpers import assert_every_tamper_rejected, assert_round_trip
from tssnode.crypto.arith import isqrt_ceil, randbelow
from tssnode.crypto.paillier import PaillierPublicKey
from tssnode.crypto.params import Parameters
from tssnode.errors import ProofError
from tssnode.zk import fac
from tssnode.zk.common import ProofContext


@pytest.fixture
def setup(keys):
    sk = keys.paillier()
    aux = keys.pedersen().public
    return fac.FacStatement(sk.public, aux), fac.FacWitness(sk.p, sk.q), keys


def _small_factor_modulus(bits: int, rng: random.Random) -> tuple[mpz, mpz]:
    """(r, M): r a prime of about 16 bits and M a prime with r·M exactly `bits` bits long.

    The shape of the BitForge (CVE-2023-33241) moduli: a small factor the attacker later
    recovers the key through. Π^mod alone does not rule it out; Π^fac must.
    """
    r = gmpy2.next_prime(mpz(rng.getrandbits(15)) | (1 << 15))
    lo = (mpz(1) << (bits - 1)) // r + 1
    hi = ((mpz(1) << bits) - 1) // r
    m = gmpy2.next_prime(lo + randbelow((hi - lo) // 2, rng))
    assert (r * m).bit_length() == bits and m <= hi
    return r, m


def test_honest_proof_verifies_and_round_trips(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = fac.prove(ctx, stmt, wit, rng)
    fac.verify(ctx, stmt, proof)
    assert_round_trip(proof)
    assert_round_trip(stmt)
    # p and q may be given in either order.
    fac.verify(ctx, stmt, fac.prove(ctx, stmt, fac.FacWitness(wit.q, wit.p), rng))


def test_witness_repr_hides_the_factors(setup):
    _, wit, _ = setup
    text = repr(wit) + str(wit)
    assert str(wit.p) not in text and str(wit.q) not in text
    assert "hidden" in text


def test_every_field_tampered_is_rejected(ctx, setup, rng):
    stmt, wit, _ = setup
    proof = fac.prove(ctx, stmt, wit, rng)
    assert assert_every_tamper_rejected(proof, lambda p: fac.verify(ctx, stmt, p)) == 22


def test_wrong_statement_session_or_prover_rejected(ctx, make_ctx, setup, rng):
    stmt, wit, keys = setup
    proof = fac.prove(ctx, stmt, wit, rng)
    bad_stmt = dataclasses.replace(stmt, N0=keys.paillier().public)
    for c, s in ((ctx, bad_stmt), (make_ctx(ssid=b"x"), stmt), (make_ctx(prover=9), stmt)):
        with pytest.raises(ProofError):
            fac.verify(c, s, proof)


def test_other_verifiers_ring_pedersen_params_rejected(ctx, setup, rng):
    """A proof built for verifier j (its N̂_j, s_j, t_j) is no proof for verifier k."""
    stmt, wit, keys = setup
    proof = fac.prove(ctx, stmt, wit, rng)
    other = dataclasses.replace(stmt, aux=keys.pedersen().public)
    with pytest.raises(ProofError):
        fac.verify(ctx, other, proof)
    # Same N̂ but other s, t (for instance swapped) is still a different verifier.
    swapped = dataclasses.replace(
        stmt, aux=dataclasses.replace(stmt.aux, s=stmt.aux.t, t=stmt.aux.s)
    )
    with pytest.raises(ProofError):
        fac.verify(ctx, swapped, proof)


def test_sigma_is_bound_by_the_challenge(ctx, setup, rng):
    """σ and v can be shifted together (σ + δ, v + e·δ) and check 3 still holds; hashing σ
    into e is what refuses that (multi-party-sig leaves σ out of its hash)."""
    stmt, wit, _ = setup
    p = fac.prove(ctx, stmt, wit, rng)
    e = fac._challenge(ctx, stmt, p.P, p.Q, p.A, p.B, p.T, p.sigma)
    shifted = dataclasses.replace(p, sigma=p.sigma + 1, v=p.v + e)
    aux, nhat = stmt.aux, stmt.aux.n
    R = aux.commit(stmt.N0.n, shifted.sigma)
    lhs = gmpy2.powmod(p.Q, p.z1, nhat) * gmpy2.powmod(aux.t, shifted.v, nhat) % nhat
    assert lhs == p.T * gmpy2.powmod(R, e, nhat) % nhat  # check 3 alone still holds
    with pytest.raises(ProofError):
        fac.verify(ctx, stmt, shifted)


@pytest.mark.parametrize("field", ["z1", "z2"])
def test_responses_out_of_range_rejected(ctx, setup, rng, field):
    stmt, wit, _ = setup
    proof = fac.prove(ctx, stmt, wit, rng)
    bound = isqrt_ceil(stmt.N0.n) << (TEST.ell + TEST.eps)
    for bad in (bound + 1, -bound - 1):
        with pytest.raises(ProofError, match=f"{field} outside"):
            fac.verify(ctx, stmt, dataclasses.replace(proof, **{field: bad}))
    # The bound itself is inside the range (the check is |z| ≤ bound, not <).
    with pytest.raises(ProofError) as info:
        fac.verify(ctx, stmt, dataclasses.replace(proof, **{field: bound}))
    assert "outside" not in info.value.check


@pytest.mark.parametrize("field", ["P", "Q", "A", "B", "T"])
def test_commitments_outside_unit_group_rejected(ctx, setup, rng, field):
    stmt, wit, _ = setup
    proof = fac.prove(ctx, stmt, wit, rng)
    nhat = stmt.aux.n
    for bad in (0, nhat, nhat + getattr(proof, field), -1):
        with pytest.raises(ProofError, match=f"{field} not in Z\\*_N̂"):
            fac.verify(ctx, stmt, dataclasses.replace(proof, **{field: bad}))


# ℓ and ε halved so that a 1024-bit N0 meets the paper's |N0| = 4ℓ + 2ε: the same range
# check as the standard tier, at test-tier cost. (At the insecure-test tier itself the
# bound 2^(ℓ+ε)·√N0 exceeds N0, so Π^fac cannot tell a small factor from a large one.)
FAC_SOUND_1024 = Parameters("fac-sound-1024", 1024, 512, 128, 384, 256, 80)


def test_small_factor_rejected_when_modulus_meets_4l_plus_2eps(rng):
    ctx = ProofContext(b"bitforge", 1, FAC_SOUND_1024)
    assert 4 * FAC_SOUND_1024.ell + 2 * FAC_SOUND_1024.eps == FAC_SOUND_1024.paillier_bits
    keys = KeyFactory(TEST, rng)
    aux = keys.pedersen().public
    # Control: an honest modulus passes with these parameters.
    sk = keys.paillier()
    honest = fac.FacStatement(sk.public, aux)
    fac.verify(ctx, honest, fac.prove(ctx, honest, fac.FacWitness(sk.p, sk.q), rng))
    r, m = _small_factor_modulus(1024, rng)
    stmt = fac.FacStatement(PaillierPublicKey(r * m), aux)
    for wit, caught in ((fac.FacWitness(r, m), "z2 outside"), (fac.FacWitness(m, r), "z1 outside")):
        with pytest.raises(ProofError, match=caught):
            fac.verify(ctx, stmt, fac.prove(ctx, stmt, wit, rng))


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_property_random_moduli(seed):
    r = random.Random(seed)
    keys = KeyFactory(TEST, r)
    sk, aux = keys.paillier(), keys.pedersen().public
    ctx = ProofContext(b"prop", 2, TEST)
    stmt = fac.FacStatement(sk.public, aux)
    fac.verify(ctx, stmt, fac.prove(ctx, stmt, fac.FacWitness(sk.p, sk.q), r))


@pytest.mark.slow
def test_standard_tier_proves_and_verifies(rng):
    keys = KeyFactory(STANDARD, rng)
    sk, aux = keys.paillier(), keys.pedersen().public
    assert sk.n.bit_length() == 4 * STANDARD.ell + 2 * STANDARD.eps == 2048
    ctx = ProofContext(b"standard", 3, STANDARD)
    stmt = fac.FacStatement(sk.public, aux)
    proof = fac.prove(ctx, stmt, fac.FacWitness(sk.p, sk.q), rng)
    fac.verify(ctx, stmt, proof)
    assert_round_trip(proof)


@pytest.mark.slow
def test_standard_tier_bitforge_small_factor_rejected(rng):
    """BitForge (CVE-2023-33241): N0 = r·M with r ≈ 2^16, proved with the honest algorithm.

    z = α + e·(the big factor) lands far outside ±2^(ℓ+ε)·√N0, whichever factor is
    called p. The other checks hold (the prover really knows a factorisation), so the
    range check is what rejects it.
    """
    keys = KeyFactory(STANDARD, rng)
    aux = keys.pedersen().public
    ctx = ProofContext(b"bitforge", 3, STANDARD)
    r, m = _small_factor_modulus(STANDARD.paillier_bits, rng)
    pk = PaillierPublicKey(r * m)
    pk.validate(STANDARD)  # the structural checks alone accept this modulus
    stmt = fac.FacStatement(pk, aux)
    for wit, caught in ((fac.FacWitness(r, m), "z2 outside"), (fac.FacWitness(m, r), "z1 outside")):
        proof = fac.prove(ctx, stmt, wit, rng)
        with pytest.raises(ProofError, match=caught):
            fac.verify(ctx, stmt, proof)
