"""The in-memory runner: N parties of one phase in one process, with fault injection.

It delivers each signed envelope to its recipients' current round (buffering messages
for later rounds), runs the parties' `verify` and `finalize` steps in a thread pool with
gmpy2 releasing the GIL, and stops each party at its result or abort. Fault rules act
on a sender's outgoing messages and re-sign them with the sender's own key, so they are
what a malicious party could really send (the rules are in `protocol_faults`). When no
party can make progress, the parties whose messages never arrived are named (the
in-memory stand-in for a round timeout).

Used by the tests, the benchmarks and `tssnode simulate` (through `localgroup`); the node
uses the same round objects over libp2p instead.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tssnode.crypto.arith import gil_released
from tssnode.crypto.identity import IdentityKey
from tssnode.crypto.params import Parameters
from tssnode.errors import TssError
from tssnode.protocol.base import (
    BROADCAST,
    SERIAL,
    Blame,
    Message,
    MessageRefused,
    Outcome,
    ProtocolAbort,
    Round,
    SessionConfig,
    Workers,
)
from tssnode.testing.protocol_faults import Fault


class SessionStopped(TssError):
    """A party stopped without blaming anyone: the peers it waited for had aborted (or
    were stuck behind an abort). `aborts` are those peers' own blames."""

    def __init__(
        self, party: int, waiting_for: list[int], aborts: dict[int, ProtocolAbort]
    ) -> None:
        super().__init__(f"party {party} stopped waiting for {waiting_for} (aborted or stalled)")
        self.party, self.waiting_for, self.aborts = party, waiting_for, aborts


@dataclass
class RunResult:
    results: dict[int, Any]
    aborts: dict[int, ProtocolAbort]
    stopped: dict[int, SessionStopped] = field(default_factory=dict)
    refused: int = 0
    messages: int = 0
    bytes_sent: int = 0

    def culprits(self) -> set[int]:
        return {c for a in self.aborts.values() for c in a.culprits}

    def only_result(self) -> dict[int, Any]:
        """Every party's result, or the first abort raised."""
        if self.aborts:
            raise next(iter(self.aborts.values()))
        if self.stopped:
            raise next(iter(self.stopped.values()))
        return self.results


def make_configs(
    parties: Sequence[int],
    threshold: int,
    params: Parameters,
    ssid: bytes,
    seed: int | None = None,
    identities: Mapping[int, IdentityKey] | None = None,
    workers: Workers = SERIAL,
) -> dict[int, SessionConfig]:
    """Session configs for every party (fresh identity keys unless given); `workers`:
    where each party runs its per-peer work (as a node's pool does)."""
    keys = dict(identities) if identities else {p: IdentityKey.generate() for p in parties}
    publics = {p: k.public_bytes() for p, k in keys.items()}
    ordered = tuple(sorted(parties))
    return {
        p: SessionConfig(
            ssid,
            p,
            ordered,
            threshold,
            params,
            publics,
            keys[p],
            None if seed is None else random.Random(f"{seed}/{p}/{ssid.hex()}"),
            workers,
        )
        for p in ordered
    }


