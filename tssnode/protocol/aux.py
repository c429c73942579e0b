"""Aux-info and key refresh (CGGMP21 Fig. 6), t-of-n.

Round 1  Paillier key N_i = p_i·q_i from two safe primes (pool or fresh), ring-Pedersen
         (N_i, s_i, t_i) with s_i = t_i^λ_i and its Π^prm; a degree-t refresh
         polynomial with zero constant term (commitments F_i); rid_i, u_i.
         Broadcast V_i = H(ssid, i, N_i, s_i, t_i, ψ̂_i, F_i, rid_i, u_i).
Round 2  broadcast the opening and the echo of round 1.
Round 3  check openings against V_j; N_j has the tier's length, is odd and not prime;
         s_j, t_j valid; Π^prm_j verifies; F_j has degree t and F_j(0) = 0.
         rid = ⊕ rid_j. Broadcast Π^mod for N_i (bound to rid) and the echo of round 2;
         send each j: C_{j} = enc_j(f_i(j)) under N_j and Π^fac for N_i built with j's
         ring-Pedersen parameters.
Output   check Π^mod_j, Π^fac_j against our own (N̂, s, t), decrypt C, range-check the
         plaintext, check it against F_j; x_i' = x_i + Σ_j f_j(i), X_k' = X_k + Σ_j F_j(k).
         The public key is unchanged; every share changes.

DEVIATION: Fig. 6 also has each party prove knowledge (Π^sch) of each additive refresh
share. With Feldman VSS every share is checked against the dealer's commitments and
the zero constant term is checked directly, so the sum of the refresh polynomials is a
degree-t sharing of 0 no matter what a dealer knows; multi-party-sig's VSS refresh drops
those proofs for the same reason.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from gmpy2 import mpz

from tssnode.crypto import pedersen as ped
from tssnode.crypto.encoding import AnyPoint, Big, Wire, dumps, wire
from tssnode.crypto.group import Point, Q, point_sum
from tssnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from tssnode.crypto.pedersen import PedersenParams, PedersenSecret
from tssnode.crypto.polynomial import Polynomial, check_commitments, eval_commitments, verify_share
from tssnode.crypto.primes import safe_prime
from tssnode.errors import InvalidModulus, InvalidShare
from tssnode.protocol.base import (
    BROADCAST,
    Echo,
    Message,
    Outcome,
    Round,
    SessionConfig,
    echo_of,
)
from tssnode.protocol.material import AuxPublic, AuxSecret, KeyPublic, KeyShare
from tssnode.zk import fac, mod, prm
from tssnode.zk.common import ProofContext

PHASE = "aux"

#: Where a party's two safe primes come from: the pool, or fresh generation.
PrimeSource = Callable[[], tuple[mpz, mpz]]


def fresh_primes(bits: int) -> PrimeSource:
    return lambda: (safe_prime(bits), safe_prime(bits))


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
class _Secrets:
    paillier: PaillierSecretKey
    pedersen: PedersenSecret
    f: Polynomial
    opening: Open  # without echo (filled in round 2)


class Round1(Round):
    number = 1
    phase = PHASE

    def __init__(self, cfg: SessionConfig, share: KeyShare, primes: PrimeSource) -> None:
        super().__init__(cfg)
        self.share, self.primes = share, primes

    def finalize(self) -> Outcome:
        cfg = self.cfg
        p, q = self.primes()
        sk = PaillierSecretKey(p, q)
        if sk.n.bit_length() != cfg.params.paillier_bits:
            raise InvalidModulus("prime source gave primes of the wrong size")
        rp = ped.generate(p, q, cfg.rng)
        psi = prm.prove(proof_context(cfg, cfg.self_id), rp.public, rp, cfg.rng)
        f = Polynomial.random(cfg.threshold, 0, cfg.rng)
        rid = cfg.rng.randbytes(32) if cfg.rng else secrets.token_bytes(32)
        u = cfg.rng.randbytes(32) if cfg.rng else secrets.token_bytes(32)
        opening = Open(sk.public, rp.public, psi, f.commitments(), rid, u, Echo({}))
        msg = cfg.sign(2, BROADCAST, Commit(commitment(cfg.ssid, cfg.self_id, opening)))
        return Outcome([msg], Round2(cfg, self.share, _Secrets(sk, rp, f, opening), msg))


class Round2(Round):
    number = 2
    phase = PHASE
    broadcast_body = Commit

    def __init__(self, cfg: SessionConfig, share: KeyShare, mine: _Secrets, sent: Message) -> None:
        super().__init__(cfg)
        self.share, self.mine, self.sent = share, mine, sent

    def verify(self, msg: Message, body: Commit) -> None:
        if len(body.V) != 32:
            raise self.cfg.blame(self.number, msg.sender, "commitment is not 32 bytes", msg)

    def finalize(self) -> Outcome:
        seen = self.seen_broadcasts(self.sent)
        body = Open(**{**self.mine.opening.__dict__, "echo": echo_of(seen)})
        msg = self.cfg.sign(3, BROADCAST, body)
        commits = {p: self.bcast(p).V for p in self.cfg.others}
        return Outcome([msg], Round3(self.cfg, self.share, self.mine, commits, seen, msg))


class Round3(Round):
    number = 3
    phase = PHASE
    broadcast_body = Open

    def __init__(
        self,
        cfg: SessionConfig,
        share: KeyShare,
        mine: _Secrets,
        commits: dict[int, bytes],
        seen: dict[int, Message],
        sent: Message,
    ) -> None:
        super().__init__(cfg)
        self.share, self.mine, self.commits, self.seen, self.sent = share, mine, commits, seen, sent

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
            check_commitments(body.F, cfg.threshold, refresh=True)
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
        mod_proof = mod.prove(ctx, mod.ModStatement(sk.n), mod.ModWitness(sk.p, sk.q), cfg.rng)
        seen = self.seen_broadcasts(self.sent)
        out = [cfg.sign(4, BROADCAST, ModMsg(mod_proof, echo_of(seen)))]
        for j, o in opens.items():
            C, _ = o.N.encrypt(m.f(j), cfg.rng)
            psi = fac.prove(
                ctx, fac.FacStatement(sk.public, o.ped), fac.FacWitness(sk.p, sk.q), cfg.rng
            )
            out.append(cfg.sign(4, j, ShareMsg(C, psi)))
        return Outcome(out, Output(cfg, self.share, m, opens, rid, seen))


class Output(Round):
    number = 4
    phase = PHASE
    broadcast_body = ModMsg
    direct_body = ShareMsg

    def __init__(
        self,
        cfg: SessionConfig,
        share: KeyShare,
        mine: _Secrets,
        opens: dict[int, Open],
        rid: bytes,
        seen: dict[int, Message],
    ) -> None:
        super().__init__(cfg)
        self.share, self.mine, self.opens, self.rid, self.seen = share, mine, opens, rid, seen

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
        cfg, m, old = self.cfg, self.mine, self.share
        moduli = [o.N.n for o in self.opens.values()]
        if len(set(moduli)) != len(moduli):
            dup = sorted(j for j, o in self.opens.items() if moduli.count(o.N.n) > 1)
            # Both proved knowledge of the factorisation: they share it, so both are at fault.
            from tssnode.protocol.base import Blame, ProtocolAbort

            raise ProtocolAbort(
                Blame(cfg.ssid, self.number, tuple(dup), "shared Paillier modulus", ())
            )
        sk = m.paillier
        delta = m.f(cfg.self_id) + sum(int(sk.decrypt(self.direct(j).C)) for j in cfg.others)
        x = (old.x + delta) % Q
        Fs = [m.f.commitments()] + [o.F for o in self.opens.values()]
        shares: dict[int, Point] = {
            k: old.key.public_shares[k] + point_sum([eval_commitments(F, k) for F in Fs])
            for k in cfg.parties
        }
        key = KeyPublic(
            cfg.params,
            old.key.threshold,
            old.key.parties,
            old.key.public_key,
            shares,
            old.key.chain_code,
            old.key.rid,
            # the aux-info that completes a keygen is not a refresh: epoch counts refreshes
            old.key.epoch + (1 if old.aux is not None else 0),
        )
        paillier = {cfg.self_id: sk.public, **{j: o.N for j, o in self.opens.items()}}
        pedersen = {cfg.self_id: m.pedersen.public, **{j: o.ped for j, o in self.opens.items()}}
        aux = AuxPublic(paillier, pedersen)
        secret = AuxSecret(sk.p, sk.q, m.pedersen.lam)
        if x == 0:
            raise InvalidShare("refreshed share is zero (probability 2^-256)")
        return Outcome([], result=KeyShare(key, cfg.self_id, x, aux, secret))


def start(cfg: SessionConfig, share: KeyShare, primes: PrimeSource | None = None) -> Round1:
    """Aux-info + refresh for an existing key share (same parties, same threshold)."""
    if cfg.parties != share.key.parties or cfg.threshold != share.key.threshold:
        raise ValueError("refresh runs over the key's own parties and threshold")
    if cfg.params != share.key.params:
        raise ValueError("refresh keeps the key's parameter tier")
    return Round1(cfg, share, primes or fresh_primes(cfg.params.prime_bits))
