"""BIP-32 public derivation against the vectors in tests/vectors."""

from __future__ import annotations

import json
import random

import base58
import pytest

from tests.conftest import VECTORS
from tssnode.crypto.derivation import DerivationError, ckd_pub, derive, format_path, parse_path
from tssnode.crypto.group import Point, Q, base_mul
from tssnode.crypto.polynomial import Polynomial, interpolate_at_zero


def _xpub(text: str) -> tuple[Point, bytes, int]:
    raw = base58.b58decode_check(text)
    assert len(raw) == 78
    return Point.from_bytes(raw[45:78]), raw[13:45], int.from_bytes(raw[9:13], "big")


def test_bip32_vectors():
    cases = json.loads((VECTORS / "bip32_public_derivation.json").read_text())["cases"]
    assert len(cases) >= 2
    for case in cases:
        parent, chain, _ = _xpub(case["parent_xpub"])
        child, child_chain, child_number = _xpub(case["child_xpub"])
        assert child_number == case["index"]
        got, got_chain, _ = ckd_pub(parent, chain, case["index"])
        assert got == child and got_chain == child_chain
        d = derive(parent, chain, (case["index"],))
        assert d.public_key == child and base_mul(d.shift) + parent == child


def test_shares_follow_the_shift():
    """Adding the public shift to every share gives shares of the child's secret."""
    rng = random.Random(4)
    f = Polynomial.random(2, None, rng)
    X = base_mul(f.coefficients[0])
    chain = rng.randbytes(32)
    d = derive(X, chain, "m/0/7/3")
    shares = {i: (f(i) + d.shift) % Q for i in (1, 3, 4)}
    assert base_mul(interpolate_at_zero(shares)) == d.public_key


@pytest.mark.parametrize(
    "bad",
    [
        "0/1", "m/1'", "m/2h", "m/x", "m/2147483648", "m/01", "m//1",
        "m/\u0663",  # an Arabic-Indic 3: str.isdigit() says yes, a path says no
        "m/\u00b2",  # a superscript 2
        "m" + "/1" * 17,  # deeper than the ledger signs (16)
        "m" + "/1" * 120,
    ],
)  # fmt: skip
def test_bad_paths(bad):
    with pytest.raises(DerivationError):
        parse_path(bad)


def test_path_round_trip():
    assert parse_path("m") == ()
    assert format_path(parse_path("m/0/1/2147483647")) == "m/0/1/2147483647"
    assert len(parse_path("m" + "/7" * 16)) == 16


def test_addresses_against_known_vectors():
    from tssnode.crypto.addresses import btc_p2wpkh, eth_address

    one = base_mul(1)
    # BIP-173's P2WPKH example is the key 1·G
    assert btc_p2wpkh(one) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert btc_p2wpkh(one, "testnet") == "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
    # the well-known Ethereum address of private key 1
    assert eth_address(one) == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    with pytest.raises(ValueError):
        btc_p2wpkh(one, "moon")