class Runner:
    """Drives one phase for every party to its end."""

    def __init__(self, workers: int = 2, faults: Iterable[Fault] = ()) -> None:
        self.workers = workers
        self.faults = list(faults)

    def run(self, rounds: Mapping[int, Round]) -> RunResult:
        current: dict[int, Round] = dict(rounds)
        keys = {p: r.cfg.identity for p, r in current.items()}
        mailbox: dict[int, list[Message]] = defaultdict(list)
        out = RunResult({}, {})
        sent_rounds: dict[int, int] = {}  # party → highest message number it has emitted
        finished: dict[int, Round] = {}  # parties with a result, kept to answer a reopen

        with ThreadPoolExecutor(self.workers) as pool:
            to_finalize = [p for p, r in current.items() if r.ready()]
            while True:
                outcomes = list(pool.map(lambda p: self._finalize(current[p]), to_finalize))
                for party, outcome in zip(to_finalize, outcomes, strict=True):
                    if isinstance(outcome, ProtocolAbort):
                        out.aborts[party] = outcome
                        del current[party]
                        continue
                    for msg in outcome.messages:
                        sent_rounds[party] = max(sent_rounds.get(party, 0), msg.round)
                        self._route(msg, keys[party], current, mailbox, out)
                    if outcome.next is None:
                        out.results[party] = outcome.result
                        finished[party] = current.pop(party)
                    else:
                        current[party] = outcome.next
                reopened = self._reopen(finished, mailbox, current, out)
                for party, outcome in reopened:
                    for msg in outcome.messages:
                        sent_rounds[party] = max(sent_rounds.get(party, 0), msg.round)
                        self._route(msg, keys[party], current, mailbox, out)
                if not current:
                    return out
                # deliver: check every message in parallel, record them per party in
                # order, then run the pair checks in parallel
                for party, abort in self._deliver_all(pool, current, mailbox, out).items():
                    out.aborts[party] = abort
                    del current[party]
                to_finalize = [p for p, r in current.items() if r.ready()]
                if not to_finalize:
                    if not current:
                        return out
                    self._timeout(current, sent_rounds, out)
                    return out

    # -- steps --------------------------------------------------------------------------------
    def _reopen(
        self,
        finished: dict[int, Round],
        mailbox: dict[int, list[Message]],
        current: dict[int, Round],
        out: RunResult,
    ) -> list[tuple[int, Outcome]]:
        """Give a finished party's last round any message for the round after it; if the
        round joins a failure branch, its result is withdrawn and it runs again."""
        done: list[tuple[int, Outcome]] = []
        for party, rnd in list(finished.items()):
            for msg in mailbox[party]:
                if msg.round != rnd.number + 1:
                    continue
                with gil_released():
                    try:
                        outcome = rnd.reopen(msg)
                    except ProtocolAbort as abort:
                        out.results.pop(party, None)
                        out.aborts[party] = abort
                        del finished[party]
                        break
                if outcome is None:
                    continue
                out.results.pop(party, None)
                del finished[party]
                if outcome.next is None:
                    out.results[party] = outcome.result
                else:
                    current[party] = outcome.next
                done.append((party, outcome))
                break
        return done

    @staticmethod
    def _finalize(rnd: Round) -> Outcome | ProtocolAbort:
        with gil_released():
            try:
                return rnd.finalize()
            except ProtocolAbort as abort:
                return abort

    @staticmethod
    def _deliver_all(
        pool: ThreadPoolExecutor,
        current: Mapping[int, Round],
        mailbox: dict[int, list[Message]],
        out: RunResult,
    ) -> dict[int, ProtocolAbort]:
        """Hand every message for its round to it; later-round messages stay boxed."""
        work: list[tuple[int, Message]] = []
        for party, rnd in current.items():
            box = mailbox[party]
            work += [(party, m) for m in box if m.round <= rnd.number]
            box[:] = [m for m in box if m.round > rnd.number]

        def check(item: tuple[int, Message]) -> Any:
            party, msg = item
            with gil_released():
                try:
                    return current[party].check(msg)
                except (MessageRefused, ProtocolAbort) as exc:
                    return exc

        checked = list(pool.map(check, work))
        aborts: dict[int, ProtocolAbort] = {}
        pairs: list[tuple[int, int]] = []
        for (party, msg), body in zip(work, checked, strict=True):
            if party in aborts:
                continue
            if isinstance(body, MessageRefused):
                out.refused += 1
                continue
            if isinstance(body, ProtocolAbort):
                aborts[party] = body
                continue
            try:
                if current[party].record(msg, body):
                    pairs.append((party, msg.sender))
            except MessageRefused:
                out.refused += 1
            except ProtocolAbort as abort:
                aborts[party] = abort

        def pair(item: tuple[int, int]) -> ProtocolAbort | None:
            party, sender = item
            with gil_released():
                try:
                    current[party].verify_pair(sender)
                except ProtocolAbort as abort:
                    return abort
            return None

        live = [item for item in pairs if item[0] not in aborts]
        for (party, _), failed in zip(live, pool.map(pair, live), strict=True):
            if failed is not None and party not in aborts:
                aborts[party] = failed
        return aborts

    def _route(
        self,
        msg: Message,
        key: IdentityKey,
        current: Mapping[int, Round],
        mailbox: dict[int, list[Message]],
        out: RunResult,
    ) -> None:
        targets = (
            [p for p in self._all_parties(msg, current) if p != msg.sender]
            if msg.recipient == BROADCAST
            else [msg.recipient]
        )
        for to in targets:
            copy: Message | None = msg
            for rule in self.faults:
                if copy is not None and rule.matches(copy, to):
                    copy = rule.apply(copy, to, key)
            if copy is not None:
                out.messages += 1
                out.bytes_sent += len(copy.body)
                mailbox[to].append(copy)

    @staticmethod
    def _all_parties(msg: Message, current: Mapping[int, Round]) -> Iterable[int]:
        for rnd in current.values():
            return rnd.cfg.parties
        return ()

    @staticmethod
    def _timeout(
        current: Mapping[int, Round], sent_rounds: Mapping[int, int], out: RunResult
    ) -> None:
        """No party can move. A party waiting for a sender that went past the round that
        sends the message (so the message was dropped) blames that sender: the in-memory
        form of a round timeout. A party waiting only for parties that aborted or are stuck
        themselves blames nobody: it stops, pointing at the aborts that stopped it."""
        stuck: dict[int, list[int]] = {}
        for party, rnd in current.items():
            waiting = sorted({s for s, _ in rnd.expected()})
            dropped = tuple(s for s in waiting if sent_rounds.get(s, 0) >= rnd.number)
            if dropped:
                check = "timeout: message never arrived"
                blame = Blame(rnd.cfg.ssid, rnd.number, dropped, check, ())
                out.aborts[party] = ProtocolAbort(blame)
            else:
                stuck[party] = waiting
        for party, waiting in stuck.items():
            out.stopped[party] = SessionStopped(party, waiting, dict(out.aborts))


def run_phase(
    rounds: Mapping[int, Round], *, workers: int = 2, faults: Iterable[Fault] = ()
) -> RunResult:
    return Runner(workers, faults).run(rounds)
