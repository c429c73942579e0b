"""The round engine: signed envelopes, session configuration, rounds, echo broadcast, aborts.

A round object holds one party's state between two communication steps. The transport
gives it every incoming message through `accept` (envelope checks, before any maths),
`verify` (content checks; must not change state, so it can run in a worker thread) and
`store`; when `ready()` it calls `finalize()`, which returns the outgoing messages and
the next round, or the phase's result. A check that fails raises `ProtocolAbort`
naming the culprit with the signed messages that prove it.

Message numbering follows multi-party-sig: messages emitted by round k's `finalize` are
numbered k + 1 and are received by round k + 1.
"""

from __future__ import annotations

import hashlib
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from tssnode.crypto.arith import gil_released
from tssnode.crypto.encoding import Wire, dumps, from_plain, loads_plain, wire
from tssnode.crypto.identity import IdentityKey, verify_signature
from tssnode.crypto.params import Parameters, check_allowed
from tssnode.errors import EncodingError, ProofError, TssError
from tssnode.zk.common import ProofContext, Trapdoor

_T = TypeVar("_T")
_R = TypeVar("_R")

BROADCAST = 0  # recipient id of a broadcast; party ids start at 1
PROTOCOL_VERSION = "cggmp21-tssnode/1"


class ProofModule(Protocol):
    """A tssnode.zk proof module (its `NAME` and `verify`)."""

    NAME: str

    def verify(
        self, ctx: ProofContext, stmt: Any, proof: Any, own: Trapdoor | None = None
    ) -> None: ...


# -- errors -----------------------------------------------------------------------------------


class MessageRefused(TssError):
    """An envelope dropped before any maths: wrong session, round, sender or signature.

    Not an abort: anyone can send junk, and junk must not stop a session.
    """


@wire("tssnode.protocol.msg/1")
@dataclass(frozen=True)
class Message(Wire):
    """A signed protocol envelope. `recipient` is BROADCAST (0) or a party id."""

    ssid: bytes
    round: int
    sender: int
    recipient: int
    body: bytes
    signature: bytes

    def body_hash(self) -> bytes:
        return hashlib.sha256(self.body).digest()

    def digest(self) -> bytes:
        return envelope_digest(self.ssid, self.round, self.sender, self.recipient, self.body_hash())

    @property
    def is_broadcast(self) -> bool:
        return self.recipient == BROADCAST


def envelope_digest(ssid: bytes, rnd: int, sender: int, recipient: int, body_hash: bytes) -> bytes:
    """What the sender signs. The body enters as its hash, so an echo can carry a
    broadcast's (body hash, signature) and anyone can still check who signed what for
    which session, round and recipient."""
    data = dumps(["tssnode.msg-digest/1", ssid, rnd, sender, recipient, body_hash])
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class ProofRecord:
    """One proof verification, for the event stream (no secret in it)."""

    proof: str
    prover: int
    ok: bool
    seconds: float
    check: str


@wire("tssnode.protocol.proof-evidence/1")
@dataclass(frozen=True)
class ProofEvidence(Wire):
    """A proof that failed, with everything needed to run its verifier again: the proof
    context (session id, prover, tier), the statement and the proof, encoded."""

    proof_name: str
    ssid: bytes
    prover: int
    params: Parameters
    statement: bytes
    proof: bytes


@wire("tssnode.protocol.blame/1")
@dataclass(frozen=True)
class Blame(Wire):
    """Evidence of a fault: the culprits, the failed check, the signed messages that show
    it and, for a failed proof, the proof with its statement. `evidence.verify_blame`
    re-checks it with nothing but the parties' identity keys."""

    ssid: bytes
    round: int
    culprits: tuple[int, ...]
    check: str
    messages: tuple[Message, ...]
    proofs: tuple[ProofEvidence, ...] = ()


class ProtocolAbort(TssError):
    """The session stopped because a party misbehaved; `blame` names it with evidence."""

    def __init__(self, blame: Blame) -> None:
        names = ", ".join(map(str, blame.culprits))
        super().__init__(f"round {blame.round}: party {names}: {blame.check}")
        self.blame = blame

    @property
    def culprits(self) -> tuple[int, ...]:
        return self.blame.culprits


# -- workers ----------------------------------------------------------------------------------


