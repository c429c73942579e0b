"""Aux-info and key refresh (CGGMP21 Fig. 6), t-of-n, and resharing to a new party set.

Round 1  Paillier key N_i = p_i·q_i from two safe primes (pool or fresh), ring-Pedersen
         (N_i, s_i, t_i) with s_i = t_i^λ_i and its Π^prm; a degree-t polynomial f_i with
         the constant term the session fixes (below; commitments F_i); rid_i, u_i.
         Broadcast V_i = H(ssid, i, N_i, s_i, t_i, ψ̂_i, F_i, rid_i, u_i).
Round 2  broadcast the opening and the echo of round 1.
Round 3  check openings against V_j; N_j has the tier's length, is odd and not prime;
         s_j, t_j valid; Π^prm_j verifies; F_j has degree t and F_j(0) is the constant
         term the session fixes for j. rid = ⊕ rid_j. Broadcast Π^mod for N_i (bound to
         rid) and the echo of round 2; send each j: C_{j} = enc_j(f_i(j)) under N_j and
         Π^fac for N_i built with j's ring-Pedersen parameters.
Output   check Π^mod_j, Π^fac_j against our own (N̂, s, t), decrypt C, range-check the
         plaintext, check it against F_j; then the new share (below). The public key is
         unchanged; every share changes.

The same rounds run two sessions; only the constant terms and the output differ:

Refresh  (same parties, same threshold) every f_j(0) = 0, so F_j(0) = identity;
         x_i' = x_i + Σ_j f_j(i), X_k' = X_k + Σ_j F_j(k).
Reshare  (`Reshare`: the old key, and for the session parties that hold a share of it,
         the "dealers" D, their old ids) a dealer deals f_i(0) = λ_i·x_i with λ_i the
         Lagrange coefficient at 0 over the dealers' old ids, and everyone checks
         F_i(0) = λ_i·X_i against the old key's public shares, so no dealer can change
         the key; Σ_{i∈D} λ_i·x_i = x. A party without an old share (a new one, or an old
         one not chosen as a dealer) deals f_j(0) = 0 exactly as in a refresh: its shares
         only re-randomise, and letting it deal keeps every round the same for everyone
         (each pair exchanges a direct message for Π^fac anyway). Output x_j' = Σ_i f_i(j),
         X_k' = Σ_i F_i(k) for the new parties (no old share is added: new parties have
         none), new threshold t' = the session's, epoch + 1. Resharing needs at least
         t+1 dealers (t the old key's threshold). The old parties' old shares still
         combine with each other into x: nodes must delete them.

DEVIATION: Fig. 6 also has each party prove knowledge (Π^sch) of each additive refresh
share. With Feldman VSS every share is checked against the dealer's commitments and
the constant term is checked directly (zero, or λ_i·X_i of the old key), so the sum of
the polynomials is a degree-t sharing of 0 (refresh) or of x (reshare) no matter what a
dealer knows; multi-party-sig's VSS refresh drops those proofs for the same reason.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from random import Random
from typing import Any

from gmpy2 import mpz

from tssnode.crypto import pedersen as ped
from tssnode.crypto.encoding import AnyPoint, Big, Wire, dumps, wire
from tssnode.crypto.group import Point, Q, base_mul, point_sum
from tssnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from tssnode.crypto.pedersen import PedersenParams, PedersenSecret
from tssnode.crypto.polynomial import (
    Polynomial,
    check_commitments,
    eval_commitments,
    lagrange_at_zero,
    verify_share,
)
from tssnode.crypto.primes import safe_prime
from tssnode.errors import InvalidModulus, InvalidShare
from tssnode.protocol.base import (
    BROADCAST,
    Blame,
    Echo,
    Message,
    Outcome,
    ProtocolAbort,
    Round,
    SessionConfig,
    echo_of,
    fork_rng,
)
from tssnode.protocol.material import AuxPublic, AuxSecret, KeyPublic, KeyShare
from tssnode.zk import fac, mod, prm
from tssnode.zk.common import ProofContext, Trapdoor

PHASE = "aux"

#: The check a dealer fails when its F_i(0) is not λ_i·X_i of the old key (evidence.py
#: re-checks it given the `Reshare`).
WRONG_CONSTANT = "dealt constant term is not λ_j·X_j of the old key"

#: Where a party's two safe primes come from: the pool, or fresh generation.
PrimeSource = Callable[[], tuple[mpz, mpz]]


def fresh_primes(bits: int) -> PrimeSource:
    return lambda: (safe_prime(bits), safe_prime(bits))


@wire("tssnode.aux.reshare/1")
@dataclass(frozen=True)
class Reshare(Wire):
    """The public input of a reshare: the key to move, and for each session party that
    holds a share of it (a dealer) its id in the old key, new id → old id. Bound into the
    session id (`ssid.aux_ssid`)."""

    old_key: KeyPublic
    old_ids: dict[int, int]

    def lagrange(self, party: int) -> int:
        """λ_i over the dealers' old ids: the weight of dealer `party`'s old share in x."""
        return lagrange_at_zero(self.old_ids[party], sorted(self.old_ids.values()))

    def constant_point(self, party: int) -> Point:
        """F_j(0) that party j must deal: λ_j·X_j for a dealer, the identity otherwise."""
        if party not in self.old_ids:
            return Point.identity()
        return self.old_key.public_shares[self.old_ids[party]] * self.lagrange(party)


@wire("tssnode.aux.commit/1")
@dataclass(frozen=True)
class Commit(Wire):
    V: bytes


@wire("tssnode.aux.open/1")
@dataclass(frozen=True)
class Open(Wire):
    N: PaillierPublicKey
    ped: PedersenParams
    prm_proof: prm.PrmProof
    F: tuple[AnyPoint, ...]
    rid: bytes
    u: bytes
    echo: Echo


@wire("tssnode.aux.modproof/1")
@dataclass(frozen=True)
class ModMsg(Wire):
    proof: mod.ModProof
    echo: Echo


@wire("tssnode.aux.share/1")
@dataclass(frozen=True)
class ShareMsg(Wire):
    C: Big  # enc_j(f_i(j)) under N_j
    fac_proof: fac.FacProof


def commitment(ssid: bytes, party: int, o: Open) -> bytes:
    """V_j recomputed from party j's opening (the echo is not part of it)."""
    data = dumps(["tssnode.aux.V/1", ssid, party, o.N, o.ped, o.prm_proof, o.F, o.rid, o.u])
    return hashlib.sha256(data).digest()


