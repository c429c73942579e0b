"""Secrets at rest: a key derived with scrypt from a passphrase or key file, ChaCha20-Poly1305.

The salt and scrypt cost are stored under `m/sealing` together with a sealed check value,
so that opening with the wrong passphrase fails at once with `WrongPassphrase` rather
than later with an unreadable record. Every sealed record is bound to its storage key as
associated data: a sealed value moved to another key does not open.

Record format: 12-byte random nonce ‖ AEAD ciphertext (with its 16-byte tag).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from tssnode.crypto.encoding import Wire, wire
from tssnode.errors import EncodingError
from tssnode.store import layout
from tssnode.store.db import Batch, KeyValueStore
from tssnode.store.errors import StoreCorrupt, WrongPassphrase

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
