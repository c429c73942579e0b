"""From committed ledger requests to protocol sessions and back (ARCHITECTURE.md, "One
request, end to end", steps 3–5).

Every node executes every committed block the same way. For each request it is a party
of, it starts the same session as every other party, with a session id derived from
(chain id, height, transaction hash) and parties read from ledger state, so no leader
has to tell anyone anything. It submits what it computed back to the ledger as a result
vote (the ledger accepts a result once enough parties agree) or, when a session aborts,
the blame with its evidence.

The session each kind of request starts (keygen, refresh, presign, sign) is in
`node/phases.py` (`Phases`); what happens after a restart, and the pruning of secrets, in
`node/recovery.py` (`Recovery`). The `Executor` includes both.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import trio

from tssnode import failpoints
from tssnode.bridge.app import BridgeApp
from tssnode.bridge.transactions import signed_result
from tssnode.crypto.encoding import Wire
from tssnode.crypto.identity import IdentityKey
from tssnode.crypto.params import Parameters
from tssnode.crypto.signature import Signature
from tssnode.ledger.blocks import Block
from tssnode.ledger.errors import InvalidTransaction
from tssnode.ledger.transactions import SignedTx
from tssnode.node.events import EventBus
from tssnode.node.phases import Phases
from tssnode.node.primes import PrimeReserve
from tssnode.node.recovery import Recovery
from tssnode.node.sessions import SessionResult, SessionTimeout
from tssnode.protocol.base import SERIAL, Blame, ProtocolAbort, Round, SessionConfig, Workers
from tssnode.protocol.material import KeyShare
from tssnode.registry.app import KeyRegistry
from tssnode.registry.records import KeyRecord
from tssnode.registry.transactions import (
    AppSignRequest,
    BlameReport,
    KeygenRequest,
    KeygenResult,
    PresignReady,
    PresignRequest,
    RefreshRequest,
    RefreshResult,
    SignRequest,
    SignResult,
    ValidatorJoin,
    ValidatorLeave,
    Withdrawal,
    current,
)
from tssnode.store.vault import Vault

if TYPE_CHECKING:
    # trio-typing (a libp2p dependency) ships stubs that hide trio.TaskStatus from mypy
    from trio_typing import TaskStatus

log = logging.getLogger("tssnode.node")

Job = Callable[[], Awaitable[None]]


#: Requests worked on at once. The rest wait their turn in block order, which is the same
#: on every node, so the earliest unfinished request always runs at all its parties. Before,
#: a burst started every job at once: dozens of sessions shared two cores, their rounds
#: timed out while they waited for CPU, and every one of them failed (issue 12).
MAX_CONCURRENT_JOBS = 8


async def _guarded(job: Job, slots: trio.CapacityLimiter) -> None:
    """One request's work: whatever goes wrong ends that request, never the node."""
    try:
        async with slots:
            await job()
    except (ProtocolAbort, SessionTimeout):
        pass  # already recorded and reported
    except Exception:
        log.exception("request handling failed")


#: Blocks carrying these may leave secrets the ledger no longer uses (see `prune`).
PRUNING_PAYLOADS = (
    RefreshResult, BlameReport, Withdrawal, PresignReady, ValidatorJoin, ValidatorLeave
)  # fmt: skip
#: and every this many blocks anyway (pending presignatures expire with the height)
PRUNE_EVERY = 64

#: The check of a blame for silence (no evidence: the request just fails and is retried).
TIMEOUT_CHECK = "timeout: no message in time"

#: Rounds of each phase, for progress (the identification step adds one).
ROUNDS = {"keygen": 4, "aux": 4, "presign": 4, "sign": 2}


