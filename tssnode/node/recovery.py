"""After a restart: what this node owed the ledger is voted again, sessions it can no
longer finish are withdrawn, and secrets no ledger record needs any more are pruned (the
`Executor` includes this part)."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from tssnode.crypto.encoding import decode_any
from tssnode.protocol.material import Presignature
from tssnode.registry.app import KeyRegistry
from tssnode.registry.records import RequestRecord
from tssnode.registry.transactions import (
    KeygenResult,
    Payload,
    PresignReady,
    RefreshResult,
    Withdrawal,
)
from tssnode.store.vault import Vault

if TYPE_CHECKING:
    # trio-typing (a libp2p dependency) ships stubs that hide trio.TaskStatus from mypy
    pass

log = logging.getLogger("tssnode.node")


class Recovery:
    """The executor's restart and pruning part."""

    # provided by `Executor` (declared for the type checker)
    me: bytes
    vault: Vault
    _claimed: set[bytes]

    if TYPE_CHECKING:

        def _vote(self, payload: Payload) -> None: ...

    # -- after a restart -------------------------------------------------------------------
    def recover(self, registry: KeyRegistry) -> None:
        """After a restart this node's part of every session still under way is gone with
        the old process. Finish what its disk allows and give up the rest at once, so the
        other parties need not wait out their round timeouts (issue 12):

        - a share stored with its result vote (`_store_share`) is voted again: for a
          pending request that is its vote, for a key already accepted a confirmation
          that makes this node a holder (the ledger refuses what no longer applies);
        - a pooled presignature stored and not yet reported ready is reported;
        - every other session this node owes is withdrawn (`Withdrawal`): the request
          fails now, and its requester retries it (without this node, for a signature)."""
        revoted = self._replay_share_votes(registry)
        for request, req in registry.requests.items():
            if self.me not in req.parties:
                continue
            if req.kind == "presign":
                self._recover_presigs(request, req, registry)
            elif (
                req.status == "pending"
                and self.me in session_parties(req)
                and request not in revoted
                and not _has_voted(request, self.me, registry)
            ):
                self._withdraw(request)

    def _replay_share_votes(self, registry: KeyRegistry) -> set[bytes]:
        revoted = set()
        for raw in self.vault.share_votes():
            vote = decode_any(raw)
            if not isinstance(vote, KeygenResult | RefreshResult):
                continue
            req = registry.requests.get(vote.request)
            rec = registry.keys.get(vote.key.key_id)
            owed = (req is not None and req.status == "pending") or (
                rec is not None and rec.key == vote.key and not rec.holds(self.me)
            )
            if owed and not _has_voted(vote.request, self.me, registry):
                log.info(
                    "result of request %s voted again after a restart", vote.request.hex()[:12]
                )
                self._vote(vote)
                revoted.add(vote.request)
        return revoted

    def _recover_presigs(self, request: bytes, req: RequestRecord, registry: KeyRegistry) -> None:
        owed = False
        for pid, r in sorted(registry.presigs.items()):
            if pid[:32] != request or r.ready or self.me in r.voters:
                continue
            if self.me not in [req.parties[j - 1] for j in r.signers]:
                return
            raw = self.vault.get_presignature(r.key_id, vault_id(pid))
            if raw is None:
                owed = True
                continue
            index = int.from_bytes(pid[32:], "big")
            self._vote(PresignReady(request, index, Presignature.from_bytes(raw).R.to_bytes()))
        if owed:
            self._withdraw(request)

    def _withdraw(self, request: bytes) -> None:
        log.info("request %s withdrawn: this node restarted during its session", request.hex()[:12])
        self._vote(Withdrawal(request, "the node restarted and lost its session state"))

    def prune(self, registry: KeyRegistry) -> None:
        """Delete secrets the ledger no longer has a use for (after blocks that may have
        made some useless, and at start-up)."""
        self.prune_shares(registry)
        self.prune_presignatures(registry)

    def prune_presignatures(self, registry: KeyRegistry) -> None:
        """Delete pooled presignatures the ledger dropped (refresh, blame, signers that
        disagreed, expiry): an unused (k_i, χ_i) from every signer of a session gives x,
        so old ones must not outlive a refresh any more than old shares."""
        live = {vault_id(pid) for pid in (*registry.presigs, *self._claimed)}
        for key_id in self.vault.share_keys():
            for vid in list(self.vault.presignature_ids(key_id)):
                if vid not in live:
                    self.vault.delete_presignature(key_id, vid)
                    log.info("unused presignature of key %s deleted", key_id)

    def prune_shares(self, registry: KeyRegistry) -> None:
        """Delete shares the ledger no longer uses: older epochs of a refreshed key (a
        refresh is only worth something if the old shares are gone) and every share of a
        key this node was reshared out of."""
        for key_id in self.vault.share_keys():
            rec = registry.keys.get(key_id)
            if rec is None:
                continue  # a key not in this node's ledger (yet): keep
            current, mine = rec.key.epoch, self.me in rec.parties
            for epoch in self.vault.share_epochs(key_id):
                # a later epoch is a refresh whose result is not accepted yet: keep it
                if epoch < current or (epoch == current and not mine):
                    self.vault.delete_share(key_id, epoch)
                    log.info("share of key %s at epoch %d deleted", key_id, epoch)


def _has_voted(request: bytes, me: bytes, registry: KeyRegistry) -> bool:
    """Is a result vote of `me` on `request` waiting in the ledger for the others'?"""
    return any(v.subject == request and me in v.voters for v in registry.votes.values())


def session_parties(req: RequestRecord) -> tuple[bytes, ...]:
    """The validators a request's session needs: its signers, or all its parties."""
    if req.kind in ("sign", "presign"):
        return tuple(req.parties[j - 1] for j in req.signers)
    return req.parties


def vault_id(pid: bytes) -> bytes:
    """The vault's 32-byte name of the ledger's pooled presignature `pid`."""
    return hashlib.sha256(b"tssnode.presig-id/1" + pid).digest()
