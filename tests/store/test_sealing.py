"""Secrets at rest: scrypt-derived key, AEAD, wrong passphrase, key files, and the vault."""

from __future__ import annotations

from pathlib import Path

import pytest

from tssnode.store import (
    LevelStore,
    PresignatureMissing,
    PresignatureUsed,
    StoreCorrupt,
    WrongPassphrase,
    layout,
)
from tssnode.store.sealing import Sealer, read_key_file
from tssnode.store.vault import Vault
from tssnode.testing.memstore import MemoryStore

FAST = 10  # scrypt N = 2^10 in tests; the default for nodes is 2^15

KEY = "ab" * 16


def test_seal_and_reopen_with_the_same_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with LevelStore(path) as store:
        vault = Vault(store, Sealer.open(store, b"correct horse", log2_n=FAST))
        vault.put_share(KEY, 0, b"share-epoch-0")
        vault.put_share(KEY, 1, b"share-epoch-1")
        raw = store.get(layout.key_share(KEY, 1))
        assert raw is not None and b"share-epoch-1" not in raw  # encrypted at rest
    with LevelStore(path) as store:
        vault = Vault(store, Sealer.open(store, b"correct horse"))
        assert vault.get_share(KEY) == b"share-epoch-1"
        assert vault.get_share(KEY, 0) == b"share-epoch-0"
        assert vault.share_epochs(KEY) == [0, 1]


def test_wrong_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with LevelStore(path) as store:
        Sealer.open(store, b"right", log2_n=FAST, where=str(path))
    with LevelStore(path) as store, pytest.raises(WrongPassphrase, match=str(path)):
        Sealer.open(store, b"wrong", where=str(path))


def test_key_file(tmp_path: Path) -> None:
    kf = tmp_path / "secret.key"
    kf.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    store = MemoryStore()
    s1 = Sealer.open(store, read_key_file(kf), log2_n=FAST)
    sealed = s1.seal(b"k", b"v")
    s2 = Sealer.open(store, read_key_file(kf))
    assert s2.open_record(b"k", sealed) == b"v"
    (tmp_path / "short.key").write_bytes(b"short")
    with pytest.raises(WrongPassphrase):
        read_key_file(tmp_path / "short.key")


def test_a_record_moved_to_another_key_does_not_open() -> None:
    sealer = Sealer.open(MemoryStore(), b"pw", log2_n=FAST)
    sealed = sealer.seal(layout.key_share(KEY, 0), b"secret")
    with pytest.raises(StoreCorrupt):
        sealer.open_record(layout.key_share(KEY, 1), sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(StoreCorrupt):
        sealer.open_record(layout.key_share(KEY, 0), tampered)


def test_repr_hides_the_key() -> None:
    assert "hidden" in repr(Sealer.open(MemoryStore(), b"pw", log2_n=FAST))


def test_presignature_is_deleted_in_the_write_that_records_its_use(tmp_path: Path) -> None:
    path = tmp_path / "db"
    pid = b"\x07" * 32
    with LevelStore(path) as store:
        vault = Vault(store, Sealer.open(store, b"pw", log2_n=FAST))
        vault.put_presignature(KEY, pid, b"R, k_i, chi_i")
        assert list(vault.presignature_ids(KEY)) == [pid]
        writes: list[dict[bytes, bytes | None]] = []
        real_write = store.write
        store.write = lambda ops: (writes.append(dict(ops)), real_write(ops))[1]  # type: ignore[method-assign]
        assert vault.take_presignature(KEY, pid, b"session-1") == b"R, k_i, chi_i"
        # one write: the delete and the used mark together
        assert len(writes) == 1
        assert writes[0] == {
            layout.presignature(KEY, pid): None,
            layout.presignature_used(pid): b"session-1",
        }
    with LevelStore(path) as store:
        vault = Vault(store, Sealer.open(store, b"pw"))
        assert vault.count_presignatures(KEY) == 0
        with pytest.raises(PresignatureUsed, match=b"session-1".hex()[:16]):
            vault.take_presignature(KEY, pid, b"session-2")
        with pytest.raises(PresignatureUsed):
            vault.put_presignature(KEY, pid, b"again")
        with pytest.raises(PresignatureMissing):
            vault.take_presignature(KEY, b"\x08" * 32, b"s")


def test_take_in_a_caller_batch_that_never_commits_keeps_the_presignature() -> None:
    store = MemoryStore()
    vault = Vault(store, Sealer.open(store, b"pw", log2_n=FAST))
    pid = b"\x01" * 32
    vault.put_presignature(KEY, pid, b"p")
    with pytest.raises(RuntimeError), store.batch() as b:
        vault.take_presignature(KEY, pid, b"s", batch=b)
        b.put(b"session-record", b"started")
        raise RuntimeError("crash before the batch is written")
    assert vault.used_by(pid) is None
    assert vault.count_presignatures(KEY) == 1
    with store.batch() as b:
        vault.take_presignature(KEY, pid, b"s", batch=b)
        with pytest.raises(PresignatureUsed):  # the batch already holds the use
            vault.take_presignature(KEY, pid, b"t", batch=b)
    assert vault.used_by(pid) == b"s"


def test_the_signature_share_is_written_with_the_use_of_its_presignature() -> None:
    store = MemoryStore()
    vault = Vault(store, Sealer.open(store, b"pw", log2_n=FAST))
    pid, session = b"\x02" * 32, b"\x05" * 32
    vault.put_presignature(KEY, pid, b"p")
    writes: list[dict[bytes, bytes | None]] = []
    real_write = store.write
    store.write = lambda ops: (writes.append(dict(ops)), real_write(ops))[1]  # type: ignore[method-assign]
    with store.batch() as b:
        vault.take_presignature(KEY, pid, session, batch=b)
        vault.put_signature_share(b, session, b"sigma_i")
    assert len(writes) == 1 and set(writes[0]) == {
        layout.presignature(KEY, pid),
        layout.presignature_used(pid),
        layout.signature_share(session),
    }
    assert b"sigma_i" not in writes[0][layout.signature_share(session)]  # sealed at rest
    assert vault.signature_share(session) == b"sigma_i"
    assert vault.signature_share(b"\x06" * 32) is None
