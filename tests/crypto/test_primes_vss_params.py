from __future__ import annotations

import random

import pytest
from ecdsa import SECP256k1
from hypothesis import given, settings
from hypothesis import strategies as st

from tssnode.crypto import params as P
from tssnode.crypto.group import Q, base_mul
from tssnode.crypto.polynomial import (
    Polynomial,
    check_commitments,
    check_indices,
    eval_commitments,
    interpolate_at_zero,
    lagrange_at_zero,
    verify_share,
)
from tssnode.crypto.primes import PoolError, PrimePool, is_safe_prime, safe_prime
from tssnode.errors import InvalidParameters, InvalidShare, PrimePoolExhausted


def test_safe_prime_generation_small_sizes():
    r = random.Random(7)
    for bits in (64, 128, 256):
        p = safe_prime(bits, r)
        assert p.bit_length() == bits and p >> (bits - 2) == 0b11
        assert is_safe_prime(p)


def test_committed_pools_are_safe_primes():
    for bits, minimum in ((512, 100), (768, 150), (1024, 40)):
        pool = PrimePool.load(bits)
        assert len(pool.primes) >= minimum
        # The loader only ran Fermat tests; run the full test on a sample here.
        for p in random.Random(bits).sample(pool.primes, 5):
            assert is_safe_prime(p) and p.bit_length() == bits


def test_pool_take_is_distinct_and_exhausts(tmp_path):
    r = random.Random(1)
    primes = [safe_prime(64, r) for _ in range(4)]
    path = tmp_path / "pool.txt"
    path.write_text("# header\n" + "\n".join(f"{int(p):x}" for p in primes) + "\n")
    pool = PrimePool.load(64, path)
    a = pool.take(3, random.Random(2))
    assert len(set(a)) == 3
    with pytest.raises(PrimePoolExhausted):
        pool.take(2)


@pytest.mark.parametrize("line", ["zz", "10001", f"{2**63 + 1:x}"])
def test_pool_rejects_bad_lines(tmp_path, line):
    path = tmp_path / "pool.txt"
    path.write_text(line + "\n")
    with pytest.raises(PoolError):
        PrimePool.load(64, path)


def test_tiers_and_insecure_refusal(monkeypatch):
    assert P.tier("standard").paillier_bits == 2048
    assert P.tier("high").m == 128
    with pytest.raises(InvalidParameters):
        P.tier("nonsense")
    monkeypatch.delenv(P.INSECURE_ENV, raising=False)
    with pytest.raises(InvalidParameters, match="tests only"):
        P.tier("insecure-test")
    assert P.tier("insecure-test", allow_insecure=True) is P.INSECURE_TEST
    monkeypatch.setenv(P.INSECURE_ENV, "1")
    assert P.tier("insecure-test") is P.INSECURE_TEST
    forged = P.Parameters("standard", 1024, 512, 256, 1280, 512, 1)
    with pytest.raises(InvalidParameters):
        P.check_allowed(forged)


def test_tier_consistency():
    """Every tier runs every step for up to 15 signers (and the standard tier for 255): MtA
    masks stay Paillier plaintexts below N/2, any proof-valid MtA share decrypts exactly,
    and the identification steps' Π^dec plaintexts (which include such shares) fit."""
    from tssnode.protocol.presign import mta_bound, plaintext_bound
    from tssnode.zk.dec import max_plaintext_bits

    for p in P.TIERS.values():
        assert p.paillier_bits == 2 * p.prime_bits
        assert p.ell_prime + p.eps < p.paillier_bits - 1
        assert 2 * p.ell + 2 < p.paillier_bits
        assert mta_bound(p) + 1 < p.paillier_bits - 1, p.name
        limit = max_plaintext_bits(p)
        assert plaintext_bound(p, 15) <= limit, p.name
        assert p.ell <= limit
    assert plaintext_bound(P.STANDARD, 255) <= max_plaintext_bits(P.STANDARD)
    # the bound covers what a proof-valid sender can reach, not just an honest one
    assert mta_bound(P.STANDARD) == 1794 and mta_bound(P.INSECURE_TEST) == 1026


@settings(max_examples=20, deadline=None)
@given(t=st.integers(0, 6), extra=st.integers(0, 4), seed=st.integers(0, 2**32))
def test_vss_shares_verify_and_interpolate(t, extra, seed):
    r = random.Random(seed)
    n = t + 1 + extra
    f = Polynomial.random(t, None, r)
    F = f.commitments()
    check_commitments(F, t, refresh=False)
    shares = {i: f(i) for i in range(1, n + 1)}
    for i, s in shares.items():
        verify_share(F, i, s)
    subset = dict(r.sample(sorted(shares.items()), t + 1))
    assert interpolate_at_zero(subset) == f.coefficients[0]
    assert base_mul(f.coefficients[0]) == F[0] == eval_commitments(F, 0)


def test_vss_rejections():
    r = random.Random(3)
    f = Polynomial.random(2, None, r)
    F = f.commitments()
    with pytest.raises(InvalidShare, match="match"):
        verify_share(F, 1, (f(1) + 1) % Q)
    with pytest.raises(InvalidShare, match="zero"):
        verify_share(F, 1, 0)
    with pytest.raises(InvalidShare, match="index"):
        verify_share(F, 0, f(0))
    with pytest.raises(InvalidShare, match="degree"):
        check_commitments(F, 3, refresh=False)
    low = Polynomial((1, 2, 0))  # degree 1 posing as degree 2
    with pytest.raises(InvalidShare, match="below"):
        check_commitments(low.commitments(), 2, refresh=False)
    with pytest.raises(InvalidShare, match="non-zero constant"):
        check_commitments(F, 2, refresh=True)
    zero = Polynomial.random(2, 0, r)
    check_commitments(zero.commitments(), 2, refresh=True)
    with pytest.raises(InvalidShare, match="zero constant"):
        check_commitments(zero.commitments(), 2, refresh=False)
    with pytest.raises(InvalidShare):
        check_indices([1, 2, 2])
    with pytest.raises(InvalidShare):
        lagrange_at_zero(4, [1, 2, 3])
    assert "secret" in repr(f) and str(f.coefficients[0]) not in repr(f)


def test_lagrange_against_independent_curve_arithmetic():
    """Reconstruct x·G from t+1 public shares with the `ecdsa` package's point arithmetic."""
    r = random.Random(11)
    f = Polynomial.random(2, None, r)
    S = [2, 5, 7]
    gen = SECP256k1.generator
    acc = None
    for i in S:
        term = gen * (f(i) * lagrange_at_zero(i, S) % Q)
        acc = term if acc is None else acc + term
    expected = base_mul(f.coefficients[0]).xy()
    assert (acc.x(), acc.y()) == expected


def test_is_not_prime_agrees_with_gmpy2_and_remembers():
    import itertools
    import random as _random

    import gmpy2 as _gmpy2

    from tssnode.crypto import arith

    r = _random.Random(7)
    samples = [_gmpy2.next_prime(r.getrandbits(512)) for _ in range(20)]
    samples += [a * b for a, b in itertools.pairwise(samples)]
    samples += [r.getrandbits(1024) | 1 for _ in range(20)]
    for n in samples:
        assert arith.is_not_prime(n) == (not _gmpy2.is_prime(n, 25))
        assert arith.is_not_prime(n) == arith.is_not_prime(int(n))  # mpz or int alike
    hits = arith._not_prime.cache_info().hits
    arith.is_not_prime(samples[-1])
    assert arith._not_prime.cache_info().hits == hits + 1
