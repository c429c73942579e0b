"""Secrets at rest: a key derived with scrypt from a passphrase or key file, ChaCha20-Poly1305.

The salt and scrypt cost are stored under `m/sealing` together with a sealed check value,
so that opening with the wrong passphrase fails at once with `WrongPassphrase` rather
than later with an unreadable record. Every sealed record is bound to its storage key as
associated data: a sealed value moved to another key does not open.

Record format: 12-byte random nonce ‖ AEAD ciphertext (with its 16-byte tag).

`rekey` changes the passphrase: every sealed record and the check value are sealed again
under the new key in one atomic batch, so the store opens with exactly one of the two
passphrases at any moment, whatever happens meanwhile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from tssnode.crypto.encoding import Wire, wire
from tssnode.errors import EncodingError
from tssnode.store import layout
from tssnode.store.db import Batch, KeyValueStore
from tssnode.store.errors import StoreCorrupt, StoreError, WrongPassphrase

NONCE_BYTES = 12
_CHECK_KEY = b"tssnode.store.sealing-check/1"
_CHECK_VALUE = b"this data directory's secrets open with this passphrase"

#: scrypt cost for new data directories: N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s).
DEFAULT_LOG2_N = 15


@wire("tssnode.store.sealing/1")
@dataclass(frozen=True)
class SealingRecord(Wire):
    """What a data directory stores about its at-rest key (never the key itself)."""

    salt: bytes
    log2_n: int
    r: int
    p: int
    check: bytes  # _CHECK_VALUE sealed under the derived key


def read_key_file(path: Path | str) -> bytes:
    """The secret in a key file (its bytes, surrounding whitespace stripped)."""
    data = Path(path).read_bytes().strip()
    if len(data) < 16:
        raise WrongPassphrase(f"the key file {path} holds fewer than 16 bytes")
    return data


class Sealer:
    """Seals and opens secret records of one data directory."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)

    def __repr__(self) -> str:
        return "Sealer(key hidden)"

    @staticmethod
    def derive(secret: bytes, record: SealingRecord) -> bytes:
        kdf = Scrypt(salt=record.salt, length=32, n=1 << record.log2_n, r=record.r, p=record.p)
        return kdf.derive(secret)

    @classmethod
    def open(
        cls,
        store: KeyValueStore,
        secret: bytes,
        *,
        where: str = "this data directory",
        log2_n: int = DEFAULT_LOG2_N,
    ) -> Sealer:
        """The sealer for `store`: set up on first use, checked against the stored record
        afterwards (`WrongPassphrase` when `secret` is not the one it was set up with)."""
        if not secret:
            raise WrongPassphrase("an empty passphrase cannot seal secrets")
        raw = store.get(layout.meta("sealing"))
        if raw is None:
            record = SealingRecord(os.urandom(16), log2_n, 8, 1, b"")
            sealer = cls(cls.derive(secret, record))
            check = sealer.seal(_CHECK_KEY, _CHECK_VALUE)
            store.put(
                layout.meta("sealing"),
                SealingRecord(record.salt, record.log2_n, record.r, record.p, check).to_bytes(),
            )
            return sealer
        try:
            record = SealingRecord.from_bytes(raw)
        except EncodingError as exc:
            raise StoreCorrupt(f"the sealing record of {where} is unreadable") from exc
        sealer = cls(cls.derive(secret, record))
        try:
            ok = sealer._open(_CHECK_KEY, record.check) == _CHECK_VALUE
        except InvalidTag:
            ok = False
        if not ok:
            raise WrongPassphrase(
                f"the passphrase (or key file) does not open the secrets in {where}"
            )
        return sealer

    def seal(self, key: bytes, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, key)

    def _open(self, key: bytes, sealed: bytes) -> bytes:
        if len(sealed) < NONCE_BYTES + 16:
            raise InvalidTag
        return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], key)

    def open_record(self, key: bytes, sealed: bytes) -> bytes:
        """The plaintext of the record stored under `key`."""
        try:
            return self._open(key, sealed)
        except InvalidTag:
            raise StoreCorrupt(f"sealed record {key[:1]!r}… fails authentication") from None

    def put(self, batch: Batch, key: bytes, plaintext: bytes) -> None:
        batch.put(key, self.seal(key, plaintext))


def rekey(
    store: KeyValueStore,
    old_secret: bytes,
    new_secret: bytes,
    *,
    where: str = "this data directory",
    log2_n: int | None = None,
) -> int:
    """Seal every secret of `store` again under `new_secret`; returns how many records.

    Each record under a `layout.SEALED` prefix is opened with the key of `old_secret` and
    sealed under a key derived from `new_secret` with a fresh salt, and the sealing record
    (salt, cost, check value) is replaced, all in one `Batch` (LevelDB: one
    `write_batch(transaction=True, sync=True)`). Until that batch is on disk the store
    opens with the old passphrase only, afterwards with the new one only: an error or a
    crash before the commit leaves the old passphrase working and nothing changed.

    `WrongPassphrase` when `old_secret` does not open the store, `StoreCorrupt` when a
    record does not open (nothing is written then), `StoreError` when nothing is sealed
    yet or the new passphrase is the old one. `log2_n` (scrypt cost) defaults to the
    current one. The caller must hold the store alone (the node stopped).
    """
    raw = store.get(layout.meta("sealing"))
    if raw is None:
        raise StoreError(f"no secrets are sealed in {where} yet: there is nothing to re-seal")
    if not new_secret:
        raise WrongPassphrase("an empty passphrase cannot seal secrets")
    if new_secret == old_secret:
        raise StoreError("the new passphrase is the current one")
    old = Sealer.open(store, old_secret, where=where)
    current = SealingRecord.from_bytes(raw)
    record = SealingRecord(
        os.urandom(16), current.log2_n if log2_n is None else log2_n, current.r, current.p, b""
    )
    new = Sealer(Sealer.derive(new_secret, record))
    batch = store.batch()
    count = 0
    for prefix in layout.SEALED:
        for key, sealed in store.iterate(prefix):
            batch.put(key, new.seal(key, old.open_record(key, sealed)))
            count += 1
    check = new.seal(_CHECK_KEY, _CHECK_VALUE)
    batch.put(layout.meta("sealing"), replace(record, check=check).to_bytes())
    batch.commit()
    return count
