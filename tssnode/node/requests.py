"""The node's answers to the API's requests: keygen, refresh, presign, sign and
membership become ledger transactions; sign requests are retried without the parties
that failed them (`NodeCore` includes them)."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from tssnode import schema
from tssnode.crypto.addresses import btc_p2wpkh, eth_address
from tssnode.crypto.derivation import DerivationError, derive, parse_path
from tssnode.crypto.encoding import Wire
from tssnode.errors import EncodingError
from tssnode.ledger.errors import InvalidTransaction
from tssnode.node.errors import (
    BAD_REQUEST,
    CONFLICT,
    INVALID,
    NOT_FOUND,
    UNAVAILABLE,
    RequestRejected,
)
from tssnode.node.executor import TIMEOUT_CHECK
from tssnode.node.parts import CoreParts
from tssnode.node.views import pid
from tssnode.protocol.hashing import message_digest
from tssnode.registry.app import KeyRegistry
from tssnode.registry.records import (
    MAX_SIGN_MESSAGE,
    WITHDRAWN_CHECK,
    KeyRecord,
)
from tssnode.registry.transactions import (
    AppSignRequest,
    KeygenRequest,
    PresignRequest,
    RefreshRequest,
    SignRequest,
    ValidatorJoin,
    join_payload,
)

if TYPE_CHECKING:
    pass


log = logging.getLogger("tssnode.node")

#: How often a sign request's asker looks at it. One that failed (a signer never
#: answered, or someone was blamed) is retried without the parties that failed it; one
#: still pending is waited for, unless it was dropped before being ordered.
SIGN_DEADLINE = 45.0
#: ...or unless it sat in a block this long with nothing settling it (a safety net: its
#: sessions' round timeouts normally fail it long before).
STUCK_AFTER = 900.0
SIGN_ATTEMPTS = 3
#: A keygen or refresh that failed because a party went silent is asked again this often,
#: once the party is back (or after RETRY_WAIT seconds).
RETRY_ATTEMPTS = 3
RETRY_WAIT = 300.0
#: Blames that say only that a party went silent or gave up (no evidence of a fault):
#: a keygen or refresh failed by them is asked again.
SILENCE = (TIMEOUT_CHECK, WITHDRAWN_CHECK)


class NodeRequests(CoreParts):
    """The write side of the API facade."""

    # -- facade: requests -------------------------------------------------------------------
    def _submit(self, payload: Wire) -> bytes:
        """A client's request: refused with 503 while the ledger cannot commit (below
        quorum), with 409 when the ledger would refuse it; else durable (`accept`)."""
        live = self.liveness()
        if live.below_quorum:
            raise RequestRejected(UNAVAILABLE, f"not accepted: {live.reason}")
        try:
            return self.accept(payload)
        except InvalidTransaction as exc:
            raise RequestRejected(CONFLICT, str(exc)) from None

    def _validators_named(self, parties: list[str] | None) -> tuple[bytes, ...]:
        """Validator keys for peer ids or key hex (None: every validator), in key order."""
        validators = tuple(self.replica.config())
        if parties is None:
            return validators
        by_name = {pid(v): v for v in validators} | {v.hex(): v for v in validators}
        unknown = [p for p in parties if p not in by_name]
        if unknown:
            raise RequestRejected(INVALID, f"not a validator: {unknown[0]}")
        return tuple(sorted({by_name[p] for p in parties}))

    async def request_keygen(
        self, threshold: int, parties: list[str] | None, purpose: str = ""
    ) -> schema.KeyAccepted:
        chosen = self._validators_named(parties)
        if not 0 <= threshold < len(chosen):
            raise RequestRejected(INVALID, f"threshold must be in [0, {len(chosen) - 1}]")
        tx = self._submit(KeygenRequest(threshold, chosen, self.default_tier, purpose))
        if self.nursery is not None:
            self.nursery.start_soon(self._retry_when_silent, tx, RETRY_ATTEMPTS)
        return schema.KeyAccepted(key_id=tx.hex(), tx=tx.hex())

    def _active(self, key_id: str) -> KeyRecord:
        """The active key named by its key id, or by the id `POST /keygen` returned (the
        keygen request's, followed through its retries). Reads the registry's records
        only: the write path renders no view of the key."""
        rec = self.registry.keys.get(key_id)
        if rec is not None:
            return rec
        try:
            raw = bytes.fromhex(key_id)
        except ValueError:
            raise RequestRejected(NOT_FOUND, "unknown key id") from None
        raw, _ = self._latest_try(raw)
        req = self.registry.requests.get(raw)
        if req is None:
            if not isinstance(self.submitted.get(raw), KeygenRequest):
                raise RequestRejected(NOT_FOUND, "unknown key id")
            noted = self.accepted.get(raw)
            status = "failed" if noted is not None and noted.failure else "pending"
        elif req.kind != "keygen":
            raise RequestRejected(NOT_FOUND, "unknown key id")
        elif req.status == "done" and (rec := self.registry.keys.get(req.key_id)) is not None:
            return rec
        else:
            status = "failed" if req.status == "failed" else "pending"
        raise RequestRejected(CONFLICT, f"key {key_id} is {status}, not active")

    async def request_refresh(
        self, key_id: str, parties: list[str] | None = None, threshold: int | None = None
    ) -> schema.KeyAccepted:
        """Refresh the key; with `parties` (peer ids) move it to those validators."""
        rec = self._active(key_id)
        key_id = rec.key_id
        chosen = () if parties is None else self._validators_named(parties)
        if chosen == rec.parties:
            chosen = ()
        t = -1 if threshold is None else threshold
        tx = self._submit(RefreshRequest(key_id, chosen, t))
        if self.nursery is not None:
            self.nursery.start_soon(self._retry_when_silent, tx, RETRY_ATTEMPTS)
        return schema.KeyAccepted(key_id=key_id, tx=tx.hex())

    # -- membership ---------------------------------------------------------------------------
    def join_request(self, address: str = "") -> schema.JoinRequest:
        """This node's request to become a validator, for the validators to vote on
        (`vote_join`): its key with a proof of possession, bound to this chain."""
        payload = join_payload(self.identity, self.replica.chain_id, self.peer_name, address)
        return schema.JoinRequest(
            peer_id=pid(payload.public_key),
            validator_key=payload.public_key.hex(),
            address=address,
            is_validator=payload.public_key in self.replica.config(),
            request=payload.to_bytes().hex(),
        )

    async def vote_join(self, request_hex: str) -> schema.JoinVoteAccepted:
        """This validator's vote to add the node whose `join_request` this is."""
        try:
            payload = ValidatorJoin.from_bytes(bytes.fromhex(request_hex.removeprefix("0x")))
        except (ValueError, EncodingError) as exc:
            raise RequestRejected(BAD_REQUEST, f"not a join request: {exc}") from None
        tx = self._submit(payload)
        return schema.JoinVoteAccepted(tx=tx.hex(), peer_id=pid(payload.public_key))

    def derive(self, key_id: str, path: str) -> schema.Derived:
        rec = self._active(key_id)
        try:
            d = derive(rec.key.public_key, rec.key.chain_code, path)
        except DerivationError as exc:
            raise RequestRejected(BAD_REQUEST, str(exc)) from None
        return schema.Derived(
            path=path,
            public_key=d.public_key.to_bytes().hex(),
            addresses=schema.Addresses(
                eth=eth_address(d.public_key), btc_p2wpkh=btc_p2wpkh(d.public_key, self.btc_network)
            ),
        )

    async def request_sign(
        self, key_id: str, message: bytes, hash_name: str, path: str | None
    ) -> schema.SignAccepted:
        key_id = self._active(key_id).key_id
        try:
            indices = parse_path(path) if path else ()
        except DerivationError as exc:
            raise RequestRejected(BAD_REQUEST, str(exc)) from None
        digest = message_digest(message, hash_name)
        exclude = tuple(sorted(self.offline()))
        if len(message) <= MAX_SIGN_MESSAGE:
            # the signers hash the message themselves, so a pooled presignature may sign it
            request = SignRequest(key_id, digest, indices, exclude, message, hash_name)
        else:
            request = SignRequest(key_id, digest, indices, exclude)
        tx = self._submit(request)
        if self.nursery is not None:
            self.nursery.start_soon(self._retry_until_signed, tx, SIGN_ATTEMPTS)
        return schema.SignAccepted(signature_id=tx.hex(), tx=tx.hex(), digest=digest.hex())

    async def _retry_until_signed(self, tx: bytes, attempts: int) -> None:
        """If the request fails (a signer never answered, or someone was blamed), ask
        again without the parties that failed it and those seen offline now."""
        for _ in range(attempts - 1):
            waited = 0.0
            while True:
                with trio.move_on_after(SIGN_DEADLINE):
                    await self.service.wait_until(partial(_settled, tx=tx))
                waited += SIGN_DEADLINE
                req = self.registry.requests.get(tx)
                if req is not None and req.status != "pending":
                    break  # settled
                if req is None and tx not in self.replica.pending:
                    break  # dropped before it was ordered
                if req is not None and waited >= STUCK_AFTER:
                    break  # in a block, and nothing settled it for very long
                # Waiting to be ordered, or ordered with its sessions queued or running:
                # a retry would only add a presignature's work to the load that keeps it
                # waiting (under a burst, retries of slow requests once made a third of all
                # presign sessions). A silent signer fails it by the round timeout.
            req = self.registry.requests.get(tx)
            if req is not None and req.status == "done":
                return
            p = self.submitted.get(tx)
            if not isinstance(p, SignRequest | AppSignRequest):
                return
            blamed = {req.parties[j - 1] for b in req.blames for j in b.culprits} if req else set()
            exclude = tuple(sorted(blamed | self.offline() | set(p.exclude)))
            try:
                new = self.accept(replace(p, exclude=exclude), retry_of=tx)
            except InvalidTransaction as exc:
                log.warning("sign retry refused: %s", exc)
                return
            log.info("sign request %s retried as %s", tx.hex()[:12], new.hex()[:12])
            self.retried[tx] = new
            self.accepted.retried(tx, new)
            tx = new

    async def _retry_when_silent(self, tx: bytes, attempts: int) -> None:
        """A keygen or refresh needs every one of its parties, so a party that went
        silent (crashed, restarting) fails it. Ask again once the silent parties are
        back, as long as silence is all that went wrong: a party blamed with evidence
        would fail it again."""
        for _ in range(attempts - 1):
            await self.service.wait_until(partial(_settled, tx=tx))
            req = self.registry.requests.get(tx)
            p = self.submitted.get(tx)
            if req is None or req.status == "done" or p is None:
                return
            if not req.blames or any(not b.check.startswith(SILENCE) for b in req.blames):
                return
            if isinstance(p, RefreshRequest) and (p.parties or p.threshold >= 0):
                return  # a change of parties is voted: one node cannot ask again alone
            silent = {req.parties[j - 1] for b in req.blames for j in b.culprits}
            with trio.move_on_after(RETRY_WAIT):
                while silent & self.offline():  # noqa: ASYNC110 - a view of the peer book
                    await trio.sleep(0.5)
            try:
                new = self.accept(p, retry_of=tx)
            except InvalidTransaction as exc:
                log.warning("retry of request %s refused: %s", tx.hex()[:12], exc)
                return
            log.info("%s request %s retried as %s", req.kind, tx.hex()[:12], new.hex()[:12])
            self.retried[tx] = new
            self.accepted.retried(tx, new)
            tx = new

    async def request_presign(self, key_id: str, count: int) -> schema.KeyAccepted:
        key_id = self._active(key_id).key_id
        tx = self._submit(PresignRequest(key_id, count))
        return schema.KeyAccepted(key_id=key_id, tx=tx.hex())


def _settled(replica: Any, *, tx: bytes) -> bool:
    req = replica.chain.state.app(KeyRegistry).requests.get(tx)
    return req is not None and req.status != "pending"
