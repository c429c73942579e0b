"""The session driver over an in-process transport: real rounds, real worker threads,
trio time. (The libp2p transport is tested in the node's multi-process tests.)"""

from __future__ import annotations

import random

import pytest
import trio

from tssnode.node.events import EventBus
from tssnode.node.sessions import Session, SessionTimeout
from tssnode.protocol import auxinfo, keygen, presign
from tssnode.protocol.base import Message, ProtocolAbort
from tssnode.protocol.ssid import make_ssid, presign_ssid
from tssnode.testing.localgroup import pool_primes
from tssnode.testing.protocol_runner import make_configs

from ..conftest import TEST
from ..protocol.helpers import key

pytestmark = pytest.mark.trio


class LocalTransport:
    """Delivers one party's envelopes to the other parties' sessions in this process."""

    def __init__(self, me: int, sessions: dict[int, Session], drop_to: set[int] | None = None):
        self.me, self.sessions, self.drop_to = me, sessions, drop_to or set()
        self.sent = 0

    async def send(self, party: int, msg: Message) -> None:
        data = msg.to_bytes()
        self.sent += 1
        if party not in self.drop_to and party in self.sessions:
            self.sessions[party].offer(data)
        await trio.lowlevel.checkpoint()

    async def broadcast(self, msg: Message) -> None:
        for p in self.sessions:
            if p != self.me:
                await self.send(p, msg)


class Tampering(LocalTransport):
    """A party's transport that applies one fault rule (`protocol_faults.Tamper`)."""

    def __init__(self, me, sessions, rule, identity):
        super().__init__(me, sessions)
        self.rule, self.identity = rule, identity

    async def send(self, party, msg):
        if self.rule.matches(msg, party):
            msg = self.rule.apply(msg, party, self.identity)
        await super().send(party, msg)


def _presign_sessions(signers, label, seed, timeout):
    """Presign sessions of a 2-of-4 test key for `signers` (and their configs)."""
    group, shares = key(4, 2, 1)
    ssid = presign_ssid(shares[1], signers, 0, None, label)
    ids = {p: group.identities[p] for p in signers}
    cfgs = make_configs(signers, 2, TEST, ssid, seed=seed, identities=ids)
    rounds = {p: presign.start(c, shares[p]) for p, c in cfgs.items()}
    return _sessions(rounds, EventBus(), trio.CapacityLimiter(2), timeout=timeout), cfgs


def _sessions(rounds, events, limiter, *, drop=None, timeout=30.0, only=None):
    sessions: dict[int, Session] = {}
    for p, rnd in rounds.items():
        if only is not None and p not in only:
            continue
        t = LocalTransport(p, sessions, (drop or {}).get(p))
        sessions[p] = Session(rnd, t, events=events, limiter=limiter, round_timeout=timeout)
    return sessions


async def _run_all(sessions, *, until_fails=None):
    """Run every session to its end; `until_fails`: stop the others once that party's
    session has failed (they would only wait out their round timeout for it)."""
    results, errors = {}, {}

    async def one(p, s):
        try:
            results[p] = await s.run()
        except (ProtocolAbort, SessionTimeout) as exc:
            errors[p] = exc
            if p == until_fails:
                nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for p, s in sessions.items():
            nursery.start_soon(one, p, s)
    return results, errors


async def test_keygen_and_aux_over_sessions():
    events = EventBus()
    limiter = trio.CapacityLimiter(2)
    ssid = make_ssid("keygen", TEST, [1, 2, 3], 1, b"sessions")
    cfgs = make_configs((1, 2, 3), 1, TEST, ssid, seed=11)
    results, errors = await _run_all(
        _sessions({p: keygen.start(c) for p, c in cfgs.items()}, events, limiter)
    )
    assert not errors
    shares = {p: r.result for p, r in results.items()}
    assert len({s.key.public_key for s in shares.values()}) == 1
    primes = pool_primes(TEST, random.Random(11))
    ssid2 = make_ssid("aux", TEST, [1, 2, 3], 1, b"sessions-aux")
    cfgs2 = make_configs((1, 2, 3), 1, TEST, ssid2, seed=12)
    rounds = {p: auxinfo.start(c, shares[p], primes(p)) for p, c in cfgs2.items()}
    results2, errors2 = await _run_all(_sessions(rounds, events, limiter))
    assert not errors2
    assert all(r.result.aux is not None for r in results2.values())
    kinds = [e.kind for e in events.recent]
    assert kinds.count("session.started") == 6 and kinds.count("session.done") == 6
    assert any(e.kind == "session.round" and e.fields["waiting_for"] for e in events.recent)


