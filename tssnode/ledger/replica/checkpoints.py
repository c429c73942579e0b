"""Checkpoints: state-digest votes every K blocks, stable certificates, log collection."""

from __future__ import annotations

import logging

from tssnode import failpoints
from tssnode.ledger.envelope import Signed, verify
from tssnode.ledger.errors import (
    InvalidMessage,
)
from tssnode.ledger.messages import (
    KIND_CHECKPOINT,
    Checkpoint,
    CheckpointCertificate,
)
from tssnode.ledger.replica.base import ReplicaBase
from tssnode.ledger.state import quorum

log = logging.getLogger(__name__)


class Checkpoints(ReplicaBase):
    """Checkpoints: state-digest votes every K blocks, stable certificates, log collection."""

    # -- checkpoints --------------------------------------------------------------------------

    def _checkpoint_vote(self, seq: int) -> None:
        rec = self.chain.record(seq)
        if rec is None:
            return
        if self.is_validator or self.me in self.config(seq):
            cp = Checkpoint(seq, rec.block.state_digest, rec.block.hash)
            mine = self._vote(KIND_CHECKPOINT, 0, seq, cp)
            self.checkpoints.setdefault(seq, {})[self.me] = mine
            failpoints.hit("pbft.checkpoint")
            self._broadcast_vote(mine)
        self._check_stable(seq)

    def _on_checkpoint(self, signed: Signed, cp: Checkpoint) -> None:
        k = self.genesis.checkpoint_interval
        if cp.seq <= self.low or cp.seq % k or cp.seq > self.low + 64 * k:
            return
        if signed.signer not in self.config(cp.seq):
            raise InvalidMessage("checkpoint from a non-validator")
        if not verify(self.chain_id, signed):
            raise InvalidMessage("bad checkpoint signature")
        votes = self.checkpoints.setdefault(cp.seq, {})
        old = votes.get(signed.signer)
        if old is not None and old.body != signed.body:
            self._evidence(old, signed)
            return
        votes[signed.signer] = signed
        self._check_stable(cp.seq)

    def _check_stable(self, seq: int) -> None:
        votes = self.checkpoints.get(seq, {})
        config = set(self.config(seq))
        by_body: dict[bytes, list[Signed]] = {}
        for m in votes.values():
            if m.signer in config:
                by_body.setdefault(m.body, []).append(m)
        q = quorum(len(config))
        for body, msgs in by_body.items():
            if len(msgs) < q:
                continue
            cp = Checkpoint.from_bytes(body)
            cert = CheckpointCertificate(
                seq,
                cp.state_digest,
                cp.block_hash,
                tuple(sorted((m.signer, m.signature) for m in msgs))[:q],
            )
            self._certified_checkpoint(cert)
            return

    def _certified_checkpoint(self, cert: CheckpointCertificate) -> None:
        if cert.seq <= self.low:
            return
        if self.height >= cert.seq:
            rec = self.chain.record(cert.seq)
            if rec is None:
                return
            if rec.block.hash != cert.block_hash or rec.block.state_digest != cert.state_digest:
                self._forked(f"block {cert.seq}: 2f+1 validators certified another state than ours")
                return
            self._make_stable(cert)
        elif self.transfer_target is None or cert.seq > self.transfer_target.seq:
            self.transfer_target = cert
            self._catch_up()

    def _make_stable(self, cert: CheckpointCertificate) -> None:
        self.low = cert.seq
        self.stable_cert = cert
        self.journal.set_stable(cert)
        for n in [n for n in self.slots if n <= cert.seq]:
            del self.slots[n]
        for n in [n for n in self.checkpoints if n < cert.seq]:
            del self.checkpoints[n]
        if self.transfer_target is not None and self.transfer_target.seq <= cert.seq:
            self.transfer_target = None
        self._propose()
