"""Blocks and commit certificates, and executing a committed batch into a block.

PBFT agrees on ⟨v, n, d⟩ with d the digest of a batch of transactions. The block at height
n is then *derived* deterministically from the batch: its parent hash, the batch, which
transactions were rejected and why, and the state digest after executing it. So every
honest node builds byte-identical blocks, and the commit certificate (2f+1 signed
⟨COMMIT, v, n, d⟩ from the validators that ordered n) stored with the block lets anyone
verify the chain from genesis by re-executing it.

The view and the proposer live in the `BlockRecord` next to the block, not in the block
hash: a batch prepared in view v can commit at some replicas in v and at others in v + 1
after a view change (it is the same decision), and their blocks must still be equal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from tssnode.crypto.encoding import Wire, wire
from tssnode.ledger.envelope import check_signature
from tssnode.ledger.errors import InvalidBlock, InvalidCertificate, InvalidTransaction
from tssnode.ledger.messages import Batch, Checkpoint, CheckpointCertificate, Commit
from tssnode.ledger.state import LedgerState, quorum
from tssnode.ledger.transactions import decode_tx


@wire("tssnode.ledger.commit-cert/1")
@dataclass(frozen=True)
class CommitCertificate(Wire):
    """2f+1 signatures on ⟨COMMIT, v, n, d⟩."""

    view: int
    seq: int
    digest: bytes
    votes: tuple[tuple[bytes, bytes], ...]  # (signer, signature), sorted by signer

    def body(self) -> bytes:
        return Commit(self.view, self.seq, self.digest).to_bytes()


@wire("tssnode.ledger.block/1")
@dataclass(frozen=True)
class Block(Wire):
    chain_id: bytes
    height: int
    prev_hash: bytes
    batch: Batch
    rejected: tuple[tuple[int, str], ...]  # (index in batch, reason)
    state_digest: bytes

    @cached_property
    def hash(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()


@wire("tssnode.ledger.block-record/1")
@dataclass(frozen=True)
class BlockRecord(Wire):
    """A block with the certificate that committed it (what the store keeps and peers send),
    and the primary of the certificate's view, which proposed it."""

    block: Block
    certificate: CommitCertificate
    proposer: bytes

    @property
    def view(self) -> int:
        return self.certificate.view


def check_votes(
    chain_id: bytes,
    body: bytes,
    votes: tuple[tuple[bytes, bytes], ...],
    validators: tuple[bytes, ...],
    what: str,
) -> None:
    """Raise unless `votes` holds 2f+1 valid signatures on `body` by distinct validators."""
    members = set(validators)
    signers: set[bytes] = set()
    for signer, signature in votes:
        if signer not in members or signer in signers:
            raise InvalidCertificate(f"{what}: a signer is not a validator or signs twice")
        if not check_signature(chain_id, signer, body, signature):
            raise InvalidCertificate(f"{what}: a signature does not verify")
        signers.add(signer)
    if len(signers) < quorum(len(members)):
        raise InvalidCertificate(
            f"{what}: {len(signers)} signatures, {quorum(len(members))} needed"
        )


def verify_commit_certificate(
    chain_id: bytes, cert: CommitCertificate, validators: tuple[bytes, ...]
) -> None:
    check_votes(chain_id, cert.body(), cert.votes, validators, f"commit certificate {cert.seq}")


def verify_checkpoint_certificate(
    chain_id: bytes, cert: CheckpointCertificate, validators: tuple[bytes, ...]
) -> None:
    body = Checkpoint(cert.seq, cert.state_digest, cert.block_hash).to_bytes()
    check_votes(chain_id, body, cert.votes, validators, f"checkpoint {cert.seq}")


def primary_of(validators: tuple[bytes, ...], view: int) -> bytes:
    """The primary of `view`: validators (sorted by key) in turn."""
    return validators[view % len(validators)]


def execute(
    state: LedgerState, prev_hash: bytes, batch: Batch
) -> tuple[Block, dict[bytes, bytes | None]]:
    """Apply a committed batch to `state` (in place); the block it makes and the state
    entries to store with it."""
    height = state.height + 1
    state.begin_block(height)
    rejected: list[tuple[int, str]] = []
    for i, raw in enumerate(batch.txs):
        try:
            state.apply_tx(decode_tx(raw), height)
        except InvalidTransaction as exc:
            rejected.append((i, str(exc)))
    state.end_block(height)
    # The digest is taken over the stored form, so the caller writes these same changes.
    changes = state.take_changes()
    block = Block(
        state.genesis.chain_id,
        height,
        prev_hash,
        batch,
        tuple(rejected),
        state.digest(),
    )
    return block, changes


def verify_record(
    state: LedgerState, prev_hash: bytes, record: BlockRecord
) -> tuple[Block, dict[bytes, bytes | None]]:
    """Check a fetched block against `state` (its parent) and execute it.

    The certificate must be signed by 2f+1 of the validators that ordered this height and
    name this batch; the re-executed block must equal the one received. Returns the block
    and the state changes to store.
    """
    block, cert = record.block, record.certificate
    height = state.height + 1
    chain_id = state.genesis.chain_id
    if block.height != height or cert.seq != height:
        raise InvalidBlock(f"expected block {height}, got {block.height}")
    if block.chain_id != chain_id or block.prev_hash != prev_hash:
        raise InvalidBlock(f"block {height} does not extend the chain")
    if cert.digest != block.batch.digest:
        raise InvalidBlock(f"block {height}: the certificate names another batch")
    config = state.config_for(height)
    verify_commit_certificate(chain_id, cert, config)
    if record.proposer != primary_of(config, cert.view):
        raise InvalidBlock(f"block {height}: the proposer is not the primary of its view")
    mine, changes = execute(state, prev_hash, block.batch)
    if mine != block:
        raise InvalidBlock(f"block {height} does not re-execute to the same block")
    return mine, changes