# Real time, short deadlines: trio's autojump clock would jump while rounds compute in
# worker threads (trio sees every task blocked) and fire deadlines early.


async def test_missing_party_times_out_naming_it():
    events = EventBus()
    ssid = make_ssid("keygen", TEST, [1, 2, 3], 1, b"timeout")
    cfgs = make_configs((1, 2, 3), 1, TEST, ssid, seed=13)
    rounds = {p: keygen.start(c) for p, c in cfgs.items()}
    # party 3 never runs
    results, errors = await _run_all(
        _sessions(rounds, events, trio.CapacityLimiter(2), timeout=2.0, only={1, 2})
    )
    assert not results
    assert set(errors) == {1, 2}
    for exc in errors.values():
        assert isinstance(exc, SessionTimeout) and exc.missing == [3]
    failed = [e for e in events.recent if e.kind == "session.failed"]
    assert len(failed) == 2 and all(e.fields["culprits"] == [3] for e in failed)


async def test_dropped_direct_message_times_out_naming_the_sender():
    ssid = make_ssid("keygen", TEST, [1, 2, 3], 1, b"drop")
    cfgs = make_configs((1, 2, 3), 1, TEST, ssid, seed=14)
    rounds = {p: keygen.start(c) for p, c in cfgs.items()}
    # party 2's messages to party 1 are lost
    sessions = _sessions(rounds, EventBus(), trio.CapacityLimiter(2), drop={2: {1}}, timeout=2.0)
    _, errors = await _run_all(sessions)
    assert isinstance(errors[1], SessionTimeout) and errors[1].missing == [2]


async def test_garbage_is_refused_without_stopping_the_session():
    ssid = make_ssid("keygen", TEST, [1, 2, 3], 1, b"garbage")
    cfgs = make_configs((1, 2, 3), 1, TEST, ssid, seed=15)
    sessions = _sessions(
        {p: keygen.start(c) for p, c in cfgs.items()}, EventBus(), trio.CapacityLimiter(2)
    )
    for s in sessions.values():
        s.offer(b"\xff\xfe garbage")
    results, errors = await _run_all(sessions)
    assert not errors and len(results) == 3
    assert all(s.refused >= 1 for s in sessions.values())


async def test_identification_reaches_a_party_that_finished():
    """Party 2 lies about δ to party 1 only: party 3 finishes presign, yet joins the
    identification that party 1 starts, and both honest parties name party 2."""
    from tssnode.crypto.group import Q
    from tssnode.testing.protocol_faults import Tamper, replace_field

    sessions, cfgs = _presign_sessions((1, 2, 3), b"ident", 16, 60)
    rule = Tamper(
        2, 4, recipient=1, broadcast=True, mutate=replace_field("delta", lambda d: (d + 1) % Q)
    )
    sessions[2].transport = Tampering(2, sessions, rule, cfgs[2].identity)
    outcome: dict[int, object] = {}

    async def one(p, s):
        try:
            res = await s.run()
            again = await s.serve_identification(30)
            outcome[p] = res if again is None else again
        except (ProtocolAbort, SessionTimeout) as exc:
            outcome[p] = exc

    async with trio.open_nursery() as nursery:
        for p, s in sessions.items():
            nursery.start_soon(one, p, s)
    assert isinstance(outcome[1], ProtocolAbort) and outcome[1].culprits == (2,)
    assert isinstance(outcome[3], ProtocolAbort) and outcome[3].culprits == (2,)


async def test_proof_events_are_published():
    _, shares = key(3, 1, 1)
    ssid = presign_ssid(shares[1], (1, 2), 0, None, b"proof-events")
    group, _ = key(3, 1, 1)
    ids = {p: group.identities[p] for p in (1, 2)}
    cfgs = make_configs((1, 2), 1, TEST, ssid, seed=17, identities=ids)
    events = EventBus()
    results, errors = await _run_all(
        _sessions(
            {p: presign.start(c, shares[p]) for p, c in cfgs.items()},
            events,
            trio.CapacityLimiter(2),
        )
    )
    assert not errors and len(results) == 2
    proofs = [e.fields for e in events.recent if e.kind == "proof.verified"]
    # each party checks the other's Π^enc, 2×Π^aff-g, Π^log* and Π^log*
    assert sorted({p["proof"] for p in proofs}) == ["affg", "enc", "logstar"]
    assert len(proofs) == 2 * 5
    assert not [e for e in events.recent if e.kind == "proof.rejected"]


