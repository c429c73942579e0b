"""Key shares and presignatures, sealed at rest; a presignature can be used once.

The vault stores encoded records as bytes (the node encodes `KeyShare` and `Presignature`
with the canonical encoding; the store knows nothing of their contents). Taking a
presignature deletes it and records which session used it in the same atomic, synced
batch (together with any other writes the caller adds), so a crash can never leave a
presignature both used and still available, and a second `take` fails with
`PresignatureUsed` even after a restart.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Concatenate, ParamSpec, TypeVar

from tssnode.store import layout
from tssnode.store.db import Batch, KeyValueStore
from tssnode.store.errors import PresignatureMissing, PresignatureUsed
from tssnode.store.sealing import Sealer

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _counted(fn: Callable[Concatenate[Vault, _P], _R]) -> Callable[Concatenate[Vault, _P], _R]:
    """Count calls of a vault operation by name (`Vault.ops`, for the node's metrics)."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(self: Vault, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        self.ops[name] += 1
        return fn(self, *args, **kwargs)

    return wrapper


class Vault:
    """Sealed secrets of one node."""

    def __init__(self, store: KeyValueStore, sealer: Sealer) -> None:
        self.store = store
        self.sealer = sealer
        #: operations so far, by method name (never their arguments: those are secret)
        self.ops: Counter[str] = Counter()

    # -- key shares ---------------------------------------------------------------------------

    @_counted
    def put_share(
        self,
        key_id: str,
        epoch: int,
        share: bytes,
        batch: Batch | None = None,
        *,
        vote: bytes = b"",
    ) -> None:
        """Store the share of `key_id` at `epoch` (a refresh adds epoch + 1), and in the
        same write `vote`, the result vote (a ledger payload) this node owes for it, so
        that a restart between the write and the vote can still vote (`share_votes`)."""
        own = batch is None
        b = self.store.batch() if batch is None else batch
        self.sealer.put(b, layout.key_share(key_id, epoch), share)
        if vote:
            b.put(layout.share_vote(key_id, epoch), vote)
        if own:
            b.commit()

    def share_votes(self) -> list[bytes]:
        """The result votes stored with the shares (public: what the ledger is told)."""
        return [v for _, v in self.store.iterate(layout.SHARE_VOTE)]

    @_counted
    def get_share(self, key_id: str, epoch: int | None = None) -> bytes | None:
        """The share of `key_id` at `epoch`, or at its latest epoch."""
        if epoch is not None:
            key = layout.key_share(key_id, epoch)
            raw = self.store.get(key)
            return None if raw is None else self.sealer.open_record(key, raw)
        last = self.store.last(layout.key_shares_of(key_id))
        return None if last is None else self.sealer.open_record(last[0], last[1])

    def share_keys(self) -> list[str]:
        """The key ids this vault holds a share of (any epoch)."""
        ids = {k[1:17].hex() for k, _ in self.store.iterate(layout.KEY_SHARE)}
        return sorted(ids)

    def share_epochs(self, key_id: str) -> list[int]:
        prefix = layout.key_shares_of(key_id)
        return [layout.read_u32(k, len(prefix)) for k, _ in self.store.iterate(prefix)]

    @_counted
    def delete_share(self, key_id: str, epoch: int) -> None:
        with self.store.batch() as b:
            b.delete(layout.key_share(key_id, epoch))
            b.delete(layout.share_vote(key_id, epoch))

    # -- presignatures ------------------------------------------------------------------------

    @_counted
    def put_presignature(self, key_id: str, presig_id: bytes, record: bytes) -> None:
        if self.store.get(layout.presignature_used(presig_id)) is not None:
            raise PresignatureUsed(f"presignature {presig_id.hex()[:16]} was already used")
        with self.store.batch() as b:
            self.sealer.put(b, layout.presignature(key_id, presig_id), record)

    def presignature_ids(self, key_id: str) -> Iterator[bytes]:
        prefix = layout.presignatures_of(key_id)
        for k, _ in self.store.iterate(prefix):
            yield k[len(prefix) :]

    @_counted
    def get_presignature(self, key_id: str, presig_id: bytes) -> bytes | None:
        """An unused presignature, read without taking it (None if absent or used)."""
        key = layout.presignature(key_id, presig_id)
        raw = self.store.get(key)
        return None if raw is None else self.sealer.open_record(key, raw)

    @_counted
    def delete_presignature(self, key_id: str, presig_id: bytes) -> None:
        """Drop an unused presignature (no use is recorded: it was never used)."""
        self.store.delete(layout.presignature(key_id, presig_id))

    def count_presignatures(self, key_id: str) -> int:
        return sum(1 for _ in self.presignature_ids(key_id))

    def used_by(self, presig_id: bytes) -> bytes | None:
        """The session that used the presignature, if it was used."""
        return self.store.get(layout.presignature_used(presig_id))

    @_counted
    def take_presignature(
        self, key_id: str, presig_id: bytes, session: bytes, batch: Batch | None = None
    ) -> bytes:
        """Remove the presignature for use by `session` and return it.

        The delete and the `used` mark go into `batch` (committed here when not given), so
        they are written together with whatever else the caller records for the session
        (the node adds the signature share, `put_signature_share`).
        """
        used = layout.presignature_used(presig_id)
        b = self.store.batch() if batch is None else batch
        previous = b.get(used)
        if previous is not None:
            raise PresignatureUsed(
                f"presignature {presig_id.hex()[:16]} was already used by session "
                f"{previous.hex()[:16]}"
            )
        key = layout.presignature(key_id, presig_id)
        sealed = b.get(key)
        if sealed is None:
            raise PresignatureMissing(f"no presignature {presig_id.hex()[:16]} for key {key_id}")
        plaintext = self.sealer.open_record(key, sealed)
        b.delete(key)
        b.put(used, session)
        if batch is None:
            b.commit()
        return plaintext

    # -- signature shares ---------------------------------------------------------------------

    @_counted
    def put_signature_share(self, batch: Batch, session: bytes, share: bytes) -> None:
        """Record (sealed) the signature share this node sends in sign session `session`;
        written in the batch that takes the presignature."""
        self.sealer.put(batch, layout.signature_share(session), share)

    @_counted
    def signature_share(self, session: bytes) -> bytes | None:
        key = layout.signature_share(session)
        raw = self.store.get(key)
        return None if raw is None else self.sealer.open_record(key, raw)
