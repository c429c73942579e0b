"""What a replica must not forget across a crash: its view, its own votes, what it prepared.

Castro–Liskov's safety argument assumes a replica never sends two different messages for
one (kind, view, sequence) and never forgets a prepared certificate it reported. So every
vote is written here (one synced batch, together with the prepared certificate it rests
on) *before* it is sent; after a restart the replica reloads its votes and refuses to sign
anything that conflicts with them (`Equivocation`), re-sending the stored bytes instead.
Entries at or below the last stable checkpoint are garbage-collected with the message log.
"""

from __future__ import annotations

from dataclasses import dataclass

from tssnode.crypto.encoding import Wire, wire
from tssnode.ledger.envelope import Signed
from tssnode.ledger.errors import Equivocation
from tssnode.ledger.evidence import EquivocationEvidence
from tssnode.ledger.messages import Batch, CheckpointCertificate, PreparedProof
from tssnode.store import layout
from tssnode.store.db import KeyValueStore


@wire("tssnode.ledger.view-record/1")
@dataclass(frozen=True)
class ViewRecord(Wire):
    view: int
    active: bool  # False while changing to `view`
    new_view: Signed | None  # the NEW-VIEW that started `view`, if any


@wire("tssnode.ledger.own-vote/1")
@dataclass(frozen=True)
class OwnVote(Wire):
    message: Signed
    batch: Batch | None  # with a pre-prepare: the batch it names


class Journal:
    """The replica's durable log in the node's store."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store
        self.votes: dict[tuple[int, int, int], OwnVote] = {}
        for key, raw in store.iterate(layout.OWN_VOTE):
            kind, view, seq = key[1], layout.read_u64(key, 2), layout.read_u64(key, 10)
            self.votes[(kind, view, seq)] = OwnVote.from_bytes(raw)
        self.prepared: dict[int, PreparedProof] = {
            layout.read_u64(k, 1): PreparedProof.from_bytes(v)
            for k, v in store.iterate(layout.PREPARED)
        }
        view_raw = store.get(layout.VIEW)
        self.view = ViewRecord.from_bytes(view_raw) if view_raw else ViewRecord(0, True, None)
        last = store.last(layout.CHECKPOINT)
        self.stable = None if last is None else CheckpointCertificate.from_bytes(last[1])

    def vote(self, kind: int, view: int, seq: int) -> OwnVote | None:
        return self.votes.get((kind, view, seq))

    def record(
        self,
        kind: int,
        view: int,
        seq: int,
        message: Signed,
        *,
        batch: Batch | None = None,
        prepared: PreparedProof | None = None,
        view_record: ViewRecord | None = None,
        conflict_free: bool = True,
    ) -> Signed:
        """Persist an own vote before it is sent; the stored message if one exists.

        With `conflict_free`, an existing vote with a different body for the same slot
        raises `Equivocation` (for prepares, commits, pre-prepares and checkpoints).
        """
        old = self.votes.get((kind, view, seq))
        if old is not None:
            if conflict_free and old.message.body != message.body:
                raise Equivocation(
                    f"already voted differently (kind {kind}, view {view}, seq {seq})"
                )
            return old.message
        vote = OwnVote(message, batch)
        with self.store.batch() as b:
            b.put(layout.own_vote(kind, view, seq), vote.to_bytes())
            if prepared is not None:
                b.put(layout.prepared(seq), prepared.to_bytes())
            if view_record is not None:
                b.put(layout.VIEW, view_record.to_bytes())
        self.votes[(kind, view, seq)] = vote
        if prepared is not None:
            self.prepared[seq] = prepared
        if view_record is not None:
            self.view = view_record
        return message

    def set_view(self, record: ViewRecord) -> None:
        self.store.put(layout.VIEW, record.to_bytes())
        self.view = record

    def set_stable(self, cert: CheckpointCertificate) -> None:
        """Record a stable checkpoint and drop every vote and prepared certificate at or
        below it (one batch)."""
        with self.store.batch() as b:
            b.put(layout.checkpoint(cert.seq), cert.to_bytes())
            for key in [k for k in self.votes if k[2] <= cert.seq]:
                b.delete(layout.own_vote(*key))
                del self.votes[key]
            for seq in [s for s in self.prepared if s <= cert.seq]:
                b.delete(layout.prepared(seq))
                del self.prepared[seq]
            for ck, _ in self.store.iterate(layout.CHECKPOINT):
                if layout.read_u64(ck, 1) < cert.seq:
                    b.delete(ck)
        self.stable = cert

    def add_evidence(self, ev: EquivocationEvidence) -> bool:
        """Keep equivocation evidence; False when it was already kept."""
        key = layout.evidence(ev.culprit, ev.digest())
        if self.store.get(key) is not None:
            return False
        self.store.put(key, ev.to_bytes())
        return True

    def evidence(self) -> list[EquivocationEvidence]:
        return [EquivocationEvidence.from_bytes(v) for _, v in self.store.iterate(layout.EVIDENCE)]
