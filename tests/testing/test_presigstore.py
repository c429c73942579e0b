"""`tssnode.testing.presigstore`: the in-memory store has the vault's single-use contract:
a presignature is taken at most once, and never stored twice."""

from __future__ import annotations

import dataclasses

import pytest

from tssnode.crypto.group import base_mul
from tssnode.protocol.material import Presignature, PresignTranscript
from tssnode.testing.presigstore import PresignatureStore, PresignatureUsed


def _presig(ssid: bytes) -> Presignature:
    point = base_mul(2)
    return Presignature(
        ssid, "key", 1, (1, 2), point, 3, 4, 0, None, point, PresignTranscript({}, {}, {}), point
    )


def test_take_returns_a_record_once():
    store = PresignatureStore()
    a, b = _presig(b"a" * 32), _presig(b"b" * 32)
    store.put(a)
    store.put(b)
    assert len(store) == 2
    assert store.take(b.ssid) is b
    assert len(store) == 1
    with pytest.raises(PresignatureUsed):
        store.take(b.ssid)
    assert store.take(a.ssid) is a
    assert len(store) == 0


def test_unknown_and_duplicate_records_are_refused():
    store = PresignatureStore()
    with pytest.raises(PresignatureUsed):
        store.take(b"never" * 6)
    record = _presig(b"c" * 32)
    store.put(record)
    with pytest.raises(ValueError, match="already stored"):
        store.put(dataclasses.replace(record, k=5))
    assert store.take(record.ssid) is record
