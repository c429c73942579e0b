"""The node's answers to the API's reads: status, validators, keys, signatures,
sessions and blocks, as the API's response models (`tssnode.schema`; `NodeCore` includes
them)."""

from __future__ import annotations

import time
from typing import Any, TypeVar, cast

import tssnode
from tssnode import schema
from tssnode.crypto.addresses import btc_p2wpkh, eth_address
from tssnode.crypto.encoding import decode_any, to_plain
from tssnode.crypto.signature import Signature
from tssnode.ledger.transactions import SignedTx
from tssnode.net import peerid
from tssnode.node.executor import ROUNDS
from tssnode.node.parts import CoreParts
from tssnode.node.recovery import vault_id
from tssnode.protocol.material import KeyPublic
from tssnode.registry.records import (
    KeyRecord,
    RequestRecord,
)
from tssnode.registry.transactions import (
    AppSignRequest,
    KeygenRequest,
    SignRequest,
    current,
    keygen_request,
    sign_request,
)


def key_view(rec: KeyRecord | None, req: RequestRecord | None, network: str) -> schema.Key:
    """The API's key object (docs/api.md): an active key, or a keygen request's."""
    if rec is not None:
        key = rec.key
        return schema.Key(
            key_id=rec.key_id,
            status="active",
            public_key=key.public_key.to_bytes().hex(),
            threshold=key.threshold,
            parties=[pid(p) for p in rec.parties],
            holders=[pid(p) for p in rec.parties if rec.holds(p)],
            epoch=key.epoch,
            tier=key.params.name,
            addresses=addresses(key, network),
            height=rec.created,
            error=None,
            purpose=rec.purpose,
        )
    assert req is not None
    request = keygen_request(req.payload)
    return schema.Key(
        key_id=req.key_id,
        status="failed" if req.status == "failed" else "pending",
        public_key=None,
        threshold=request.threshold,
        parties=[pid(p) for p in request.parties],
        holders=[],
        epoch=0,
        tier=request.tier,
        addresses=None,
        height=req.height,
        error=req.blames[-1].check if req.blames else None,
    )


def pid(validator_key: bytes) -> str:
    """A validator's libp2p peer id (its Ed25519 key is its libp2p identity)."""
    return peerid.to_text(peerid.from_public_key(validator_key))


def addresses(key: KeyPublic, network: str = "mainnet") -> schema.Addresses:
    return schema.Addresses(
        eth=eth_address(key.public_key), btc_p2wpkh=btc_p2wpkh(key.public_key, network)
    )


