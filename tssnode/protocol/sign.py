"""Sign (CGGMP21 Fig. 8): one round from a presignature.

Round 1  r = R.x mod q; σ_i = k_i·m + r·χ_i; broadcast σ_i.
Output   σ = Σ σ_j; the signature (r, σ) is normalised to low-s, given its recovery id,
         and verified against the public key (signature.finalize) before anyone sees it.
Identify (Fig. 8 failure) each party publishes Ĥ_i = enc_i(x_i'·k_i) with Π^mul*
         (K_i, Ĥ_i, X_i'), and proves with Π^dec over two ciphertexts that
         σ_i ≡ m·dec_i(K_i) + r·dec_i(C_χ) (mod q), C_χ = Ĥ_i ⊕ Σ_j (D̂_{i,j} ⊖ F̂_{j,i}).
         DEVIATION: the paper folds both into the one ciphertext K_i^m ⊕ r ⊙ C_χ, whose
         plaintext (ℓ + presign.plaintext_bound bits, about 2054 at the standard tier once
         a sender pushes its MtA share to the edge of its proof) exceeds N_i and wraps, so an
         honest party could not prove its own σ_i (zk/dec.py, DEVIATION 3).
         Every party whose proof fails is named.

The digest is computed here from the message and a named hash; a raw digest is signed
only with a presignature bound to it (hashing.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from random import Random

from gmpy2 import mpz

from tssnode.crypto.encoding import Big, Scalar, Wire, wire
from tssnode.crypto.group import Point, Q
from tssnode.crypto.paillier import PaillierPublicKey
from tssnode.crypto.pedersen import PedersenParams
from tssnode.crypto.signature import InvalidSignature, Signature, digest_to_scalar, finalize
from tssnode.protocol.base import (
    BROADCAST,
    Echo,
    IdentifyRound,
    Message,
    Outcome,
    Round,
    SessionConfig,
    echo_of,
)
from tssnode.protocol.hashing import HashPolicyError, message_digest
from tssnode.protocol.material import KeyShare, Presignature, PresignTranscript, own_trapdoor
from tssnode.protocol.presign import mta_combination, plaintext_bound
from tssnode.zk import dec, mulstar
from tssnode.zk.common import ProofContext, Trapdoor

PHASE = "sign"


@dataclass(frozen=True)
class SignResult:
    signature: Signature
    digest: bytes
    public_key: Point
    signers: tuple[int, ...]


@wire("tssnode.sign.share/1")
@dataclass(frozen=True)
class SigmaMsg(Wire):
    sigma: Scalar


@wire("tssnode.sign.identify/1")
@dataclass(frozen=True)
class IdBcast(Wire):
    H_hat: Big
    echo: Echo


@wire("tssnode.sign.identify.direct/2")
@dataclass(frozen=True)
class IdDirect(Wire):
    mulstar_proof: mulstar.MulStarProof
    dec_proof: dec.DecProof


def chi_ciphertext(
    i: int, parties: tuple[int, ...], H_hat: int, tr: PresignTranscript, pk: PaillierPublicKey
) -> mpz:
    """C_χ = Ĥ_i ⊕ Σ_j (D̂_{i,j} ⊖ F̂_{j,i}) under N_i: decrypts to χ_i (mod q)."""
    pairs = ((tr.D_hat[i][j], tr.F_hat[j][i]) for j in parties if j != i)
    return mta_combination(pk, H_hat, pairs)


def sigma_statement(
    st: _State, i: int, sigma: int, H_hat: int, pk: PaillierPublicKey, aux: PedersenParams
) -> dec.DecStatement:
    """Π^dec statement of party i's σ_i: σ_i ≡ m·dec_i(K_i) + r·dec_i(C_χ) (mod q), with
    |k_i| < q ≤ 2^ℓ and C_χ's plaintext within presign.plaintext_bound.

    K's bound is the honest one (k_i ∈ [0, q)), not the 2^(ℓ+ε) that Π^enc admits: a party
    that put a larger k in K_i deviated from the protocol, and its proof fails here ("z1
    outside") whenever identification runs, which names it."""
    tr, parties, params = st.presig.transcript, st.presig.signers, st.share.key.params
    C_chi = chi_ciphertext(i, parties, H_hat, tr, pk)
    bits = (params.ell, plaintext_bound(params, len(parties)))
    return dec.DecStatement(pk, (mpz(tr.K[i]), C_chi), (st.m, st.r), sigma, bits, aux)


@dataclass(frozen=True, repr=False)
class _State:
    share: KeyShare
    presig: Presignature
    digest: bytes
    m: int
    r: int
    sigma: int

    def __repr__(self) -> str:
        return "sign state (secret hidden)"

    @cached_property
    def trapdoor(self) -> Trapdoor | None:
        """This party's trapdoor, for identification's proofs (None: no aux secret);
        built only if identification runs."""
        secret = self.share.aux_secret
        return None if secret is None else own_trapdoor(self.share, secret.paillier())


class Round1(Round):
    number = 1
    phase = PHASE

    def __init__(self, cfg: SessionConfig, st: _State) -> None:
        super().__init__(cfg)
        self.st = st

    @property
    def sigma(self) -> int:
        """σ_i, the signature share this round sends (the node records it first)."""
        return self.st.sigma

    def finalize(self) -> Outcome:
        msg = self.cfg.sign(2, BROADCAST, SigmaMsg(self.st.sigma))
        return Outcome([msg], Output(self.cfg, self.st, msg))


class Output(Round):
    number = 2
    phase = PHASE
    broadcast_body = SigmaMsg

    def __init__(self, cfg: SessionConfig, st: _State, sent: Message) -> None:
        super().__init__(cfg)
        self.st, self.sent = st, sent

    def finalize(self) -> Outcome:
        cfg, st = self.cfg, self.st
        sigmas = {cfg.self_id: st.sigma, **{j: self.bcast(j).sigma for j in cfg.others}}
        s = sum(sigmas.values()) % Q
        self.sigmas = sigmas
        try:
            sig = finalize(st.presig.public_key, st.digest, st.presig.R, s)
        except InvalidSignature:
            return self._identify(sigmas)
        return Outcome([], result=SignResult(sig, st.digest, st.presig.public_key, cfg.parties))

    def reopen(self, msg: Message) -> Outcome | None:
        """A peer's signature check failed although ours passed: join identification."""
        if not self.is_authentic_followup(msg) or not hasattr(self, "sigmas"):
            return None
        return self._identify(self.sigmas)

    def _identify(self, sigmas: dict[int, int]) -> Outcome:
        cfg, st = self.cfg, self.st
        share = st.share
        assert share.aux is not None and share.aux_secret is not None
        me = cfg.self_id
        sk = share.aux_secret.paillier()
        pr = st.presig
        ctx = ProofContext(cfg.ssid, me, cfg.params)
        X_eff = share.key.effective_share_points(pr.signers, pr.shift)
        x_eff = _effective_share(share, pr)
        zero, rho = sk.encrypt(0, cfg.rng)
        K_i = pr.transcript.K[me]
        H_hat = sk.public.add(sk.public.mul_secret(K_i, x_eff), zero)
        C_chi = chi_ciphertext(me, cfg.parties, H_hat, pr.transcript, sk.public)
        y_chi = sk.decrypt(C_chi)
        k_i = sk.decrypt(K_i)
        wit = dec.DecWitness((k_i, y_chi), (sk.nonce(K_i, k_i), sk.nonce(C_chi, y_chi)), sk)
        seen = self.seen_broadcasts(self.sent)
        out = [cfg.sign(3, BROADCAST, IdBcast(H_hat, echo_of(seen)))]
        aux = share.aux

        def prove_for(j: int, rng: Random | None) -> IdDirect:
            ms = mulstar.prove(
                ctx,
                mulstar.MulStarStatement(sk.public, K_i, H_hat, X_eff[me], aux.pedersen[j]),
                mulstar.MulStarWitness(mpz(x_eff), rho, sk),
                rng,
            )
            stmt = sigma_statement(st, me, st.sigma, H_hat, sk.public, aux.pedersen[j])
            return IdDirect(ms, dec.prove(ctx, stmt, wit, rng))

        bodies = cfg.for_each_peer(prove_for)
        out += [cfg.sign(3, j, b) for j, b in zip(cfg.others, bodies, strict=True)]
        return Outcome(out, Identify(cfg, st, sigmas, X_eff, seen))


class Identify(IdentifyRound):
    """Fig. 8 identification: name every party whose Π^mul* or Π^dec fails."""

    label = "sign identification"
    all_clear = "signature invalid but every party's proofs hold"
    number = 3
    phase = PHASE
    broadcast_body = IdBcast
    direct_body = IdDirect

    def __init__(
        self,
        cfg: SessionConfig,
        st: _State,
        sigmas: dict[int, int],
        X_eff: dict[int, Point],
        seen: dict[int, Message],
    ) -> None:
        super().__init__(cfg)
        self.trapdoor = st.trapdoor
        self.st, self.sigmas, self.X_eff, self.seen = st, sigmas, X_eff, seen

    def verify(self, msg: Message, body: IdBcast | IdDirect) -> None:
        if isinstance(body, IdBcast):
            self.check_echo(msg, body.echo, self.seen)

    def verify_pair(self, sender: int) -> None:
        cfg, st = self.cfg, self.st
        share = st.share
        assert share.aux is not None
        bmsg, b = self.broadcasts[sender]
        dmsg, d = self.directs[sender]
        pk = share.aux.paillier[sender]
        mine = share.aux.pedersen[cfg.self_id]
        ctx = ProofContext(cfg.ssid, sender, cfg.params)
        tr = st.presig.transcript
        stmt_ms = mulstar.MulStarStatement(pk, tr.K[sender], b.H_hat, self.X_eff[sender], mine)
        failed = self.check_proof(mulstar, ctx, stmt_ms, d.mulstar_proof)
        if failed is None:
            stmt = sigma_statement(st, sender, self.sigmas[sender], b.H_hat, pk, mine)
            failed = self.check_proof(dec, ctx, stmt, d.dec_proof)
        if failed is not None:
            self.convict(sender, failed, bmsg, dmsg)


def _effective_share(share: KeyShare, presig: Presignature) -> int:
    from tssnode.crypto.polynomial import lagrange_at_zero

    return lagrange_at_zero(share.self_id, presig.signers) * (share.x + presig.shift) % Q


def resolve_digest(
    presig: Presignature,
    *,
    message: bytes | None = None,
    hash_name: str | None = None,
    raw_digest: bytes | None = None,
) -> bytes:
    """The digest this presignature may sign (PROTOCOL.md, CVE-2025-66017)."""
    if raw_digest is not None:
        if message is not None:
            raise HashPolicyError("give a message or a raw digest, not both")
        if presig.digest is None or presig.digest != raw_digest:
            raise HashPolicyError(
                "a raw digest is only signed with a presignature made for that digest"
            )
        return raw_digest
    if message is None or hash_name is None:
        raise HashPolicyError("signing needs a message and a hash name")
    digest = message_digest(message, hash_name)
    if presig.digest is not None and presig.digest != digest:
        raise HashPolicyError("this presignature is bound to another digest")
    return digest


def start(cfg: SessionConfig, share: KeyShare, presig: Presignature, digest: bytes) -> Round1:
    """One signing round. `presig` must come out of a single-use store (in the node,
    `Vault.take_presignature`) and `digest` out of `resolve_digest`."""
    if cfg.parties != presig.signers or presig.self_id != cfg.self_id:
        raise ValueError("sign runs over the presignature's own signers")
    if presig.key_id != share.key.key_id:
        raise ValueError("presignature belongs to another key")
    m = digest_to_scalar(digest)
    r = presig.R.xy()[0] % Q
    sigma = (presig.k * m + r * presig.chi) % Q
    return Round1(cfg, _State(share, presig, digest, m, r, sigma))
