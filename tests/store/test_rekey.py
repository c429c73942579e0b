"""Changing the vault passphrase (`sealing.rekey`): every secret re-sealed in one atomic
batch; a failure or a crash before the commit leaves the old passphrase working."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tssnode.store import LevelStore, StoreCorrupt, StoreError, WrongPassphrase, layout
from tssnode.store.sealing import Sealer, rekey
from tssnode.store.vault import Vault

FAST = 10  # scrypt N = 2^10 in tests
KEY, OTHER = "ab" * 16, "cd" * 16
OLD, NEW = b"old passphrase", b"new passphrase"
SHARES = {(KEY, 0): b"share-of-ab-epoch-0", (KEY, 1): b"share-of-ab-epoch-1", (OTHER, 0): b"cd0"}
PRESIGS = {(KEY, bytes([i]) * 32): b"presignature %d" % i for i in range(1, 4)}
SESSION = b"\x05" * 32


def fill(path: Path) -> None:
    """Shares, presignatures, a used presignature with its signature share, and some
    unsealed ledger data."""
    with LevelStore(path) as store:
        vault = Vault(store, Sealer.open(store, OLD, log2_n=FAST))
        for (key_id, epoch), share in SHARES.items():
            vault.put_share(key_id, epoch, share)
        for (key_id, pid), record in PRESIGS.items():
            vault.put_presignature(key_id, pid, record)
        vault.put_presignature(OTHER, b"\x09" * 32, b"used one")
        with store.batch() as b:
            vault.take_presignature(OTHER, b"\x09" * 32, SESSION, batch=b)
            vault.put_signature_share(b, SESSION, b"sigma_i")
        store.put(layout.block(1), b"a block, not sealed")


def assert_every_secret_opens(path: Path, secret: bytes) -> None:
    with LevelStore(path) as store:
        vault = Vault(store, Sealer.open(store, secret))
        for (key_id, epoch), share in SHARES.items():
            assert vault.get_share(key_id, epoch) == share
        for (key_id, pid), record in PRESIGS.items():
            assert vault.take_presignature(key_id, pid, b"s", batch=store.batch()) == record
        assert vault.signature_share(SESSION) == b"sigma_i"
        assert vault.used_by(b"\x09" * 32) == SESSION
        assert store.get(layout.block(1)) == b"a block, not sealed"


def snapshot(path: Path) -> dict[bytes, bytes]:
    with LevelStore(path) as store:
        return dict(store.iterate(b""))


def test_rekey_reseals_every_secret_and_the_old_passphrase_stops_working(tmp_path: Path) -> None:
    path = tmp_path / "db"
    fill(path)
    before = snapshot(path)
    with LevelStore(path) as store:
        assert rekey(store, OLD, NEW, where=str(path)) == len(SHARES) + len(PRESIGS) + 1
    after = snapshot(path)
    sealed = [k for k in before if k[:1] in layout.SEALED]
    assert sealed and all(after[k] != before[k] for k in sealed)  # every record re-sealed
    assert after[layout.meta("sealing")] != before[layout.meta("sealing")]  # new salt, check
    unsealed = [k for k in before if k[:1] not in layout.SEALED and k != layout.meta("sealing")]
    assert unsealed and all(after[k] == before[k] for k in unsealed)  # the rest untouched
    assert set(after) == set(before)
    for value in after.values():
        assert b"share-of-ab" not in value and b"presignature" not in value
    assert_every_secret_opens(path, NEW)
    with LevelStore(path) as store, pytest.raises(WrongPassphrase, match=str(path)):
        Sealer.open(store, OLD, where=str(path))


def test_rekey_refusals_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with LevelStore(path) as store, pytest.raises(StoreError, match="nothing to re-seal"):
        rekey(store, OLD, NEW)  # a new data directory: nothing sealed yet
    fill(path)
    before = snapshot(path)
    with LevelStore(path) as store:
        with pytest.raises(WrongPassphrase) as wrong:
            rekey(store, b"not the passphrase", NEW, where=str(path))
        with pytest.raises(StoreError, match="the current one"):
            rekey(store, OLD, OLD)
        with pytest.raises(WrongPassphrase, match="empty"):
            rekey(store, OLD, b"")
    assert b"not the passphrase" not in str(wrong.value).encode()
    assert snapshot(path) == before
    assert_every_secret_opens(path, OLD)


def test_a_record_that_does_not_open_stops_the_rekey_before_any_write(tmp_path: Path) -> None:
    path = tmp_path / "db"
    fill(path)
    with LevelStore(path) as store:
        raw = store.get(layout.key_share(OTHER, 0))
        assert raw is not None
        store.put(layout.key_share(OTHER, 0), raw[:-1] + bytes([raw[-1] ^ 1]))
    before = snapshot(path)
    with LevelStore(path) as store, pytest.raises(StoreCorrupt):
        rekey(store, OLD, NEW)
    assert snapshot(path) == before


class _FailingBatch:
    """A plyvel write batch that raises after `after` puts, inside LevelDB's own
    transaction (as an I/O error or a kill between two puts would)."""

    def __init__(self, batch: Any, after: int) -> None:
        self._batch, self._left = batch, after

    def put(self, key: bytes, value: bytes) -> None:
        if self._left == 0:
            raise OSError("disk gone in the middle of the batch")
        self._left -= 1
        self._batch.put(key, value)

    def delete(self, key: bytes) -> None:
        self._batch.delete(key)


class _FailingDB:
    def __init__(self, db: Any, after: int) -> None:
        self._db, self._after = db, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    @contextmanager
    def write_batch(self, **options: Any) -> Iterator[_FailingBatch]:
        with self._db.write_batch(**options) as wb:
            yield _FailingBatch(wb, self._after)


@pytest.mark.parametrize("after", [0, 3, 6])
def test_a_rekey_that_fails_inside_the_batch_leaves_the_old_passphrase(
    tmp_path: Path, after: int
) -> None:
    path = tmp_path / "db"
    fill(path)
    before = snapshot(path)
    with LevelStore(path) as store:
        real = store._db
        store._db = _FailingDB(real, after)
        with pytest.raises(OSError, match="disk gone"):
            rekey(store, OLD, NEW)
        store._db = real
    assert snapshot(path) == before
    assert_every_secret_opens(path, OLD)
    with LevelStore(path) as store, pytest.raises(WrongPassphrase):
        Sealer.open(store, NEW)


CRASH = """
import os, sys
from tssnode.store import LevelStore
from tssnode.store.sealing import rekey

class Batch:
    def __init__(self, wb):
        self.wb, self.n = wb, 0
    def put(self, k, v):
        self.n += 1
        if self.n == 4:
            os._exit(9)  # the process dies half-way through building the batch
        self.wb.put(k, v)

class DB:
    def __init__(self, db):
        self.db = db
    def __getattr__(self, name):
        return getattr(self.db, name)
    def write_batch(self, **kw):
        outer = self.db.write_batch(**kw)
        class Ctx:
            def __enter__(self):
                return Batch(outer.__enter__())
            def __exit__(self, *exc):
                return outer.__exit__(*exc)
        return Ctx()

store = LevelStore(sys.argv[1])
store._db = DB(store._db)
rekey(store, b"old passphrase", b"new passphrase")
"""


def test_a_process_killed_during_the_rekey_leaves_the_old_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "db"
    fill(path)
    before = snapshot(path)
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(path)], capture_output=True, env=dict(os.environ)
    )
    assert done.returncode == 9, done.stderr.decode()
    assert snapshot(path) == before
    assert_every_secret_opens(path, OLD)
