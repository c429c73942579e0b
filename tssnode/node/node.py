"""The node's core: it runs protocol sessions for committed transactions and answers the
API's calls (`NodeViews`, `NodeRequests`), and knows nothing of HTTP or libp2p.

`tssnode.cli.daemon` wires it: the store and vault, the net layer (`NetNode`), the ledger
replica over it (`ReplicaService`, running the key registry), this core, and the HTTP API
(hypercorn) in front of it; tests run several cores in one process over the ledger's
memory transport. On every committed block the core hands the block to the `Executor`,
which starts the sessions this node takes part in; protocol messages reach them through
`route`; the presignature pool is kept full by its primary (`_refill_pools`).

Everything a request needs travels through the ledger: an API call becomes a transaction,
and the same committed block starts the same session on every party.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import trio

from tssnode.crypto.encoding import Wire, decode_any
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.blocks import Block
from tssnode.ledger.errors import InvalidTransaction
from tssnode.ledger.service import ReplicaService
from tssnode.ledger.state import LedgerState
from tssnode.ledger.transactions import SignedTx
from tssnode.node.accepted import AcceptedRequests
from tssnode.node.bridge import NodeBridge
from tssnode.node.early import EarlyMessages
from tssnode.node.events import EventBus
from tssnode.node.executor import ROUNDS, Executor
from tssnode.node.liveness import STALL_AFTER, Liveness, Watchdog, assess
from tssnode.node.parts import REQUESTS, Request
from tssnode.node.primes import PrimeReserve
from tssnode.node.requests import RETRY_ATTEMPTS, SIGN_ATTEMPTS, NodeRequests
from tssnode.node.sessions import (
    Session,
    SessionResult,
    SessionTimeout,
    SessionTransport,
    lower_priority,
)
from tssnode.node.views import NodeViews
from tssnode.protocol.base import SERIAL, ProtocolAbort, Round, SessionConfig, Workers
from tssnode.registry.app import KeyRegistry
from tssnode.registry.records import (
    MAX_PRESIGN_COUNT,
)
from tssnode.registry.transactions import (
    AppSignRequest,
    KeygenRequest,
    PresignRequest,
    RefreshRequest,
    SignRequest,
    current,
)
from tssnode.store import layout
from tssnode.store.vault import Vault

if TYPE_CHECKING:
    from trio_typing import TaskStatus

    from tssnode.node.evmwatch import GatewayWatch
    from tssnode.node.watch import BitcoinWatch

log = logging.getLogger("tssnode.node")

#: Blocks between writes of the height up to which retry links are indexed.
RETRY_INDEX_EVERY = 64
#: Seconds after start-up in which a missing quorum is not logged (peers are being dialled).
STARTUP_GRACE = 10.0
#: seconds between the mint asker's looks when no block commits
MINT_LOOK = 10.0

#: How long a finished presign or sign session keeps serving a peer's identification step.
LINGER_SECONDS = 30.0


class NodeCore(NodeViews, NodeRequests, NodeBridge):
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
        workers: int = 2,
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
        #: the bridge's mint asking (`NodeBridge._ask_mints`): looked at after each block
        self._mint_seen: dict[bytes, float] = {}
        self._mint_asked: dict[bytes, float] = {}
        self._mint_check = trio.Event()
        #: this validator's watches of Bitcoin and of the gateway (set by the daemon when
        #: [bridge.bitcoin] / [bridge.evm] are configured): what the API shows as seen,
        #: confirming and minted
        self.bitcoin_watch: BitcoinWatch | None = None
        self.gateway_watch: GatewayWatch | None = None
        self.started = time.time()
        #: when this process last saw a block commit (or started): the liveness clock
        self.last_block_at = time.monotonic()
        self.stall_after = stall_after
        self.watchdog = Watchdog(started=self.last_block_at, grace=STARTUP_GRACE)
        #: `[node] workers`: round steps (a finalize, a message's checks) run on at most
        #: this many threads at once, and each step spreads its per-peer proofs over a
        #: pool of as many (`protocol.base.Workers`)
        self.limiter = trio.CapacityLimiter(workers)
        #: a sign session's steps take milliseconds and a request waits on each: they
        #: have limiter slots of their own and the node's priority, instead of queueing
        #: behind presign steps (a warm-pool sign took 0.3 s, most of it in that queue,
        #: while the pool refilled)
        self.sign_limiter = trio.CapacityLimiter(workers)
        self._pool = ThreadPoolExecutor(
            workers, thread_name_prefix="tssnode-proof", initializer=lower_priority
        )
        self.sessions: dict[bytes, Session] = {}
        self.early = EarlyMessages()
        self.nursery: trio.Nursery | None = None
        #: Requests submitted here, known before their block commits.
        self.submitted: dict[bytes, Request] = {}
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
            workers=Workers(self._pool) if workers > 1 else SERIAL,
        )

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def replica(self) -> Any:
        return self.service.replica

    @property
    def state(self) -> LedgerState:
        state: LedgerState = self.service.replica.chain.state
        return state

    @property
    def registry(self) -> KeyRegistry:
        """The key registry: the ledger application of keys, requests and the pool."""
        return self.state.app(KeyRegistry)

    def submit(self, payload: Wire) -> bytes:
        tx = self.service.submit_payload(payload)
        if isinstance(payload, REQUESTS):
            self.submitted[tx] = payload
        return tx

    def accept(self, payload: Wire, *, retry_of: bytes | None = None) -> bytes:
        """A client's request: checked, journalled (synced), then handed to the replica,
        which relays it and re-sends it to the primary until it is ordered. The caller
        answers 202 after this returns; `InvalidTransaction` says why it is refused.
        `retry_of`: the request this one asks again; it becomes the transaction's nonce,
        so every node can follow the old id to this one (`_index_retries`)."""
        tx: SignedTx = self.replica.sign_payload(payload, nonce=retry_of)
        self.state.check(tx)
        self.accepted.accept(tx)
        self._unordered[tx.hash] = tx.expiry
        if isinstance(payload, REQUESTS):
            self.submitted[tx.hash] = payload
        try:
            self.service.submit(tx)
        except InvalidTransaction:
            # refused as it was handed over (a full pending pool): the client hears why,
            # and the journal must not submit it again after a restart
            self.accepted.forget(tx.hash)
            self._unordered.pop(tx.hash, None)
            self.submitted.pop(tx.hash, None)
            raise
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
            old, new = self.registry.requests.get(tx.nonce), self.registry.requests.get(tx.hash)
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
        chain, registry = self.replica.chain, self.registry
        for h, tx in self.accepted.failures():  # their ids answer failed, with the reason
            payload = current(decode_any(tx.payload))
            if isinstance(payload, REQUESTS):
                self.submitted[h] = payload
        for h, tx in self.accepted.unordered():
            payload = current(decode_any(tx.payload))
            if isinstance(payload, REQUESTS):
                self.submitted[h] = payload
            if chain.tx_location(h) is not None or h in registry.requests:
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
            req = registry.requests.get(h)
            if req is None or req.status != "pending":
                continue
            # in the ledger and under way: its retries go on (this node's own part of the
            # session is withdrawn by `Executor.recover`, which fails it at once)
            payload = current(decode_any(req.payload))
            if isinstance(payload, REQUESTS):
                self.submitted[h] = payload
                self._follow(h, payload)

    def _follow(self, h: bytes, payload: Any) -> None:
        """Retry an accepted request as its kind calls for (see the two retry loops)."""
        if self.nursery is None:
            return
        if isinstance(payload, SignRequest | AppSignRequest):
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
        self.executor.on_block(block, self.registry)
        self._block_seen.set()  # the pool keeper looks again (never submit inside a block)
        self._mint_check.set()  # ...and the mint asker

    async def _keep_mints(self) -> None:
        """Ask for mint signatures after each block, and every `MINT_LOOK` seconds (a
        validator further down a deposit's order asks only after a wait)."""
        while True:
            with trio.move_on_after(MINT_LOOK):
                await self._mint_check.wait()
            self._mint_check = trio.Event()
            self._ask_mints()

    async def _keep_pools(self) -> None:
        while True:
            await self._block_seen.wait()
            self._block_seen = trio.Event()
            self._refill_pools()

    def _refill_pools(self) -> None:
        """Keep every key's presignature pool at `presign_pool` (ready + being made).

        The primary asks (one asker, so the pool is not overfilled by four), for keys with
        no refresh under way; its own unconfirmed request counts until it commits. While
        sign requests of a key wait for their signatures, its refill waits: a refill's
        presign sessions would take the cores (and each node's GIL) from the sign rounds
        of a burst, and the block that settles the last of them looks again.
        """
        if self.presign_pool <= 0 or not self.replica.is_primary:
            return
        st, registry = self.state, self.registry
        for key_id, rec in registry.keys.items():
            ours = self._refilling.get(key_id)
            if ours is not None:
                tx, since = ours
                if tx not in registry.requests and st.height <= since + st.genesis.tx_lifetime:
                    continue  # ours, not in a block yet (and not expired)
                del self._refilling[key_id]
            missing = self.presign_pool - registry.pool_size(key_id)
            if missing <= 0 or rec.refreshing or self.executor.signing_waits(key_id):
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
        light = first.phase == "sign"
        session = Session(
            first,
            transport,
            events=self.events,
            limiter=self.sign_limiter if light else self.limiter,
            background=not light,
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
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                self.executor.prune(self.registry)  # in case the node stopped before it could
                self._resume_accepted()
                self.executor.recover(self.registry)
                await nursery.start(self.executor.run)
                if self.presign_pool > 0:
                    nursery.start_soon(self._keep_pools)
                nursery.start_soon(self._keep_mints)
                nursery.start_soon(self._watch_liveness)
                task_status.started()
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)

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
