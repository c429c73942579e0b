"""The replica's state, options and common helpers (see `tssnode.ledger.replica`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tssnode.crypto.encoding import Wire
from tssnode.crypto.identity import IdentityKey
from tssnode.errors import EncodingError
from tssnode.ledger.app import AppFactory
from tssnode.ledger.blocks import (
    Block,
    CommitCertificate,
    primary_of,
)
from tssnode.ledger.chain import Chain
from tssnode.ledger.envelope import Signed, decode_cached, sign
from tssnode.ledger.errors import (
    ForkDetected,
    InvalidTransaction,
)
from tssnode.ledger.evidence import EquivocationEvidence
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.journal import Journal, ViewRecord
from tssnode.ledger.messages import (
    KIND_NEW_VIEW,
    KIND_VIEW_CHANGE,
    Batch,
    CheckpointCertificate,
    PreparedProof,
    PrePrepare,
    VoteFrame,
)
from tssnode.ledger.transactions import SignedTx
from tssnode.ledger.viewchange import (
    CheckedViewChange,
)
from tssnode.store.db import KeyValueStore

log = logging.getLogger(__name__)


def _tx(raw: bytes) -> SignedTx:
    """A relayed transaction, decoded once per process (see `envelope.decode_cached`)."""
    try:
        value = decode_cached(raw)
    except EncodingError as exc:
        raise InvalidTransaction(f"undecodable transaction: {exc}") from exc
    if not isinstance(value, SignedTx):
        raise InvalidTransaction("not a transaction")
    return value


#: A proposal (batch and signed pre-prepare) goes out as one broadcast, which the node's
#: gossip refuses above about 1 MiB (`net.gossip.MAX_GOSSIP_BYTES`): a larger batch was
#: dropped on every send and re-proposed forever. 768 KiB leaves room for the frame.
MAX_BATCH_BYTES = 768 * 1024
MAX_FETCH = 64
#: Bytes of block records in one BlocksFrame, at most (at least one record is sent): the
#: net layer refuses frames over 4 MiB (`[net] max_frame_bytes`), and 64 blocks of up to
#: 768 KiB each would make one, so a replica behind by large blocks could never catch up.
MAX_BLOCKS_FRAME_BYTES = 3 * 1024 * 1024
#: A relayed request larger than this is taken only while the waiting requests hold less
#: than `MAX_PENDING_BYTES` (the count alone, `max_pending`, let a peer park gigabytes).
LARGE_REQUEST = 64 * 1024
MAX_PENDING_BYTES = 64 * 1024 * 1024
#: View changes kept per validator for views above this replica's, at most (its lowest
#: ones: a replica joins the smallest higher view that f + 1 others want, and a validator
#: re-sends its view change for the view it is in, so dropping higher ones loses nothing).
MAX_FUTURE_VIEW_CHANGES = 4


class Outbox(Protocol):
    """What a replica needs from its surroundings (the transport's sending half and timers)."""

    def send(self, to: bytes, data: bytes) -> None: ...

    def broadcast(self, data: bytes) -> None: ...

    def set_timer(self, name: str, delay: float) -> None: ...

    def cancel_timer(self, name: str) -> None: ...


@dataclass(frozen=True)
class ReplicaOptions:
    view_timeout: float = 2.0  # base request / new-view timeout, doubled per failed change
    tick: float = 0.5  # retransmission and status-poll period while work is outstanding
    idle_poll: float = 5.0  # status-poll period when idle (a lagging replica learns it is)
    max_batch: int = 256  # transactions per block
    max_inflight: int = 4  # sequences the primary has proposed but not yet executed
    max_pending: int = 10_000
    fetch_count: int = 32
    max_backoff: int = 8
    resend_every: int = 2  # ticks between re-sends of waiting requests to the primary
    #: Ticks between re-sends of this replica's own votes (and view change) that others may
    #: have missed; a vote is first re-sent this many ticks after its slot appeared. The
    #: transport already retries each frame until it is acknowledged: re-sending every
    #: batch and vote every tick doubled the traffic of a busy network for nothing.
    revote_every: int = 4
    resend_count: int = 16  # requests re-sent per such tick (in turn)
    relay_on_new_view: int = 512  # waiting requests handed to a new primary at once


@dataclass
class Slot:
    """The message log of one sequence number."""

    pre_prepares: dict[int, tuple[Signed, PrePrepare]] = field(default_factory=dict)
    batches: dict[bytes, Batch] = field(default_factory=dict)
    prepares: dict[tuple[int, bytes], dict[bytes, Signed]] = field(default_factory=dict)
    commits: dict[tuple[int, bytes], dict[bytes, Signed]] = field(default_factory=dict)
    seen: dict[tuple[int, int, bytes], Signed] = field(default_factory=dict)
    prepared: tuple[int, bytes] | None = None
    committed: tuple[int, bytes, CommitCertificate] | None = None
    since: int = 0  # the replica's tick count when the slot appeared
    seen_at: float = 0.0  # and the wall-clock time (for the block's commit latency)


@dataclass
class Stats:
    blocks: int = 0
    view_changes: int = 0
    transferred: int = 0
    dropped: int = 0
    last_drop: str = ""


class ReplicaBase:
    """The replica's state and the helpers every part of it uses; `Replica` adds the
    parts (`normal`, `checkpoints`, `viewchange`, `catchup`) and its inputs."""

    def __init__(
        self,
        key: IdentityKey,
        genesis: Genesis,
        store: KeyValueStore,
        outbox: Outbox,
        options: ReplicaOptions | None = None,
        *,
        apps: Sequence[AppFactory],
    ) -> None:
        self.key = key
        self.me = key.public_bytes()
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self._genesis_bytes = genesis.to_bytes()
        self.chain = Chain(store, genesis, apps)
        self.journal = Journal(store)
        self.out = outbox
        self.opt = options or ReplicaOptions()
        self.stats = Stats()
        self.on_block: list[Callable[[Block], None]] = []
        self.on_evidence: list[Callable[[EquivocationEvidence], None]] = []
        self.on_fork: list[Callable[[ForkDetected], None]] = []

        self.view = self.journal.view.view
        self.active = self.journal.view.active
        stable = self.journal.stable
        self.low = stable.seq if stable is not None else 0
        self.stable_cert: CheckpointCertificate | None = stable
        self.slots: dict[int, Slot] = {}
        self.checkpoints: dict[int, dict[bytes, Signed]] = {}
        self.view_changes: dict[int, dict[bytes, CheckedViewChange]] = {}
        self.pending: dict[bytes, tuple[bytes, int]] = {}  # tx hash → (tx, expiry)
        self._status_asked = False
        self.proposed: set[bytes] = set()
        self.next_seq = max(self.low, self.chain.height)
        self.vc_attempts = 0
        self.fork: ForkDetected | None = None
        self.transfer_target: CheckpointCertificate | None = None
        self._timers: set[str] = set()
        self._fetching = False
        self._peer_turn = 0
        self._fetch_peer: bytes | None = None
        self._ticks = 0
        #: Wall clock, for this node's notes on its blocks only (never for agreement).
        self.clock: Callable[[], float] = time.time
        self._reported: set[bytes] = set()  # culprits whose evidence we submitted
        self._new_view_sent: dict[bytes, int] = {}  # validator → tick of our last NEW-VIEW to it
        self._relay_turn = 0
        self._restore()

    # -- helpers ------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self.chain.height

    def config(self, seq: int | None = None) -> tuple[bytes, ...]:
        return self.chain.state.config_for(self.low + 1 if seq is None else seq)

    def primary(self, view: int | None = None) -> bytes:
        return primary_of(self.config(), self.view if view is None else view)

    @property
    def is_validator(self) -> bool:
        return self.me in self.config()

    @property
    def is_primary(self) -> bool:
        return self.primary() == self.me

    @property
    def halted(self) -> bool:
        return self.fork is not None

    def limit(self) -> int:
        return self.chain.state.window_limit(self.low)

    def _slot(self, seq: int) -> Slot:
        slot = self.slots.get(seq)
        if slot is None:
            slot = self.slots[seq] = Slot(since=self._ticks, seen_at=self.clock())
        return slot

    def _timeout(self) -> float:
        return float(self.opt.view_timeout * 2 ** min(self.vc_attempts, self.opt.max_backoff))

    def _set_timer(self, name: str, delay: float) -> None:
        self._timers.add(name)
        self.out.set_timer(name, delay)

    def _cancel_timer(self, name: str) -> None:
        if name in self._timers:
            self._timers.discard(name)
            self.out.cancel_timer(name)

    def _vote(
        self,
        kind: int,
        view: int,
        seq: int,
        body: Wire,
        *,
        batch: Batch | None = None,
        prepared: PreparedProof | None = None,
        view_record: ViewRecord | None = None,
    ) -> Signed:
        """Sign, persist (synced), then return the message to send."""
        return self.journal.record(
            kind,
            view,
            seq,
            sign(self.key, self.chain_id, body),
            batch=batch,
            prepared=prepared,
            view_record=view_record,
            conflict_free=kind not in (KIND_VIEW_CHANGE, KIND_NEW_VIEW),
        )

    def _broadcast_vote(self, signed: Signed) -> None:
        self.out.broadcast(VoteFrame(signed).to_bytes())

    def _drop(self, why: str) -> None:
        self.stats.dropped += 1
        self.stats.last_drop = why
        log.debug("replica %s drops: %s", self.me.hex()[:8], why)

    # -- the parts' entry points, for each other (each implemented by the part named) --------

    if TYPE_CHECKING:

        def _propose(self) -> None: ...  # normal

        def _execute_ready(self) -> None: ...  # normal

        def _after_blocks(self, blocks: list[Block]) -> None: ...  # normal

        def _checkpoint_vote(self, seq: int) -> None: ...  # checkpoints

        def _start_view_change(self, view: int) -> None: ...  # viewchange

        def _catch_up(self) -> None: ...  # catchup

        def _evidence(self, a: Signed, b: Signed) -> None: ...  # Replica

        def _update_timers(self) -> None: ...  # Replica

        def _restore(self) -> None: ...  # Replica

        def _forked(self, why: str) -> None: ...  # Replica

        # normal
        def _accept_pre_prepare(self, signed: Signed, pp: PrePrepare, batch: Batch) -> None: ...

        def _certified_checkpoint(self, cert: CheckpointCertificate) -> None: ...  # checkpoints

        def _on_new_view(self, signed: Signed) -> None: ...  # viewchange

        # catchup
        def _ask_status(self, peer: bytes | None = None, *, once: bool = False) -> None: ...
