"""Presign (CGGMP21 Fig. 7, three rounds) for a signer set S of a t-of-n key.

Party i uses the Lagrange-weighted share x_i' = λ_i·(x_i + δ) and public shares
X_j' = λ_j·(X_j + δ·G), where δ is the BIP-32 shift of the key being signed for (0 for the
root key), so the signers hold an additive sharing of the (derived) secret.

Round 1  k_i, γ_i ← Z_q; K_i = enc_i(k_i; ρ_i), G_i = enc_i(γ_i; ν_i); broadcast (K_i, G_i);
         send each j Π^enc for K_i with j's ring-Pedersen parameters.
Round 2  check Π^enc_j. Γ_i = γ_i·G. For each j: β_{i,j}, β̂_{i,j} ← ±2^ℓ',
           D_{j,i} = (γ_i ⊙ K_j) ⊕ enc_j(β_{i,j}),  F_{j,i} = enc_i(β_{i,j}),
           D̂_{j,i} = (x_i' ⊙ K_j) ⊕ enc_j(β̂_{i,j}), F̂_{j,i} = enc_i(β̂_{i,j}),
         with Π^aff-g for each pair and Π^log* that G_i hides log Γ_i.
         DEVIATION: the ciphertexts D, F, D̂, F̂ are broadcast (with the echo of round 1)
         instead of sent point to point; only the proofs, which use the verifier's
         ring-Pedersen parameters, go direct. Then every party holds the same transcript,
         which the identification steps need to be checkable by anyone. The paper's
         sign convention D = γ⊙K ⊕ enc(−β) is flipped to enc(+β) with the receiver
         subtracting, which is the same protocol.
Round 3  check the proofs; α_{i,j} = dec_i(D_{i,j}), α̂_{i,j} = dec_i(D̂_{i,j}) (the range
         check on them is sized so that no message whose proofs verify can fail it: see
         `mta_bound` and docs/protocol.md, "Decrypted values and aborts");
         Γ = Σ Γ_j, Δ_i = k_i·Γ, δ_i = k_i·γ_i + Σ_j (α_{i,j} − β_{i,j}),
         χ_i = x_i'·k_i + Σ_j (α̂_{i,j} − β̂_{i,j}); broadcast (δ_i, Δ_i) and the echo of
         round 2; send each j Π^log* that K_i hides log_Γ Δ_i.
Output   check Π^log*; δ = Σ δ_j; if δ·G = Σ Δ_j then R = δ⁻¹·Γ and the record
         (R, k_i, χ_i). Otherwise run the identification step (`Identify`).
Identify (Fig. 7 "Output", failure) each party publishes H_i = enc_i(k_i·γ_i) with Π^mul
         (K_i, G_i, H_i), and proves with Π^dec that δ_i ≡ dec_i(H_i ⊕ Σ_j (D_{i,j} ⊖ F_{j,i}))
         (mod q), with the plaintext bound `plaintext_bound` (Π^dec's challenge and masks
         are resized to carry it: DEVIATION, see zk/dec.py). Any party whose proof fails
         is named, with its signed messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from random import Random

from gmpy2 import mpz

from tssnode.crypto.arith import sample_pm, sample_scalar
from tssnode.crypto.encoding import Big, Scalar, Wire, wire
from tssnode.crypto.group import G, Point, Q, base_mul, inv_mod_q, point_sum
from tssnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from tssnode.crypto.params import Parameters
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
from tssnode.protocol.material import KeyShare, Presignature, PresignTranscript, own_trapdoor
from tssnode.zk import affg, dec, enc, logstar, mul
from tssnode.zk.common import ProofContext, Trapdoor

PHASE = "presign"


def mta_bound(params: Parameters) -> int:
    """Bit bound of ANY decrypted MtA share α = k·x + y whose Π^aff-g verifies, not only of
    an honest one.

    The receiver's own k is below q ≤ 2^ℓ. Π^aff-g checks z1 ∈ ±2^(ℓ+ε) and z2 ∈ ±2^(ℓ'+ε),
    which bounds what a sender can prove about by |x| ≤ 2^(ℓ+ε+1) and |y| ≤ 2^(ℓ'+ε+1) (the
    witness extracted from two accepting transcripts), so |α| < 2^(2ℓ+ε+1) + 2^(ℓ'+ε+1) ≤
    2^(max(2ℓ+ε, ℓ'+ε)+2): 1794 bits at the standard tier, 1026 at the test tier, both below
    N/2, so α decrypts exactly.

    Why not the honest bound max(2ℓ, ℓ')+1: a sender may prove x = γ + M·q (same Γ) and
    y = 2^bound − T·x, and an honest receiver that refused |α| > 2^bound would then abort
    exactly when its secret k > T, while α ≡ k·γ + y (mod q) keeps the presignature
    correct whenever it does not abort: one comparison of k against T per request, the
    input of a lattice attack on the nonces (the Alpha-Rays pattern). With this bound the
    receiver's check cannot fire on a message whose proofs verify, so no honest decision
    depends on k beyond the paper's own checks (docs/protocol.md, "Decrypted values and
    aborts")."""
    return max(2 * params.ell + params.eps, params.ell_prime + params.eps) + 2


def plaintext_bound(params: Parameters, signers: int) -> int:
    """Bit bound on |k_i·γ_i + Σ_j (α_{i,j} − β_{i,j})| (and the χ_i analogue) for any MtA
    shares whose proofs verify: |k·γ| < 2^2ℓ, |β| ≤ 2^ℓ' and |α| < 2^mta_bound give at most
    2·n·2^mta_bound < 2^(mta_bound + 1 + bitlen(n))."""
    return mta_bound(params) + 1 + signers.bit_length()


# -- messages -----------------------------------------------------------------------------------


@wire("tssnode.presign.r1/1")
@dataclass(frozen=True)
class R1Bcast(Wire):
    K: Big
    G: Big


@wire("tssnode.presign.r1.direct/1")
@dataclass(frozen=True)
class R1Direct(Wire):
    psi0: enc.EncProof


@wire("tssnode.presign.r2/1")
@dataclass(frozen=True)
class R2Bcast(Wire):
    Gamma: Point
    D: dict[int, Big]  # D[j] = D_{j,i} under N_j
    F: dict[int, Big]  # F[j] = F_{j,i} = enc_i(β_{i,j}) under N_i
    D_hat: dict[int, Big]
    F_hat: dict[int, Big]
    echo: Echo


@wire("tssnode.presign.r2.direct/1")
@dataclass(frozen=True)
class R2Direct(Wire):
    psi: affg.AffgProof
    psi_hat: affg.AffgProof
    psi_prime: logstar.LogStarProof


@wire("tssnode.presign.r3/1")
@dataclass(frozen=True)
class R3Bcast(Wire):
    delta: Scalar
    Delta: Point
    echo: Echo


@wire("tssnode.presign.r3.direct/1")
@dataclass(frozen=True)
class R3Direct(Wire):
    psi_dprime: logstar.LogStarProof


@wire("tssnode.presign.identify/1")
@dataclass(frozen=True)
class IdBcast(Wire):
    H: Big
    mul_proof: mul.MulProof
    echo: Echo


@wire("tssnode.presign.identify.direct/2")
@dataclass(frozen=True)
class IdDirect(Wire):
    dec_proof: dec.DecProof


# -- state shared by the rounds -----------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class _State:
    """Everything one party carries through presign (secrets included; never printed)."""

    share: KeyShare
    sk: PaillierSecretKey
    x_eff: int  # x_i' = λ_i·(x_i + δ)
    X_eff: dict[int, Point]  # X_j' for every signer
    public_key: Point
    shift: int
    digest: bytes | None
    k: int
    gamma: int
    rho: mpz  # nonce of K_i
    nu: mpz  # nonce of G_i
    K: mpz
    G: mpz

    def __repr__(self) -> str:
        return "presign state (secret hidden)"

    def pk(self, j: int) -> PaillierPublicKey:
        assert self.share.aux is not None
        return self.share.aux.paillier[j]

    def ctx(self, cfg: SessionConfig, prover: int) -> ProofContext:
        return ProofContext(cfg.ssid, prover, cfg.params)

    @cached_property
    def trapdoor(self) -> Trapdoor:
        """This party's ring-Pedersen trapdoor and Paillier key, to check the proofs
        made against them by CRT."""
        return own_trapdoor(self.share, self.sk)


class Round1(Round):
    number = 1
    phase = PHASE

    def __init__(self, cfg: SessionConfig, st: _State) -> None:
        super().__init__(cfg)
        self.st = st

    def finalize(self) -> Outcome:
        cfg, st = self.cfg, self.st
        assert st.share.aux is not None
        aux = st.share.aux
        bcast = cfg.sign(2, BROADCAST, R1Bcast(st.K, st.G))

        def prove_for(j: int, rng: Random | None) -> R1Direct:
            stmt = enc.EncStatement(st.sk.public, st.K, aux.pedersen[j])
            wit = enc.EncWitness(mpz(st.k), st.rho, st.sk)
            return R1Direct(enc.prove(st.ctx(cfg, cfg.self_id), stmt, wit, rng))

        bodies = cfg.for_each_peer(prove_for)
        out = [bcast] + [cfg.sign(2, j, b) for j, b in zip(cfg.others, bodies, strict=True)]
        return Outcome(out, Round2(cfg, st, bcast))


class Round2(Round):
    number = 2
    phase = PHASE
    broadcast_body = R1Bcast
    direct_body = R1Direct

    def __init__(self, cfg: SessionConfig, st: _State, sent: Message) -> None:
        super().__init__(cfg)
        self.trapdoor = st.trapdoor
        self.st, self.sent = st, sent

    def verify(self, msg: Message, body: R1Bcast | R1Direct) -> None:
        if isinstance(body, R1Bcast):
            pk = self.st.pk(msg.sender)
            if not (pk.is_ciphertext(body.K) and pk.is_ciphertext(body.G)):
                raise self.cfg.blame(self.number, msg.sender, "K or G not in Z*_{N²}", msg)

    def verify_pair(self, sender: int) -> None:
        cfg, st = self.cfg, self.st
        assert st.share.aux is not None
        bmsg, b = self.broadcasts[sender]
        dmsg, d = self.directs[sender]
        stmt = enc.EncStatement(st.pk(sender), b.K, st.share.aux.pedersen[cfg.self_id])
        self.require_proof(enc, st.ctx(cfg, sender), stmt, d.psi0, bmsg, dmsg)

    def finalize(self) -> Outcome:
        cfg, st = self.cfg, self.st
        me = cfg.self_id
        Gamma = base_mul(st.gamma)
        made = dict(zip(cfg.others, cfg.for_each_peer(self._mta_for), strict=True))
        D = {j: m.D for j, m in made.items()}
        F = {j: m.F for j, m in made.items()}
        D_hat = {j: m.D_hat for j, m in made.items()}
        F_hat = {j: m.F_hat for j, m in made.items()}
        betas = {j: (m.beta, m.beta_hat) for j, m in made.items()}
        seen = self.seen_broadcasts(self.sent)
        own = R2Bcast(Gamma, D, F, D_hat, F_hat, echo_of(seen))
        bcast = cfg.sign(3, BROADCAST, own)
        out = [bcast] + [cfg.sign(3, j, m.direct) for j, m in made.items()]
        r1 = {me: R1Bcast(st.K, st.G), **{j: self.bcast(j) for j in cfg.others}}
        return Outcome(out, Round3(cfg, st, r1, own, betas, seen, bcast))

    def _mta_for(self, j: int, rng: Random | None) -> _Mta:
        """The two MtA instances with peer j (on Γ_i's γ_i and on x_i'), their Π^aff-g
        proofs and the Π^log* proof for G_i, on j's Paillier key and ring-Pedersen
        parameters; one piece of parallel work."""
        cfg, st = self.cfg, self.st
        assert st.share.aux is not None
        me = cfg.self_id
        Kj = self.bcast(j).K
        pkj = st.pk(j)
        aux_j = st.share.aux.pedersen[j]
        ctx = st.ctx(cfg, me)
        Gamma = base_mul(st.gamma)
        made = []
        for x, X in ((st.gamma, Gamma), (st.x_eff, st.X_eff[me])):
            beta = sample_pm(cfg.params.ell_prime, rng)
            D_ji, s = pkj.encrypt(beta, rng)
            D_ji = pkj.add(pkj.mul_secret(Kj, x), D_ji)
            F_ji, r = st.sk.encrypt(beta, rng)
            stmt = affg.AffgStatement(pkj, st.sk.public, Kj, D_ji, F_ji, X, aux_j)
            wit = affg.AffgWitness(mpz(x), beta, s, r, st.sk)
            made.append((D_ji, F_ji, beta, affg.prove(ctx, stmt, wit, rng)))
        ls = logstar.LogStarStatement(st.sk.public, st.G, Gamma, G, aux_j)
        psi_prime = logstar.prove(ctx, ls, logstar.LogStarWitness(mpz(st.gamma), st.nu, st.sk), rng)
        (D, F, beta, psi), (D_hat, F_hat, beta_hat, psi_hat) = made
        return _Mta(D, F, D_hat, F_hat, beta, beta_hat, R2Direct(psi, psi_hat, psi_prime))


@dataclass(frozen=True, repr=False)
class _Mta:
    """What round 2 makes for one peer (the betas are secret; never printed)."""

    D: mpz
    F: mpz
    D_hat: mpz
    F_hat: mpz
    beta: mpz
    beta_hat: mpz
    direct: R2Direct


class Round3(Round):
    number = 3
    phase = PHASE
    broadcast_body = R2Bcast
    direct_body = R2Direct

    def __init__(
        self,
        cfg: SessionConfig,
        st: _State,
        r1: dict[int, R1Bcast],
        own: R2Bcast,
        betas: dict[int, tuple[mpz, mpz]],
        seen: dict[int, Message],
        sent: Message,
    ) -> None:
        super().__init__(cfg)
        self.trapdoor = st.trapdoor
        self.st, self.r1, self.own, self.betas = st, r1, own, betas
        self.seen, self.sent = seen, sent

    def verify(self, msg: Message, body: R2Bcast | R2Direct) -> None:
        if not isinstance(body, R2Bcast):
            return
        cfg, j = self.cfg, msg.sender
        self.check_echo(msg, body.echo, self.seen)
        targets = set(cfg.parties) - {j}
        if not (set(body.D) == set(body.F) == set(body.D_hat) == set(body.F_hat) == targets):
            raise cfg.blame(self.number, j, "MtA ciphertexts missing or extra", msg)
        pk_j = self.st.pk(j)
        for k in targets:
            pk_k = self.st.pk(k)
            if not (pk_k.is_ciphertext(body.D[k]) and pk_k.is_ciphertext(body.D_hat[k])):
                raise cfg.blame(self.number, j, f"D or D̂ for party {k} not in Z*_{{N²}}", msg)
            if not (pk_j.is_ciphertext(body.F[k]) and pk_j.is_ciphertext(body.F_hat[k])):
                raise cfg.blame(self.number, j, f"F or F̂ for party {k} not in Z*_{{N²}}", msg)

    def verify_pair(self, sender: int) -> None:
        cfg, st = self.cfg, self.st
        assert st.share.aux is not None
        me = cfg.self_id
        bmsg, b = self.broadcasts[sender]
        dmsg, d = self.directs[sender]
        mine = st.share.aux.pedersen[me]
        ctx = st.ctx(cfg, sender)
        pk_j = st.pk(sender)
        stmt = affg.AffgStatement(st.sk.public, pk_j, st.K, b.D[me], b.F[me], b.Gamma, mine)
        self.require_proof(affg, ctx, stmt, d.psi, bmsg, dmsg)
        X_j = st.X_eff[sender]
        stmt = affg.AffgStatement(st.sk.public, pk_j, st.K, b.D_hat[me], b.F_hat[me], X_j, mine)
        self.require_proof(affg, ctx, stmt, d.psi_hat, bmsg, dmsg)
        ls = logstar.LogStarStatement(pk_j, self.r1[sender].G, b.Gamma, G, mine)
        self.require_proof(logstar, ctx, ls, d.psi_prime, bmsg, dmsg)

    def finalize(self) -> Outcome:
        cfg, st = self.cfg, self.st
        me = cfg.self_id
        p = cfg.params
        bound = mpz(1) << mta_bound(p)
        r2: dict[int, R2Bcast] = {j: self.bcast(j) for j in cfg.others}
        delta = st.k * st.gamma
        chi = st.x_eff * st.k
        for j, b in r2.items():
            alpha = st.sk.decrypt(b.D[me])
            alpha_hat = st.sk.decrypt(b.D_hat[me])
            # Never fires on a message whose Π^aff-g proofs verified (see `mta_bound`): a
            # bound any tighter would make this abort an oracle on k_i. It stays as the
            # guarantee that α is exact and that identification's Π^dec bound holds.
            if abs(alpha) > bound or abs(alpha_hat) > bound:
                raise cfg.blame(
                    self.number, j, "decrypted MtA share out of range", self.broadcasts[j][0]
                )
            beta, beta_hat = self.betas[j]
            delta += int(alpha - beta)
            chi += int(alpha_hat - beta_hat)
        delta %= Q
        chi %= Q
        Gamma = point_sum([base_mul(st.gamma)] + [b.Gamma for b in r2.values()])
        Delta = Gamma * st.k
        seen = self.seen_broadcasts(self.sent)
        bcast = cfg.sign(4, BROADCAST, R3Bcast(delta, Delta, echo_of(seen)))
        aux = st.share.aux
        assert aux is not None

        def prove_for(j: int, rng: Random | None) -> R3Direct:
            stmt = logstar.LogStarStatement(st.sk.public, st.K, Delta, Gamma, aux.pedersen[j])
            wit = logstar.LogStarWitness(mpz(st.k), st.rho, st.sk)
            return R3Direct(logstar.prove(st.ctx(cfg, me), stmt, wit, rng))

        bodies = cfg.for_each_peer(prove_for)
        out = [bcast] + [cfg.sign(4, j, b) for j, b in zip(cfg.others, bodies, strict=True)]
        r2_all = {me: self.own, **r2}
        return Outcome(out, Output(cfg, st, self.r1, r2_all, Gamma, delta, chi, seen, bcast))


class Output(Round):
    number = 4
    phase = PHASE
    broadcast_body = R3Bcast
    direct_body = R3Direct

    def __init__(
        self,
        cfg: SessionConfig,
        st: _State,
        r1: dict[int, R1Bcast],
        r2: dict[int, R2Bcast],
        Gamma: Point,
        delta: int,
        chi: int,
        seen: dict[int, Message],
        sent: Message,
    ) -> None:
        super().__init__(cfg)
        self.trapdoor = st.trapdoor
        self.st, self.r1, self.r2, self.Gamma = st, r1, r2, Gamma
        self.delta, self.chi, self.seen, self.sent = delta, chi, seen, sent

    def verify(self, msg: Message, body: R3Bcast | R3Direct) -> None:
        if isinstance(body, R3Bcast):
            self.check_echo(msg, body.echo, self.seen)

    def verify_pair(self, sender: int) -> None:
        cfg, st = self.cfg, self.st
        assert st.share.aux is not None
        bmsg, b = self.broadcasts[sender]
        dmsg, d = self.directs[sender]
        stmt = logstar.LogStarStatement(
            st.pk(sender),
            self.r1[sender].K,
            b.Delta,
            self.Gamma,
            st.share.aux.pedersen[cfg.self_id],
        )
        self.require_proof(logstar, st.ctx(cfg, sender), stmt, d.psi_dprime, bmsg, dmsg)

    def finalize(self) -> Outcome:
        cfg, st = self.cfg, self.st
        me = cfg.self_id
        r3 = {j: self.bcast(j) for j in cfg.others}
        delta = (self.delta + sum(b.delta for b in r3.values())) % Q
        Delta_sum = point_sum([self.Gamma * st.k] + [b.Delta for b in r3.values()])
        self.r3 = r3
        if delta == 0 or base_mul(delta) != Delta_sum:
            return self._identify(r3)
        R = self.Gamma * inv_mod_q(delta)
        transcript = PresignTranscript(
            K={j: b.K for j, b in self.r1.items()},
            D_hat={i: {j: self.r2[j].D_hat[i] for j in cfg.parties if j != i} for i in cfg.parties},
            F_hat={j: {i: self.r2[i].F_hat[j] for i in cfg.parties if i != j} for j in cfg.parties},
        )
        record = Presignature(
            ssid=cfg.ssid,
            key_id=st.share.key.key_id,
            self_id=me,
            signers=cfg.parties,
            R=R,
            k=st.k,
            chi=self.chi,
            shift=st.shift,
            digest=st.digest,
            public_key=st.public_key,
            transcript=transcript,
            Delta_check=Delta_sum,
        )
        return Outcome([], result=record)

    def reopen(self, msg: Message) -> Outcome | None:
        """A peer's δ check failed although ours passed: join the identification step
        (and the caller discards the presignature this party output)."""
        if not self.is_authentic_followup(msg) or not hasattr(self, "r3"):
            return None
        return self._identify(self.r3)

    def _identify(self, r3: dict[int, R3Bcast]) -> Outcome:
        """δ·G ≠ Σ Δ_j: publish H_i with Π^mul and prove δ_i by Π^dec (Fig. 7 failure)."""
        cfg, st = self.cfg, self.st
        assert st.share.aux is not None
        me = cfg.self_id
        sk = st.sk
        ctx = st.ctx(cfg, me)
        H_plain, r = sk.encrypt(0, cfg.rng)  # ρ^N for H = K^γ·ρ^N
        H = sk.public.add(sk.public.mul_secret(st.K, st.gamma), H_plain)
        mproof = mul.prove(
            ctx,
            mul.MulStatement(sk.public, st.G, st.K, H),
            mul.MulWitness(mpz(st.gamma), r, st.nu, sk),
            cfg.rng,
        )
        seen = self.seen_broadcasts(self.sent)
        out = [cfg.sign(5, BROADCAST, IdBcast(H, mproof, echo_of(seen)))]
        C = combined_delta_ciphertext(me, cfg.parties, H, self.r2, sk.public)
        y = sk.decrypt(C)
        rho = sk.nonce(C, y)
        bits = plaintext_bound(cfg.params, len(cfg.parties))
        aux = st.share.aux

        def prove_for(j: int, rng: Random | None) -> IdDirect:
            stmt = dec.DecStatement.single(sk.public, C, self.delta, bits, aux.pedersen[j])
            return IdDirect(dec.prove(ctx, stmt, dec.DecWitness((y,), (rho,), sk), rng))

        bodies = cfg.for_each_peer(prove_for)
        out += [cfg.sign(5, j, b) for j, b in zip(cfg.others, bodies, strict=True)]
        deltas = {me: self.delta, **{j: b.delta for j, b in r3.items()}}
        return Outcome(out, Identify(cfg, st, self.r1, self.r2, deltas, seen))


def mta_combination(pk: PaillierPublicKey, H: int, pairs: Iterable[tuple[int, int]]) -> mpz:
    """H ⊕ Σ (D ⊖ F) under pk, over one (D, F) pair of MtA ciphertexts per other signer:
    the ciphertext of a party's δ_i (presign) or, with the hatted ones, of its χ_i part."""
    C = mpz(H)
    for D, F in pairs:
        C = pk.add(C, D)
        C = pk.add(C, pk.mul(F, -1))
    return C


def combined_delta_ciphertext(
    i: int, parties: tuple[int, ...], H: int, r2: dict[int, R2Bcast], pk: PaillierPublicKey
) -> mpz:
    """H_i ⊕ Σ_j (D_{i,j} ⊖ F_{j,i}) under N_i: it decrypts to δ_i (mod q) for an honest P_i."""
    return mta_combination(pk, H, ((r2[j].D[i], r2[i].F[j]) for j in parties if j != i))


class Identify(IdentifyRound):
    """Fig. 7 identification: name every party whose Π^mul or Π^dec fails."""

    label = "presign identification"
    all_clear = "δ check failed but every party's proofs hold"

    number = 5
    phase = PHASE
    broadcast_body = IdBcast
    direct_body = IdDirect

    def __init__(
        self,
        cfg: SessionConfig,
        st: _State,
        r1: dict[int, R1Bcast],
        r2: dict[int, R2Bcast],
        deltas: dict[int, int],
        seen: dict[int, Message],
    ) -> None:
        super().__init__(cfg)
        self.trapdoor = st.trapdoor
        self.st, self.r1, self.r2, self.deltas, self.seen = st, r1, r2, deltas, seen

    def verify(self, msg: Message, body: IdBcast | IdDirect) -> None:
        if isinstance(body, IdBcast):
            self.check_echo(msg, body.echo, self.seen)

    def verify_pair(self, sender: int) -> None:
        cfg, st = self.cfg, self.st
        assert st.share.aux is not None
        bmsg, b = self.broadcasts[sender]
        dmsg, d = self.directs[sender]
        pk = st.pk(sender)
        ctx = st.ctx(cfg, sender)
        stmt_mul = mul.MulStatement(pk, self.r1[sender].G, self.r1[sender].K, b.H)
        failed = self.check_proof(mul, ctx, stmt_mul, b.mul_proof)
        if failed is not None:
            self.convict(sender, failed, bmsg)
            return
        C = combined_delta_ciphertext(sender, cfg.parties, b.H, self.r2, pk)
        bits = plaintext_bound(cfg.params, len(cfg.parties))
        stmt = dec.DecStatement.single(
            pk, C, self.deltas[sender], bits, st.share.aux.pedersen[cfg.self_id]
        )
        failed = self.check_proof(dec, ctx, stmt, d.dec_proof)
        if failed is not None:
            self.convict(sender, failed, bmsg, dmsg, prefix="δ_i does not match its ciphertexts: ")


def start(
    cfg: SessionConfig,
    share: KeyShare,
    *,
    shift: int = 0,
    digest: bytes | None = None,
) -> Round1:
    """Presign over the session's parties (the signer set) for the key (shifted by the
    BIP-32 shift `shift`), optionally bound to a raw digest."""
    from tssnode.crypto.polynomial import lagrange_at_zero

    if share.aux is None or share.aux_secret is None:
        raise ValueError("presign needs aux info (run aux-info/refresh first)")
    signers = cfg.parties
    if not set(signers) <= set(share.key.parties) or len(signers) < share.key.threshold + 1:
        raise ValueError("signers must be at least t+1 of the key's parties")
    if cfg.params != share.key.params:
        raise ValueError("presign runs at the key's parameter tier")
    if digest is not None and len(digest) != 32:
        raise ValueError("a bound digest is 32 bytes")
    me = cfg.self_id
    shift %= Q
    lam = lagrange_at_zero(me, signers)
    x_eff = lam * (share.x + shift) % Q
    X_eff = share.key.effective_share_points(signers, shift)
    if base_mul(x_eff) != X_eff[me]:
        raise ValueError("key share does not match its public share")
    sk = share.aux_secret.paillier()
    k, gamma = sample_scalar(cfg.rng), sample_scalar(cfg.rng)
    K, rho = sk.encrypt(k, cfg.rng)
    Gc, nu = sk.encrypt(gamma, cfg.rng)
    st = _State(
        share,
        sk,
        x_eff,
        X_eff,
        share.key.public_key + base_mul(shift),
        shift,
        digest,
        k,
        gamma,
        rho,
        nu,
        K,
        Gc,
    )
    return Round1(cfg, st)
