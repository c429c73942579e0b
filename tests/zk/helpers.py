"""Helpers every proof test uses: field-by-field tampering and the wire round trip."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gmpy2 import mpz

from tssnode.crypto.encoding import Wire
from tssnode.crypto.group import G, Point
from tssnode.errors import ProofError


def _tweak(value: Any) -> list[Any]:
    """Values that differ from `value` but keep its type."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, Point):
        return [value + G]
    if isinstance(value, int | type(mpz(0))):
        return [value + 1, value - 1]
    if isinstance(value, list | tuple):
        out: list[Any] = []
        for i, item in enumerate(value):
            for alt in _tweak(item):
                changed = list(value)
                changed[i] = alt
                out.append(type(value)(changed))
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [v for _, v in tampered_variants(value)]
    if isinstance(value, bytes):
        return [value + b"\x00", bytes([value[0] ^ 1]) + value[1:] if value else b"\x01"]
    raise TypeError(f"no tweak for {type(value).__name__}")


def tampered_variants(obj: Any) -> Iterator[tuple[str, Any]]:
    """(description, copy of obj with one field changed) for every field and element."""
    for f in dataclasses.fields(obj):
        for alt in _tweak(getattr(obj, f.name)):
            yield f.name, dataclasses.replace(obj, **{f.name: alt})


def assert_every_tamper_rejected(proof: Any, verify: Callable[[Any], None]) -> int:
    """Each single-field change of `proof` must raise ProofError. Returns how many were tried."""
    n = 0
    for name, bad in tampered_variants(proof):
        n += 1
        with pytest.raises(ProofError):
            verify(bad)
            pytest.fail(f"tampered field {name} was accepted")
    assert n > 0
    return n


def assert_round_trip(obj: Wire) -> None:
    data = obj.to_bytes()
    again = type(obj).from_bytes(data)
    assert again == obj
    assert again.to_bytes() == data
