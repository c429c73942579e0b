"""Run a protocol session's rounds over a network transport.

The round objects of `tssnode.protocol` do the maths; this module moves their envelopes
and keeps time. Every `deliver` and `finalize` runs in a worker thread (gmpy2 releases
the GIL there) through a shared limiter, so the node keeps answering the network and the
API while proofs are computed. Each round has a deadline: when it passes, the session
fails with `SessionTimeout` naming the parties still missing, and the caller (the node)
retries with another signer set where it can.

Messages for a later round are held until the session gets there; messages for a
finished session are handed to its last round for `reopen` (a peer starting the
identification step) during a grace period.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import outcome
import trio

from tssnode import failpoints
from tssnode.crypto.arith import gil_released
from tssnode.errors import EncodingError, TssError
from tssnode.node.events import EventBus
from tssnode.protocol.base import BROADCAST, Message, MessageRefused, Outcome, ProtocolAbort, Round

log = logging.getLogger("tssnode.session")


class SessionTimeout(TssError):
    """A round did not complete in time; `missing` are the parties not heard from."""

    def __init__(self, ssid: bytes, rnd: int, missing: list[int]) -> None:
        super().__init__(f"session {ssid.hex()[:12]} round {rnd}: no message from {missing}")
        self.ssid, self.round, self.missing = ssid, rnd, missing


class DeliveryFailed(TssError):
    """The transport could not deliver a message to a party (it raised this in `send`)."""

    def __init__(self, party: int, reason: str) -> None:
        super().__init__(f"party {party}: {reason}")
        self.party = party


class SessionTransport(Protocol):
    """How a session reaches the other parties (the node implements it over libp2p)."""

    async def send(self, party: int, msg: Message) -> None:
        """Deliver to one party or raise DeliveryFailed (the network layer retries and
        acknowledges before giving up)."""

    async def broadcast(self, msg: Message) -> None:
        """Deliver to every other party of the session."""


@dataclass
class SessionResult:
    ssid: bytes
    phase: str
    result: Any
    rounds: int
    seconds: float


#: How much lower than the rest of the node the threads that do protocol maths run
#: (nice steps). With the cores busy making presignatures, the trio thread (the network,
#: the ledger, the API) still runs when it has work: a warm-pool signature and the blocks
#: that order it no longer wait behind a pool's refill.
MATHS_NICE = 10
_thread = threading.local()


def lower_priority() -> None:
    """Lower this OS thread's scheduling priority by `MATHS_NICE`, once per thread (never
    the main thread's: on Linux a thread's nice value is its own)."""
    if getattr(_thread, "lowered", False):
        return
    _thread.lowered = True
    tid = threading.get_native_id()
    if tid == os.getpid():
        return
    try:
        lowered = min(19, os.getpriority(os.PRIO_PROCESS, tid) + MATHS_NICE)
        os.setpriority(os.PRIO_PROCESS, tid, lowered)
    except OSError as exc:  # not permitted (some sandboxes): run at the same priority
        log.debug("could not lower a maths thread's priority: %s", exc)


_steps: ThreadPoolExecutor | None = None


def _step_pool() -> ThreadPoolExecutor:
    """The threads of background steps, all at the lower priority. (Not trio's thread
    cache: a thread's nice value cannot be raised back without privilege, and trio hands
    its threads to any caller.) The limiters bound how many run at once."""
    global _steps
    if _steps is None:
        _steps = ThreadPoolExecutor(
            64, thread_name_prefix="tssnode-step", initializer=lower_priority
        )
    return _steps


async def _in_thread(
    limiter: trio.CapacityLimiter, fn: Callable[[], Any], background: bool = True
) -> Any:
    """Run a round step in a worker thread under `limiter`, with gmpy2 releasing the GIL:
    a `background` step (proof work) at the lower priority, others (a sign round takes
    milliseconds, and a request waits on it) at the node's own. Like `trio.to_thread`,
    a step runs to its end even if the caller is cancelled meanwhile."""

    def work() -> Any:
        with gil_released():
            return fn()

    if not background:
        return await trio.to_thread.run_sync(work, limiter=limiter)
    async with limiter:
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        box: list[outcome.Outcome[Any]] = []

        def job() -> None:
            box.append(outcome.capture(work))
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        _step_pool().submit(job)
        with trio.CancelScope(shield=True):
            await done.wait()
    return box[0].unwrap()


def _only_cancelled(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one `trio.Cancelled` of a group made of nothing else; otherwise the group."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    if leaves and all(isinstance(exc, trio.Cancelled) for exc in leaves):
        return leaves[0]
    return group


class Session:
    """One party's run of one phase."""

    def __init__(
        self,
        first: Round,
        transport: SessionTransport,
        *,
        events: EventBus,
        limiter: trio.CapacityLimiter,
        round_timeout: float = 60.0,
        total_rounds: int | None = None,
        background: bool = True,
    ) -> None:
        self.round: Round = first
        self.transport = transport
        self.events = events
        self.limiter = limiter
        #: whether its steps run at the lower priority of proof work (`_in_thread`)
        self.background = background
        self.round_timeout = round_timeout
        self.total_rounds = total_rounds
        self.ssid = first.cfg.ssid
        self.phase = first.phase
        self.inbox_send, self.inbox = trio.open_memory_channel[Message](1000)
        self.refused = 0
        self.done = trio.Event()

    # -- the transport side -------------------------------------------------------------------
    def offer(self, data: bytes) -> None:
        """Hand an incoming envelope to this session (never blocks; drops if flooded)."""
        try:
            msg = Message.from_bytes(data)
        except EncodingError:
            self.refused += 1
            return
        try:
            self.inbox_send.send_nowait(msg)
        except (trio.WouldBlock, trio.ClosedResourceError):
            self.refused += 1

    # -- running ------------------------------------------------------------------------------
    async def run(self) -> SessionResult:
        """Run to the phase's result. Raises ProtocolAbort or SessionTimeout."""
        self.events.publish(
            "session.started",
            ssid=self.ssid.hex(),
            phase=self.phase,
            parties=list(self.round.cfg.parties),
        )
        try:
            first: Outcome = await _in_thread(self.limiter, self.round.finalize, self.background)
            return await self._drive(first, time.monotonic())
        finally:
            self.done.set()

    async def _drive(self, outcome: Outcome, start: float) -> SessionResult:
        held: list[Message] = []
        try:
            while True:
                await self._send(outcome)
                if outcome.next is None:
                    seconds = time.monotonic() - start
                    self.events.publish(
                        "session.done", ssid=self.ssid.hex(), phase=self.phase, seconds=seconds
                    )
                    log.info(
                        "%s session %s done in %.1f s (%d rounds)", self.phase,
                        self.ssid.hex()[:12], seconds, self.round.number, extra=self._context(),
                    )  # fmt: skip
                    return SessionResult(
                        self.ssid, self.phase, outcome.result, self.round.number, seconds
                    )
                self.round = outcome.next
                self._progress()
                held = await self._collect(held)
                outcome = await _in_thread(self.limiter, self.round.finalize, self.background)
        except (ProtocolAbort, SessionTimeout) as exc:
            culprits = exc.culprits if isinstance(exc, ProtocolAbort) else tuple(exc.missing)
            blamed = f" (culprits: parties {list(culprits)})" if culprits else ""
            log.warning(
                "%s session %s failed in round %d: %s%s", self.phase, self.ssid.hex()[:12],
                self.round.number, exc, blamed, extra=self._context(),
            )  # fmt: skip
            self.events.publish(
                "session.failed",
                ssid=self.ssid.hex(),
                phase=self.phase,
                round=self.round.number,
                culprits=list(culprits),
                check=str(exc),
            )
            raise

    def _context(self) -> dict[str, Any]:
        return {"ssid": self.ssid.hex(), "phase": self.phase, "round": self.round.number}

    def _publish_proofs(self, rnd: Round) -> None:
        # (checks on other threads may append meanwhile: take what is there, no more)
        records = [rnd.proof_log.pop(0) for _ in range(len(rnd.proof_log))]
        for rec in records:
            kind = "proof.verified" if rec.ok else "proof.rejected"
            self.events.publish(
                kind,
                ssid=self.ssid.hex(),
                phase=self.phase,
                proof=rec.proof,
                party=rec.prover,
                seconds=round(rec.seconds, 4),
                reason=rec.check or None,
            )

    def _progress(self) -> None:
        waiting = sorted({p for p, _ in self.round.expected()})
        self.events.publish(
            "session.round",
            ssid=self.ssid.hex(),
            phase=self.phase,
            round=self.round.number,
            of=self.total_rounds,
            waiting_for=waiting,
        )

    async def _send(self, outcome: Outcome) -> None:
        """Send a round's messages concurrently; a party that cannot be reached fails the
        session like a silent one (the node retries without it)."""
        failed: list[int] = []

        async def one(msg: Message) -> None:
            try:
                if msg.recipient == BROADCAST:
                    await self.transport.broadcast(msg)
                else:
                    await self.transport.send(msg.recipient, msg)
            except DeliveryFailed as exc:
                failed.append(exc.party)

        async with trio.open_nursery() as nursery:
            for msg in outcome.messages:
                nursery.start_soon(one, msg)
        if self.round.phase == "sign" and self.round.number == 1 and outcome.messages:
            failpoints.hit("sign.share-sent")
        if failed:
            raise SessionTimeout(self.ssid, self.round.number, sorted(set(failed)))

    async def _collect(self, held: list[Message]) -> list[Message]:
        """Deliver messages until the current round is ready; return those for later rounds.

        Messages are checked as they arrive, several at once (each check on a thread of
        the limiter: the peers' proofs are verified in parallel); each is recorded in
        this task once checked, and a sender's pair check runs once both of its messages
        are in. The first abort ends the round."""
        rnd = self.round
        later: list[Message] = []
        pending = list(held)
        aborts: list[ProtocolAbort] = []
        busy = 0  # deliveries under way: the round is not done while one is (its pair
        # check may still be due), whatever `ready()` says

        async def deliver(msg: Message, done: trio.CancelScope) -> None:
            nonlocal busy
            busy += 1
            try:
                body = await _in_thread(self.limiter, partial(rnd.check, msg), self.background)
                if rnd.record(msg, body):
                    await _in_thread(
                        self.limiter, partial(rnd.verify_pair, msg.sender), self.background
                    )
            except MessageRefused:
                self.refused += 1
            except ProtocolAbort as abort:
                aborts.append(abort)
            finally:
                busy -= 1
                self._publish_proofs(rnd)
            if aborts or (rnd.ready() and not busy):
                done.cancel()

        with trio.move_on_after(self.round_timeout) as scope:
            if not rnd.ready():
                try:
                    async with trio.open_nursery() as nursery:
                        while True:
                            msg = pending.pop(0) if pending else await self.inbox.receive()
                            if msg.round > rnd.number:
                                later.append(msg)
                            else:
                                nursery.start_soon(deliver, msg, nursery.cancel_scope)
                except BaseExceptionGroup as group:
                    # the session was stopped from outside (the ledger settled its request):
                    # every task saw the one cancellation; the caller expects it alone
                    raise _only_cancelled(group) from None
        if aborts:
            raise aborts[0]
        if scope.cancelled_caught:
            missing = sorted({p for p, _ in rnd.expected()})
            raise SessionTimeout(self.ssid, rnd.number, missing)
        return later + pending

    async def serve_identification(self, grace: float) -> SessionResult | None:
        """After a result, keep serving for `grace` seconds: if a peer starts the
        identification step (it saw a failure this party did not), join it. Returns None
        when nobody did (the result stands); otherwise the result is withdrawn and the
        identification runs to its end (normally a ProtocolAbort naming the culprit)."""
        with trio.move_on_after(grace):
            while True:
                msg = await self.inbox.receive()
                if msg.round != self.round.number + 1:
                    continue
                reopened: Outcome | None = await _in_thread(
                    self.limiter, partial(self.round.reopen, msg), self.background
                )
                if reopened is not None:
                    self.offer(msg.to_bytes())  # it belongs to the identification round
                    return await self._drive(reopened, time.monotonic())
        return None


Runner = Callable[[Session], Awaitable[SessionResult]]
