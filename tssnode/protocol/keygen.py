"""Keygen, t-of-n (CGGMP21 Fig. 5 with Feldman VSS, as multi-party-sig extends it).

Round 1  sample f_i of degree t (f_i(0) = x_i ≠ 0), rid_i, chain key c_i, u_i and the
         Π^sch nonce A_i; broadcast V_i = H(ssid, i, rid_i, F_i, A_i, c_i, u_i).
Round 2  broadcast the opening (rid_i, F_i, A_i, c_i, u_i) and the echo of round 1.
Round 3  check every opening against V_j (and the echo); rid = ⊕ rid_j, chain = ⊕ c_j;
         broadcast Π^sch for F_i(0) = x_i·G bound to (ssid, rid) with the committed A_i,
         plus the echo of round 2; send f_i(j) to each j over the direct channel.
Output   check Π^sch_j, the echo and f_j(i)·G = F_j(i); x_i = Σ_j f_j(i),
         X = Σ_j F_j(0), X_k = Σ_j F_j(k).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from tssnode.crypto.encoding import AnyPoint, NonZeroScalar, Wire, dumps, wire
from tssnode.crypto.group import Point, Q, point_sum
from tssnode.crypto.polynomial import (
    Polynomial,
    check_commitments,
    eval_commitments,
    verify_share,
)
from tssnode.errors import InvalidShare
from tssnode.protocol.base import (
    BROADCAST,
    Echo,
    Message,
    Outcome,
    Round,
    SessionConfig,
    echo_of,
)
from tssnode.protocol.material import KeyPublic, KeyShare
from tssnode.zk import sch
from tssnode.zk.common import ProofContext

PHASE = "keygen"


def _rand32(cfg: SessionConfig) -> bytes:
    return cfg.rng.randbytes(32) if cfg.rng is not None else secrets.token_bytes(32)


def _xor(items: list[bytes]) -> bytes:
    out = bytes(32)
    for item in items:
        out = bytes(a ^ b for a, b in zip(out, item, strict=True))
    return out


def proof_context(cfg: SessionConfig, rid: bytes, prover: int) -> ProofContext:
    """Proofs after the commit round are bound to (ssid, rid) (Fig. 5, round 3)."""
    return ProofContext(hashlib.sha256(cfg.ssid + rid).digest(), prover, cfg.params)


@wire("tssnode.keygen.commit/1")
@dataclass(frozen=True)
class Commit(Wire):
    V: bytes


@wire("tssnode.keygen.open/1")
@dataclass(frozen=True)
class Open(Wire):
    rid: bytes
    F: tuple[AnyPoint, ...]
    A: Point
    chain: bytes
    u: bytes
    echo: Echo


@wire("tssnode.keygen.proof/1")
@dataclass(frozen=True)
class ProofMsg(Wire):
    proof: sch.SchProof
    echo: Echo


@wire("tssnode.keygen.share/1")
@dataclass(frozen=True)
class ShareMsg(Wire):
    share: NonZeroScalar


def commitment(
    ssid: bytes,
    party: int,
    rid: bytes,
    F: tuple[Point, ...],
    A: Point,
    chain: bytes,
    u: bytes,
) -> bytes:
    data = dumps(["tssnode.keygen.V/1", ssid, party, rid, F, A, chain, u])
    return hashlib.sha256(data).digest()


def open_commitment(ssid: bytes, party: int, o: Open) -> bytes:
    """V_j recomputed from party j's opening."""
    return commitment(ssid, party, o.rid, o.F, o.A, o.chain, o.u)


@dataclass(frozen=True, repr=False)
class _Secrets:
    f: Polynomial
    nonce: sch.SchNonce
    rid: bytes
    chain: bytes
    u: bytes


class Round1(Round):
    """Fig. 5 round 1: sample and commit."""

    number = 1
    phase = PHASE

    def finalize(self) -> Outcome:
        cfg = self.cfg
        f = Polynomial.random(cfg.threshold, None, cfg.rng)
        mine = _Secrets(f, sch.commit(cfg.rng), _rand32(cfg), _rand32(cfg), _rand32(cfg))
        V = commitment(
            cfg.ssid, cfg.self_id, mine.rid, f.commitments(), mine.nonce.A, mine.chain, mine.u
        )
        msg = cfg.sign(2, BROADCAST, Commit(V))
        return Outcome([msg], Round2(cfg, mine, msg))


class Round2(Round):
    """Fig. 5 round 2: receive commitments, open."""

    number = 2
    phase = PHASE
    broadcast_body = Commit

    def __init__(self, cfg: SessionConfig, mine: _Secrets, sent: Message) -> None:
        super().__init__(cfg)
        self.mine, self.sent = mine, sent

    def verify(self, msg: Message, body: Commit) -> None:
        if len(body.V) != 32:
            raise self.cfg.blame(self.number, msg.sender, "commitment is not 32 bytes", msg)

    def finalize(self) -> Outcome:
        m = self.mine
        seen = self.seen_broadcasts(self.sent)
        body = Open(m.rid, m.f.commitments(), m.nonce.A, m.chain, m.u, echo_of(seen))
        msg = self.cfg.sign(3, BROADCAST, body)
        commits = {p: self.bcast(p).V for p in self.cfg.others}
        return Outcome([msg], Round3(self.cfg, m, commits, seen, msg))