class Workers:
    """Where a round runs its independent pieces of work: one per peer (the proofs a
    party makes for each peer in presign and aux-info).

    Without an executor they run one after another in the calling thread. With one (the
    node's pool, `[node] workers` threads) they run in its threads with gmpy2 releasing
    the GIL, so a round's proofs use every core. A piece must not call `map` itself (it
    would wait on the pool it runs in)."""

    def __init__(self, executor: Executor | None = None) -> None:
        self.executor = executor

    def map(self, fn: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        """`[fn(x) for x in items]`, in order; the first exception raised is re-raised.
        A single piece runs in the calling thread (a hop to the pool would only add)."""
        items = list(items)
        if self.executor is None or len(items) <= 1:
            return [fn(x) for x in items]

        def piece(x: _T) -> _R:
            with gil_released():
                return fn(x)

        return list(self.executor.map(piece, items))

    def __repr__(self) -> str:
        return "Workers(serial)" if self.executor is None else f"Workers({self.executor!r})"


SERIAL = Workers()


def fork_rng(rng: random.Random | None, n: int) -> list[random.Random | None]:
    """One random source per piece of parallel work. A seeded session stays reproducible
    whatever the number of workers: each piece gets its own generator, seeded from `rng`
    in order before any piece runs. Unseeded (None, the node): each piece draws from the
    system's CSPRNG as before."""
    if rng is None:
        return [None] * n
    return [random.Random(rng.getrandbits(256)) for _ in range(n)]


# -- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionConfig:
    """What one party knows about a session before it starts."""

    ssid: bytes
    self_id: int
    parties: tuple[int, ...]
    threshold: int
    params: Parameters
    identities: Mapping[int, bytes]  # party id → Ed25519 public key
    identity: IdentityKey = field(repr=False)
    rng: random.Random | None = field(default=None, repr=False, compare=False)
    #: where the rounds run their per-peer work (serial unless the node gives its pool)
    workers: Workers = field(default=SERIAL, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_allowed(self.params)  # a known tier; the test tier only where allowed
        if self.self_id not in self.parties:
            raise ValueError("this party is not in the session")
        if len(set(self.parties)) != len(self.parties) or any(p < 1 for p in self.parties):
            raise ValueError("party ids must be distinct and at least 1")
        if tuple(sorted(self.parties)) != self.parties:
            raise ValueError("parties must be sorted")
        missing = set(self.parties) - set(self.identities)
        if missing:
            raise ValueError(f"no identity key for parties {sorted(missing)}")

    @property
    def others(self) -> tuple[int, ...]:
        return tuple(p for p in self.parties if p != self.self_id)

    def for_each_peer(self, fn: Callable[[int, random.Random | None], _R]) -> list[_R]:
        """`fn(j, rng)` for every other party j, in `others` order, on the session's
        workers, each piece with its own generator (`fork_rng`)."""
        jobs = zip(self.others, fork_rng(self.rng, len(self.others)), strict=True)
        return self.workers.map(lambda job: fn(*job), jobs)

    def sign(self, rnd: int, recipient: int, body: Wire) -> Message:
        raw = body.to_bytes()
        digest = envelope_digest(
            self.ssid, rnd, self.self_id, recipient, hashlib.sha256(raw).digest()
        )
        return Message(self.ssid, rnd, self.self_id, recipient, raw, self.identity.sign(digest))

    def signature_valid(self, msg: Message) -> bool:
        key = self.identities.get(msg.sender)
        return key is not None and verify_signature(key, msg.digest(), msg.signature)

    def blame(self, rnd: int, culprit: int, check: str, *msgs: Message) -> ProtocolAbort:
        return ProtocolAbort(Blame(self.ssid, rnd, (culprit,), check, tuple(msgs)))

    def proof_context(self, prover: int, ssid: bytes | None = None) -> ProofContext:
        return ProofContext(self.ssid if ssid is None else ssid, prover, self.params)


@dataclass
class Outcome:
    """What `finalize` returns: messages to send, then the next round or the result."""

    messages: list[Message]
    next: Round | None = None
    result: Any = None


# -- echo broadcast ---------------------------------------------------------------------------


@wire("tssnode.protocol.echo-entry/1")
@dataclass(frozen=True)
class EchoEntry(Wire):
    body_hash: bytes
    signature: bytes


@wire("tssnode.protocol.echo/1")
@dataclass(frozen=True)
class Echo(Wire):
    """For each party, the body hash and signature of the broadcast received from it in
    the previous round (the echoing party's own broadcast included)."""

    entries: dict[int, EchoEntry]


def echo_of(seen: Mapping[int, Message]) -> Echo:
    """The echo of one broadcast round; `seen` holds every party's broadcast, own included."""
    return Echo({p: EchoEntry(m.body_hash(), m.signature) for p, m in seen.items()})


# -- rounds -----------------------------------------------------------------------------------


class Round(ABC):
    """One party's state between two communication steps of one phase."""

    number: ClassVar[int]
    phase: ClassVar[str]
    #: Body types this round receives; None when it receives no such message.
    broadcast_body: ClassVar[type[Wire] | None] = None
    direct_body: ClassVar[type[Wire] | None] = None

    def __init__(self, cfg: SessionConfig) -> None:
        self.cfg = cfg
        self.broadcasts: dict[int, tuple[Message, Any]] = {}
        self.directs: dict[int, tuple[Message, Any]] = {}
        #: Every proof this round checked: (proof name, prover, ok, seconds, failed check).
        #: Plain data for the node's event stream; the transport drains it.
        self.proof_log: list[ProofRecord] = []
        #: This party's own secrets, for the checks that run on its own parameters
        #: (`zk.common.Trapdoor`); set by the rounds of phases that have them.
        self.trapdoor: Trapdoor | None = None

    # -- the transport's view -----------------------------------------------------------------
    def expected(self) -> list[tuple[int, bool]]:
        """(sender, is_broadcast) pairs still awaited."""
        out: list[tuple[int, bool]] = []
        for p in self.cfg.others:
            if self.broadcast_body is not None and p not in self.broadcasts:
                out.append((p, True))
            if self.direct_body is not None and p not in self.directs:
                out.append((p, False))
        return out

    def ready(self) -> bool:
        return not self.expected()

    def accept(self, msg: Message) -> Any:
        """Envelope checks and strict decoding, before any maths. Returns the body.

        Refuses (MessageRefused) what cannot be pinned on a party; blames a party
        (ProtocolAbort) for a validly signed message that is malformed or conflicting.
        """
        cfg = self.cfg
        if msg.ssid != cfg.ssid:
            raise MessageRefused("message for another session")
        if msg.round != self.number:
            raise MessageRefused(f"message for round {msg.round}, this is round {self.number}")
        if msg.sender not in cfg.others:
            raise MessageRefused(f"sender {msg.sender} is not another party of this session")
        if msg.recipient not in (BROADCAST, cfg.self_id):
            raise MessageRefused("message addressed to another party")
        if not cfg.signature_valid(msg):
            raise MessageRefused("bad envelope signature")
        kind = self.broadcast_body if msg.is_broadcast else self.direct_body
        if kind is None:
            raise cfg.blame(self.number, msg.sender, "unexpected message kind", msg)
        self._check_unseen(msg)
        try:
            return from_plain(kind, loads_plain(msg.body))
        except EncodingError as exc:
            raise cfg.blame(self.number, msg.sender, f"malformed body: {exc}", msg) from None

    def _check_unseen(self, msg: Message) -> None:
        store = self.broadcasts if msg.is_broadcast else self.directs
        previous = store.get(msg.sender)
        if previous is not None:
            if previous[0] == msg:
                raise MessageRefused("duplicate message")
            raise self.cfg.blame(
                self.number, msg.sender, "two different messages for one round", previous[0], msg
            )

    def verify(self, msg: Message, body: Any) -> None:  # noqa: B027 - optional hook
        """Content checks on one message (proofs, ranges). Must not change state."""

    def verify_pair(self, sender: int) -> None:  # noqa: B027 - optional hook
        """Checks that need both the broadcast and the direct message of `sender` (for
        example a proof about ciphertexts in the broadcast); called once both are stored."""

    def store(self, msg: Message, body: Any) -> None:
        (self.broadcasts if msg.is_broadcast else self.directs)[msg.sender] = (msg, body)

    def check(self, msg: Message) -> Any:
        """accept → verify, changing nothing: several messages may be checked at once."""
        body = self.accept(msg)
        self.verify(msg, body)
        return body

    def record(self, msg: Message, body: Any) -> bool:
        """Store a checked message (refusing one that arrived twice meanwhile). Returns
        True when the sender's broadcast and direct message are now both here, i.e. when
        `verify_pair(msg.sender)` is due."""
        self._check_unseen(msg)
        self.store(msg, body)
        return (
            self.broadcast_body is not None
            and self.direct_body is not None
            and msg.sender in self.broadcasts
            and msg.sender in self.directs
        )

    def deliver(self, msg: Message) -> None:
        """check → record (→ verify_pair): what a transport calls per message."""
        if self.record(msg, self.check(msg)):
            self.verify_pair(msg.sender)

    @abstractmethod
    def finalize(self) -> Outcome:
        """Called once every expected message was accepted, verified and stored."""

    def reopen(self, msg: Message) -> Outcome | None:
        """After this round finished the phase with a result, a peer sent `msg` for the
        next round: it saw a failure this party did not (a lie aimed at it alone) and
        started the identification step. A round with a failure branch joins it, and the
        result must then be discarded; others return None and the message is refused."""
        return None

    def is_authentic_followup(self, msg: Message) -> bool:
        """`msg` is a signed message of this session from another party for the round
        after this one (the only thing that may reopen a finished phase)."""
        cfg = self.cfg
        return (
            msg.ssid == cfg.ssid
            and msg.round == self.number + 1
            and msg.sender in cfg.others
            and msg.recipient in (BROADCAST, cfg.self_id)
            and cfg.signature_valid(msg)
        )

    # -- helpers for subclasses ----------------------------------------------------------------
    def check_proof(
        self, module: ProofModule, ctx: ProofContext, stmt: Wire, proof: Wire
    ) -> tuple[str, ProofEvidence] | None:
        """Run `module.verify`; on failure return the failed check and the evidence."""
        start = time.perf_counter()
        try:
            module.verify(ctx, stmt, proof, self.trapdoor)
        except ProofError as exc:
            seconds = time.perf_counter() - start
            self.proof_log.append(ProofRecord(module.NAME, ctx.prover, False, seconds, exc.check))
            evidence = ProofEvidence(
                exc.proof, ctx.ssid, ctx.prover, ctx.params, stmt.to_bytes(), proof.to_bytes()
            )
            return str(exc), evidence
        seconds = time.perf_counter() - start
        self.proof_log.append(ProofRecord(module.NAME, ctx.prover, True, seconds, ""))
        return None

    def require_proof(
        self, module: ProofModule, ctx: ProofContext, stmt: Wire, proof: Wire, *msgs: Message
    ) -> None:
        """`check_proof`, raising an abort that blames the prover with the evidence."""
        failed = self.check_proof(module, ctx, stmt, proof)
        if failed is not None:
            check, evidence = failed
            blame = Blame(self.cfg.ssid, self.number, (ctx.prover,), check, msgs, (evidence,))
            raise ProtocolAbort(blame)

    def bcast(self, sender: int) -> Any:
        return self.broadcasts[sender][1]

    def direct(self, sender: int) -> Any:
        return self.directs[sender][1]

    def seen_broadcasts(self, own: Message) -> dict[int, Message]:
        """Every party's broadcast of this round, own included (for the next round's echo)."""
        return {self.cfg.self_id: own, **{p: m for p, (m, _) in self.broadcasts.items()}}

    def check_echo(self, msg: Message, echo: Echo, seen: Mapping[int, Message]) -> None:
        """Compare a peer's echo with this party's own record `seen` of the broadcast round
        before (every party's signed broadcast, own included).

        An entry that differs but carries a valid signature of its party over (ssid, that
        round, broadcast, body hash) proves the party signed two broadcasts for one round:
        that party equivocated. An entry with a bad signature convicts the echoer.
        """
        cfg = self.cfg
        if set(echo.entries) != set(cfg.parties):
            raise cfg.blame(self.number, msg.sender, "echo does not cover every party", msg)
        for party, entry in echo.entries.items():
            ours = seen[party]
            if entry.body_hash == ours.body_hash():
                continue
            digest = envelope_digest(cfg.ssid, ours.round, party, BROADCAST, entry.body_hash)
            if verify_signature(cfg.identities[party], digest, entry.signature):
                raise ProtocolAbort(
                    Blame(
                        cfg.ssid,
                        ours.round,
                        (party,),
                        "equivocation: two different signed broadcasts for one round",
                        (ours, msg),
                    )
                )
            raise cfg.blame(self.number, msg.sender, f"echo forges party {party}'s broadcast", msg)


class IdentifyRound(Round):
    """The failure branch of presign and sign: check every party's identification proofs,
    collect each party whose proof fails (with the evidence), then blame them all."""

    #: "presign identification" / "sign identification"
    label: ClassVar[str]
    #: What it means when every proof holds (the failure had no culprit among them).
    all_clear: ClassVar[str]

    def __init__(self, cfg: SessionConfig) -> None:
        super().__init__(cfg)
        self.culprits: dict[int, tuple[str, tuple[Message, ...], ProofEvidence]] = {}

    def convict(
        self, party: int, failed: tuple[str, ProofEvidence], *msgs: Message, prefix: str = ""
    ) -> None:
        check, evidence = failed
        self.culprits[party] = (prefix + check, msgs, evidence)

    def finalize(self) -> Outcome:
        cfg = self.cfg
        if not self.culprits:
            raise ProtocolAbort(Blame(cfg.ssid, self.number, (), self.all_clear, ()))
        culprits = tuple(sorted(self.culprits))
        detail = "; ".join(f"party {j}: {self.culprits[j][0]}" for j in culprits)
        msgs = tuple(m for j in culprits for m in self.culprits[j][1])
        proofs = tuple(self.culprits[j][2] for j in culprits)
        check = f"{self.label}: {detail}"
        raise ProtocolAbort(Blame(cfg.ssid, self.number, culprits, check, msgs, proofs))
