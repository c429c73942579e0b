"""The node: one process that wires the net layer, the ledger, the vault, protocol
sessions and the control API (ARCHITECTURE.md, "One request, end to end").

Start-up order, each service ready before the next (`nursery.start`):

1. the store (one LevelDB; a second opener gets `StoreLocked`) and the vault (sealed
   secrets; the passphrase from `vaultkey`, a wrong one is `WrongPassphrase`), before
   anything touches the network;
2. the net layer (identity, host, gossip, bootstrap dialling); admission follows the
   ledger (`daemon`): validators send anything, followers, joiners and a few newcomers
   only read the chain (so a new node can follow it before it is voted in), everyone
   else is refused at the handshake; what counts is checked above it: ledger votes only
   from validators, protocol envelopes only from the session's parties, each signed by
   its sender;
3. the genesis (the file, or learnt from the bootstrap peers), then the ledger replica
   over the net layer;
4. the executor (sessions for committed requests), the prime reserve, the message router;
5. the HTTP API (hypercorn's trio worker) on the configured loopback address.

Everything a request needs travels through the ledger: an API call becomes a transaction,
and the same committed block starts the same session on every party.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

import tssnode
from tssnode.api.facade import RequestRejected
from tssnode.crypto.addresses import btc_p2wpkh, eth_address
from tssnode.crypto.derivation import DerivationError, derive, parse_path
from tssnode.crypto.encoding import decode_any, to_plain
from tssnode.crypto.identity import IdentityKey
from tssnode.errors import EncodingError
from tssnode.ledger.blocks import Block
from tssnode.ledger.errors import InvalidTransaction
from tssnode.ledger.service import ReplicaService
from tssnode.ledger.state import (
    MAX_PRESIGN_COUNT,
    MAX_SIGN_MESSAGE,
    WITHDRAWN_CHECK,
    KeyRecord,
    RequestRecord,
)
from tssnode.ledger.transactions import (
    KeygenRequest,
    Payload,
    PresignRequest,
    RefreshRequest,
    SignedTx,
    SignRequest,
    ValidatorJoin,
    join_payload,
)
from tssnode.net import peerid
from tssnode.net.limits import Bounds, Quota
from tssnode.node.accepted import AcceptedRequests
from tssnode.node.events import EventBus
from tssnode.node.executor import ROUNDS, TIMEOUT_CHECK, Executor
from tssnode.node.liveness import STALL_AFTER, Liveness, Watchdog, assess
from tssnode.node.primes import PrimeReserve
from tssnode.node.sessions import Session, SessionResult, SessionTimeout, SessionTransport
from tssnode.protocol.base import ProtocolAbort, Round, SessionConfig
from tssnode.protocol.hashing import message_digest
from tssnode.protocol.material import KeyPublic
from tssnode.store import layout
from tssnode.store.vault import Vault

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger("tssnode.node")

#: Blocks between writes of the height up to which retry links are indexed.
RETRY_INDEX_EVERY = 64
#: Seconds after start-up in which a missing quorum is not logged (peers are being dialled).
STARTUP_GRACE = 10.0

#: How long a finished presign or sign session keeps serving a peer's identification step.
LINGER_SECONDS = 30.0
#: A sign request not done by then is retried without the parties that failed it.
SIGN_DEADLINE = 45.0
SIGN_ATTEMPTS = 3
#: A keygen or refresh that failed because a party went silent is asked again this often,
#: once the party is back (or after RETRY_WAIT seconds).
RETRY_ATTEMPTS = 3
RETRY_WAIT = 300.0
#: Blames that say only that a party went silent or gave up (no evidence of a fault):
#: a keygen or refresh failed by them is asked again.
SILENCE = (TIMEOUT_CHECK, WITHDRAWN_CHECK)


#: Protocol messages for a session not started here yet live this long at most: a session
#: starts on every party when the same block commits, so its early messages are seconds
#: early; messages for a session id that never starts (issue 13) must not stay for good.
EARLY_TTL = 60.0
#: ...and are bounded per sender and in all, so that made-up session ids from one
#: validator push out its own messages, not the early messages of real sessions from
#: the others (see `tssnode.net.limits.Quota`).
EARLY_BOUNDS = Bounds(
    owner_items=512,
    owner_bytes=8 * 1024 * 1024,
    total_items=4096,
    total_bytes=64 * 1024 * 1024,
)
#: ...and per session.
EARLY_PER_SESSION = 512


class EarlyMessages:
    """Protocol messages held for sessions that have not started here yet."""

    def __init__(
        self,
        bounds: Bounds = EARLY_BOUNDS,
        ttl: float = EARLY_TTL,
        per_session: int = EARLY_PER_SESSION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quota: Quota[int] = Quota(bounds, ttl=ttl, clock=clock)
        self.per_session = per_session
        self._held: dict[bytes, OrderedDict[int, bytes]] = {}  # ssid → message id → data
        self._where: dict[int, bytes] = {}  # message id → ssid
        self._next = 0
        self.delivered = 0

    def __len__(self) -> int:
        """Sessions with messages held."""
        return len(self._held)

    def put(self, ssid: bytes, sender: bytes, data: bytes) -> None:
        box = self._held.setdefault(ssid, OrderedDict())
        if len(box) >= self.per_session:
            self._discard(self.quota.evict(next(iter(box)), "session_items"))
            box = self._held.setdefault(ssid, OrderedDict())
        self._next += 1
        box[self._next] = data
        self._where[self._next] = ssid
        for victim in self.quota.add(sender, self._next, len(data)):
            self._discard(victim)

    def take(self, ssid: bytes) -> list[bytes]:
        """The messages held for a session that starts now, oldest first."""
        self.expire()
        box = self._held.pop(ssid, None)
        if not box:
            return []
        for mid in box:
            self.quota.remove(mid)
            del self._where[mid]
        self.delivered += len(box)
        return list(box.values())

    def expire(self) -> None:
        for victim in self.quota.expire():
            self._discard(victim)

    def _discard(self, mid: int) -> None:
        """Forget one message the quota pushed out (or refused)."""
        ssid = self._where.pop(mid, None)
        box = None if ssid is None else self._held.get(ssid)
        if ssid is None or box is None:
            return
        box.pop(mid, None)
        if not box:
            del self._held[ssid]

    def snapshot(self) -> dict[str, Any]:
        return {"sessions": len(self._held), "delivered": self.delivered, **self.quota.snapshot()}


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
        }
    assert req is not None
    request = KeygenRequest.from_bytes(req.payload)
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


class NodeCore:
    """The node's logic between the ledger and the sessions, and the API facade.

    Network-independent: `Node` (below) runs it over libp2p; tests can run several in one
    process over the ledger's memory transport.
    """

    def __init__(
        self,
        *,
        identity: IdentityKey,
        service: ReplicaService,
        vault: Vault,
        events: EventBus,
        primes: PrimeReserve,
        peer_name: str,
        transport_for: Callable[[SessionConfig], SessionTransport],
        offline: Callable[[], set[bytes]] = set,
        btc_network: str = "mainnet",
        default_tier: str = "standard",
        presign_pool: int = 0,
        forget_session: Callable[[bytes], None] = lambda _ssid: None,
        round_timeout: float = 120.0,
        stall_after: float = STALL_AFTER,
    ) -> None:
        self.identity = identity
        self.service = service
        self.vault = vault
        self.events = events
        self.primes = primes
        self.peer_name = peer_name
        self.transport_for = transport_for
        self.offline = offline
        #: a failed sign request → the request that retried it (the API follows the chain)
        self.retried: dict[bytes, bytes] = {}
        self.btc_network = btc_network
        self.default_tier = default_tier
        #: ready + pending pooled presignatures to keep per key (0: no pool)
        self.presign_pool = presign_pool
        self.round_timeout = round_timeout
        self.forget_session = forget_session
        #: presign requests this node submitted to refill a pool, not yet committed
        self._refilling: dict[str, tuple[bytes, int]] = {}  # key id → (tx, height)
        self._block_seen = trio.Event()
        self.started = time.time()
        #: when this process last saw a block commit (or started): the liveness clock
        self.last_block_at = time.monotonic()
        self.stall_after = stall_after
        self.watchdog = Watchdog(started=self.last_block_at, grace=STARTUP_GRACE)
        self.limiter = trio.CapacityLimiter(2)
        self.sessions: dict[bytes, Session] = {}
        self.early = EarlyMessages()
        self.nursery: trio.Nursery | None = None
        #: Requests submitted here, known before their block commits.
        self.submitted: dict[bytes, KeygenRequest | RefreshRequest | SignRequest] = {}
        #: ...and journalled, so that a restart loses none of them (`accepted`)
        self.accepted = AcceptedRequests(vault.store)
        #: accepted here and not yet seen in a block: tx hash → expiry height
        self._unordered: dict[bytes, int] = {}
        self.executor = Executor(
            identity=identity,
            vault=vault,
            events=events,
            submit=self.submit,
            open_session=self.open_session,
            primes=primes,
        )

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def replica(self) -> Any:
        return self.service.replica

    @property
    def state(self) -> Any:
        return self.service.replica.chain.state

    def submit(self, payload: Payload) -> bytes:
        tx = self.service.submit_payload(payload)
        if isinstance(payload, KeygenRequest | RefreshRequest | SignRequest):
            self.submitted[tx] = payload
        return tx

    def accept(self, payload: Payload, *, retry_of: bytes | None = None) -> bytes:
        """A client's request: checked, journalled (synced), then handed to the replica,
        which relays it and re-sends it to the primary until it is ordered. The caller
        answers 202 after this returns; `InvalidTransaction` says why it is refused.
        `retry_of`: the request this one asks again; it becomes the transaction's nonce,
        so every node can follow the old id to this one (`_index_retries`)."""
        tx: SignedTx = self.replica.sign_payload(payload, nonce=retry_of)
        self.state.check(tx)
        self.accepted.accept(tx)
        self._unordered[tx.hash] = tx.expiry
        if isinstance(payload, KeygenRequest | RefreshRequest | SignRequest):
            self.submitted[tx.hash] = payload
        self.service.submit(tx)
        return tx.hash

    # -- retries, followed at every node ----------------------------------------------------

    def _index_retries(self, block: Block) -> None:
        """Note each request in `block` that retries an earlier one: a request whose nonce
        is the hash of a request of the same kind from the same sender. The retry made at
        one node is thus followed at every node, across restarts (kept under
        `layout.retry_link`, with the height indexed so far)."""
        links: list[tuple[bytes, bytes]] = []
        for raw in block.batch.txs:
            tx = SignedTx.from_bytes(raw)
            if len(tx.nonce) != 32 or tx.nonce == tx.hash:
                continue
            old, new = self.state.requests.get(tx.nonce), self.state.requests.get(tx.hash)
            if old is None or new is None or old.sender != tx.sender or old.kind != new.kind:
                continue
            self.retried[tx.nonce] = tx.hash
            links.append((tx.nonce, tx.hash))
        # (a synced write per block would cost an fsync each: write when there is a link,
        # and the height every RETRY_INDEX_EVERY blocks, which bounds the start-up scan)
        if links or block.height % RETRY_INDEX_EVERY == 0:
            with self.replica.chain.store.batch() as b:
                for old_hash, new_hash in links:
                    b.put(layout.retry_link(old_hash), new_hash)
                b.put(layout.meta("retry-index"), layout.u64(block.height))

    def _load_retries(self) -> None:
        """At start-up: the retry links kept, then those of blocks not indexed yet."""
        chain = self.replica.chain
        for key, value in chain.store.iterate(layout.RETRY_LINK):
            self.retried[key[1:]] = value
        raw = chain.store.get(layout.meta("retry-index"))
        done = layout.read_u64(raw) if raw else 0
        for rec in chain.records(done + 1, max(0, chain.height - done)):
            self._index_retries(rec.block)

    def _resume_accepted(self) -> None:
        """After a restart: every accepted request not yet in a block is submitted again
        (or failed with the reason it can no longer be ordered)."""
        self._load_retries()
        self.retried.update(self.accepted.links())
        chain, state = self.replica.chain, self.state
        for h, tx in self.accepted.unordered():
            payload = decode_any(tx.payload)
            if isinstance(payload, KeygenRequest | RefreshRequest | SignRequest):
                self.submitted[h] = payload
            if chain.tx_location(h) is not None or h in state.requests:
                self.accepted.ordered(h)
                continue
            if chain.height >= tx.expiry:
                self.accepted.failed(h, f"expired at height {tx.expiry} before it was ordered")
                continue
            try:
                self.service.submit(tx)
            except InvalidTransaction as exc:
                self.accepted.failed(h, f"the ledger refuses it now: {exc}")
                continue
            self._unordered[h] = tx.expiry
            log.info("accepted request %s submitted again after a restart", h.hex()[:12])
            self._follow(h, payload)
        for h in self.accepted.ordered_unretried():
            req = state.requests.get(h)
            if req is None or req.status != "pending":
                continue
            # in the ledger and under way: its retries go on (this node's own part of the
            # session is withdrawn by `Executor.recover`, which fails it at once)
            payload = decode_any(req.payload)
            if isinstance(payload, KeygenRequest | RefreshRequest | SignRequest):
                self.submitted[h] = payload
                self._follow(h, payload)

    def _follow(self, h: bytes, payload: Any) -> None:
        """Retry an accepted request as its kind calls for (see the two retry loops)."""
        if self.nursery is None:
            return
        if isinstance(payload, SignRequest):
            self.nursery.start_soon(self._retry_until_signed, h, SIGN_ATTEMPTS)
        elif isinstance(payload, KeygenRequest | RefreshRequest):
            self.nursery.start_soon(self._retry_when_silent, h, RETRY_ATTEMPTS)

    def _note_ordered(self, block: Block) -> None:
        """Accepted requests this block orders, and those that expired unordered."""
        if not self._unordered:
            return
        for raw in block.batch.txs:
            h = hashlib.sha256(raw).digest()  # = SignedTx.hash (its canonical encoding)
            if self._unordered.pop(h, None) is not None:
                self.accepted.ordered(h)
        for h, expiry in list(self._unordered.items()):
            if block.height >= expiry:
                del self._unordered[h]
                self.accepted.failed(h, f"expired at height {expiry} before it was ordered")

    def on_block(self, block: Block) -> None:
        self.last_block_at = time.monotonic()
        self._note_ordered(block)
        self._index_retries(block)
        note = self.replica.chain.note(block.height)
        latency = None if note is None else note.latency_ms
        log.info(
            "block %d committed: %d transactions%s", block.height, len(block.batch.txs),
            "" if latency is None else f", {latency} ms", extra={"height": block.height},
        )  # fmt: skip
        self.events.publish(
            "block.committed",
            height=block.height,
            hash=block.hash.hex(),
            txs=len(block.batch.txs),
            latency_ms=None if note is None else note.latency_ms,
        )
        self.executor.on_block(block, self.state)
        self._block_seen.set()  # the pool keeper looks again (never submit inside a block)

    async def _keep_pools(self) -> None:
        while True:
            await self._block_seen.wait()
            self._block_seen = trio.Event()
            self._refill_pools()

    def _refill_pools(self) -> None:
        """Keep every key's presignature pool at `presign_pool` (ready + being made).

        The primary asks (one asker, so the pool is not overfilled by four), for keys with
        no refresh under way; its own unconfirmed request counts until it commits.
        """
        if self.presign_pool <= 0 or not self.replica.is_primary:
            return
        st = self.state
        for key_id, rec in st.keys.items():
            ours = self._refilling.get(key_id)
            if ours is not None:
                tx, since = ours
                if tx not in st.requests and st.height <= since + st.genesis.tx_lifetime:
                    continue  # ours, not in a block yet (and not expired)
                del self._refilling[key_id]
            missing = self.presign_pool - st.pool_size(key_id)
            if missing <= 0 or rec.refreshing:
                continue
            try:
                tx = self.service.submit_payload(
                    PresignRequest(key_id, min(missing, MAX_PRESIGN_COUNT))
                )
            except InvalidTransaction as exc:
                log.info("presignature pool of %s not refilled: %s", key_id, exc)
                continue
            self._refilling[key_id] = (tx, st.height)

    async def open_session(self, cfg: SessionConfig, first: Round) -> SessionResult:
        transport = self.transport_for(cfg)
        session = Session(
            first,
            transport,
            events=self.events,
            limiter=self.limiter,
            round_timeout=self.round_timeout,
            total_rounds=ROUNDS.get(first.phase),
        )
        self.sessions[cfg.ssid] = session
        for data in self.early.take(cfg.ssid):
            session.offer(data)
        try:
            result = await session.run()
        except BaseException:
            self._end_session(cfg.ssid)
            raise
        if first.phase in ("presign", "sign") and self.nursery is not None:
            # keep answering a peer that starts the identification step, without holding
            # the result back (ours verified; the blame, if any, goes to the ledger)
            self.nursery.start_soon(self._linger, session, cfg.ssid)
        else:
            self._end_session(cfg.ssid)
        return result

    async def _linger(self, session: Session, ssid: bytes) -> None:
        try:
            await session.serve_identification(LINGER_SECONDS)
        except ProtocolAbort as exc:
            log.warning("identification after a finished session: %s", exc)
        except SessionTimeout:
            pass
        finally:
            self._end_session(ssid)

    def _end_session(self, ssid: bytes) -> None:
        """Forget a finished session; the network keeps its messages a while longer for
        a peer that is still catching up on them."""
        self.sessions.pop(ssid, None)
        if self.nursery is not None:
            self.nursery.start_soon(self._forget_later, ssid)
        else:
            self.forget_session(ssid)

    async def _forget_later(self, ssid: bytes) -> None:
        await trio.sleep(LINGER_SECONDS)
        self.forget_session(ssid)

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The executor and the background tasks of finished sessions."""
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self.executor.prune(self.state)  # in case the node stopped before it could
            self._resume_accepted()
            self.executor.recover(self.state)
            await nursery.start(self.executor.run)
            if self.presign_pool > 0:
                nursery.start_soon(self._keep_pools)
            nursery.start_soon(self._watch_liveness)
            task_status.started()

    def route(self, ssid: bytes, data: bytes, sender: bytes = b"") -> None:
        """An incoming protocol envelope (from the peer `sender`): to its session, or held
        until it starts, within `EARLY_TTL` and the `EARLY_BOUNDS` of its sender."""
        session = self.sessions.get(ssid)
        if session is not None:
            session.offer(data)
            return
        self.early.put(ssid, sender, data)

    async def _watch_liveness(self) -> None:
        """Log a stall or a lost quorum at WARNING when it starts (see `liveness`)."""
        while True:
            await trio.sleep(1.0)
            self.watchdog.observe(self.liveness(), time.monotonic(), self.replica.view)
            self.early.expire()  # (early messages of sessions that never started)

    def liveness(self) -> Liveness:
        r = self.replica
        config = set(r.config())
        online = len(config - self.offline())
        return assess(
            last_block_age=time.monotonic() - self.last_block_at,
            pending=len(r.pending),
            view_change=not r.active,
            validators=len(config),
            online=online,
            stall_after=self.stall_after,
        )

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
        for rec in self.state.keys.values():
            for p in rec.parties:
                holdings.setdefault(p, []).append(rec.key_id)
        return [
            {
                "peer_id": pid(v),
                "validator_key": v.hex(),
                "name": rec.name if (rec := self.state.validators.get(v)) is not None else None,
                "index": i + 1,
                "status": "offline" if v in offline else "online",
                "keys": holdings.get(v, []),
            }
            for i, v in enumerate(self.replica.config())
        ]

    def keys(self) -> list[dict[str, Any]]:
        out = [self._key(rec.key_id) for rec in self.state.keys.values()]
        for tx_hash, req in self.state.requests.items():
            if req.kind == "keygen" and req.status != "done":
                out.append(self._pending_key(tx_hash, req))
        return out

    def _pending_key(self, tx_hash: bytes, req: RequestRecord) -> dict[str, Any]:
        view = key_view(None, req, self.btc_network)
        view["key_id"] = tx_hash.hex()
        return view

    def _key(self, key_id: str) -> dict[str, Any]:
        rec = self.state.keys[key_id]
        view = key_view(rec, None, self.btc_network)
        # the ledger's pool (what a sign request can take), not this node's own share of it
        view["presignatures"] = self.state.pool_size(key_id, ready_only=True)
        view["presignatures_pending"] = self.state.pool_size(key_id) - view["presignatures"]
        return view

    def key(self, key_id: str) -> dict[str, Any] | None:
        if key_id in self.state.keys:
            return self._key(key_id)
        try:
            raw = bytes.fromhex(key_id)
        except ValueError:
            return None
        raw, previous = self._latest_try(raw)
        req = self.state.requests.get(raw)
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
            old = self.state.requests.get(raw)
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
        req = self.state.requests.get(raw)
        if req is None:
            mine = self.submitted.get(raw)
            if not isinstance(mine, SignRequest):
                return None
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
        p = SignRequest.from_bytes(req.payload)
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
        out: dict[str, Any] = {
            "hash": tx.hash.hex(),
            "kind": type(payload).__name__,
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

    # -- facade: requests -------------------------------------------------------------------
    def _submit(self, payload: Payload) -> bytes:
        """A client's request: refused with 503 while the ledger cannot commit (below
        quorum), with 409 when the ledger would refuse it; else durable (`accept`)."""
        live = self.liveness()
        if live.below_quorum:
            raise RequestRejected(503, f"not accepted: {live.reason}")
        try:
            return self.accept(payload)
        except InvalidTransaction as exc:
            raise RequestRejected(409, str(exc)) from None

    def _validators_named(self, parties: list[str] | None) -> tuple[bytes, ...]:
        """Validator keys for peer ids or key hex (None: every validator), in key order."""
        validators = tuple(self.replica.config())
        if parties is None:
            return validators
        by_name = {pid(v): v for v in validators} | {v.hex(): v for v in validators}
        unknown = [p for p in parties if p not in by_name]
        if unknown:
            raise RequestRejected(422, f"not a validator: {unknown[0]}")
        return tuple(sorted({by_name[p] for p in parties}))

    async def request_keygen(self, threshold: int, parties: list[str] | None) -> dict[str, Any]:
        chosen = self._validators_named(parties)
        if not 0 <= threshold < len(chosen):
            raise RequestRejected(422, f"threshold must be in [0, {len(chosen) - 1}]")
        tx = self._submit(KeygenRequest(threshold, chosen, self.default_tier))
        if self.nursery is not None:
            self.nursery.start_soon(self._retry_when_silent, tx, RETRY_ATTEMPTS)
        return {"key_id": tx.hex(), "tx": tx.hex()}

    def _active(self, key_id: str) -> KeyRecord:
        """The active key named by its key id, or by the id `POST /keygen` returned (the
        keygen request's, followed through the retries made here)."""
        rec = self.state.keys.get(key_id)
        if rec is None:
            view = self.key(key_id)
            if view is None:
                raise RequestRejected(404, "unknown key id")
            rec = self.state.keys.get(view["key_id"]) if view["status"] == "active" else None
            if rec is None:
                raise RequestRejected(409, f"key {key_id} is {view['status']}, not active")
        return rec  # type: ignore[no-any-return]

    async def request_refresh(
        self, key_id: str, parties: list[str] | None = None, threshold: int | None = None
    ) -> dict[str, Any]:
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
        return {"key_id": key_id, "tx": tx.hex()}

    # -- membership ---------------------------------------------------------------------------
    def join_request(self, address: str = "") -> dict[str, Any]:
        """This node's request to become a validator, for the validators to vote on
        (`vote_join`): its key with a proof of possession, bound to this chain."""
        payload = join_payload(self.identity, self.replica.chain_id, self.peer_name, address)
        return {
            "peer_id": pid(payload.public_key),
            "validator_key": payload.public_key.hex(),
            "address": address,
            "is_validator": payload.public_key in self.replica.config(),
            "request": payload.to_bytes().hex(),
        }

    async def vote_join(self, request_hex: str) -> dict[str, Any]:
        """This validator's vote to add the node whose `join_request` this is."""
        try:
            payload = ValidatorJoin.from_bytes(bytes.fromhex(request_hex.removeprefix("0x")))
        except (ValueError, EncodingError) as exc:
            raise RequestRejected(400, f"not a join request: {exc}") from None
        tx = self._submit(payload)
        return {"tx": tx.hex(), "peer_id": pid(payload.public_key)}

    def derive(self, key_id: str, path: str) -> dict[str, Any]:
        rec = self._active(key_id)
        try:
            d = derive(rec.key.public_key, rec.key.chain_code, path)
        except DerivationError as exc:
            raise RequestRejected(400, str(exc)) from None
        return {
            "path": path,
            "public_key": d.public_key.to_bytes().hex(),
            "addresses": {
                "eth": eth_address(d.public_key),
                "btc_p2wpkh": btc_p2wpkh(d.public_key, self.btc_network),
            },
        }

    async def request_sign(
        self, key_id: str, message: bytes, hash_name: str, path: str | None
    ) -> dict[str, Any]:
        key_id = self._active(key_id).key_id
        try:
            indices = parse_path(path) if path else ()
        except DerivationError as exc:
            raise RequestRejected(400, str(exc)) from None
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
        return {"signature_id": tx.hex(), "tx": tx.hex(), "digest": digest.hex()}

    async def _retry_until_signed(self, tx: bytes, attempts: int) -> None:
        """If the request fails (a signer never answered, or someone was blamed), ask
        again without the parties that failed it and those seen offline now."""
        for _ in range(attempts - 1):
            while True:
                with trio.move_on_after(SIGN_DEADLINE):
                    await self.service.wait_until(partial(_settled, tx=tx))
                if tx in self.state.requests or tx not in self.replica.pending:
                    break  # in a block (settled, or its session is slow), or dropped
                # not ordered yet (a busy ledger): a retry would only queue behind it and
                # add to the load that keeps it waiting
            req = self.state.requests.get(tx)
            if req is not None and req.status == "done":
                return
            p = self.submitted.get(tx)
            if not isinstance(p, SignRequest):
                return
            blamed = {req.parties[j - 1] for b in req.blames for j in b.culprits} if req else set()
            exclude = tuple(sorted(blamed | self.offline() | set(p.exclude)))
            try:
                new = self.accept(
                    SignRequest(p.key_id, p.digest, p.path, exclude, p.message, p.hash_name),
                    retry_of=tx,
                )
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
            req = self.state.requests.get(tx)
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

    async def request_presign(self, key_id: str, count: int) -> dict[str, Any]:
        key_id = self._active(key_id).key_id
        tx = self._submit(PresignRequest(key_id, count))
        return {"key_id": key_id, "tx": tx.hex()}


def _blame_view(b: Any) -> dict[str, Any]:
    return {"culprits": list(b.culprits), "check": b.check, "round": b.round}


def _settled(replica: Any, *, tx: bytes) -> bool:
    req = replica.chain.state.requests.get(tx)
    return req is not None and req.status != "pending"


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


def new_token() -> str:
    return secrets.token_urlsafe(32)


def ensure_token(data_dir: Path) -> str:
    """The API token of this data directory, created (mode 0600) on first start."""
    path = data_dir / "api.token"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_token()
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token
