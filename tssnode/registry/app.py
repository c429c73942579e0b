"""The threshold-key registry: the application of the ledger that keeps keys, requests,
the presignature pool, blames and membership votes (`tssnode.ledger.app`).

Every transaction of `registry.transactions` is routed here. The registry checks shapes,
membership and agreement, never protocol maths: a key is accepted on a quorum of equal
results (`records.result_quorum`), a signature on verification.

Pooled presignatures are registry state, so that every signer of a sign request picks the
same one: a presign request creates `count` pending records with one signer set; each
becomes ready once every signer voted the same nonce point R (`PresignReady`), is taken by
the first eligible sign request (deleted in that same block, so no two requests ever share
one), and disappears when its key is refreshed, when its signers disagree, or when its
presign session is blamed.

Membership changes are votes: a join or leave is decided once 2f+1 of the current set
voted for it (a validator's own leave needs only itself); the engine then schedules it
(`LedgerView.schedule`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

from tssnode.crypto.derivation import HARDENED, MAX_DEPTH, derive
from tssnode.crypto.encoding import Wire, decode_any
from tssnode.crypto.identity import verify_signature
from tssnode.crypto.params import TIERS
from tssnode.crypto.signature import InvalidSignature, Signature, recover, verify_low_s
from tssnode.ledger.app import OnePathApplication, SignSubject
from tssnode.ledger.errors import InvalidTransaction
from tssnode.ledger.genesis import Validator
from tssnode.ledger.state import quorum
from tssnode.ledger.transactions import SignedTx
from tssnode.protocol.base import Blame
from tssnode.protocol.hashing import HASHES, message_digest
from tssnode.registry.records import (
    MAX_POOL,
    MAX_PRESIGN_COUNT,
    MAX_SIGN_MESSAGE,
    MAX_WITHDRAW_REASON,
    MEMBERSHIP,
    PRESIG_PENDING_BLOCKS,
    RESHARE,
    T_KEYS,
    T_PRESIGS,
    T_REQUESTS,
    T_VOTES,
    WITHDRAWN_CHECK,
    KeyRecord,
    PresigRecord,
    RequestRecord,
    VoteRecord,
    key_record,
    presig_id,
    result_quorum,
    vote_id,
)
from tssnode.registry.transactions import (
    KEY_PURPOSES,
    PAYLOAD_TYPES,
    AppSignRequest,
    BlameReport,
    KeygenRequest,
    KeygenRequestV1,
    KeygenResult,
    Payload,
    PresignReady,
    PresignRequest,
    RefreshRequest,
    RefreshResult,
    SignRequest,
    SignResult,
    ValidatorJoin,
    ValidatorLeave,
    Withdrawal,
    keygen_request,
    possession_bytes,
    sign_request,
)
from tssnode.store import layout


class KeyRegistry(OnePathApplication):
    """The registry's records after the ledger's last block."""

    name = "registry"
    tables = frozenset({T_KEYS, T_REQUESTS, T_VOTES, T_PRESIGS})
    payload_types = PAYLOAD_TYPES

    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, KeyRecord] = {}
        self.requests: dict[bytes, RequestRecord] = {}
        self.votes: dict[bytes, VoteRecord] = {}
        self.presigs: dict[bytes, PresigRecord] = {}

    # -- storage ------------------------------------------------------------------------------

    def _restore(self, table: int, ident: bytes, raw: bytes) -> None:
        if table == T_KEYS:
            # (an upgraded version-1 record keeps its stored bytes, and so the state's
            # digest, until a transaction changes it)
            k = key_record(raw)
            self.keys[k.key_id] = k
        elif table == T_REQUESTS:
            self.requests[ident] = RequestRecord.from_bytes(raw)
        elif table == T_VOTES:
            self.votes[ident] = VoteRecord.from_bytes(raw)
        elif table == T_PRESIGS:
            self.presigs[ident] = PresigRecord.from_bytes(raw)

    def _lookup(self, key: bytes) -> bytes | None:
        table, ident = key[1], key[2:]
        value: Wire | None
        if table == T_KEYS:
            value = self.keys.get(ident.hex())
        elif table == T_REQUESTS:
            value = self.requests.get(ident)
        elif table == T_VOTES:
            value = self.votes.get(ident)
        else:
            value = self.presigs.get(ident)
        return None if value is None else bytes(value.to_bytes())

    def query(self, path: str) -> Wire | None:
        """`key/<key id>`, `request/<hash hex>` or `presig/<id hex>`: that record."""
        kind, _, ident = path.partition("/")
        try:
            if kind == "key":
                return self.keys.get(ident)
            if kind == "request":
                return self.requests.get(bytes.fromhex(ident))
            if kind == "presig":
                return self.presigs.get(bytes.fromhex(ident))
        except ValueError:
            return None
        return None

    # -- the application interface --------------------------------------------------------------

    def begin_block(self, height: int, *, validators_changed: bool) -> None:
        """After a change of the validator set: drop the votes of those who left and
        decide the next change; and drop presignatures that can no longer be used."""
        if validators_changed:
            validators = self.ledger.validators
            for vid, vote in list(self.votes.items()):
                voters = tuple(v for v in vote.voters if v in validators)
                if voters != vote.voters:
                    self.votes[vid] = VoteRecord(vote.subject, vote.value, voters)
                    self._set(T_VOTES, vid)
            self._membership_decided(height)
        self._drop_presigs(lambda _pid, r: self._presig_alive(r, height))

    def execute(self, tx: SignedTx, p: Payload, height: int, *, apply: bool) -> None:
        if isinstance(p, ValidatorJoin):
            self._join(tx, p, height, apply)
        elif isinstance(p, ValidatorLeave):
            self._leave(tx, p, height, apply)
        elif isinstance(p, KeygenRequest | KeygenRequestV1):
            request = p.upgrade() if isinstance(p, KeygenRequestV1) else p
            self._keygen_request(tx, request, height, apply)
        elif isinstance(p, KeygenResult | RefreshResult | SignResult):
            self._result(tx, p, height, apply)
        elif isinstance(p, RefreshRequest):
            self._refresh_request(tx, p, height, apply)
        elif isinstance(p, PresignRequest | SignRequest):
            self._signing_request(tx, p, height, apply)
        elif isinstance(p, AppSignRequest):
            self._app_sign_request(tx, p, height, apply)
        elif isinstance(p, PresignReady):
            self._presign_ready(tx, p, apply)
        elif isinstance(p, Withdrawal):
            self._withdraw(tx, p, apply)
        else:
            self._blame(tx, p, apply)

    # -- membership ---------------------------------------------------------------------------

    def _member_vote(self, tx: SignedTx, value: bytes, height: int, apply: bool) -> None:
        vid = vote_id(MEMBERSHIP, value)
        vote = self.votes.get(vid, VoteRecord(MEMBERSHIP, value, ()))
        if tx.sender in vote.voters:
            raise InvalidTransaction("this validator already voted for this change")
        if not apply:
            return
        self.votes[vid] = VoteRecord(MEMBERSHIP, value, tuple(sorted((*vote.voters, tx.sender))))
        self._set(T_VOTES, vid)
        self._membership_decided(height)

    def _join(self, tx: SignedTx, p: ValidatorJoin, height: int, apply: bool) -> None:
        if len(p.public_key) != 32:
            raise InvalidTransaction("a validator key is 32 bytes")
        if p.public_key in self.ledger.validators or any(
            v.public_key == p.public_key for v in self.ledger.next_validators
        ):
            raise InvalidTransaction("already a validator")
        if len(p.name) > 64 or len(p.address) > 256:
            raise InvalidTransaction("a validator name is ≤ 64 and an address ≤ 256 characters")
        proof = possession_bytes(self.ledger.genesis.chain_id, p.public_key, p.name, p.address)
        if not verify_signature(p.public_key, proof, p.possession):
            raise InvalidTransaction("the join does not prove possession of the new key")
        self._member_vote(tx, p.to_bytes(), height, apply)

    def _leave(self, tx: SignedTx, p: ValidatorLeave, height: int, apply: bool) -> None:
        if p.public_key not in self.ledger.validators:
            raise InvalidTransaction("not a validator")
        if len(self.ledger.validators) == 1:
            raise InvalidTransaction("the last validator cannot leave")
        if tx.sender == p.public_key:
            # A validator may always leave by itself: count it as a full quorum of votes.
            if not apply:
                return
            vid = vote_id(MEMBERSHIP, p.to_bytes())
            self.votes[vid] = VoteRecord(
                MEMBERSHIP, p.to_bytes(), tuple(sorted(self.ledger.validators))
            )
            self._set(T_VOTES, vid)
            self._membership_decided(height)
            return
        self._member_vote(tx, p.to_bytes(), height, apply)

    def _membership_decided(self, height: int) -> None:
        """Schedule the first membership change with 2f+1 votes, if none is scheduled."""
        if self.ledger.scheduled:
            return
        validators = self.ledger.validators
        need = quorum(len(validators))
        for vid in sorted(self.votes):
            vote = self.votes[vid]
            if vote.subject != MEMBERSHIP or len(vote.voters) < need:
                continue
            change = decode_any(vote.value)
            members = dict(validators)
            if isinstance(change, ValidatorJoin):
                members[change.public_key] = Validator(
                    change.public_key, change.name, change.address
                )
            elif isinstance(change, ValidatorLeave):
                members.pop(change.public_key, None)
            del self.votes[vid]
            self._set(T_VOTES, vid)
            if set(members) == set(validators) or not members:
                continue
            self.ledger.schedule(members, height)
            return

    # -- keys and requests --------------------------------------------------------------------

    def _keygen_request(self, tx: SignedTx, p: KeygenRequest, height: int, apply: bool) -> None:
        n = len(p.parties)
        if n < 1 or len(set(p.parties)) != n:
            raise InvalidTransaction("parties must be distinct and non-empty")
        if any(pk not in self.ledger.validators for pk in p.parties):
            raise InvalidTransaction("every party must be a validator")
        if not 0 <= p.threshold < n:
            raise InvalidTransaction("threshold t must satisfy 0 ≤ t < n")
        if p.tier not in TIERS:
            raise InvalidTransaction(f"unknown parameter tier {p.tier!r}")
        if p.purpose not in KEY_PURPOSES:
            raise InvalidTransaction(f"unknown key purpose {p.purpose[:40]!r}")
        if apply:
            self._new_request(tx, "keygen", height, "", p.parties, ())

    def _new_request(
        self,
        tx: SignedTx,
        kind: str,
        height: int,
        key_id: str,
        parties: tuple[bytes, ...],
        signers: tuple[int, ...],
        *,
        status: str = "pending",
        presig: bytes = b"",
    ) -> None:
        self.requests[tx.hash] = RequestRecord(
            kind, tx.sender, height, tx.payload, key_id, parties, signers, status, b"", (),
            presig,
        )  # fmt: skip
        self._set(T_REQUESTS, tx.hash)

    def _active_key(self, key_id: str) -> KeyRecord:
        rec = self.keys.get(key_id)
        if rec is None:
            raise InvalidTransaction(f"no key {key_id}")
        return rec

    def _refresh_request(self, tx: SignedTx, p: RefreshRequest, height: int, apply: bool) -> None:
        rec = self._active_key(p.key_id)
        if rec.refreshing:
            raise InvalidTransaction("a refresh of this key is already pending")
        parties = p.parties or rec.parties
        threshold = rec.key.threshold if p.threshold < 0 else p.threshold
        if len(set(parties)) != len(parties):
            raise InvalidTransaction("parties must be distinct")
        if any(pk not in self.ledger.validators for pk in parties):
            raise InvalidTransaction("every party of a refresh must be a validator")
        if not 0 <= threshold < len(parties):
            raise InvalidTransaction("threshold t must satisfy 0 ≤ t < n")
        # a party without a confirmed share deals nothing: it takes part as a new party
        # would, and the refresh gives it a share
        dealers = [pk for pk in rec.parties if pk in parties and rec.holds(pk)]
        if len(dealers) < rec.key.threshold + 1:
            raise InvalidTransaction(
                f"at least t + 1 = {rec.key.threshold + 1} of the key's share holders must stay"
            )
        if p.parties or p.threshold >= 0:
            # who holds a key and how many must sign is not one validator's choice (one
            # could lower t and collect every share): 2f+1 must ask for the same change
            vid = vote_id(RESHARE, p.to_bytes())
            vote = self.votes.get(vid, VoteRecord(RESHARE, p.to_bytes(), ()))
            if tx.sender in vote.voters:
                raise InvalidTransaction("this validator already voted for this change")
            if not apply:
                return
            voters = tuple(sorted((*vote.voters, tx.sender)))
            if vid in self.votes:
                del self.votes[vid]
            self._set(T_VOTES, vid)
            if len(voters) < quorum(len(self.ledger.validators)):
                self.votes[vid] = VoteRecord(RESHARE, vote.value, voters)
                return
        if apply:  # (for a change: this vote decided it, and its hash names the request)
            self._new_request(tx, "refresh", height, p.key_id, parties, ())
            self.keys[p.key_id] = rec.with_refreshing(tx.hash)
            self._set(T_KEYS, layout.key_id_bytes(p.key_id))

    def choose_signers(
        self, rec: KeyRecord, tx_hash: bytes, exclude: tuple[bytes, ...] = ()
    ) -> tuple[int, ...]:
        """t + 1 party ids, chosen by hash order among share holders that are still
        validators (and not excluded by the request, as long as enough others remain)."""
        alive = [
            j
            for j, pk in enumerate(rec.parties, start=1)
            if pk in self.ledger.validators and rec.holds(pk)
        ]
        need = rec.key.threshold + 1
        if len(alive) < need:
            raise InvalidTransaction("not enough of this key's share holders are still validators")
        preferred = [j for j in alive if rec.parties[j - 1] not in exclude]
        if len(preferred) >= need:
            alive = preferred
        order = sorted(alive, key=lambda j: hashlib.sha256(tx_hash + layout.u32(j)).digest())
        return tuple(sorted(order[:need]))

    def _signing_request(
        self, tx: SignedTx, p: PresignRequest | SignRequest, height: int, apply: bool
    ) -> None:
        rec = self._active_key(p.key_id)
        if rec.purpose:
            # (the bridge's key: a sign request would let whoever can submit one, e.g. any
            # node's API token, sign a mint authorisation or a release of its own)
            raise InvalidTransaction(
                f"key {p.key_id[:16]} signs only {rec.purpose} messages, not requests"
            )
        if rec.refreshing:
            # its shares are about to change (and, for a reshare, its parties): a session
            # started now could straddle two epochs
            raise InvalidTransaction("a refresh of this key is under way; ask again after it")
        if isinstance(p, PresignRequest):
            if not 1 <= p.count <= MAX_PRESIGN_COUNT:
                raise InvalidTransaction(f"count must be in [1, {MAX_PRESIGN_COUNT}]")
            if self.pool_size(p.key_id) + p.count > MAX_POOL:
                raise InvalidTransaction(f"a key's presignature pool holds at most {MAX_POOL}")
            signers = self.choose_signers(rec, tx.hash)
            if apply:  # the request itself is done; its presignatures are tracked one by one
                self._new_request(tx, "presign", height, p.key_id, rec.parties, signers,
                                  status="done")  # fmt: skip
                for index in range(p.count):
                    pid = presig_id(tx.hash, index)
                    self.presigs[pid] = PresigRecord(
                        p.key_id, rec.key.epoch, signers, b"", (), False, height
                    )
                    self._set(T_PRESIGS, pid)
            return
        if len(p.digest) != 32:
            raise InvalidTransaction("a digest to sign is 32 bytes")
        if len(p.path) > MAX_DEPTH or any(not 0 <= i < HARDENED for i in p.path):
            raise InvalidTransaction(f"a derivation path has ≤ {MAX_DEPTH} non-hardened indices")
        if p.hash_name:
            if p.hash_name not in HASHES:
                raise InvalidTransaction(f"unknown hash {p.hash_name!r}")
            if len(p.message) > MAX_SIGN_MESSAGE:
                raise InvalidTransaction(f"a message in a sign request is ≤ {MAX_SIGN_MESSAGE} B")
            if message_digest(p.message, p.hash_name) != p.digest:
                raise InvalidTransaction("the digest is not the hash of the message")
        elif p.message:
            raise InvalidTransaction("a message needs its hash name")
        pooled = self.pooled_for(rec, p) if p.hash_name and not p.path else None
        signers = pooled[1].signers if pooled else self.choose_signers(rec, tx.hash, p.exclude)
        if apply:
            chosen = b""
            if pooled is not None:
                chosen = pooled[0]
                del self.presigs[chosen]  # taken: no other request can have it
                self._set(T_PRESIGS, chosen)
            self._new_request(tx, "sign", height, p.key_id, rec.parties, signers, presig=chosen)

    def _app_sign_request(self, tx: SignedTx, p: AppSignRequest, height: int, apply: bool) -> None:
        rec = self._active_key(p.key_id)
        if not rec.purpose or rec.purpose != p.app:
            raise InvalidTransaction(f"key {p.key_id[:16]} is not the {p.app[:16]} key")
        if rec.refreshing:
            raise InvalidTransaction("a refresh of this key is under way; ask again after it")
        if len(p.digest) != 32 or len(p.path) > MAX_DEPTH:
            raise InvalidTransaction("a digest is 32 bytes, a path at most 16 indices")
        if any(not 0 <= i < HARDENED for i in p.path) or len(p.subject) > 64:
            raise InvalidTransaction("a path has non-hardened indices, a subject ≤ 64 bytes")
        asked = self.ledger.query(p.app, f"sign/{p.subject.hex()}")
        if asked != SignSubject(p.key_id, p.digest, p.path):
            raise InvalidTransaction(f"the {p.app[:16]} application asks no such signature")
        if self.app_signing(p.app, p.subject):
            raise InvalidTransaction("this subject is being signed already")
        signers = self.choose_signers(rec, tx.hash, p.exclude)
        if apply:
            self._new_request(tx, "sign", height, p.key_id, rec.parties, signers)

    def app_signing(self, app: str, subject: bytes) -> bool:
        """A pending request of `app` for `subject` (one at a time: a retry follows a
        failure, never runs beside a live session)."""
        for r in self.requests.values():
            if r.status != "pending" or r.kind != "sign" or subject not in r.payload:
                continue
            p = decode_any(r.payload)
            if isinstance(p, AppSignRequest) and (p.app, p.subject) == (app, subject):
                return True
        return False

    # -- the presignature pool ----------------------------------------------------------------

    def pool_size(self, key_id: str, *, ready_only: bool = False) -> int:
        """Pooled presignatures of the key at its current epoch (pending and ready)."""
        epoch = self.keys[key_id].key.epoch if key_id in self.keys else -1
        return sum(
            1
            for r in self.presigs.values()
            if r.key_id == key_id and r.epoch == epoch and (r.ready or not ready_only)
        )

    def pooled_for(self, rec: KeyRecord, p: SignRequest) -> tuple[bytes, PresigRecord] | None:
        """The ready presignature a sign request takes: the oldest (lowest id) of the
        key's current epoch whose signers are all validators and none excluded."""
        for pid in sorted(self.presigs):
            r = self.presigs[pid]
            if not r.ready or r.key_id != rec.key_id or r.epoch != rec.key.epoch:
                continue
            keys = [rec.parties[j - 1] for j in r.signers]
            if all(k in self.ledger.validators and k not in p.exclude for k in keys):
                return pid, r
        return None

    def _presign_ready(self, tx: SignedTx, p: PresignReady, apply: bool) -> None:
        if len(p.request) != 32 or not 0 <= p.index < MAX_PRESIGN_COUNT:
            raise InvalidTransaction("no such pooled presignature (bad request hash or index)")
        pid = presig_id(p.request, p.index)
        rec = self.presigs.get(pid)
        if rec is None:
            raise InvalidTransaction("no such pooled presignature (used, dropped or unknown)")
        if rec.ready:
            raise InvalidTransaction("the presignature is already ready")
        parties = self.keys[rec.key_id].parties
        if tx.sender not in [parties[j - 1] for j in rec.signers]:
            raise InvalidTransaction("the sender is not a signer of this presignature")
        if tx.sender in rec.voters:
            raise InvalidTransaction("this signer already reported the presignature")
        if len(p.R) != 33:
            raise InvalidTransaction("R is a compressed point (33 bytes)")
        if not apply:
            return
        self._set(T_PRESIGS, pid)
        if rec.voters and p.R != rec.R:  # signers disagree: nobody may use it
            del self.presigs[pid]
            return
        voters = tuple(sorted((*rec.voters, tx.sender)))
        ready = len(voters) == len(rec.signers)
        self.presigs[pid] = PresigRecord(
            rec.key_id, rec.epoch, rec.signers, p.R, voters, ready, rec.height
        )

    def _presig_alive(self, r: PresigRecord, height: int) -> bool:
        """Can this presignature still be used (or become usable)? Not once one of its
        signers left, nor while pending for longer than `PRESIG_PENDING_BLOCKS`."""
        rec = self.keys.get(r.key_id)
        if rec is None or rec.key.epoch != r.epoch:
            return False
        if any(rec.parties[j - 1] not in self.ledger.validators for j in r.signers):
            return False
        return r.ready or height - r.height <= PRESIG_PENDING_BLOCKS

    def _drop_presigs(self, keep: Callable[[bytes, PresigRecord], bool]) -> None:
        for pid in [pid for pid, r in self.presigs.items() if not keep(pid, r)]:
            del self.presigs[pid]
            self._set(T_PRESIGS, pid)

    def _pending(self, request: bytes, kind: str) -> RequestRecord:
        req = self.requests.get(request)
        if req is None or req.kind != kind:
            raise InvalidTransaction(f"no {kind} request {request.hex()[:16]}")
        if req.status != "pending":
            raise InvalidTransaction(f"the request is already {req.status}")
        return req

    def _voters_of(self, req: RequestRecord) -> tuple[bytes, ...]:
        if req.kind in ("sign", "presign"):
            return tuple(req.parties[j - 1] for j in req.signers)
        return req.parties

    def _result(
        self, tx: SignedTx, p: KeygenResult | RefreshResult | SignResult, height: int, apply: bool
    ) -> None:
        kind = {KeygenResult: "keygen", RefreshResult: "refresh", SignResult: "sign"}[type(p)]
        done = self.requests.get(p.request)
        if (
            isinstance(p, KeygenResult | RefreshResult)
            and done is not None
            and done.kind == kind
            and done.status == "done"
        ):
            self._confirm(tx, p, done, apply)
            return
        req = self._pending(p.request, kind)
        voters = self._voters_of(req)
        if tx.sender not in voters:
            raise InvalidTransaction("the sender is not a party of this session")
        value: bytes
        if isinstance(p, KeygenResult):
            kr = keygen_request(req.payload)
            k = p.key
            if (
                k.threshold != kr.threshold
                or k.parties != tuple(range(1, len(kr.parties) + 1))
                or k.params.name != kr.tier
                or k.epoch != 0
                or set(k.public_shares) != set(k.parties)
            ):
                raise InvalidTransaction("the key does not match the keygen request")
            if k.key_id in self.keys:
                raise InvalidTransaction("a key with this id already exists")
            value = k.to_bytes()
        elif isinstance(p, RefreshResult):
            old = self._active_key(req.key_id).key
            rr = RefreshRequest.from_bytes(req.payload)
            k = p.key
            if (
                k.public_key != old.public_key
                or k.parties != tuple(range(1, len(req.parties) + 1))
                or k.threshold != (old.threshold if rr.threshold < 0 else rr.threshold)
                or k.params != old.params
                or k.chain_code != old.chain_code
                or k.epoch != old.epoch + 1
                or set(k.public_shares) != set(k.parties)
            ):
                raise InvalidTransaction("the refreshed key does not continue the old one")
            value = k.to_bytes()
        else:
            self._check_signature(req, p.signature)
            value = p.signature.to_bytes()
        vid = vote_id(p.request, value)
        vote = self.votes.get(vid, VoteRecord(p.request, value, ()))
        if tx.sender in vote.voters:
            raise InvalidTransaction("this party already submitted this result")
        if not apply:
            return
        vote = VoteRecord(p.request, value, tuple(sorted((*vote.voters, tx.sender))))
        # a signature that verifies needs no agreement: the first one settles the request
        need = 1 if isinstance(p, SignResult) else result_quorum(len(voters))
        if len(vote.voters) < need:
            self.votes[vid] = vote
            self._set(T_VOTES, vid)
            return
        # Accepted: drop every vote on this request and record the result.
        for other in [v for v, r in self.votes.items() if r.subject == p.request]:
            del self.votes[other]
            self._set(T_VOTES, other)
        key_id = req.key_id
        if isinstance(p, KeygenResult | RefreshResult):
            key_id = p.key.key_id
            if isinstance(p, KeygenResult):
                created, purpose = height, keygen_request(req.payload).purpose
            else:
                created, purpose = self.keys[key_id].created, self.keys[key_id].purpose
            # the parties that voted for it hold it (each stored its share before voting);
            # the others may confirm it later (`_confirm`)
            self.keys[key_id] = KeyRecord(
                key_id, p.key, req.parties, created, b"", vote.voters, purpose
            )
            self._set(T_KEYS, layout.key_id_bytes(key_id))
            # presignatures of the old shares are of no use after a refresh
            self._drop_presigs(lambda _pid, r: r.key_id != key_id)
        self.requests[p.request] = RequestRecord(
            req.kind, req.sender, req.height, req.payload, key_id, req.parties, req.signers,
            "done", value, req.blames, req.presig,
        )  # fmt: skip
        self._set(T_REQUESTS, p.request)

    def _confirm(
        self, tx: SignedTx, p: KeygenResult | RefreshResult, req: RequestRecord, apply: bool
    ) -> None:
        """A party's result for a key the ledger already accepted: the same key at its
        current epoch makes the party a holder (it stored its share before it voted)."""
        if tx.sender not in req.parties:
            raise InvalidTransaction("the sender is not a party of this session")
        rec = self.keys.get(p.key.key_id)
        current = rec.key.to_bytes() if rec is not None else b""
        if rec is None or p.key.to_bytes() != current or req.result != current:
            raise InvalidTransaction(
                "the request is already done, and this is not the key's current epoch"
            )
        if rec.holds(tx.sender):
            raise InvalidTransaction("the request is already done (this party holds the key)")
        if apply:
            holders = tuple(sorted((*rec.holders, tx.sender)))
            self.keys[rec.key_id] = replace(rec, holders=holders)
            self._set(T_KEYS, layout.key_id_bytes(rec.key_id))

    def _check_signature(self, req: RequestRecord, sig: Signature) -> None:
        """A sign result must verify (low s, and v recovering the key) for the request's
        digest under the key, derived along the request's path."""
        sr = sign_request(req.payload)
        key = self.keys[req.key_id].key
        public = derive(key.public_key, key.chain_code, sr.path).public_key
        try:
            verify_low_s(public, sr.digest, sig.r, sig.s)
            if recover(sr.digest, sig) != public:
                raise InvalidSignature("the recovery id does not recover the key")
        except InvalidSignature as exc:
            raise InvalidTransaction(f"the signature does not verify: {exc}") from None

    def _blame(self, tx: SignedTx, p: BlameReport, apply: bool) -> None:
        req = self.requests.get(p.request)
        if req is None or (req.kind == "presign" and req.status != "done"):
            raise InvalidTransaction("no such request")
        if req.status == "done" and req.kind != "presign":
            raise InvalidTransaction("the request already succeeded")
        voters = self._voters_of(req)
        me = [j for j, pk in enumerate(req.parties, start=1) if pk == tx.sender]
        if tx.sender not in voters or not me:
            raise InvalidTransaction("the sender is not a party of this session")
        if not p.blame.culprits or any(not 1 <= j <= len(req.parties) for j in p.blame.culprits):
            raise InvalidTransaction("culprits must be party ids of this session")
        if me[0] in p.blame.culprits:
            raise InvalidTransaction("a party cannot report itself")
        if len(req.blames) >= 16:
            raise InvalidTransaction("this request already holds the maximum number of blames")
        if apply:
            status = "failed" if req.kind != "presign" else req.status
            self.requests[p.request] = RequestRecord(
                req.kind, req.sender, req.height, req.payload, req.key_id, req.parties,
                req.signers, status, req.result, (*req.blames, p.blame), req.presig,
            )  # fmt: skip
            self._set(T_REQUESTS, p.request)
            if req.kind == "presign":  # its unfinished presignatures will never be ready
                self._drop_presigs(lambda pid, r: r.ready or pid[:32] != p.request)
            if req.kind == "refresh":
                self.keys[req.key_id] = self.keys[req.key_id].with_refreshing(b"")
                self._set(T_KEYS, layout.key_id_bytes(req.key_id))

    def _withdraw(self, tx: SignedTx, p: Withdrawal, apply: bool) -> None:
        """A party gives up its part of a pending session (see `Withdrawal`): recorded as
        a blame of the sender by itself, with the `WITHDRAWN_CHECK` check."""
        req = self.requests.get(p.request)
        if req is None:
            raise InvalidTransaction("no such request")
        if not p.reason or len(p.reason) > MAX_WITHDRAW_REASON:
            raise InvalidTransaction(
                f"a withdrawal gives a reason of 1 to {MAX_WITHDRAW_REASON} characters"
            )
        if tx.sender not in self._voters_of(req):
            raise InvalidTransaction("the sender is not a party of this session")
        me = req.parties.index(tx.sender) + 1
        if req.kind == "presign":
            unmade = [
                pid
                for pid, r in self.presigs.items()
                if pid[:32] == p.request and not r.ready and tx.sender not in r.voters
            ]
            if not unmade:
                raise InvalidTransaction("the sender owes no presignature of this request")
        elif req.status != "pending":
            raise InvalidTransaction(f"the request is already {req.status}")
        if len(req.blames) >= 16:
            raise InvalidTransaction("this request already holds the maximum number of blames")
        if not apply:
            return
        blame = Blame(b"", 0, (me,), f"{WITHDRAWN_CHECK}: {p.reason}", ())
        status = "failed" if req.kind != "presign" else req.status
        self.requests[p.request] = RequestRecord(
            req.kind, req.sender, req.height, req.payload, req.key_id, req.parties,
            req.signers, status, req.result, (*req.blames, blame), req.presig,
        )  # fmt: skip
        self._set(T_REQUESTS, p.request)
        if req.kind == "presign":
            self._drop_presigs(lambda pid, r: r.ready or pid[:32] != p.request)
        if req.kind == "refresh":
            self.keys[req.key_id] = self.keys[req.key_id].with_refreshing(b"")
            self._set(T_KEYS, layout.key_id_bytes(req.key_id))
