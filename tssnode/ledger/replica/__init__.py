"""The PBFT replica (Castro & Liskov, OSDI '99 / TOCS '02) as a sans-I/O state machine.

A `Replica` is driven by three inputs: `receive(sender, frame)` for bytes from the
transport, `on_timer(name)` when a timer it asked for fires, and `submit(tx)` for a
client transaction. It acts through an `Outbox` (send to one replica, broadcast to all,
set or cancel a named timer). The trio service (`service.py`) and the deterministic
simulated network (`tssnode.testing.pbftsim`) both drive it the same way, so the
simulation tests the code that runs in the node.

Normal case, n = 3f + 1: the primary of view v (validators in key order, in turn)
assigns sequence n to a batch of pending transactions and broadcasts a signed
pre-prepare ⟨v, n, d⟩ with the batch; backups accept one pre-prepare per (v, n) within the
watermark window (low, low + L] and broadcast a prepare; with 2f matching prepares a
replica is *prepared* and broadcasts a commit; 2f+1 matching commits form the commit
certificate, and the batch executes in sequence order into a block (`blocks.execute`).
Every K blocks replicas broadcast a checkpoint of their state digest; 2f+1 matching
checkpoints make it stable: the low watermark moves up and the message log below it is
garbage-collected.

Safety across crashes: every vote goes to the `Journal` (synced) before it is sent; a
restarted replica reloads its votes, re-sends the same bytes, and refuses to sign a
conflicting message. Conflicting messages signed by another validator become
`EquivocationEvidence`, kept in the store and submitted to the ledger.

Liveness: a backup with a pending request starts a timer; when it fires the replica moves
to view v + 1 (VIEW-CHANGE with its stable checkpoint and prepared certificates). When
2f+1 view changes arrive, a second timer bounds the wait for the NEW-VIEW; each
consecutive failed view change doubles the timeout (exponential backoff, reset when a
block executes). f+1 view changes for higher views make a replica join the smallest of
them. The new primary's NEW-VIEW is checked by recomputing O (`viewchange.py`).

Catching up: a replica that sees a stable checkpoint above its height, a peer with a
higher `Status`, or a NEW-VIEW starting above its low watermark fetches certified blocks
from peers and verifies each (`Chain.adopt`): commit certificates signed by 2f+1 of the
validators that ordered the height, and re-execution to the same block. A node that is
not (yet) a validator runs the same code as an observer: it follows and verifies, it
never votes.
"""

from tssnode.ledger.replica.base import (
    LARGE_REQUEST,
    MAX_BATCH_BYTES,
    MAX_BLOCKS_FRAME_BYTES,
    MAX_FETCH,
    MAX_FUTURE_VIEW_CHANGES,
    MAX_PENDING_BYTES,
    Outbox,
    ReplicaOptions,
    Slot,
    Stats,
)
from tssnode.ledger.replica.core import Replica

__all__ = [
    "LARGE_REQUEST",
    "MAX_BATCH_BYTES",
    "MAX_BLOCKS_FRAME_BYTES",
    "MAX_FETCH",
    "MAX_FUTURE_VIEW_CHANGES",
    "MAX_PENDING_BYTES",
    "Outbox",
    "Replica",
    "ReplicaOptions",
    "Slot",
    "Stats",
]
