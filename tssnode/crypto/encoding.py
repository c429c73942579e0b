"""The one canonical binary encoding of everything that crosses the wire or enters a hash.

Values are turned into plain CBOR data (RFC 8949, deterministic encoding, via cbor2):
integers of any size (gmpy2 `mpz` becomes a CBOR integer or bignum), byte strings, text,
booleans, null, arrays and maps. A `Point` is its SEC1 compressed bytes (b'\\x00' for the
identity). A `Wire` dataclass is an array whose first item is the class's tag
(`"tssnode.zk.enc/1"`): a value of one type can never be read as another.

Decoding is strict: the input must be exactly the canonical encoding of the value it
decodes to (checked by re-encoding), so trailing bytes, non-minimal integers and unsorted
maps are all errors, and a typed decode then checks every field against its annotation.
Any failure is an `EncodingError`; nothing in here lets a library exception escape.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeVar, get_args, get_origin

import cbor2
from gmpy2 import mpz

from tssnode.crypto.group import Point, Q
from tssnode.errors import EncodingError, InvalidPoint

#: Largest encoded object accepted by `loads` (16 MiB); frames are capped lower by the net layer.
MAX_ENCODED = 16 * 1024 * 1024

MPZ_TYPE = type(mpz(0))


class _ScalarMark:
    """Marks an int field that must lie in [0, q)."""


class _NonZeroScalarMark:
    """Marks an int field that must lie in [1, q)."""


class _AnyPointMark:
    """Marks a Point field that may be the identity."""


#: Field annotations: `Scalar` is an int in [0, q); `Big` a signed big integer kept as mpz.
Scalar = Annotated[int, _ScalarMark]
NonZeroScalar = Annotated[int, _NonZeroScalarMark]
Big = Annotated[Any, MPZ_TYPE]
#: A point that may be the identity (plain `Point` fields refuse it).
AnyPoint = Annotated[Point, _AnyPointMark]


def to_plain(value: Any) -> Any:
    """Turn a value into plain CBOR data (the form that is hashed and sent)."""
    if isinstance(value, Wire):
        return [value.WIRE_TAG, *(to_plain(getattr(value, f.name)) for f in _fields(type(value)))]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | MPZ_TYPE):
        return int(value)
    if isinstance(value, Point):
        return value.to_bytes()
    if isinstance(value, bytes | str):
        return value
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {to_plain(k): to_plain(v) for k, v in value.items()}
    raise EncodingError(f"cannot encode a value of type {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Canonical encoding of `value`."""
    data: bytes = cbor2.dumps(to_plain(value), canonical=True)
    return data


