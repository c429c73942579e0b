"""TEST DOUBLE of the node's key-value store (`tssnode.store.KeyValueStore`) over a dict:
for tests and simulations (the PBFT simulator, `bench ledger --store memory`); not durable.
The node itself always opens LevelDB (`tssnode.store.open_store`)."""

from __future__ import annotations

from collections.abc import Iterator

from tssnode.store import KeyValueStore, StoreClosed


class MemoryStore(KeyValueStore):
    """The store contract over a dict: for tests and simulations, not durable.

    `writes` counts committed batches (a simulation can crash a node at any of them).
    """

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._closed = False
        self.writes = 0

    def get(self, key: bytes) -> bytes | None:
        if self._closed:
            raise StoreClosed("the memory store is closed")
        return self._data.get(key)

    def write(self, ops: dict[bytes, bytes | None]) -> None:
        if self._closed:
            raise StoreClosed("the memory store is closed")
        for key, value in ops.items():
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value
        self.writes += 1

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        keys = sorted(
            k for k in self._data if k.startswith(prefix) and (start is None or k >= start)
        )
        if reverse:
            keys.reverse()
        for k in keys:
            if k in self._data:
                yield k, self._data[k]

    def close(self) -> None:
        self._closed = True

    def reopen(self) -> MemoryStore:
        """The same data as seen by a restarted process."""
        self._closed = False
        return self