#: finished sessions `GET /sessions` keeps (the newest; running ones are always kept)
FINISHED_SESSIONS = 500
#: what an application's signature becomes in its own ledger records, by application
#: (`AppSignRequest.app`): the subject it was asked for and the signature → a payload
APP_RESULTS: dict[str, Callable[[bytes, Signature], Wire]] = {BridgeApp.name: signed_result}
#: payloads that may settle the request they name (`request.settled`)
SETTLING_PAYLOADS = (KeygenResult, RefreshResult, SignResult, BlameReport, Withdrawal)
#: settled requests remembered so each is announced once
ANNOUNCED_KEPT = 4096
#: seconds after which an unsettled sign request no longer holds a pool's refill back
OPEN_SIGN_STALE = 120.0


@dataclass
class SessionInfo:
    """What the API shows about one session."""

    session_id: str
    phase: str
    request: str
    key_id: str
    parties: list[str]
    started: float  # Unix time
    status: str = "running"
    round: int = 1
    waiting_for: list[int] | None = None  # party indices
    culprits: list[str] | None = None
    error: str | None = None
    finished: float | None = None


class Executor(Phases, Recovery):
    """Runs the protocol sessions that committed requests call for."""

    def __init__(
        self,
        *,
        identity: IdentityKey,
        vault: Vault,
        events: EventBus,
        submit: Callable[[Wire], bytes],
        open_session: Callable[[SessionConfig, Round], Awaitable[SessionResult]],
        primes: PrimeReserve,
        workers: Workers = SERIAL,
    ) -> None:
        self.identity = identity
        self.workers = workers
        self.me = identity.public_bytes()
        self.vault = vault
        self.events = events
        self.submit = submit
        self.open_session = open_session
        self.primes = primes
        self.sessions: dict[str, SessionInfo] = {}
        #: the key registry after the last block (read by long jobs between sessions)
        self.registry: KeyRegistry | None = None
        #: pooled presignatures assigned to sign requests whose job has not taken them yet
        self._claimed: set[bytes] = set()
        self._stored: dict[str, trio.Event] = {}
        #: the cancel scope of each request's job while it runs
        self._running: dict[bytes, trio.CancelScope] = {}
        #: sign requests in the ledger and not settled yet: key id and when they committed
        #: (`signing_waits`; a restart forgets them, which only lets a refill start early)
        self.open_signs: dict[bytes, tuple[str, float]] = {}
        #: requests whose `request.settled` this node published (the newest, bounded)
        self._announced: OrderedDict[bytes, None] = OrderedDict()
        self._send, self._recv = trio.open_memory_channel[Job](10_000)
        #: FIFO (trio's limiter is fair): jobs start in the order their blocks committed
        self.slots = trio.CapacityLimiter(MAX_CONCURRENT_JOBS)

    def _trim_sessions(self) -> None:
        """Keep every running session and the newest `FINISHED_SESSIONS` finished ones
        (`GET /sessions`): the table grew by one entry per session forever (issue 12)."""
        finished = [sid for sid, info in self.sessions.items() if info.status != "running"]
        for sid in finished[: max(0, len(finished) - FINISHED_SESSIONS)]:
            del self.sessions[sid]

    # -- blocks in --------------------------------------------------------------------------

    def on_block(self, block: Block, registry: KeyRegistry) -> None:
        """Called synchronously by the replica right after it executes `block`: decide
        here, against the state as it is now, which sessions this node takes part in."""
        self.registry = registry
        rejected = {i for i, _ in block.rejected}
        refreshed = block.height % PRUNE_EVERY == 0  # (pending presignatures expire)
        touched: list[bytes] = []
        for i, raw in enumerate(block.batch.txs):
            if i in rejected:
                continue
            tx = SignedTx.from_bytes(raw)
            payload = current(tx.decode_payload())
            refreshed |= isinstance(payload, PRUNING_PAYLOADS)
            if isinstance(payload, SETTLING_PAYLOADS):
                touched.append(payload.request)
            elif isinstance(payload, SignRequest):
                self.open_signs[tx.hash] = (payload.key_id, time.monotonic())
            job = self._job_for(block, registry, tx, payload)
            if job is None:
                continue
            try:
                self._send.send_nowait(self._stoppable(tx.hash, job))
            except trio.WouldBlock:
                log.error("executor queue full: request %s not acted on", tx.hash.hex()[:16])
        self._announce_settled(touched, registry, block.height)
        for request, scope in list(self._running.items()):
            if self._settled(request, registry):
                log.info("session of request %s stopped: the ledger settled it", request.hex()[:12])
                scope.cancel()
        if refreshed:
            self.prune(registry)
            self._forget_stale_signs()  # (on every node: not only a refilling primary)

    def _announce_settled(self, touched: list[bytes], registry: KeyRegistry, height: int) -> None:
        """`request.settled` for each request a transaction of this block settled (once per
        request: a late party's confirmation or a further blame says nothing new)."""
        for request in touched:
            req = registry.requests.get(request)
            if req is None or req.kind == "presign" or req.status == "pending":
                continue
            self.open_signs.pop(request, None)
            if request in self._announced:
                continue
            self._announced[request] = None
            if len(self._announced) > ANNOUNCED_KEPT:
                self._announced.popitem(last=False)
            self.events.publish(
                "request.settled", request=request.hex(), request_kind=req.kind,
                status=req.status, key_id=req.key_id, height=height,
            )  # fmt: skip

    def signing_waits(self, key_id: str) -> bool:
        """Sign requests of `key_id` are in the ledger and not settled (those older than
        `OPEN_SIGN_STALE` seconds no longer count: a stuck one must not hold a pool empty
        for good; the retry logic deals with it)."""
        self._forget_stale_signs()
        return any(k == key_id for k, _ in self.open_signs.values())

    def _forget_stale_signs(self) -> None:
        now = time.monotonic()
        for request, (_key, since) in list(self.open_signs.items()):
            if now - since > OPEN_SIGN_STALE:
                del self.open_signs[request]

    def _stoppable(self, request: bytes, job: Job) -> Job:
        """`job`, skipped if the ledger settled its request while it waited for a slot,
        and stopped (`on_block`) once the ledger settles it while it runs."""

        async def run() -> None:
            if self.registry is not None and self._settled(request, self.registry):
                return
            with trio.CancelScope() as scope:
                self._running[request] = scope
                try:
                    await job()
                finally:
                    self._running.pop(request, None)

        return run

    @staticmethod
    def _settled(request: bytes, registry: KeyRegistry) -> bool:
        """Nothing this node computes for `request` can count any more: it failed (a
        blame, a withdrawal), a sign request got its signature from another signer, or a
        presign request's unfinished presignatures were all dropped. A keygen or refresh
        that is done still runs: a party that finishes late confirms the key and holds it."""
        req = registry.requests.get(request)
        if req is None:
            return False
        if req.kind == "presign":
            return not any(
                pid[:32] == request and not r.ready for pid, r in registry.presigs.items()
            )
        return req.status == "failed" or (req.kind == "sign" and req.status == "done")

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for job in self._recv:
                nursery.start_soon(_guarded, job, self.slots)

    def _job_for(
        self, block: Block, registry: KeyRegistry, tx: SignedTx, p: Wire
    ) -> Callable[[], Awaitable[None]] | None:
        req = registry.requests.get(tx.hash)
        if req is None or self.me not in req.parties:
            return None
        nonce = block.chain_id + block.height.to_bytes(8, "big") + tx.hash
        if isinstance(p, KeygenRequest):
            return lambda: self._keygen(tx.hash, p, nonce)
        if isinstance(p, RefreshRequest):
            rec = registry.keys[p.key_id]
            return lambda: self._refresh(tx.hash, rec, p, req.parties, nonce)
        if isinstance(p, PresignRequest | SignRequest):
            signers = req.signers
            if req.parties.index(self.me) + 1 not in signers:
                return None
            rec = registry.keys[p.key_id]
            if isinstance(p, PresignRequest):
                return lambda: self._presign(tx.hash, rec, p.count, signers, nonce)
            if req.presig:
                self._claimed.add(req.presig)  # the ledger gave it away: not prunable
                return lambda: self._sign_pooled(tx.hash, rec, p, req.presig, signers)
            return lambda: self._sign(tx.hash, rec, p, signers, nonce)
        if isinstance(p, AppSignRequest):
            if req.parties.index(self.me) + 1 not in req.signers:
                return None
            rec = registry.keys[p.key_id]
            result = APP_RESULTS.get(p.app)
            after = None if result is None else partial(result, p.subject)
            plain = p.as_sign_request()
            return lambda: self._sign(tx.hash, rec, plain, req.signers, nonce, after=after)
        return None

    # -- sessions ---------------------------------------------------------------------------
    def _config(
        self,
        ssid: bytes,
        parties: tuple[bytes, ...],
        members: tuple[int, ...],
        threshold: int,
        params: Parameters,
    ) -> SessionConfig:
        me = parties.index(self.me) + 1
        identities = {j: parties[j - 1] for j in members}
        return SessionConfig(
            ssid, me, members, threshold, params, identities, self.identity, workers=self.workers
        )

    async def _run(
        self, phase: str, request: bytes, key_id: str, cfg: SessionConfig, first: Round
    ) -> SessionResult:
        info = SessionInfo(
            cfg.ssid.hex(),
            phase,
            request.hex(),
            key_id,
            [str(p) for p in cfg.parties],
            time.time(),
        )
        self.sessions[info.session_id] = info
        self._trim_sessions()
        try:
            result = await self.open_session(cfg, first)
        except ProtocolAbort as exc:
            info.status, info.error = "failed", str(exc)
            info.round, info.finished = exc.blame.round, time.time()
            info.culprits = [str(c) for c in exc.culprits]
            self._report_blame(request, exc.blame)
            raise
        except trio.Cancelled:
            info.status, info.error = "stopped", "the ledger settled the request"
            info.finished = time.time()
            raise
        except SessionTimeout as exc:
            info.status, info.error = "failed", str(exc)
            info.round, info.finished = exc.round, time.time()
            info.culprits = [str(c) for c in exc.missing]
            # not evidence anyone can check, but it fails the request so it can be retried
            # without the silent parties
            blame = Blame(cfg.ssid, exc.round, tuple(exc.missing), TIMEOUT_CHECK, ())
            self._report_blame(request, blame)
            raise
        info.status = "done"
        info.round, info.finished = result.rounds, time.time()
        return result

    def _vote(self, payload: Wire) -> None:
        """Submit this party's result; once enough parties agreed the ledger has it and
        refuses later votes, which is the expected end for the slowest parties."""
        try:
            self.submit(payload)
        except InvalidTransaction as exc:
            log.info(
                "this node's vote on the result was not submitted: %s (if the request is "
                "already done, the other parties settled it first and nothing is wrong)",
                exc,
            )
            return
        failpoints.hit("result.voted")

    def _report_blame(self, request: bytes, blame: Blame) -> None:
        if not blame.culprits:
            return
        self._vote(BlameReport(request, blame))

    def _store_share(self, share: KeyShare, vote: KeygenResult | RefreshResult) -> None:
        """The share and the vote it is owed, in one synced write: the ledger counts this
        node as a holder only once it voted, and a restart in between votes then."""
        self.vault.put_share(
            share.key.key_id, share.key.epoch, share.to_bytes(), vote=vote.to_bytes()
        )
        failpoints.hit("share.written")
        self._stored.setdefault(share.key.key_id, trio.Event()).set()
        self._stored[share.key.key_id] = trio.Event()

    async def share_of(self, rec: KeyRecord, wait: float = 60.0) -> KeyShare:
        """This node's share of the key at the ledger's epoch. A request can commit before
        this node stored the share (the key turns active on a quorum of votes): wait."""
        with trio.move_on_after(wait):
            while True:
                raw = self.vault.get_share(rec.key_id, rec.key.epoch)
                if raw is not None:
                    return KeyShare.from_bytes(raw)
                await self._stored.setdefault(rec.key_id, trio.Event()).wait()
        raise LookupError(f"this node holds no share of key {rec.key_id} at epoch {rec.key.epoch}")
