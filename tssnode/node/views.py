"""The node's answers to the API's reads: status, validators, keys, signatures,
sessions and blocks, as JSON-ready dicts (`NodeCore` includes them)."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import tssnode
from tssnode.crypto.addresses import btc_p2wpkh, eth_address
from tssnode.crypto.encoding import decode_any, to_plain
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

if TYPE_CHECKING:
    pass


def key_view(rec: KeyRecord | None, req: RequestRecord | None, network: str) -> dict[str, Any]:
    """The API's key object (docs/api.md)."""
    if rec is not None:
        key = rec.key
        return {
            "key_id": rec.key_id,
            "status": "active",
            "public_key": key.public_key.to_bytes().hex(),
            "threshold": key.threshold,
            "parties": [pid(p) for p in rec.parties],
            "holders": [pid(p) for p in rec.parties if rec.holds(p)],
            "epoch": key.epoch,
            "tier": key.params.name,
            "addresses": addresses(key, network),
            "height": rec.created,
            "error": None,
            "purpose": rec.purpose,
        }
    assert req is not None
    request = keygen_request(req.payload)
    return {
        "key_id": req.key_id,
        "status": "failed" if req.status == "failed" else "pending",
        "public_key": None,
        "threshold": request.threshold,
        "parties": [pid(p) for p in request.parties],
        "holders": [],
        "epoch": 0,
        "tier": request.tier,
        "addresses": None,
        "height": req.height,
        "error": req.blames[-1].check if req.blames else None,
    }


def pid(validator_key: bytes) -> str:
    """A validator's libp2p peer id (its Ed25519 key is its libp2p identity)."""
    return peerid.to_text(peerid.from_public_key(validator_key))


def addresses(key: KeyPublic, network: str = "mainnet") -> dict[str, str]:
    return {"eth": eth_address(key.public_key), "btc_p2wpkh": btc_p2wpkh(key.public_key, network)}


