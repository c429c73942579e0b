"""Ed25519 identity signatures: the check (libsodium) against OpenSSL's, on random
inputs, and what it refuses."""

from __future__ import annotations

import random

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tssnode.crypto.identity import IdentityKey, verify_signature

L = 2**252 + 27742317777372353535851937790883648493  # the group order ℓ


def openssl_accepts(public: bytes, data: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _flip(b: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(b))
    return b[:i] + bytes([b[i] ^ (1 << rng.randrange(8))]) + b[i + 1 :]


def test_the_check_agrees_with_openssl_on_honest_and_tampered_signatures():
    rng = random.Random(11)
    for _ in range(200):
        key = IdentityKey.generate()
        pub = key.public_bytes()
        data = rng.randbytes(rng.randrange(0, 2000))
        sig = key.sign(data)
        cases = [(pub, data, sig), (pub, data, _flip(sig, rng)), (_flip(pub, rng), data, sig)]
        if data:
            cases.append((pub, _flip(data, rng), sig))
        for case in cases:
            assert verify_signature(*case) == openssl_accepts(*case)
        assert verify_signature(pub, data, sig)
        assert not verify_signature(pub, data + b"\x00", sig)


@pytest.mark.parametrize(
    ("public", "signature"),
    [(b"\x01" * 31, b"\x00" * 64), (b"\x01" * 33, b"\x00" * 64), (b"\x01" * 32, b"\x00" * 63)],
)
def test_wrong_lengths_are_refused_not_raised(public, signature):
    assert verify_signature(public, b"data", signature) is False


def test_a_non_canonical_s_is_refused():
    key = IdentityKey.generate()
    sig = key.sign(b"data")
    s = int.from_bytes(sig[32:], "little") + L  # the same signature with S + ℓ
    forged = sig[:32] + s.to_bytes(32, "little")
    assert verify_signature(key.public_bytes(), b"data", sig)
    assert not verify_signature(key.public_bytes(), b"data", forged)
    assert not openssl_accepts(key.public_bytes(), b"data", forged)


def test_a_small_order_key_signs_nothing():
    """The neutral point as public key with R = neutral and S = 0 satisfies RFC 8032's
    equation for every message; libsodium refuses the key, so no such "signature" passes
    for any data."""
    neutral = (1).to_bytes(32, "little")
    sig = neutral + bytes(32)
    for data in (b"", b"anything", b"block 7"):
        assert not verify_signature(neutral, data, sig)