def proof_context(cfg: SessionConfig, prover: int, rid: bytes | None = None) -> ProofContext:
    ssid = cfg.ssid if rid is None else hashlib.sha256(cfg.ssid + rid).digest()
    return ProofContext(ssid, prover, cfg.params)


@dataclass(frozen=True, repr=False)
class _Plan:
    """What a session deals and keeps: the only difference between a refresh and a
    reshare (made by `start`)."""

    old: KeyPublic
    constant: int  # f_i(0) of this party: 0, or λ_i·x_i for a reshare dealer (secret)
    constants: dict[int, Point]  # F_j(0) that each party j must commit to
    keep: KeyShare | None  # refresh: the old share the dealt values are added to
    epoch: int  # of the new key

    @property
    def dealt_key(self) -> Point:
        """Σ_j F_j(0): the identity for a refresh, the public key for a reshare."""
        return Point.identity() if self.keep is not None else self.old.public_key

    def check_dealing(self, party: int, F: tuple[Point, ...], threshold: int) -> None:
        """Degree exactly t and the constant term fixed for `party` (InvalidShare)."""
        expected = self.constants[party]
        if not expected.is_identity and F and F[0] != expected:
            raise InvalidShare(WRONG_CONSTANT)
        check_commitments(F, threshold, refresh=expected.is_identity)


@dataclass(frozen=True, repr=False)
class _Secrets:
    paillier: PaillierSecretKey
    pedersen: PedersenSecret
    f: Polynomial
    opening: Open  # without echo (filled in round 2)