class NodeViews(CoreParts):
    """The read side of the API facade."""

    # -- facade: reads ----------------------------------------------------------------------
    def health(self) -> tuple[bool, str | None]:
        """(healthy, why not): the answer of `/health`."""
        report = self.liveness()
        return report.healthy, report.reason

    def status(self) -> dict[str, Any]:
        r = self.replica
        live = self.liveness()
        return {
            "peer_id": self.peer_name,
            "validator_key": self.identity.public_bytes().hex(),
            "chain_id": r.chain.chain_id.hex(),
            "height": r.height,
            "view": r.view,
            "primary": pid(r.primary()),
            "is_primary": r.is_primary,
            "validators": len(r.config()),
            "version": tssnode.__version__,
            "uptime_s": round(time.time() - self.started, 1),
            "last_block_age_s": live.last_block_age_s,
            "pending_requests": live.pending_requests,
            "view_change": live.view_change,
            "validators_online": live.validators_online,
            "quorum": live.quorum,
            "stalled": live.stalled,
            "below_quorum": live.below_quorum,
            "liveness": live.reason,
        }

    def validators(self) -> list[dict[str, Any]]:
        offline = self.offline()
        holdings: dict[bytes, list[str]] = {}
        for rec in self.registry.keys.values():
            for p in rec.parties:
                holdings.setdefault(p, []).append(rec.key_id)
        return [
            {
                "peer_id": pid(v),
                "validator_key": v.hex(),
                "name": val.name if (val := self.state.validators.get(v)) is not None else None,
                "index": i + 1,
                "status": "offline" if v in offline else "online",
                "keys": holdings.get(v, []),
            }
            for i, v in enumerate(self.replica.config())
        ]

    def keys(self) -> list[dict[str, Any]]:
        out = [self._key(rec.key_id) for rec in self.registry.keys.values()]
        for tx_hash, req in self.registry.requests.items():
            if req.kind == "keygen" and req.status != "done":
                out.append(self._pending_key(tx_hash, req))
        return out

    def _pending_key(self, tx_hash: bytes, req: RequestRecord) -> dict[str, Any]:
        view = key_view(None, req, self.btc_network)
        view["key_id"] = tx_hash.hex()
        return view

    def _key(self, key_id: str) -> dict[str, Any]:
        rec = self.registry.keys[key_id]
        view = key_view(rec, None, self.btc_network)
        # the ledger's pool (what a sign request can take), not this node's own share of it
        view["presignatures"] = self.registry.pool_size(key_id, ready_only=True)
        view["presignatures_pending"] = self.registry.pool_size(key_id) - view["presignatures"]
        view["presignatures_mine"], view["presignatures_held"] = self._my_presignatures(rec)
        return view

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

    def key(self, key_id: str) -> dict[str, Any] | None:
        if key_id in self.registry.keys:
            return self._key(key_id)
        try:
            raw = bytes.fromhex(key_id)
        except ValueError:
            return None
        raw, previous = self._latest_try(raw)
        req = self.registry.requests.get(raw)
        if req is None:
            mine = self.submitted.get(raw)
            if not isinstance(mine, KeygenRequest):
                return None
            failure = self._failure(raw)
            return {
                "key_id": key_id,
                "status": "failed" if failure else "pending",
                "public_key": None,
                "threshold": mine.threshold,
                "parties": [pid(p) for p in mine.parties],
                "epoch": 0,
                "tier": mine.tier,
                "addresses": None,
                "height": None,
                "error": failure,
            }
        if req.kind != "keygen":
            return None
        view = self._key(req.key_id) if req.status == "done" else self._pending_key(raw, req)
        if previous:
            view["previous"] = previous  # the earlier tries, oldest first, and why each failed
        return view

    def _latest_try(self, raw: bytes) -> tuple[bytes, list[dict[str, Any]]]:
        """The latest retry of request `raw` (retries made at any node), and the tries
        before it, oldest first, each with its status and the blame that failed it."""
        previous: list[dict[str, Any]] = []
        while raw in self.retried and len(previous) < 64:
            old = self.registry.requests.get(raw)
            previous.append({
                "request": raw.hex(),
                "status": old.status if old is not None else "failed",
                "blame": _blame_view(old.blames[-1]) if old is not None and old.blames else None,
            })  # fmt: skip
            raw = self.retried[raw]
        return raw, previous

    def _failure(self, tx: bytes) -> str | None:
        """Why an accepted request that never reached a block can no longer get there."""
        rec = self.accepted.get(tx)
        return None if rec is None else rec.failure

    def signature(self, signature_id: str) -> dict[str, Any] | None:
        try:
            raw = bytes.fromhex(signature_id)
        except ValueError:
            return None
        raw, previous = self._latest_try(raw)
        for earlier in previous:
            earlier["signature_id"] = earlier.pop("request")
        attempts = len(previous) + 1
        req = self.registry.requests.get(raw)
        if req is None:
            asked = self.submitted.get(raw)
            if not isinstance(asked, SignRequest | AppSignRequest):
                return None
            mine = asked.as_sign_request() if isinstance(asked, AppSignRequest) else asked
            failure = self._failure(raw)
            return {
                "signature_id": signature_id,
                "status": "failed" if failure else "pending",
                "key_id": mine.key_id,
                "digest": mine.digest.hex(),
                "r": None,
                "s": None,
                "v": None,
                "signers": [],
                "height": None,
                "blame": None,
                "error": failure,
            }
        if req.kind != "sign":
            return None
        p = sign_request(req.payload)  # (a plain request, or an application's)
        out: dict[str, Any] = {
            "signature_id": signature_id,
            "status": req.status,
            "key_id": req.key_id,
            "path": "/".join(["m", *map(str, p.path)]) if p.path else None,
            "digest": p.digest.hex(),
            "signers": [pid(req.parties[j - 1]) for j in req.signers],
            "height": req.height,
            "r": None,
            "s": None,
            "v": None,
            "blame": None,
            "attempts": attempts,
            "previous": previous,  # the earlier tries, oldest first, and why each failed
        }
        if req.status == "done":
            sig = decode_any(req.result)
            out.update(r=f"{sig.r:064x}", s=f"{sig.s:064x}", v=sig.eth_v())  # type: ignore[attr-defined]
        if req.blames:
            out["blame"] = _blame_view(req.blames[-1])
        return out

    def sessions_view(self) -> list[dict[str, Any]]:
        now = time.time()
        out = []
        for info in self.executor.sessions.values():
            d = asdict(info)
            live = self.sessions.get(bytes.fromhex(info.session_id))
            if live is not None:
                d["round"] = live.round.number
                d["waiting_for"] = sorted({p for p, _ in live.round.expected()})
            end = info.finished or now
            d["elapsed_s"] = round(end - info.started, 3)
            d["rounds"] = ROUNDS.get(info.phase)
            out.append(d)
        return out

    def blocks(self, start: int, limit: int) -> list[dict[str, Any]]:
        chain = self.replica.chain
        return [self._block(rec) for rec in chain.records(max(start, 1), limit)]

    def block(self, height: int) -> dict[str, Any] | None:
        rec = self.replica.chain.record(height)
        return None if rec is None else self._block(rec, full=True)

    def _block(self, rec: Any, full: bool = False) -> dict[str, Any]:
        b = rec.block
        txs = [SignedTx.from_bytes(raw) for raw in b.batch.txs]
        note = self.replica.chain.note(b.height)
        return {
            "height": b.height,
            "hash": b.hash.hex(),
            "prev_hash": b.prev_hash.hex(),
            "proposer": pid(rec.proposer),
            "view": rec.view,
            # this node's clock and measurement, not part of the block (see BlockNote)
            "time": None if note is None else note.committed_ms / 1000,
            "commit_latency_ms": None if note is None else note.latency_ms,
            "txs": [self._tx(t, b.height, full) for t in txs],
            "certificate": {
                "view": rec.certificate.view,
                "signers": [pid(signer) for signer, _ in rec.certificate.votes],
                "quorum": len(rec.certificate.votes),
            },
        }

    def _tx(self, tx: SignedTx, height: int | None, full: bool = True) -> dict[str, Any]:
        payload = tx.decode_payload()
        kind = type(current(payload))  # (a purpose-less keygen request: version 1's bytes)
        out: dict[str, Any] = {
            "hash": tx.hash.hex(),
            "kind": kind.__name__,
            "submitter": pid(tx.sender),
            "height": height,
        }
        if full:
            out["payload"] = _jsonable(to_plain(payload))
        return out

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        raw = bytes.fromhex(tx_hash)
        loc = self.replica.chain.tx_location(raw)
        if loc is None:
            return None
        height, index = loc
        rec = self.replica.chain.record(height)
        return self._tx(SignedTx.from_bytes(rec.block.batch.txs[index]), height)


def _blame_view(b: Any) -> dict[str, Any]:
    return {"culprits": list(b.culprits), "check": b.check, "round": b.round}


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
