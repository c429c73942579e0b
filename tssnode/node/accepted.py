"""Requests this node's API accepted: durable from the moment the client hears 202.

A request the API accepts becomes a signed transaction that must reach the PBFT primary
and be ordered. Before the API answers, the transaction is written here (one synced
LevelDB batch); only then is it handed to the replica, which relays it to every
validator and re-sends it to the primary until it is ordered. If the node dies in
between, or its relay reached nobody, `AcceptedRequests.load` gives it back at start-up
and the node submits it again. So an accepted request ends in the ledger (done or failed
there), or, if it can no longer be ordered, as `failed` here with the reason ("expired
before it was ordered", or why the ledger refuses it now): never as an unknown id.

A request that a sign or keygen retry replaced keeps its link to the retry
(`retried_as`), so its id keeps answering after a restart too. Once a transaction is in
a block the ledger holds it, and the journal keeps only the small link record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from tssnode.crypto.encoding import Wire, wire
from tssnode.ledger.transactions import SignedTx
from tssnode.store import layout
from tssnode.store.db import KeyValueStore


@wire("tssnode.node.accepted/1")
@dataclass(frozen=True)
class Accepted(Wire):
    """One accepted request. `tx` is empty once the ledger holds the transaction."""

    tx: bytes
    ordered: bool = False
    retried_as: bytes | None = None
    failure: str | None = None


class AcceptedRequests:
    """The journal of accepted requests, kept in the node's LevelDB (prefix `a`)."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    def accept(self, tx: SignedTx) -> None:
        """Record `tx` (synced) before the API answers for it."""
        self._put(tx.hash, Accepted(tx.to_bytes()))

    def get(self, tx_hash: bytes) -> Accepted | None:
        raw = self.store.get(layout.accepted(tx_hash))
        return None if raw is None else Accepted.from_bytes(raw)

    def ordered(self, tx_hash: bytes) -> None:
        """The ledger holds it now: keep only the link record."""
        rec = self.get(tx_hash)
        if rec is not None and not rec.ordered:
            self._put(tx_hash, replace(rec, tx=b"", ordered=True))

    def retried(self, tx_hash: bytes, new: bytes) -> None:
        rec = self.get(tx_hash)
        if rec is not None:
            self._put(tx_hash, replace(rec, retried_as=new))

    def failed(self, tx_hash: bytes, reason: str) -> None:
        """It can no longer be ordered (and was not): say why, for as long as it is asked.
        The transaction stays: after a restart it is what tells the request's kind and
        fields (`failures`), so its id keeps answering `failed`, never unknown."""
        rec = self.get(tx_hash)
        if rec is not None and not rec.ordered:
            self._put(tx_hash, replace(rec, failure=reason))

    def forget(self, tx_hash: bytes) -> None:
        """The ledger refused it as it was handed over (the client hears why, not 202)."""
        with self.store.batch() as b:
            b.delete(layout.accepted(tx_hash))

    def unordered(self) -> Iterator[tuple[bytes, SignedTx]]:
        """(hash, tx) of every accepted request not yet known to be in the ledger."""
        for key, raw in self.store.iterate(layout.ACCEPTED):
            rec = Accepted.from_bytes(raw)
            if not rec.ordered and rec.failure is None and rec.tx:
                yield key[1:], SignedTx.from_bytes(rec.tx)

    def failures(self) -> Iterator[tuple[bytes, SignedTx]]:
        """(hash, tx) of every accepted request that failed before it was ordered (records
        written before the transaction was kept have none and are left out)."""
        for key, raw in self.store.iterate(layout.ACCEPTED):
            rec = Accepted.from_bytes(raw)
            if rec.failure is not None and rec.tx:
                yield key[1:], SignedTx.from_bytes(rec.tx)

    def ordered_unretried(self) -> Iterator[bytes]:
        """Every accepted request in the ledger that no retry replaced: the last try of
        each (whose retries a restart must take up again while it is pending)."""
        for key, raw in self.store.iterate(layout.ACCEPTED):
            rec = Accepted.from_bytes(raw)
            if rec.ordered and rec.retried_as is None:
                yield key[1:]

    def links(self) -> Iterator[tuple[bytes, bytes]]:
        """(request, its retry) for every retried request."""
        for key, raw in self.store.iterate(layout.ACCEPTED):
            rec = Accepted.from_bytes(raw)
            if rec.retried_as is not None:
                yield key[1:], rec.retried_as

    def _put(self, tx_hash: bytes, rec: Accepted) -> None:
        with self.store.batch() as b:
            b.put(layout.accepted(tx_hash), rec.to_bytes())
