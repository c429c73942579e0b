"""The in-memory store double keeps the store contract (the contract's own tests run over
both stores in tests/store/test_db.py); here what only the double has."""

from __future__ import annotations

import pytest

from tssnode.store import StoreClosed
from tssnode.testing.memstore import MemoryStore


def test_a_closed_store_refuses_and_a_reopened_one_has_its_data() -> None:
    store = MemoryStore()
    store.write({b"k": b"v", b"gone": b"x"})
    store.write({b"gone": None})
    assert store.writes == 2  # the simulator crashes a replica at the Nth write
    store.close()
    with pytest.raises(StoreClosed):
        store.get(b"k")
    with pytest.raises(StoreClosed):
        store.write({b"k": b"w"})
    again = store.reopen()
    assert again.get(b"k") == b"v" and again.get(b"gone") is None


def test_iteration_is_ordered_and_survives_deletes_while_iterating() -> None:
    store = MemoryStore()
    store.write({b"p/2": b"2", b"p/1": b"1", b"p/3": b"3", b"q/1": b"q"})
    seen = []
    for key, _ in store.iterate(b"p/"):
        seen.append(key)
        store.write({b"p/3": None})  # a key deleted under the iterator is skipped
    assert seen == [b"p/1", b"p/2"]
    assert [k for k, _ in store.iterate(b"p/", reverse=True)] == [b"p/2", b"p/1"]
    assert [k for k, _ in store.iterate(b"p/", start=b"p/2")] == [b"p/2"]
