"""Wycheproof secp256k1 ECDSA vectors (tests/vectors) through our verifier and parsers."""

from __future__ import annotations

import hashlib
import json
import random

import pytest
from coincurve import PrivateKey
from eth_keys import keys as eth_keys_mod

from tests.conftest import VECTORS
from tssnode.crypto.group import Point, Q, base_mul
from tssnode.crypto.signature import (
    InvalidSignature,
    Signature,
    finalize,
    parse_compact,
    parse_der,
    recover,
    verify,
    verify_low_s,
)
from tssnode.errors import InvalidPoint

WYCHEPROOF = VECTORS / "wycheproof"


def _cases(name: str):
    data = json.loads((WYCHEPROOF / name).read_text())
    for group in data["testGroups"]:
        for case in group["tests"]:
            yield group["publicKey"]["uncompressed"], case


def _check(name: str, parse, verifier):
    seen = {"valid": 0, "invalid": 0, "acceptable": 0}
    for pub_hex, case in _cases(name):
        digest = hashlib.sha256(bytes.fromhex(case["msg"])).digest()
        try:
            pub = Point.from_bytes(bytes.fromhex(pub_hex))
            r, s = parse(bytes.fromhex(case["sig"]))
            verifier(pub, digest, r, s)
            ok = True
        except (InvalidSignature, InvalidPoint):
            ok = False
        seen[case["result"]] += 1
        if case["result"] == "valid":
            assert ok, f"tcId {case['tcId']} ({case['comment']}) should verify"
        elif case["result"] == "invalid":
            assert not ok, f"tcId {case['tcId']} ({case['comment']}) should be rejected"
    return seen


def test_wycheproof_der():
    seen = _check("ecdsa_secp256k1_sha256_test.json", parse_der, verify)
    assert seen["valid"] > 100 and seen["invalid"] > 200


def test_wycheproof_bitcoin_low_s():
    seen = _check("ecdsa_secp256k1_sha256_bitcoin_test.json", parse_der, verify_low_s)
    assert seen["valid"] > 100 and seen["invalid"] > 200


def test_wycheproof_p1363():
    seen = _check("ecdsa_secp256k1_sha256_p1363_test.json", parse_compact, verify)
    assert seen["valid"] > 100 and seen["invalid"] > 50


def test_finalize_low_s_recovery_against_outside_libraries():
    rng = random.Random(5)
    for _ in range(20):
        x = rng.randrange(1, Q)
        k = rng.randrange(1, Q)
        digest = hashlib.sha256(rng.randbytes(20)).digest()
        R = base_mul(k)
        r = R.xy()[0] % Q
        s = pow(k, -1, Q) * (int.from_bytes(digest, "big") % Q + r * x) % Q
        pub = base_mul(x)
        sig = finalize(pub, digest, R, s)
        assert sig.is_low_s and recover(digest, sig) == pub
        # coincurve (libsecp256k1) recovers the same key from the 65-byte form
        rec = sig.compact() + bytes([sig.v])
        from coincurve import PublicKey

        assert (
            PublicKey.from_signature_and_message(rec, digest, hasher=None).format()
            == pub.to_bytes()
        )
        # eth-keys ecrecover with v
        eth_sig = eth_keys_mod.Signature(vrs=(sig.v, sig.r, sig.s))
        assert eth_sig.recover_public_key_from_msg_hash(digest).to_bytes() == pub.uncompressed()[1:]
        assert Signature.from_bytes(sig.to_bytes()) == sig
        assert parse_der(sig.der()) == (sig.r, sig.s)


def test_finalize_refuses_wrong_signature():
    x, k = 7, 11
    digest = hashlib.sha256(b"m").digest()
    R = base_mul(k)
    r = R.xy()[0] % Q
    s = pow(k, -1, Q) * (int.from_bytes(digest, "big") + r * x) % Q
    with pytest.raises(InvalidSignature):
        finalize(base_mul(x + 1), digest, R, s)
    with pytest.raises(InvalidSignature):
        finalize(base_mul(x), digest, R, 0)


def test_coincurve_signature_verifies_here():
    sk = PrivateKey.from_int(424242)
    digest = hashlib.sha256(b"hello").digest()
    der = sk.sign(digest, hasher=None)
    r, s = parse_der(der)
    verify(Point.from_bytes(sk.public_key.format()), digest, r, s)
    verify_low_s(Point.from_bytes(sk.public_key.format()), digest, r, s)
