"""An in-memory single-use presignature store, for tests of the protocol without a node.

The node keeps presignatures in its vault (`tssnode.store.vault.Vault`), which deletes
a record in the same batch that records the signature share made with it; this double
has the same contract in a dict: `take` removes the record it returns, so a presignature
signs at most once.
"""

from __future__ import annotations

from tssnode.errors import TssError
from tssnode.protocol.material import Presignature


class PresignatureUsed(TssError):
    """A presignature that was already used (or was never in the store)."""


class PresignatureStore:
    """Single-use presignatures: `take` removes the record it returns."""

    def __init__(self) -> None:
        self._records: dict[bytes, Presignature] = {}

    def put(self, record: Presignature) -> None:
        if record.ssid in self._records:
            raise ValueError("presignature already stored")
        self._records[record.ssid] = record

    def take(self, ssid: bytes) -> Presignature:
        try:
            return self._records.pop(ssid)
        except KeyError:
            raise PresignatureUsed("presignature already used or unknown") from None

    def __len__(self) -> int:
        return len(self._records)
