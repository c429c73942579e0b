from __future__ import annotations

from dataclasses import dataclass

import cbor2
import pytest
from gmpy2 import mpz
from hypothesis import given, settings
from hypothesis import strategies as st

from tssnode.crypto.encoding import (
    AnyPoint,
    Big,
    Scalar,
    Wire,
    dumps,
    from_plain,
    loads_plain,
    wire,
)
from tssnode.crypto.group import Point, Q, base_mul
from tssnode.errors import EncodingError


@wire("test.inner/1")
@dataclass(frozen=True)
class Inner(Wire):
    k: Scalar
    label: str


@wire("test.outer/1")
@dataclass(frozen=True)
class Outer(Wire):
    n: Big
    P: Point
    O: AnyPoint
    items: tuple[Inner, ...]
    table: dict[int, bytes]
    maybe: int | None
    flag: bool


def sample() -> Outer:
    return Outer(
        n=mpz(-(2**700) + 12345),
        P=base_mul(9),
        O=Point.identity(),
        items=(Inner(1, "a"), Inner(Q - 1, "b")),
        table={3: b"x", 1: b"y"},
        maybe=None,
        flag=True,
    )


def test_round_trip_is_exact():
    v = sample()
    data = v.to_bytes()
    back = Outer.from_bytes(data)
    assert back == v
    assert isinstance(back.n, type(mpz(0)))
    assert back.to_bytes() == data


def test_deterministic_and_map_order_independent():
    a = sample()
    b = Outer(a.n, a.P, a.O, a.items, {1: b"y", 3: b"x"}, None, True)
    assert a.to_bytes() == b.to_bytes()


def test_trailing_bytes_rejected():
    with pytest.raises(EncodingError, match="canonical"):
        Outer.from_bytes(sample().to_bytes() + b"\x00")


def test_non_minimal_integer_rejected():
    # 1 encoded as a one-byte-argument integer (0x18 0x01) instead of 0x01.
    with pytest.raises(EncodingError):
        loads_plain(bytes([0x18, 0x01]))


def test_truncated_and_garbage_rejected():
    data = sample().to_bytes()
    for cut in (1, len(data) // 2, len(data) - 1):
        with pytest.raises(EncodingError):
            Outer.from_bytes(data[:cut])
    with pytest.raises(EncodingError):
        Outer.from_bytes(b"\xff\xff\xff")


def test_wrong_tag_and_wrong_field_types_rejected():
    with pytest.raises(EncodingError, match="tag"):
        Inner.from_bytes(dumps(["test.other/1", 1, "a"]))
    with pytest.raises(EncodingError):
        Inner.from_bytes(dumps([Inner.WIRE_TAG, "1", "a"]))
    with pytest.raises(EncodingError):
        Inner.from_bytes(dumps([Inner.WIRE_TAG, Q, "a"]))  # scalar out of range
    with pytest.raises(EncodingError):
        Inner.from_bytes(dumps([Inner.WIRE_TAG, 1]))  # missing field
    with pytest.raises(EncodingError):
        Inner.from_bytes(dumps([Inner.WIRE_TAG, True, "a"]))  # bool is not an int


def test_identity_only_where_allowed():
    v = sample()
    plain = loads_plain(v.to_bytes())
    plain[2] = b"\x00"  # P := identity
    with pytest.raises(EncodingError):
        from_plain(Outer, plain)


def test_floats_and_tags_rejected():
    with pytest.raises(EncodingError):
        Inner.from_bytes(cbor2.dumps([Inner.WIRE_TAG, 1.0, "a"], canonical=True))


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=-(2**3000), max_value=2**3000))
def test_big_integers_round_trip(n):
    assert loads_plain(dumps(mpz(n))) == n
