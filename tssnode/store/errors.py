"""Storage errors. Messages name the data directory or record, never a secret."""

from __future__ import annotations

from tssnode.errors import TssError


class StoreError(TssError):
    """A storage operation failed."""


class StoreLocked(StoreError):
    """The data directory's database is already open in another process (or handle)."""


class StoreClosed(StoreError):
    """The store was used after it was closed."""


class StoreCorrupt(StoreError):
    """A stored record could not be read back (bad encoding, failed authentication)."""


class WrongPassphrase(StoreError):
    """The passphrase or key file does not open the secrets sealed in this data directory."""


class PresignatureUsed(StoreError):
    """A presignature that was already consumed by a signing session."""


class PresignatureMissing(StoreError):
    """A presignature that this node does not hold."""
