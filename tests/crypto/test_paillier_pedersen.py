from __future__ import annotations

import contextlib
import dataclasses

import gmpy2
import pytest
from gmpy2 import mpz
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import TEST, pool_primes
from tssnode.crypto.arith import sample_pm
from tssnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey, validate_modulus
from tssnode.crypto.pedersen import generate
from tssnode.errors import InvalidCiphertext, InvalidModulus


@pytest.fixture(scope="module")
def sk():
    p, q = pool_primes(TEST.prime_bits)[:2]
    return PaillierSecretKey(p, q)


def test_modulus_is_exactly_tier_length(sk):
    sk.public.validate(TEST)
    assert sk.n.bit_length() == TEST.paillier_bits


def test_encrypt_decrypt_signed(sk, rng):
    for m in (0, 1, -1, 2**300, -(2**300), sk.n // 2, -(sk.n // 2) + 1):
        c, _ = sk.public.encrypt(m, rng)
        assert sk.decrypt(c) == m
        assert sk.decrypt_plain(c) == m


def test_crt_encryption_equals_plain(sk, rng):
    m, rho = 12345, mpz(987654321)
    assert sk.encrypt_with(m, rho) == sk.public.encrypt_with(m, rho)


@settings(max_examples=30, deadline=None)
@given(
    a=st.integers(-(2**400), 2**400),
    b=st.integers(-(2**400), 2**400),
    k=st.integers(-(2**200), 2**200),
)
def test_homomorphism(sk, a, b, k):
    pk = sk.public
    ca, _ = pk.encrypt(a)
    cb, _ = pk.encrypt(b)
    assert sk.decrypt(pk.add(ca, cb)) == a + b
    assert sk.decrypt(pk.mul(ca, k)) == sk.centre(a * k)


def test_nonce_recovery(sk, rng):
    m = sample_pm(256, rng)
    c, rho = sk.public.encrypt(m, rng)
    assert sk.nonce(c, m) == rho


@pytest.mark.parametrize("bad", [0, -1, "n", "n2", "p"])
def test_invalid_ciphertexts_rejected(sk, bad):
    value = {"n": sk.n, "n2": sk.public.n2, "p": sk.p}.get(bad, bad)
    assert not sk.public.is_ciphertext(value)
    with pytest.raises(InvalidCiphertext):
        sk.decrypt(value)


def test_modulus_validation():
    p, q = pool_primes(TEST.prime_bits)[2:4]
    with pytest.raises(InvalidModulus, match="bits"):
        validate_modulus(p * q, 2048)
    with pytest.raises(InvalidModulus, match="even"):
        validate_modulus(mpz(2) ** 1023 + 2, 1024)
    with pytest.raises(InvalidModulus, match="prime"):
        validate_modulus(gmpy2.next_prime(mpz(2) ** 1023), 1024)
    with pytest.raises(InvalidModulus):
        PaillierSecretKey(p, p)


def test_secrets_not_in_repr(sk):
    text = repr(sk) + str(sk)
    assert str(sk.p) not in text and hex(sk.p)[2:] not in text


def test_ring_pedersen(rng):
    p, q = pool_primes(TEST.prime_bits)[4:6]
    sec = generate(p, q, rng)
    pub = sec.public
    pub.validate(TEST)
    for x, y in ((5, 7), (-(2**300), 2**600), (0, -3)):
        assert sec.commit(x, y) == pub.commit(x, y)
    assert pub.s == pow(pub.t, sec.lam, pub.n)
    # s^3 t^3 = (s t)·(s t)^2, and nothing else
    assert pub.verify(3, 3, pub.commit(1, 1), pub.commit(1, 1), 2)
    assert not pub.verify(3, 4, pub.commit(1, 1), pub.commit(1, 1), 2)
    for field, value in (("s", 1), ("t", pub.s), ("s", pub.n), ("s", 0)):
        with pytest.raises(InvalidModulus):
            dataclasses.replace(pub, **{field: value}).validate(TEST)
    assert "lam" not in repr(sec) and str(sec.lam) not in repr(sec)


def test_public_key_round_trip(sk):
    assert PaillierPublicKey.from_bytes(sk.public.to_bytes()) == sk.public


def test_fixed_base_matches_powmod(rng):
    from tssnode.crypto.arith import FixedBase

    n = pool_primes(TEST.prime_bits)[0] * pool_primes(TEST.prime_bits)[1]
    base = rng.randrange(2, n)
    fb = FixedBase(base, n, n.bit_length())
    for e in [0, 1, 2, 31, 32, n - 1, *(rng.randrange(n) for _ in range(20))]:
        assert fb.pow(e) == gmpy2.powmod(base, e, n)
    with pytest.raises(ValueError):
        fb.pow(-1)
    with pytest.raises(ValueError):
        fb.pow(n * n)


@pytest.mark.parametrize("w", [1, 2, 5, 6, 7])
def test_fixed_base_matches_powmod_for_every_window_and_counts_its_products(rng, w):
    """Against the plain `powmod` on random inputs, for window sizes whose digit counts do
    and do not divide the modulus' bit length; `products` is what a benchmark's floor
    replays, so it must be the number of products done: the table's squarings, then per
    power one per non-zero digit after the first and one per digit value below the
    largest digit."""
    from tssnode.crypto.arith import FixedBase

    n = pool_primes(TEST.prime_bits)[0] * pool_primes(TEST.prime_bits)[1]
    base = rng.randrange(2, n)
    fb = FixedBase(base, n, n.bit_length(), w=w)
    rows = -(-n.bit_length() // w)
    assert fb.products == (rows - 1) * w
    exps = [0, 1, (1 << w) - 1, 1 << w, (1 << (rows * w)) - 1, n - 1]
    exps += [rng.randrange(n) for _ in range(20)] + [rng.getrandbits(rng.randrange(1, 64))]
    for e in exps:
        before = fb.products
        assert fb.pow(e) == gmpy2.powmod(base, e, n)
        digits = [(e >> (w * j)) & ((1 << w) - 1) for j in range(rows)]
        nonzero = [d for d in digits if d]
        expected = (len(nonzero) - 1) + (max(nonzero) - 1) if nonzero else 0
        assert fb.products - before == expected


def test_the_comb_keeps_the_gil_and_gives_the_worker_its_setting_back(rng, monkeypatch):
    """A worker thread lets gmpy2 release the GIL (`gil_released`); the comb's many small
    products must not (each would give the GIL up and take it back), and the worker's
    setting must be as it was afterwards, whatever the comb does."""
    from tssnode.crypto import arith

    n = pool_primes(TEST.prime_bits)[0] * pool_primes(TEST.prime_bits)[1]
    base = rng.randrange(2, n)
    seen: list[bool] = []
    real_held = arith.gil_held

    @contextlib.contextmanager
    def spy():
        with real_held():
            seen.append(gmpy2.get_context().allow_release_gil)
            yield

    monkeypatch.setattr(arith, "gil_held", spy)
    with arith.gil_released():
        fb = arith.FixedBase(base, n, n.bit_length())
        e = rng.randrange(n)
        assert fb.pow(e) == gmpy2.powmod(base, e, n)
        assert gmpy2.get_context().allow_release_gil is True
    assert seen == [False, False]  # the table and the power, each with the GIL kept