class Round1(Round):
    number = 1
    phase = PHASE

    def __init__(self, cfg: SessionConfig, plan: _Plan, primes: PrimeSource) -> None:
        super().__init__(cfg)
        self.plan, self.primes = plan, primes

    def finalize(self) -> Outcome:
        cfg = self.cfg
        p, q = self.primes()
        sk = PaillierSecretKey(p, q)
        if sk.n.bit_length() != cfg.params.paillier_bits:
            raise InvalidModulus("prime source gave primes of the wrong size")
        rp = ped.generate(p, q, cfg.rng)
        psi = prm.prove(proof_context(cfg, cfg.self_id), rp.public, rp, cfg.rng)
        f = Polynomial.random(cfg.threshold, self.plan.constant, cfg.rng)
        rid = cfg.rng.randbytes(32) if cfg.rng else secrets.token_bytes(32)
        u = cfg.rng.randbytes(32) if cfg.rng else secrets.token_bytes(32)
        opening = Open(sk.public, rp.public, psi, f.commitments(), rid, u, Echo({}))
        msg = cfg.sign(2, BROADCAST, Commit(commitment(cfg.ssid, cfg.self_id, opening)))
        return Outcome([msg], Round2(cfg, self.plan, _Secrets(sk, rp, f, opening), msg))


class Round2(Round):
    number = 2
    phase = PHASE
    broadcast_body = Commit

    def __init__(self, cfg: SessionConfig, plan: _Plan, mine: _Secrets, sent: Message) -> None:
        super().__init__(cfg)
        self.plan, self.mine, self.sent = plan, mine, sent

    def verify(self, msg: Message, body: Commit) -> None:
        if len(body.V) != 32:
            raise self.cfg.blame(self.number, msg.sender, "commitment is not 32 bytes", msg)

    def finalize(self) -> Outcome:
        seen = self.seen_broadcasts(self.sent)
        body = Open(**{**self.mine.opening.__dict__, "echo": echo_of(seen)})
        msg = self.cfg.sign(3, BROADCAST, body)
        commits = {p: self.bcast(p).V for p in self.cfg.others}
        return Outcome([msg], Round3(self.cfg, self.plan, self.mine, commits, seen, msg))


class Round3(Round):
    number = 3
    phase = PHASE
    broadcast_body = Open

    def __init__(
        self,
        cfg: SessionConfig,
        plan: _Plan,
        mine: _Secrets,
        commits: dict[int, bytes],
        seen: dict[int, Message],
        sent: Message,
    ) -> None:
        super().__init__(cfg)
        self.plan, self.mine, self.commits, self.seen, self.sent = plan, mine, commits, seen, sent

    def verify(self, msg: Message, body: Open) -> None:
        cfg, j = self.cfg, msg.sender
        self.check_echo(msg, body.echo, self.seen)
        if commitment(cfg.ssid, j, body) != self.commits[j]:
            raise cfg.blame(self.number, j, "opening does not match commitment", self.seen[j], msg)
        if len(body.rid) != 32 or len(body.u) != 32:
            raise cfg.blame(self.number, j, "rid or u is not 32 bytes", msg)
        try:
            body.N.validate(cfg.params)
            if body.ped.n != body.N.n:
                raise InvalidModulus("ring-Pedersen modulus differs from the Paillier modulus")
            body.ped.validate(cfg.params)
            self.plan.check_dealing(j, body.F, cfg.threshold)
        except (InvalidModulus, InvalidShare) as exc:
            raise cfg.blame(self.number, j, str(exc), msg) from None
        self.require_proof(prm, proof_context(cfg, j), body.ped, body.prm_proof, msg)
        if body.N.n == self.mine.paillier.n:
            raise cfg.blame(self.number, j, "Paillier modulus copies ours", msg)

    def finalize(self) -> Outcome:
        cfg, m = self.cfg, self.mine
        opens: dict[int, Open] = {p: self.bcast(p) for p in cfg.others}
        rid = bytes(32)
        for r in [m.opening.rid] + [o.rid for o in opens.values()]:
            rid = bytes(a ^ b for a, b in zip(rid, r, strict=True))
        ctx = proof_context(cfg, cfg.self_id, rid)
        sk = m.paillier

        def mod_proof(rng: Random | None) -> mod.ModProof:
            return mod.prove(ctx, mod.ModStatement(sk.n), mod.ModWitness(sk.p, sk.q), rng)

        def share_for(j: int, rng: Random | None) -> ShareMsg:
            o = opens[j]
            C, _ = o.N.encrypt(m.f(j), rng)
            stmt, wit = fac.FacStatement(sk.public, o.ped), fac.FacWitness(sk.p, sk.q)
            return ShareMsg(C, fac.prove(ctx, stmt, wit, rng))

        # Π^mod and, for each peer, its share and Π^fac: independent pieces of work
        rngs = fork_rng(cfg.rng, 1 + len(opens))
        pieces: list[Callable[[], Any]] = [partial(mod_proof, rngs[0])]
        pieces += [partial(share_for, j, rng) for j, rng in zip(opens, rngs[1:], strict=True)]
        proof, *shares = cfg.workers.map(_call, pieces)
        seen = self.seen_broadcasts(self.sent)
        out = [cfg.sign(4, BROADCAST, ModMsg(proof, echo_of(seen)))]
        out += [cfg.sign(4, j, body) for j, body in zip(opens, shares, strict=True)]
        return Outcome(out, Output(cfg, self.plan, m, opens, rid, seen))


