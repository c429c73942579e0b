from __future__ import annotations

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from tssnode.crypto.group import G, Point, Q, base_mul, inv_mod_q, scalar_bytes, scalar_from_bytes
from tssnode.errors import InvalidPoint, InvalidScalar

scalars = st.integers(min_value=1, max_value=Q - 1)


@settings(max_examples=40, deadline=None)
@given(a=scalars, b=scalars)
def test_group_law_matches_scalar_arithmetic(a, b):
    assert base_mul(a) + base_mul(b) == base_mul((a + b) % Q)
    assert base_mul(a) * b == base_mul(a * b % Q)
    assert b * base_mul(a) == base_mul(a * b % Q)
    assert base_mul(a) - base_mul(b) == base_mul((a - b) % Q)
    assert -base_mul(a) == base_mul(Q - a)


def test_identity_handling():
    P = base_mul(7)
    O = Point.identity()
    assert (P + (-P)).is_identity
    assert P + O == P and O + P == P
    assert (P * 0).is_identity and (P * Q).is_identity
    assert base_mul(0).is_identity
    assert (-O).is_identity
    assert O.to_bytes() == b"\x00"
    with pytest.raises(InvalidPoint):
        O.uncompressed()


def test_generator_matches_coincurve():
    k = 0xC0FFEE
    assert base_mul(k).to_bytes() == PrivateKey.from_int(k).public_key.format(compressed=True)
    assert G * k == base_mul(k)


def test_encoding_round_trip_and_uncompressed():
    P = base_mul(123456789)
    assert Point.from_bytes(P.to_bytes()) == P
    assert Point.from_bytes(P.uncompressed()) == P
    x, y = P.xy()
    assert Point.from_xy(x, y) == P


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x02" + b"\x00" * 31,  # too short
        b"\x05" + b"\x01" * 32,  # bad prefix
        b"\x02" + (2**256 - 1).to_bytes(32, "big"),  # x beyond the field
        b"\x04" + (1).to_bytes(32, "big") + (1).to_bytes(32, "big"),  # off the curve
    ],
)
def test_bad_points_rejected(data):
    with pytest.raises(InvalidPoint):
        Point.from_bytes(data)


def test_identity_refused_unless_allowed():
    with pytest.raises(InvalidPoint):
        Point.from_bytes(b"\x00")
    assert Point.from_bytes(b"\x00", allow_identity=True).is_identity


def test_scalars():
    assert scalar_from_bytes(scalar_bytes(5)) == 5
    with pytest.raises(InvalidScalar):
        scalar_from_bytes(Q.to_bytes(32, "big"))
    with pytest.raises(InvalidScalar):
        scalar_from_bytes(b"\x00" * 32)
    with pytest.raises(InvalidScalar):
        scalar_from_bytes(b"\x01" * 31)
    with pytest.raises(InvalidScalar):
        scalar_bytes(Q)
    assert inv_mod_q(3) * 3 % Q == 1
    with pytest.raises(InvalidScalar):
        inv_mod_q(Q)