class Round3(Round):
    """Fig. 5 round 3: check openings, fix rid, prove knowledge of x_i, deal shares."""

    number = 3
    phase = PHASE
    broadcast_body = Open

    def __init__(
        self,
        cfg: SessionConfig,
        mine: _Secrets,
        commits: dict[int, bytes],
        seen: dict[int, Message],
        sent: Message,
    ) -> None:
        super().__init__(cfg)
        self.mine, self.commits, self.seen, self.sent = mine, commits, seen, sent

    def verify(self, msg: Message, body: Open) -> None:
        cfg, j = self.cfg, msg.sender
        self.check_echo(msg, body.echo, self.seen)
        if not (len(body.rid) == len(body.chain) == len(body.u) == 32):
            raise cfg.blame(self.number, j, "rid, chain key or u is not 32 bytes", msg)
        if open_commitment(cfg.ssid, j, body) != self.commits[j]:
            raise cfg.blame(self.number, j, "opening does not match commitment", self.seen[j], msg)
        try:
            check_commitments(body.F, cfg.threshold, refresh=False)
        except InvalidShare as exc:
            raise cfg.blame(self.number, j, str(exc), msg) from None

    def finalize(self) -> Outcome:
        cfg, m = self.cfg, self.mine
        opens: dict[int, Open] = {p: self.bcast(p) for p in cfg.others}
        rid = _xor([m.rid] + [o.rid for o in opens.values()])
        chain = _xor([m.chain] + [o.chain for o in opens.values()])
        F_own = m.f.commitments()
        proof = sch.prove(
            proof_context(cfg, rid, cfg.self_id),
            sch.SchStatement(F_own[0]),
            sch.SchWitness(m.f.coefficients[0]),
            nonce=m.nonce,
        )
        seen = self.seen_broadcasts(self.sent)
        out = [cfg.sign(4, BROADCAST, ProofMsg(proof, echo_of(seen)))]
        out += [cfg.sign(4, j, ShareMsg(m.f(j))) for j in cfg.others]
        Fs = {cfg.self_id: F_own, **{p: o.F for p, o in opens.items()}}
        As = {p: o.A for p, o in opens.items()}
        return Outcome(out, Output(cfg, m.f, rid, chain, Fs, As, seen))


class Output(Round):
    """Fig. 5 output: check proofs and shares, assemble the key share."""

    number = 4
    phase = PHASE
    broadcast_body = ProofMsg
    direct_body = ShareMsg

    def __init__(
        self,
        cfg: SessionConfig,
        f: Polynomial,
        rid: bytes,
        chain: bytes,
        Fs: dict[int, tuple[Point, ...]],
        As: dict[int, Point],
        seen: dict[int, Message],
    ) -> None:
        super().__init__(cfg)
        self.f, self.rid, self.chain, self.Fs, self.As, self.seen = f, rid, chain, Fs, As, seen

    def verify(self, msg: Message, body: ProofMsg | ShareMsg) -> None:
        cfg, j = self.cfg, msg.sender
        if isinstance(body, ProofMsg):
            self.check_echo(msg, body.echo, self.seen)
            if self.As[j] != body.proof.A:
                raise cfg.blame(self.number, j, "Π^sch first message differs from committed A", msg)
            ctx = proof_context(cfg, self.rid, j)
            self.require_proof(sch, ctx, sch.SchStatement(self.Fs[j][0]), body.proof, msg)
        else:
            try:
                verify_share(self.Fs[j], cfg.self_id, body.share)
            except InvalidShare as exc:
                raise cfg.blame(self.number, j, f"share: {exc}", msg) from None

    def finalize(self) -> Outcome:
        cfg = self.cfg
        x = (self.f(cfg.self_id) + sum(self.direct(p).share for p in cfg.others)) % Q
        X = point_sum([F[0] for F in self.Fs.values()])
        shares = {
            k: point_sum([eval_commitments(F, k) for F in self.Fs.values()]) for k in cfg.parties
        }
        if x == 0 or X.is_identity:
            raise InvalidShare("degenerate key (probability 2^-256)")
        key = KeyPublic(cfg.params, cfg.threshold, cfg.parties, X, shares, self.chain, self.rid, 0)
        return Outcome([], result=KeyShare(key, cfg.self_id, x))


def start(cfg: SessionConfig) -> Round1:
    if not 0 <= cfg.threshold < len(cfg.parties):
        raise ValueError("threshold t must satisfy 0 ≤ t < n")
    return Round1(cfg)