class NodeViews(CoreParts):
    """The read side of the API facade."""

    # -- facade: reads ----------------------------------------------------------------------
    def health(self) -> tuple[bool, str | None]:
        """(healthy, why not): the answer of `/health`."""
        report = self.liveness()
        return report.healthy, report.reason

    def status(
        self,
        *,
        network: str,
        peers_connected: int,
        addrs: list[str],
        warnings: list[str],
        admission: schema.Admission,
        buffers: dict[str, dict[str, Any]],
        api_refused: dict[str, int],
    ) -> schema.Status:
        """`GET /status`: the ledger's side here, the network's and the API's as given."""
        r = self.replica
        live = self.liveness()
        return schema.Status(
            peer_id=self.peer_name,
            validator_key=self.identity.public_bytes().hex(),
            chain_id=r.chain.chain_id.hex(),
            height=r.height,
            view=r.view,
            primary=pid(r.primary()),
            is_primary=r.is_primary,
            validators=len(r.config()),
            version=tssnode.__version__,
            uptime_s=round(time.time() - self.started, 1),
            last_block_age_s=live.last_block_age_s,
            pending_requests=live.pending_requests,
            view_change=live.view_change,
            validators_online=live.validators_online,
            quorum=live.quorum,
            stalled=live.stalled,
            below_quorum=live.below_quorum,
            liveness=live.reason,
            network=network,
            peers_connected=peers_connected,
            addrs=addrs,
            warnings=warnings,
            admission=admission,
            buffers=buffers,
            api_refused=api_refused,
        )

    def validators(self) -> list[schema.Validator]:
        offline = self.offline()
        holdings: dict[bytes, list[str]] = {}
        for rec in self.registry.keys.values():
            for p in rec.parties:
                holdings.setdefault(p, []).append(rec.key_id)
        return [
            schema.Validator(
                peer_id=pid(v),
                validator_key=v.hex(),
                name=val.name if (val := self.state.validators.get(v)) is not None else None,
                index=i + 1,
                status="offline" if v in offline else "online",
                keys=holdings.get(v, []),
            )
            for i, v in enumerate(self.replica.config())
        ]

    def keys(self) -> list[schema.Key]:
        out = [self._key(rec.key_id) for rec in self.registry.keys.values()]
        for tx_hash, req in self.registry.requests.items():
            if req.kind == "keygen" and req.status != "done":
                out.append(self._pending_key(tx_hash, req))
        return out

    def _pending_key(self, tx_hash: bytes, req: RequestRecord) -> schema.Key:
        return _with(key_view(None, req, self.btc_network), key_id=tx_hash.hex())

    def _key(self, key_id: str) -> schema.Key:
        rec = self.registry.keys[key_id]
        # the ledger's pool (what a sign request can take), not this node's own share of it
        ready = self.registry.pool_size(key_id, ready_only=True)
        mine, held = self._my_presignatures(rec)
        return _with(
            key_view(rec, None, self.btc_network),
            presignatures=ready,
            presignatures_pending=self.registry.pool_size(key_id) - ready,
            presignatures_mine=mine,
            presignatures_held=held,
        )

    def _my_presignatures(self, rec: KeyRecord) -> tuple[int, int]:
        """Of the key's ready pooled presignatures, those this node is a signer of, and of
        those the ones its vault holds (a node that lost one holds fewer: the fault runner
        checks they are equal)."""
        me = self.identity.public_bytes()
        if me not in rec.parties:
            return 0, 0
        j = rec.parties.index(me) + 1
        stored = set(self.vault.presignature_ids(rec.key_id))  # (ids only: nothing unsealed)
        mine = held = 0
        for pid, r in self.registry.presigs.items():
            if r.ready and r.key_id == rec.key_id and r.epoch == rec.key.epoch and j in r.signers:
                mine += 1
                held += vault_id(pid) in stored
        return mine, held

    def key(self, key_id: str) -> schema.Key | None:
        if key_id in self.registry.keys:
            return self._key(key_id)
        try:
            raw = bytes.fromhex(key_id)
        except ValueError:
            return None
        raw, tries = self._latest_try(raw)
        req = self.registry.requests.get(raw)
        if req is None:
            mine = self.submitted.get(raw)
            if not isinstance(mine, KeygenRequest):
                return None
            failure = self._failure(raw)
            return schema.Key(
                key_id=key_id,
                status="failed" if failure else "pending",
                public_key=None,
                threshold=mine.threshold,
                parties=[pid(p) for p in mine.parties],
                epoch=0,
                tier=mine.tier,
                addresses=None,
                height=None,
                error=failure,
            )
        if req.kind != "keygen":
            return None
        view = self._key(req.key_id) if req.status == "done" else self._pending_key(raw, req)
        if tries:  # the earlier tries, oldest first, and why each failed
            previous = [schema.KeyTry(request=t, status=st, blame=b) for t, st, b in tries]
            view = _with(view, previous=previous)
        return view

    def _latest_try(
        self, raw: bytes
    ) -> tuple[bytes, list[tuple[str, schema.RequestStatus, schema.Blame | None]]]:
        """The latest retry of request `raw` (retries made at any node), and the tries
        before it, oldest first: each its request id, status and the blame that failed it."""
        tries: list[tuple[str, schema.RequestStatus, schema.Blame | None]] = []
        while raw in self.retried and len(tries) < 64:
            old = self.registry.requests.get(raw)
            status = request_status(old.status) if old is not None else "failed"
            blame = _blame_view(old.blames[-1]) if old is not None and old.blames else None
            tries.append((raw.hex(), status, blame))
            raw = self.retried[raw]
        return raw, tries

    def _failure(self, tx: bytes) -> str | None:
        """Why an accepted request that never reached a block can no longer get there."""
        rec = self.accepted.get(tx)
        return None if rec is None else rec.failure

    def signature(self, signature_id: str) -> schema.Signature | None:
        try:
            raw = bytes.fromhex(signature_id)
        except ValueError:
            return None
        raw, tries = self._latest_try(raw)
        req = self.registry.requests.get(raw)
        if req is None:
            asked = self.submitted.get(raw)
            if not isinstance(asked, SignRequest | AppSignRequest):
                return None
            mine = asked.as_sign_request() if isinstance(asked, AppSignRequest) else asked
            failure = self._failure(raw)
            return schema.Signature(
                signature_id=signature_id,
                status="failed" if failure else "pending",
                key_id=mine.key_id,
                digest=mine.digest.hex(),
                r=None,
                s=None,
                v=None,
                signers=[],
                height=None,
                blame=None,
                error=failure,
            )
        if req.kind != "sign":
            return None
        p = sign_request(req.payload)  # (a plain request, or an application's)
        r = s = v = None
        if req.status == "done":
            sig = decode_any(req.result)
            assert isinstance(sig, Signature)  # (what a done sign request's result holds)
            r, s, v = f"{sig.r:064x}", f"{sig.s:064x}", sig.eth_v()
        return schema.Signature(
            signature_id=signature_id,
            status=request_status(req.status),
            key_id=req.key_id,
            path="/".join(["m", *map(str, p.path)]) if p.path else None,
            digest=p.digest.hex(),
            signers=[pid(req.parties[j - 1]) for j in req.signers],
            height=req.height,
            r=r,
            s=s,
            v=v,
            blame=_blame_view(req.blames[-1]) if req.blames else None,
            attempts=len(tries) + 1,
            # the earlier tries, oldest first, and why each failed
            previous=[
                schema.SignatureTry(signature_id=t, status=st, blame=b) for t, st, b in tries
            ],
        )

    def sessions_view(self) -> list[schema.Session]:
        now = time.time()
        out = []
        for info in self.executor.sessions.values():
            live = self.sessions.get(bytes.fromhex(info.session_id))
            round_, waiting = info.round, info.waiting_for
            if live is not None:
                round_ = live.round.number
                waiting = sorted({p for p, _ in live.round.expected()})
            end = info.finished or now
            out.append(
                schema.Session(
                    session_id=info.session_id,
                    phase=cast(schema.Phase, info.phase),
                    request=info.request,
                    key_id=info.key_id,
                    parties=info.parties,
                    started=info.started,
                    status=cast(schema.SessionStatus, info.status),
                    round=round_,
                    waiting_for=waiting,
                    culprits=info.culprits,
                    error=info.error,
                    finished=info.finished,
                    elapsed_s=round(end - info.started, 3),
                    rounds=ROUNDS.get(info.phase),
                )
            )
        return out

    def blocks(self, start: int, limit: int) -> list[schema.Block]:
        chain = self.replica.chain
        return [self._block(rec) for rec in chain.records(max(start, 1), limit)]

    def block(self, height: int) -> schema.Block | None:
        rec = self.replica.chain.record(height)
        return None if rec is None else self._block(rec, full=True)

    def _block(self, rec: Any, full: bool = False) -> schema.Block:
        b = rec.block
        txs = [SignedTx.from_bytes(raw) for raw in b.batch.txs]
        note = self.replica.chain.note(b.height)
        return schema.Block(
            height=b.height,
            hash=b.hash.hex(),
            prev_hash=b.prev_hash.hex(),
            proposer=pid(rec.proposer),
            view=rec.view,
            # this node's clock and measurement, not part of the block (see BlockNote)
            time=None if note is None else note.committed_ms / 1000,
            commit_latency_ms=None if note is None else note.latency_ms,
            txs=[self._tx(t, b.height, full) for t in txs],
            certificate=schema.Certificate(
                view=rec.certificate.view,
                signers=[pid(signer) for signer, _ in rec.certificate.votes],
                quorum=len(rec.certificate.votes),
            ),
        )

    def _tx(self, tx: SignedTx, height: int, full: bool = True) -> schema.Transaction:
        payload = tx.decode_payload()
        kind = type(current(payload))  # (a purpose-less keygen request: version 1's bytes)
        view = schema.Transaction(
            hash=tx.hash.hex(), kind=kind.__name__, submitter=pid(tx.sender), height=height
        )
        if full:
            view = _with(view, payload=_jsonable(to_plain(payload)))
        return view

    def transaction(self, tx_hash: str) -> schema.Transaction | None:
        raw = bytes.fromhex(tx_hash)
        loc = self.replica.chain.tx_location(raw)
        if loc is None:
            return None
        height, index = loc
        rec = self.replica.chain.record(height)
        return self._tx(SignedTx.from_bytes(rec.block.batch.txs[index]), height)


M = TypeVar("M", bound=schema.Response)


def _with(view: M, **fields: Any) -> M:
    """`view` with `fields` added, validated as its model (`model_copy` would not check
    them) and with the fields it was given still the only ones it sends."""
    return type(view).model_validate({**view.model_dump(exclude_unset=True), **fields})


def request_status(status: str) -> schema.RequestStatus:
    """A request record's status as the schema names it (the ledger keeps it as text)."""
    return cast(schema.RequestStatus, status)


def _blame_view(b: Any) -> schema.Blame:
    return schema.Blame(culprits=list(b.culprits), check=b.check, round=b.round)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(_jsonable(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, int) and abs(value) >= 2**53:
        return hex(value)
    return value
