"""The node's one LevelDB (plyvel): key layout, atomic synced batches, secrets sealed at rest.

`db` opens the database (one opener per data directory) and writes every multi-key change
as one synced batch; `layout` documents and builds every key; `sealing` derives the
at-rest key from a passphrase or key file and seals secrets with an AEAD; `vault` keeps
key shares and single-use presignatures sealed. Nothing here knows what the bytes mean:
the ledger and the node encode their records with `tssnode.crypto.encoding`.
"""

from tssnode.store.db import Batch, KeyValueStore, LevelStore, open_store
from tssnode.store.errors import (
    PresignatureMissing,
    PresignatureUsed,
    StoreClosed,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    WrongPassphrase,
)

__all__ = [
    "Batch",
    "KeyValueStore",
    "LevelStore",
    "PresignatureMissing",
    "PresignatureUsed",
    "StoreClosed",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "WrongPassphrase",
    "open_store",
]
