"""PBFT messages (Castro–Liskov 1999/2002) and the frames that carry them between replicas.

Votes are small bodies inside `Signed` envelopes so that they are transferable evidence:
`PrePrepare` ⟨v, n, d⟩ signed by the primary (the batch itself travels next to it, bound
by d = H(batch)), `Prepare` ⟨v, n, d⟩ carrying the primary's pre-prepare signature (so two
prepares that cite different pre-prepares prove the primary equivocated), `Commit`
⟨v, n, d⟩, `Checkpoint` ⟨n, state digest⟩, `ViewChange` ⟨v+1, n, C, P⟩ and `NewView`
⟨v+1, V, O⟩. Frames are what the transport moves: every frame is one tagged `Wire` value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from tssnode.crypto.encoding import Wire, wire
from tssnode.ledger.envelope import Signed

KIND_PRE_PREPARE = 1
KIND_PREPARE = 2
KIND_COMMIT = 3
KIND_CHECKPOINT = 4
KIND_VIEW_CHANGE = 5
KIND_NEW_VIEW = 6


@wire("tssnode.pbft.batch/1")
@dataclass(frozen=True)
class Batch(Wire):
    """The requests (encoded signed transactions) ordered at one sequence number."""

    txs: tuple[bytes, ...]

    @cached_property
    def digest(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()


NULL_BATCH = Batch(())


@wire("tssnode.pbft.pre-prepare/1")
@dataclass(frozen=True)
class PrePrepare(Wire):
    """⟨PRE-PREPARE, v, n, d⟩σp: the primary assigns digest d to sequence n in view v."""

    view: int
    seq: int
    digest: bytes

    kind = KIND_PRE_PREPARE


@wire("tssnode.pbft.prepare/1")
@dataclass(frozen=True)
class Prepare(Wire):
    """⟨PREPARE, v, n, d, i⟩σi, citing the primary's signature on the pre-prepare."""

    view: int
    seq: int
    digest: bytes
    pp_signature: bytes

    kind = KIND_PREPARE


@wire("tssnode.pbft.commit/1")
@dataclass(frozen=True)
class Commit(Wire):
    """⟨COMMIT, v, n, d, i⟩σi."""

    view: int
    seq: int
    digest: bytes

    kind = KIND_COMMIT


@wire("tssnode.pbft.checkpoint/1")
@dataclass(frozen=True)
class Checkpoint(Wire):
    """⟨CHECKPOINT, n, d, i⟩σi: replica i's state digest after executing block n."""

    seq: int
    state_digest: bytes
    block_hash: bytes

    kind = KIND_CHECKPOINT


@wire("tssnode.pbft.prepared/1")
@dataclass(frozen=True)
class PreparedProof(Wire):
    """P_m: a pre-prepare, its batch and 2f matching prepares from other replicas."""

    pre_prepare: Signed
    batch: Batch
    prepares: tuple[Signed, ...]


@wire("tssnode.pbft.view-change/1")
@dataclass(frozen=True)
class ViewChange(Wire):
    """⟨VIEW-CHANGE, v+1, n, C, P, i⟩σi: n is the last stable checkpoint, C its 2f+1
    checkpoint messages (empty for n = 0), P the prepared certificates above n."""

    view: int
    stable_seq: int
    checkpoint: tuple[Signed, ...]
    prepared: tuple[PreparedProof, ...]

    kind = KIND_VIEW_CHANGE


@wire("tssnode.pbft.new-view/1")
@dataclass(frozen=True)
class NewView(Wire):
    """⟨NEW-VIEW, v+1, V, O⟩σp: 2f+1 view changes and the pre-prepares computed from them."""

    view: int
    view_changes: tuple[Signed, ...]
    pre_prepares: tuple[Signed, ...]

    kind = KIND_NEW_VIEW


# -- frames -----------------------------------------------------------------------------------


@wire("tssnode.pbft.frame.vote/1")
@dataclass(frozen=True)
class VoteFrame(Wire):
    """A signed prepare, commit, checkpoint, view change or new view."""

    message: Signed


@wire("tssnode.pbft.frame.propose/1")
@dataclass(frozen=True)
class ProposeFrame(Wire):
    """A signed pre-prepare with the batch it names."""

    pre_prepare: Signed
    batch: Batch


@wire("tssnode.pbft.frame.request/1")
@dataclass(frozen=True)
class RequestFrame(Wire):
    """A client transaction relayed to every replica (so whichever is primary orders it)."""

    tx: bytes


@wire("tssnode.pbft.frame.status-request/1")
@dataclass(frozen=True)
class StatusRequest(Wire):
    """Asks a peer for its genesis, height and latest stable checkpoint."""

    height: int


@wire("tssnode.ledger.checkpoint-cert/1")
@dataclass(frozen=True)
class CheckpointCertificate(Wire):
    """2f+1 signatures on ⟨CHECKPOINT, n, d⟩: proof that n is stable with state digest d."""

    seq: int
    state_digest: bytes
    block_hash: bytes
    votes: tuple[tuple[bytes, bytes], ...]  # (signer, signature)

    def body(self) -> bytes:
        return Checkpoint(self.seq, self.state_digest, self.block_hash).to_bytes()


@wire("tssnode.pbft.frame.status/1")
@dataclass(frozen=True)
class Status(Wire):
    """A peer's genesis, executed height, view and last stable checkpoint certificate."""

    genesis: bytes
    height: int
    view: int
    checkpoint: CheckpointCertificate | None
    new_view: Signed | None  # the NEW-VIEW that started `view`, so a peer can adopt it


@wire("tssnode.pbft.frame.fetch-blocks/1")
@dataclass(frozen=True)
class FetchBlocks(Wire):
    """Asks for up to `count` certified blocks from height `start`."""

    start: int
    count: int


@wire("tssnode.pbft.frame.blocks/1")
@dataclass(frozen=True)
class BlocksFrame(Wire):
    """Certified blocks (encoded `BlockRecord`s) in height order."""

    records: tuple[bytes, ...]


FRAME_TYPES: tuple[type[Wire], ...] = (
    VoteFrame,
    ProposeFrame,
    RequestFrame,
    StatusRequest,
    Status,
    FetchBlocks,
    BlocksFrame,
)