async def test_one_rounds_checks_run_at_once_and_all_end_before_finalize(monkeypatch):
    """The peers' Π^aff-g/Π^log* checks of presign's round 3 overlap (two threads of the
    limiter), and the round is finalized only once every sender's pair check is done."""
    import threading
    import time

    lock = threading.Lock()
    active: dict[int, int] = {}  # round object → pair checks running on it now
    most: dict[int, int] = {}
    checked: dict[int, set[int]] = {}
    finalized_early: list[int] = []
    pair, finalize = presign.Round3.verify_pair, presign.Round3.finalize

    def slow_pair(self, sender):
        with lock:
            active[id(self)] = active.get(id(self), 0) + 1
            most[id(self)] = max(most.get(id(self), 0), active[id(self)])
        time.sleep(0.2)  # long enough for the next sender's check to start meanwhile
        try:
            pair(self, sender)
        finally:
            with lock:
                active[id(self)] -= 1
                checked.setdefault(id(self), set()).add(sender)

    def checked_finalize(self):
        if checked.get(id(self)) != set(self.cfg.others):
            finalized_early.append(self.cfg.self_id)
        return finalize(self)

    monkeypatch.setattr(presign.Round3, "verify_pair", slow_pair)
    monkeypatch.setattr(presign.Round3, "finalize", checked_finalize)
    # (counted per round object, so any overlap is within one party's round)
    sessions, _ = _presign_sessions((1, 2, 3, 4), b"parallel-checks", 18, 60)
    results, errors = await _run_all(sessions)
    assert not errors and len(results) == 4
    assert not finalized_early
    assert len(most) == 4 and all(n == 3 for n in map(len, checked.values()))
    assert max(most.values()) >= 2  # some party checked two peers' proofs at once


async def test_an_abort_found_by_a_concurrent_check_ends_the_session():
    """A forged proof to party 1: its check fails while the other peers' checks run; the
    session fails with the ProtocolAbort naming the forger (no exception group)."""
    from tssnode.testing.protocol_faults import Tamper, replace_field

    sessions, cfgs = _presign_sessions((1, 2, 3, 4), b"parallel-abort", 19, 20)
    # party 3's Π^log* to party 1 in round 2's direct message (received by round 3) is off
    rule = Tamper(
        3, 3, recipient=1, broadcast=False, mutate=replace_field("psi_prime.z3", lambda z: z + 1)
    )
    sessions[3].transport = Tampering(3, sessions, rule, cfgs[3].identity)
    _, errors = await _run_all(sessions, until_fails=1)
    assert isinstance(errors[1], ProtocolAbort) and errors[1].culprits == (3,)


async def test_a_session_stopped_from_outside_raises_the_cancellation_alone():
    """The node stops a session when the ledger settles its request, and tells a stopped
    session from a failed one by `except trio.Cancelled`: the parallel deliveries of a
    round must surface that one cancellation, not a group of them."""
    ssid = make_ssid("keygen", TEST, [1, 2, 3], 1, b"stopped")
    cfgs = make_configs((1, 2, 3), 1, TEST, ssid, seed=20)
    rounds = {p: keygen.start(c) for p, c in cfgs.items()}
    sessions = _sessions(rounds, EventBus(), trio.CapacityLimiter(2), only={1, 2})
    seen: list[str] = []

    async def one(s):
        try:
            await s.run()
        except trio.Cancelled:
            seen.append("cancelled")
            raise
        except BaseException as exc:
            seen.append(type(exc).__name__)
            raise

    with trio.move_on_after(30):
        async with trio.open_nursery() as nursery:
            for s in sessions.values():
                nursery.start_soon(one, s)
            # both wait for party 3 in round 2, with party 2's message being delivered
            for _ in range(2000):
                if all(s.round.number == 2 for s in sessions.values()):
                    break
                await trio.sleep(0.01)
            await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    assert seen == ["cancelled", "cancelled"]


async def test_round_steps_run_at_a_lower_priority_than_the_trio_thread():
    """Proof work runs niced, so the network and the ledger (the trio thread) go first
    when the cores are busy making presignatures."""
    import os
    import threading

    from tssnode.node.sessions import MATHS_NICE, _in_thread

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    main = nice()
    assert threading.get_native_id() == os.getpid()  # (the test runs on the main thread)
    limiter = trio.CapacityLimiter(1)
    worker = await _in_thread(limiter, nice)
    assert worker == min(19, main + MATHS_NICE)
    assert nice() == main  # the trio thread keeps its own
    assert await _in_thread(limiter, nice) == worker  # lowered once, not again
    # a sign step runs at the node's own priority, even after background steps ran
    assert await _in_thread(limiter, nice, background=False) == main
    with pytest.raises(ZeroDivisionError):  # a step's exception reaches the session
        await _in_thread(limiter, lambda: 1 // 0)
    assert limiter.borrowed_tokens == 0