def _call(piece: Callable[[], Any]) -> Any:
    return piece()


class Output(Round):
    number = 4
    phase = PHASE
    broadcast_body = ModMsg
    direct_body = ShareMsg

    def __init__(
        self,
        cfg: SessionConfig,
        plan: _Plan,
        mine: _Secrets,
        opens: dict[int, Open],
        rid: bytes,
        seen: dict[int, Message],
    ) -> None:
        super().__init__(cfg)
        self.plan, self.mine, self.opens, self.rid, self.seen = plan, mine, opens, rid, seen
        self.trapdoor = Trapdoor(pedersen=mine.pedersen, paillier=mine.paillier)

    def verify(self, msg: Message, body: ModMsg | ShareMsg) -> None:
        cfg, j = self.cfg, msg.sender
        ctx = proof_context(cfg, j, self.rid)
        o = self.opens[j]
        if isinstance(body, ModMsg):
            self.check_echo(msg, body.echo, self.seen)
            self.require_proof(mod, ctx, mod.ModStatement(o.N.n), body.proof, msg)
            return
        stmt = fac.FacStatement(o.N, self.mine.pedersen.public)
        self.require_proof(fac, ctx, stmt, body.fac_proof, msg)
        sk = self.mine.paillier
        if not sk.public.is_ciphertext(body.C):
            raise cfg.blame(self.number, j, "share ciphertext not in Z*_{N²}", msg)
        value = sk.decrypt(body.C)
        if not 0 < value < Q:
            raise cfg.blame(self.number, j, "decrypted share out of range [1, q)", msg)
        try:
            verify_share(o.F, cfg.self_id, int(value))
        except InvalidShare as exc:
            raise cfg.blame(self.number, j, f"share: {exc}", msg) from None

    def finalize(self) -> Outcome:
        cfg, m, plan = self.cfg, self.mine, self.plan
        moduli = [o.N.n for o in self.opens.values()]
        if len(set(moduli)) != len(moduli):
            dup = sorted(j for j, o in self.opens.items() if moduli.count(o.N.n) > 1)
            # Both proved knowledge of the factorisation: they share it, so both are at fault.
            raise ProtocolAbort(
                Blame(cfg.ssid, self.number, tuple(dup), "shared Paillier modulus", ())
            )
        sk = m.paillier
        x = (m.f(cfg.self_id) + sum(int(sk.decrypt(self.direct(j).C)) for j in cfg.others)) % Q
        Fs = [m.f.commitments()] + [o.F for o in self.opens.values()]
        if point_sum([F[0] for F in Fs]) != plan.dealt_key:
            raise InvalidShare("dealt constant terms do not add up (checked one by one)")
        shares: dict[int, Point] = {
            k: point_sum([eval_commitments(F, k) for F in Fs]) for k in cfg.parties
        }
        if plan.keep is not None:  # refresh: add the dealt sharing of 0 to the old one
            x = (plan.keep.x + x) % Q
            shares = {k: plan.old.public_shares[k] + X for k, X in shares.items()}
        key = KeyPublic(
            cfg.params,
            cfg.threshold,
            cfg.parties,
            plan.old.public_key,
            shares,
            plan.old.chain_code,
            plan.old.rid,
            plan.epoch,
        )
        paillier = {cfg.self_id: sk.public, **{j: o.N for j, o in self.opens.items()}}
        pedersen = {cfg.self_id: m.pedersen.public, **{j: o.ped for j, o in self.opens.items()}}
        aux = AuxPublic(paillier, pedersen)
        secret = AuxSecret(sk.p, sk.q, m.pedersen.lam)
        if x == 0:
            raise InvalidShare("new share is zero (probability 2^-256)")
        return Outcome([], result=KeyShare(key, cfg.self_id, x, aux, secret))


