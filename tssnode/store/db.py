"""Opening the node's database and writing to it: one opener, atomic synced batches.

`KeyValueStore` is what every other module uses. `LevelStore` is the real one (plyvel);
the same contract over a dict, for tests and simulations, is the test double
`tssnode.testing.memstore.MemoryStore`. A write is a `Batch`: collect puts and deletes,
then `commit()` writes them with `write_batch(transaction=True, sync=True)`, so after a
crash either every change of the batch is on disk or none is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import plyvel

from tssnode.store.errors import StoreClosed, StoreError, StoreLocked


class Batch:
    """Puts and deletes that reach the store together, or not at all.

    Use as a context manager: the batch is committed when the block ends normally and
    dropped when it raises. Reads through the batch see its own pending changes.
    """

    def __init__(self, store: KeyValueStore) -> None:
        self._store = store
        self._ops: dict[bytes, bytes | None] = {}
        self._done = False

    def put(self, key: bytes, value: bytes) -> None:
        self._ops[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        self._ops[bytes(key)] = None

    def get(self, key: bytes) -> bytes | None:
        if key in self._ops:
            return self._ops[key]
        return self._store.get(key)

    @property
    def ops(self) -> dict[bytes, bytes | None]:
        return self._ops

    def __len__(self) -> int:
        return len(self._ops)

    def commit(self) -> None:
        if self._done:
            raise StoreError("batch committed twice")
        self._done = True
        if self._ops:
            self._store.write(self._ops)

    def __enter__(self) -> Batch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and not self._done:
            self.commit()


class KeyValueStore(ABC):
    """Ordered byte keys to byte values, with atomic multi-key writes."""

    @abstractmethod
    def get(self, key: bytes) -> bytes | None: ...

    @abstractmethod
    def write(self, ops: dict[bytes, bytes | None]) -> None:
        """Apply puts (value) and deletes (None) atomically and durably."""

    @abstractmethod
    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for every key with `prefix` (from `start`, if given), in key order."""

    @abstractmethod
    def close(self) -> None: ...

    def batch(self) -> Batch:
        return Batch(self)

    def put(self, key: bytes, value: bytes) -> None:
        self.write({key: value})

    def delete(self, key: bytes) -> None:
        self.write({key: None})

    def last(self, prefix: bytes) -> tuple[bytes, bytes] | None:
        """The entry with the greatest key under `prefix`, if any."""
        for item in self.iterate(prefix, reverse=True):
            return item
        return None

    def __enter__(self) -> KeyValueStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LevelStore(KeyValueStore):
    """The node's LevelDB in `path` (created on first use). LevelDB's lock file allows one
    opener; a second one gets `StoreLocked` naming the directory."""

    def __init__(self, path: Path | str, *, sync: bool = True) -> None:
        self.path = Path(path)
        self._sync = sync
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._db: Any = plyvel.DB(str(self.path), create_if_missing=True)
        except plyvel.IOError as exc:
            if "lock" in str(exc).lower():
                raise StoreLocked(
                    f"the data directory {self.path} is already in use by another tssnode "
                    "process (LevelDB allows one opener)"
                ) from None
            raise StoreError(f"cannot open the database in {self.path}: {exc}") from None
        except plyvel.Error as exc:
            raise StoreError(f"cannot open the database in {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot open the data directory {self.path}: {exc}") from None

    def _live(self) -> Any:
        if self._db is None or self._db.closed:
            raise StoreClosed(f"the database in {self.path} is closed")
        return self._db

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._live().get(key)
        return value

    def write(self, ops: dict[bytes, bytes | None]) -> None:
        db = self._live()
        with db.write_batch(transaction=True, sync=self._sync) as wb:
            for key, value in ops.items():
                if value is None:
                    wb.delete(key)
                else:
                    wb.put(key, value)

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        db = self._live()
        if start is None:
            it = db.iterator(prefix=prefix, reverse=reverse)
        else:
            it = db.iterator(start=start, stop=_prefix_end(prefix), reverse=reverse)
        with it:
            yield from it

    def close(self) -> None:
        if self._db is not None and not self._db.closed:
            self._db.close()


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix` (None: no bound)."""
    data = bytearray(prefix)
    while data and data[-1] == 0xFF:
        data.pop()
    if not data:
        return None
    data[-1] += 1
    return bytes(data)


def open_store(path: Path | str) -> LevelStore:
    """Open the node's database in its data directory."""
    return LevelStore(path)
