"""secp256k1: scalars (plain ints mod q) and points (coincurve, with an explicit identity).

coincurve's `PublicKey` cannot hold the point at infinity, so `Point` wraps an optional
key: `None` is the identity. Sums that land on the identity (P + (−P)) and multiplication
by 0 are handled here instead of surfacing as library errors.
"""

from __future__ import annotations

from typing import Final

from coincurve import PublicKey

from tssnode.errors import InvalidPoint, InvalidScalar

#: Order q of the secp256k1 group.
Q: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: Field prime of secp256k1.
P_FIELD: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F

_IDENTITY_BYTES: Final = b"\x00"


def scalar_bytes(k: int) -> bytes:
    """32-byte big-endian encoding of a scalar in [0, q)."""
    if not 0 <= k < Q:
        raise InvalidScalar("scalar out of range [0, q)")
    return k.to_bytes(32, "big")


def scalar_from_bytes(data: bytes, *, allow_zero: bool = False) -> int:
    """Strict inverse of `scalar_bytes`: exactly 32 bytes, value below q."""
    if len(data) != 32:
        raise InvalidScalar("a scalar is 32 bytes")
    k = int.from_bytes(data, "big")
    if k >= Q:
        raise InvalidScalar("scalar not below q")
    if k == 0 and not allow_zero:
        raise InvalidScalar("zero scalar")
    return k


class Point:
    """A point of secp256k1, or the identity. Immutable and hashable."""

    __slots__ = ("_compressed", "_pk")

    def __init__(self, pk: PublicKey | None) -> None:
        self._pk = pk
        self._compressed = _IDENTITY_BYTES if pk is None else pk.format(compressed=True)

    # -- construction -------------------------------------------------------------------
    @staticmethod
    def identity() -> Point:
        return _IDENTITY

    @staticmethod
    def generator() -> Point:
        return _GENERATOR

    @staticmethod
    def from_bytes(data: bytes, *, allow_identity: bool = False) -> Point:
        """Decode a compressed (33-byte) or uncompressed (65-byte) SEC1 point.

        The identity is the single byte 0x00 and is refused unless `allow_identity`.
        """
        if data == _IDENTITY_BYTES:
            if allow_identity:
                return _IDENTITY
            raise InvalidPoint("identity point not allowed here")
        if len(data) not in (33, 65) or data[0] not in (2, 3, 4):
            raise InvalidPoint("not a SEC1 point encoding")
        try:
            return Point(PublicKey(bytes(data)))
        except (ValueError, TypeError) as exc:
            raise InvalidPoint("point not on secp256k1") from exc

    @staticmethod
    def from_xy(x: int, y: int) -> Point:
        if not (0 <= x < P_FIELD and 0 <= y < P_FIELD):
            raise InvalidPoint("coordinate out of range")
        return Point.from_bytes(b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big"))

    # -- encoding -----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """33-byte compressed encoding; the identity is b'\\x00'."""
        return self._compressed

    def uncompressed(self) -> bytes:
        if self._pk is None:
            raise InvalidPoint("the identity has no uncompressed encoding")
        data: bytes = self._pk.format(compressed=False)
        return data

    def xy(self) -> tuple[int, int]:
        raw = self.uncompressed()
        return int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:], "big")

    # -- group law ----------------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        return self._pk is None

    def __add__(self, other: Point) -> Point:
        if self._pk is None:
            return other
        if other._pk is None:
            return self
        if self._compressed[1:] == other._compressed[1:] and self._compressed != other._compressed:
            return _IDENTITY  # P + (−P)
        return Point(PublicKey.combine_keys([self._pk, other._pk]))

    def __neg__(self) -> Point:
        if self._pk is None:
            return self
        flipped = bytes([self._compressed[0] ^ 1]) + self._compressed[1:]
        return Point(PublicKey(flipped))

    def __sub__(self, other: Point) -> Point:
        return self + (-other)

    def __mul__(self, k: int) -> Point:
        k %= Q
        if k == 0 or self._pk is None:
            return _IDENTITY
        return Point(self._pk.multiply(k.to_bytes(32, "big")))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and self._compressed == other._compressed

    def __hash__(self) -> int:
        return hash(self._compressed)

    def __repr__(self) -> str:
        return f"Point({self._compressed.hex()})"


def base_mul(k: int) -> Point:
    """k·G."""
    k %= Q
    if k == 0:
        return _IDENTITY
    return Point(PublicKey.from_secret(k.to_bytes(32, "big")))


def point_sum(points: list[Point] | tuple[Point, ...]) -> Point:
    acc = _IDENTITY
    for p in points:
        acc = acc + p
    return acc


def inv_mod_q(k: int) -> int:
    k %= Q
    if k == 0:
        raise InvalidScalar("zero has no inverse mod q")
    return pow(k, -1, Q)


_IDENTITY: Final = Point(None)
_GENERATOR: Final = Point(PublicKey.from_secret((1).to_bytes(32, "big")))
G: Final = _GENERATOR