def start(
    cfg: SessionConfig,
    share: KeyShare | None,
    primes: PrimeSource | None = None,
    *,
    reshare: Reshare | None = None,
) -> Round1:
    """Aux-info + refresh of `share` (same parties, same threshold), or with `reshare`
    aux-info + resharing of `reshare.old_key` to the session's parties and threshold.

    In a reshare, `share` is this party's old share if it is a dealer (in
    `reshare.old_ids`) and None otherwise. `cfg.ssid` must come from `ssid.aux_ssid` with
    the same `Reshare` (the key for a refresh). Raises ValueError before anything is sent
    when the inputs do not fit together (too few dealers among them)."""
    plan = _refresh_plan(cfg, share) if reshare is None else _reshare_plan(cfg, share, reshare)
    return Round1(cfg, plan, primes or fresh_primes(cfg.params.prime_bits))


def _refresh_plan(cfg: SessionConfig, share: KeyShare | None) -> _Plan:
    if share is None:
        raise ValueError("a refresh needs this party's key share")
    old = share.key
    if cfg.parties != old.parties or cfg.threshold != old.threshold:
        raise ValueError("refresh runs over the key's own parties and threshold")
    if cfg.params != old.params:
        raise ValueError("refresh keeps the key's parameter tier")
    zero = {k: Point.identity() for k in cfg.parties}
    # the aux-info that completes a keygen is not a refresh: epoch counts refreshes
    epoch = old.epoch + (1 if share.aux is not None else 0)
    return _Plan(old, 0, zero, share, epoch)


def _reshare_plan(cfg: SessionConfig, share: KeyShare | None, reshare: Reshare) -> _Plan:
    old, dealers = reshare.old_key, reshare.old_ids
    if cfg.params != old.params:
        raise ValueError("resharing keeps the key's parameter tier")
    if not 0 <= cfg.threshold < len(cfg.parties):
        raise ValueError("the new threshold t' must satisfy 0 ≤ t' < n' (t'+1 signers)")
    if not set(dealers) <= set(cfg.parties):
        raise ValueError("every dealer must be a party of the session")
    if not set(dealers.values()) <= set(old.parties) or len(set(dealers.values())) != len(dealers):
        raise ValueError("dealers must map to distinct parties of the old key")
    if len(dealers) < old.threshold + 1:
        raise ValueError(
            f"resharing needs at least t+1 = {old.threshold + 1} dealers (old parties with"
            f" a share), got {len(dealers)}"
        )
    constants = {k: reshare.constant_point(k) for k in cfg.parties}
    if point_sum(list(constants.values())) != old.public_key:
        raise ValueError("the dealers' public shares do not interpolate to the public key")
    me = cfg.self_id
    if me not in dealers:
        if share is not None:
            raise ValueError("only a dealer brings an old share (this party is not one)")
        return _Plan(old, 0, constants, None, old.epoch + 1)
    if share is None or share.key != old or share.self_id != dealers[me]:
        raise ValueError(f"dealer {me} needs its share of the old key as party {dealers[me]}")
    if base_mul(share.x) != old.public_shares[share.self_id]:
        raise ValueError("the old share does not match its public share")
    constant = reshare.lagrange(me) * share.x % Q
    return _Plan(old, constant, constants, None, old.epoch + 1)