def loads_plain(data: bytes) -> Any:
    """Decode canonical CBOR into plain data; refuse anything that is not canonical."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EncodingError("expected bytes")
    data = bytes(data)
    if len(data) > MAX_ENCODED:
        raise EncodingError("encoded value too large")
    try:
        plain = cbor2.loads(data)
        again = cbor2.dumps(plain, canonical=True)
    except Exception as exc:  # cbor2 raises a range of types on malformed input
        raise EncodingError("malformed CBOR") from exc
    if again != data:
        raise EncodingError("not the canonical encoding (trailing or non-minimal bytes)")
    return plain


W = TypeVar("W", bound="Wire")


class Wire:
    """Mixin for frozen dataclasses with a canonical, strictly decoded wire form."""

    WIRE_TAG: ClassVar[str]

    def to_bytes(self) -> bytes:
        return dumps(self)

    @classmethod
    def from_bytes(cls: type[W], data: bytes) -> W:
        value: W = from_plain(cls, loads_plain(data))
        return value


def loads(cls: type[W], data: bytes) -> W:
    return cls.from_bytes(data)


_FIELD_CACHE: dict[type, tuple[tuple[dataclasses.Field[Any], ...], dict[str, Any]]] = {}


def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return _resolved(cls)[0]


def _resolved(cls: type) -> tuple[tuple[dataclasses.Field[Any], ...], dict[str, Any]]:
    hit = _FIELD_CACHE.get(cls)
    if hit is None:
        fields = tuple(f for f in dataclasses.fields(cls) if f.init)
        hints = typing.get_type_hints(cls, include_extras=True)
        hit = (fields, {f.name: hints[f.name] for f in fields})
        _FIELD_CACHE[cls] = hit
    return hit


def from_plain(tp: Any, plain: Any) -> Any:
    """Convert decoded plain data to a value of annotated type `tp`, checking it fully."""
    try:
        return _convert(tp, plain)
    except EncodingError:
        raise
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise EncodingError(f"malformed value for {_name(tp)}") from exc


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, plain: Any) -> Any:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *marks = get_args(tp)
        if MPZ_TYPE in marks:
            return mpz(_expect_int(plain))
        if _ScalarMark in marks or _NonZeroScalarMark in marks:
            k = _expect_int(plain)
            low = 1 if _NonZeroScalarMark in marks else 0
            if not low <= k < Q:
                raise EncodingError("scalar out of range")
            return k
        if _AnyPointMark in marks:
            return _point(plain, allow_identity=True)
        return _convert(base, plain)
    if tp is Any:
        return plain
    if isinstance(tp, type) and issubclass(tp, Wire):
        return _wire(tp, plain)
    if tp is Point:
        return _point(plain, allow_identity=False)
    if tp is bool:
        if not isinstance(plain, bool):
            raise EncodingError("expected a boolean")
        return plain
    if tp is int:
        return _expect_int(plain)
    if tp is bytes:
        if not isinstance(plain, bytes):
            raise EncodingError("expected a byte string")
        return plain
    if tp is str:
        if not isinstance(plain, str):
            raise EncodingError("expected a text string")
        return plain
    if tp is type(None):
        if plain is not None:
            raise EncodingError("expected null")
        return None
    if origin in (types.UnionType, typing.Union):
        options = get_args(tp)
        if plain is None and type(None) in options:
            return None
        last: Exception | None = None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, plain)
            except EncodingError as exc:
                last = exc
        raise EncodingError(f"no alternative of {tp} matches") from last
    if origin is tuple:
        if not isinstance(plain, list):
            raise EncodingError("expected an array")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in plain)
        if len(args) != len(plain):
            raise EncodingError("array of the wrong length")
        return tuple(_convert(a, v) for a, v in zip(args, plain, strict=True))
    if origin is list:
        if not isinstance(plain, list):
            raise EncodingError("expected an array")
        (arg,) = get_args(tp)
        return [_convert(arg, v) for v in plain]
    if origin is dict:
        if not isinstance(plain, dict):
            raise EncodingError("expected a map")
        kt, vt = get_args(tp)
        return {_convert(kt, k): _convert(vt, v) for k, v in plain.items()}
    raise EncodingError(f"no decoder for type {tp!r}")


def _expect_int(plain: Any) -> int:
    if isinstance(plain, bool) or not isinstance(plain, int):
        raise EncodingError("expected an integer")
    return plain


def _point(plain: Any, *, allow_identity: bool) -> Point:
    if not isinstance(plain, bytes):
        raise EncodingError("expected point bytes")
    if len(plain) not in (1, 33):
        raise InvalidPoint("a point is 33 compressed bytes")
    return Point.from_bytes(plain, allow_identity=allow_identity)


def _wire(cls: type[W], plain: Any) -> W:
    fields, hints = _resolved(cls)
    if not isinstance(plain, list) or not plain:
        raise EncodingError(f"expected {cls.__name__}")
    if plain[0] != cls.WIRE_TAG:
        raise EncodingError(f"expected tag {cls.WIRE_TAG!r}")
    if len(plain) != len(fields) + 1:
        raise EncodingError(f"{cls.__name__}: wrong number of fields")
    values = {f.name: _convert(hints[f.name], v) for f, v in zip(fields, plain[1:], strict=True)}
    return cls(**values)


#: Every Wire class by its tag, so that any encoded value can be decoded by its tag alone.
REGISTRY: dict[str, type[Wire]] = {}


def decode_any(data: bytes) -> Wire:
    """Decode a Wire value whose type is named by its own tag (for tools and fault rules)."""
    plain = loads_plain(data)
    if not isinstance(plain, list) or not plain or not isinstance(plain[0], str):
        raise EncodingError("not a tagged value")
    cls = REGISTRY.get(plain[0])
    if cls is None:
        raise EncodingError(f"unknown tag {plain[0]!r}")
    value: Wire = from_plain(cls, plain)
    return value


def wire(tag: str) -> Callable[[type[W]], type[W]]:
    """Class decorator: `@wire("tssnode.zk.enc/1")` sets the tag of a Wire dataclass."""

    def apply(cls: type[W]) -> type[W]:
        if not (dataclasses.is_dataclass(cls) and issubclass(cls, Wire)):
            raise TypeError("@wire applies to dataclasses that subclass Wire")
        if REGISTRY.setdefault(tag, cls) is not cls:
            raise TypeError(f"wire tag {tag!r} is used twice")
        cls.WIRE_TAG = tag
        return cls

    return apply
