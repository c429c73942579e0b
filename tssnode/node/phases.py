"""The sessions each kind of committed request starts at this node (the `Executor`
includes this part; ARCHITECTURE.md, "One request, end to end", step 4).

    keygen request  → keygen, then aux-info             → KeygenResult(KeyPublic)
    refresh request → aux-info + refresh                  → RefreshResult(KeyPublic)
    presign request → `count` presigns into the vault     → PresignReady(R) each
    sign request    → sign with the pooled presignature the ledger assigned, or
                      presign bound to the digest, sign   → SignResult(Signature)

A pooled presignature is taken out of the vault in the same write that records the
signature share computed from it (`Vault.take_presignature` + `put_signature_share`),
before the share is sent: a crash can lose a presignature, never use one twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tssnode import failpoints
from tssnode.crypto.derivation import derive
from tssnode.crypto.encoding import Wire
from tssnode.crypto.group import Q
from tssnode.crypto.params import tier
from tssnode.crypto.signature import Signature
from tssnode.node.events import EventBus
from tssnode.node.primes import PrimeReserve
from tssnode.node.recovery import vault_id
from tssnode.node.sessions import SessionTimeout
from tssnode.protocol import auxinfo as aux
from tssnode.protocol import keygen, presign, sign
from tssnode.protocol.base import ProtocolAbort
from tssnode.protocol.material import KeyShare, Presignature, SignatureShare
from tssnode.protocol.ssid import aux_ssid, keygen_ssid, presign_ssid, sign_ssid
from tssnode.registry.app import KeyRegistry
from tssnode.registry.records import KeyRecord, presig_id
from tssnode.registry.transactions import (
    KeygenRequest,
    KeygenResult,
    PresignReady,
    RefreshRequest,
    RefreshResult,
    SignRequest,
    SignResult,
)
from tssnode.store.vault import Vault

if TYPE_CHECKING:
    from tssnode.crypto.params import Parameters
    from tssnode.node.sessions import SessionResult
    from tssnode.protocol.base import Round, SessionConfig


class Phases:
    """The executor's session starters, one per kind of request (`Executor._job_for`)."""

    # provided by `Executor` (declared for the type checker)
    me: bytes
    vault: Vault
    events: EventBus
    primes: PrimeReserve
    registry: KeyRegistry | None
    _claimed: set[bytes]

    if TYPE_CHECKING:

        def _config(
            self,
            ssid: bytes,
            parties: tuple[bytes, ...],
            members: tuple[int, ...],
            threshold: int,
            params: Parameters,
        ) -> SessionConfig: ...

        async def _run(
            self, phase: str, request: bytes, key_id: str, cfg: SessionConfig, first: Round
        ) -> SessionResult: ...

        def _vote(self, payload: Wire) -> None: ...

        def _store_share(self, share: KeyShare, vote: KeygenResult | RefreshResult) -> None: ...

        async def share_of(self, rec: KeyRecord, wait: float = 60.0) -> KeyShare: ...

    async def _keygen(self, request: bytes, p: KeygenRequest, nonce: bytes) -> None:
        params = tier(p.tier)
        members = tuple(range(1, len(p.parties) + 1))
        ssid = keygen_ssid(params, members, p.threshold, nonce)
        cfg = self._config(ssid, p.parties, members, p.threshold, params)
        try:
            res = await self._run("keygen", request, "", cfg, keygen.start(cfg))
            share: KeyShare = res.result
            ssid2 = aux_ssid(params, members, p.threshold, nonce, share.key)
            cfg2 = self._config(ssid2, p.parties, members, p.threshold, params)
            pair = await self.primes.take_pair(params.prime_bits)
            first = aux.start(cfg2, share, lambda: pair)
            res2 = await self._run("aux", request, share.key.key_id, cfg2, first)
        except (ProtocolAbort, SessionTimeout):
            return
        full: KeyShare = res2.result
        failpoints.hit("keygen.share-computed")
        vote = KeygenResult(request, full.key)
        self._store_share(full, vote)
        self._vote(vote)

    async def _refresh(
        self,
        request: bytes,
        rec: KeyRecord,
        p: RefreshRequest,
        parties: tuple[bytes, ...],
        nonce: bytes,
    ) -> None:
        """Refresh over the same parties, or reshare to `parties`: the old parties that
        stay and hold a confirmed share deal it; the others (new validators, and parties
        whose share the ledger never saw confirmed) start with none and get one."""
        params = rec.key.params
        members = tuple(range(1, len(parties) + 1))
        threshold = rec.key.threshold if p.threshold < 0 else p.threshold
        reshare = None
        dealing = [pk for pk in parties if pk in rec.parties and rec.holds(pk)]
        if parties != rec.parties or threshold != rec.key.threshold or len(dealing) < len(parties):
            old_ids = {j: rec.parties.index(pk) + 1 for j, pk in zip(members, parties, strict=True)
                       if pk in dealing}  # fmt: skip
            reshare = aux.Reshare(rec.key, old_ids)
            ssid = aux_ssid(params, members, threshold, nonce, reshare)
        else:
            ssid = aux_ssid(params, members, threshold, nonce, rec.key)
        share = await self.share_of(rec) if self.me in dealing else None
        cfg = self._config(ssid, parties, members, threshold, params)
        pair = await self.primes.take_pair(params.prime_bits)
        try:
            first = aux.start(cfg, share, lambda: pair, reshare=reshare)
            res = await self._run("aux", request, rec.key_id, cfg, first)
        except (ProtocolAbort, SessionTimeout):
            return
        new: KeyShare = res.result
        failpoints.hit("refresh.share-computed")
        vote = RefreshResult(request, new.key)
        self._store_share(new, vote)
        self._vote(vote)

    async def _sign(
        self,
        request: bytes,
        rec: KeyRecord,
        p: SignRequest,
        signers: tuple[int, ...],
        nonce: bytes,
        *,
        after: Callable[[Signature], Wire] | None = None,
    ) -> None:
        """Presign for this digest, then sign; vote the signature, and hand it to the
        application that asked for it (`after`: its own result transaction)."""
        share = await self.share_of(rec)
        d = derive(rec.key.public_key, rec.key.chain_code, p.path)
        ssid = presign_ssid(share, signers, d.shift, p.digest, nonce)
        cfg = self._config(ssid, rec.parties, signers, rec.key.threshold, rec.key.params)
        try:
            first = presign.start(cfg, share, shift=d.shift, digest=p.digest)
            res = await self._run("presign", request, rec.key_id, cfg, first)
            presig: Presignature = res.result
            if p.hash_name:  # the message is here: hash it ourselves
                digest = sign.resolve_digest(presig, message=p.message, hash_name=p.hash_name)
            else:
                digest = sign.resolve_digest(presig, raw_digest=p.digest)
            cfg2 = self._config(
                sign_ssid(presig, digest), rec.parties, signers, rec.key.threshold,
                rec.key.params,
            )  # fmt: skip
            res2 = await self._run(
                "sign", request, rec.key_id, cfg2, sign.start(cfg2, share, presig, digest)
            )
        except (ProtocolAbort, SessionTimeout):
            return
        sig = res2.result.signature
        if failpoints.corrupting("sign.result"):  # (tests only: a faulty signer's result)
            sig = Signature(sig.r, Q - sig.s, sig.v ^ 1)
        self._vote(SignResult(request, sig))
        if after is not None:
            self._vote(after(sig))
        self.events.publish("signature.ready", signature_id=request.hex(), key_id=rec.key_id)

    async def _presign(
        self, request: bytes, rec: KeyRecord, count: int, signers: tuple[int, ...], nonce: bytes
    ) -> None:
        """Fill the pool: one presign session per presignature, one after the other (each
        keeps both cores busy), each stored sealed and then reported ready."""
        share = await self.share_of(rec)
        for index in range(count):
            pid = presig_id(request, index)
            if self.registry is not None and pid not in self.registry.presigs:
                continue  # dropped meanwhile (refresh, blame, expiry): not worth making
            ssid = presign_ssid(share, signers, 0, None, nonce + index.to_bytes(4, "big"))
            cfg = self._config(ssid, rec.parties, signers, rec.key.threshold, rec.key.params)
            first = presign.start(cfg, share)
            try:
                res = await self._run("presign", request, rec.key_id, cfg, first)
            except (ProtocolAbort, SessionTimeout):
                return  # blamed: the ledger drops this request's unfinished presignatures
            presig: Presignature = res.result
            self.vault.put_presignature(rec.key_id, vault_id(pid), presig.to_bytes())
            failpoints.hit("presign.stored")
            self._vote(PresignReady(request, index, presig.R.to_bytes()))

    async def _sign_pooled(
        self,
        request: bytes,
        rec: KeyRecord,
        p: SignRequest,
        pid: bytes,
        signers: tuple[int, ...],
    ) -> None:
        """Sign with the pooled presignature the ledger assigned to this request."""
        try:
            share = await self.share_of(rec)
        finally:
            self._claimed.discard(pid)  # taken below, or never: either way not ours to keep
        batch = self.vault.store.batch()
        # the ledger hands each presignature to one request only, and the vault refuses a
        # second use even if it did not: the use and the share go out in one write
        raw = self.vault.take_presignature(rec.key_id, vault_id(pid), request, batch)
        presig = Presignature.from_bytes(raw)
        digest = sign.resolve_digest(presig, message=p.message, hash_name=p.hash_name)
        cfg = self._config(
            sign_ssid(presig, digest), rec.parties, signers, rec.key.threshold,
            rec.key.params,
        )  # fmt: skip
        first = sign.start(cfg, share, presig, digest)
        sigma = SignatureShare(first.sigma).to_bytes()
        self.vault.put_signature_share(batch, cfg.ssid, sigma)
        batch.commit()
        failpoints.hit("sign.share-written")
        try:
            res = await self._run("sign", request, rec.key_id, cfg, first)
        except (ProtocolAbort, SessionTimeout):
            return
        self._vote(SignResult(request, res.result.signature))
        self.events.publish("signature.ready", signature_id=request.hex(), key_id=rec.key_id)
