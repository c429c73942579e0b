"""The decrypted-MtA range check is no oracle on the honest party's nonce (Alpha-Rays).

A malicious sender whose Π^aff-g verifies may prove about x = γ + M·q (same Γ, since
q·G = 0) and a chosen y. The honest receiver decrypts α = k·x + y, which mod q is the
correct k·γ + y. If the receiver aborted on |α| above a bound that such messages can cross,
the abort would depend on k; here a sender sets y = 2^bound − T·x, so that under the old
bound max(2ℓ, ℓ')+1 the receiver aborted exactly when k > T. These tests straddle T around
the victim's real k and require the victim's behaviour to be the same on both sides, and
the presignature to sign. Further tests push α to the edge of what the proof allows and
then make the sender lie, so that identification runs with the victim's large plaintexts:
the victim must be able to prove its own δ_i and σ_i, and only the sender is named.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from gmpy2 import mpz

from tssnode.crypto.arith import sample_pm
from tssnode.crypto.group import Q, base_mul
from tssnode.protocol import presign, sign
from tssnode.protocol.base import Outcome
from tssnode.protocol.evidence import verify_blame
from tssnode.protocol.hashing import message_digest
from tssnode.zk import affg

from ..conftest import TEST
from .helpers import key, verify_outside
from .test_faults import BAD, assert_blames_only_bad, lie_consistently

VICTIM = 1
SIGNERS = (1, 2, 3)
#: The receiver's bound before the fix: max(2ℓ, ℓ') + 1 (513 bits at the test tier).
OLD_BOUND = max(2 * TEST.ell, TEST.ell_prime) + 1


def _record_nonces(monkeypatch: pytest.MonkeyPatch) -> dict[int, int]:
    """The test's cheat: learn every party's k at start, so T can straddle the victim's."""
    ks: dict[int, int] = {}
    original = presign.start

    def start(cfg, share, **kw):
        first = original(cfg, share, **kw)
        ks[cfg.self_id] = first.st.k
        return first

    monkeypatch.setattr(presign, "start", start)
    return ks


def _malicious_round2(
    monkeypatch: pytest.MonkeyPatch, choose: Any, *, hatted: bool = False, f_offset: int = 0
) -> None:
    """Party BAD builds its MtA pair for VICTIM from `choose(x_honest) -> (x, y)` and proves
    it honestly with that witness (the γ pair, or with `hatted` the x_i' pair). With
    `f_offset` its F encrypts y + f_offset: an α that does not match the proof."""
    original = presign.Round2.finalize

    def finalize(self: presign.Round2) -> Outcome:
        if self.cfg.self_id != BAD:
            return original(self)
        cfg, st = self.cfg, self.st
        assert st.share.aux is not None
        outcome = original(self)  # the honest run, then BAD redoes the victim's pair
        own = outcome.next.own
        assert isinstance(own, presign.R2Bcast)
        pk_v, aux_v = st.pk(VICTIM), st.share.aux.pedersen[VICTIM]
        K_v = self.bcast(VICTIM).K
        x_honest = st.x_eff if hatted else st.gamma
        X = st.X_eff[cfg.self_id] if hatted else base_mul(st.gamma)
        x, y = choose(x_honest)
        assert (x - x_honest) % Q == 0
        D, s = pk_v.encrypt(y, cfg.rng)
        D = pk_v.add(pk_v.mul_secret(K_v, x), D)
        F, r = st.sk.encrypt(y + f_offset, cfg.rng)
        stmt = affg.AffgStatement(pk_v, st.sk.public, K_v, D, F, X, aux_v)
        proof = affg.prove(
            st.ctx(cfg, cfg.self_id), stmt, affg.AffgWitness(mpz(x), mpz(y), s, r, st.sk), cfg.rng
        )
        D_field, F_field = ("D_hat", "F_hat") if hatted else ("D", "F")
        new_own = dataclasses.replace(
            own,
            **{
                D_field: {**getattr(own, D_field), VICTIM: D},
                F_field: {**getattr(own, F_field), VICTIM: F},
            },
        )
        b0, b1 = outcome.next.betas[VICTIM]
        outcome.next.betas[VICTIM] = (b0, mpz(y)) if hatted else (mpz(y), b1)
        msgs = []
        for msg in outcome.messages:
            if msg.is_broadcast:
                msg = cfg.sign(msg.round, msg.recipient, new_own)
                outcome.next.sent = msg
            elif msg.recipient == VICTIM:
                body = presign.R2Direct.from_bytes(msg.body)
                field = "psi_hat" if hatted else "psi"
                msg = cfg.sign(msg.round, VICTIM, dataclasses.replace(body, **{field: proof}))
            msgs.append(msg)
        outcome.next.own = new_own
        outcome.messages = msgs
        return outcome

    monkeypatch.setattr(presign.Round2, "finalize", finalize)


def _record_victim(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, str]]:
    """What the victim does after it decrypts: each round's outgoing messages and outcome."""
    seen: list[tuple[str, int, str]] = []
    for cls in (presign.Round3, presign.Output):
        original = cls.finalize

        def finalize(self, _original=original):
            try:
                out = _original(self)
            except Exception as exc:
                if self.cfg.self_id == VICTIM:
                    seen.append((type(self).__name__, 0, f"raised {type(exc).__name__}"))
                raise
            if self.cfg.self_id == VICTIM:
                what = "result" if out.result is not None else type(out.next).__name__
                seen.append((type(self).__name__, len(out.messages), what))
            return out

        monkeypatch.setattr(cls, "finalize", finalize)
    return seen


# Offsets of the threshold T from the victim's k: k > T on the first three, k < T after.
STRADDLE = [-1, -(1 << 100), -(1 << 200), 1, 1 << 100, 1 << 200]


@pytest.mark.parametrize("hatted", [False, True], ids=["D", "D-hat"])
def test_the_victims_behaviour_does_not_depend_on_its_nonce(monkeypatch, hatted):
    """y = 2^513 − T·x with x = γ + q: the old check aborted exactly when k > T. Now the
    victim's every step is the same whatever side of T its k is on, and every presignature
    signs (checked by coincurve, ecdsa and eth-keys)."""
    group, shares = key(4, 2, 1)
    ks = _record_nonces(monkeypatch)
    behaviour: dict[int, list[tuple[str, int, str]]] = {}
    T_of: dict[str, int] = {}

    def choose(x_honest: int) -> tuple[int, int]:
        x = x_honest + Q
        T = ks[VICTIM] + T_of["offset"]
        return x, (1 << OLD_BOUND) - T * x

    _malicious_round2(monkeypatch, choose, hatted=hatted)
    seen = _record_victim(monkeypatch)
    digest = message_digest(b"alpha-rays", "sha256")
    for offset in STRADDLE:
        T_of["offset"] = offset
        seen.clear()
        res = group.presign(shares, SIGNERS)
        assert not res.aborts, f"offset {offset}: {res.aborts}"
        behaviour[offset] = list(seen)
        presigs = res.only_result()
        signed = group.sign(shares, presigs, digest).only_result()
        sig = signed[VICTIM]
        verify_outside(sig.public_key, digest, sig.signature)
    first = behaviour[STRADDLE[0]]
    assert first == [("Round3", 3, "Output"), ("Output", 0, "result")]
    assert all(b == first for b in behaviour.values()), behaviour


def test_the_attack_crossed_the_old_bound(monkeypatch):
    """The test above is real: with k > T the victim's α exceeds 2^513 (the old bound, which
    made it abort) and with k < T it does not."""
    group, shares = key(4, 2, 1)
    ks = _record_nonces(monkeypatch)
    alphas: list[mpz] = []
    original = presign.Round3.finalize

    def finalize(self):
        if self.cfg.self_id == VICTIM:
            alphas.append(self.st.sk.decrypt(self.bcast(BAD).D[VICTIM]))
        return original(self)

    monkeypatch.setattr(presign.Round3, "finalize", finalize)
    side = {"offset": 0}
    _malicious_round2(
        monkeypatch, lambda x: (x + Q, (1 << OLD_BOUND) - (ks[VICTIM] + side["offset"]) * (x + Q))
    )
    for offset in (-1, 1):
        side["offset"] = offset
        group.presign(shares, SIGNERS).only_result()
    above, below = alphas
    assert abs(above) > 1 << OLD_BOUND >= abs(below)


def _edge(x_honest: int) -> tuple[int, int]:
    """A proof-valid MtA pair near the edge of Π^aff-g's ranges at the test tier: x = γ + M·q
    with |x| ≈ 2^500 and y ≈ 2^750, so α is about 2^750, far above the honest 2^513. (This
    is the edge a sender reaches without grinding Fiat–Shamir, about 2^(ℓ'+ε−ℓ); the
    extraction edge the bounds must cover is 2^1026.)"""
    M = (1 << 500) // Q
    return x_honest + M * Q, (1 << 750) + sample_pm(700)


def test_identification_proves_the_victims_large_delta(monkeypatch):
    """An edge-of-range α for the victim, then the sender lies about δ: the victim proves its
    own δ_i (a plaintext of about 2^750) with Π^dec and only the sender is named."""
    group, shares = key(4, 2, 2)
    _malicious_round2(monkeypatch, _edge)
    lie_consistently(monkeypatch, presign.Round3, "delta", lambda d: (d + 1) % Q, "delta")
    res = group.presign(shares, SIGNERS)
    assert_blames_only_bad(res, group, proven=True)
    for p, a in res.aborts.items():
        if p != BAD:
            assert "presign identification" in str(a)


def test_sign_identification_proves_the_victims_large_chi(monkeypatch):
    """An edge-of-range α̂ for the victim (its χ_i plaintext is about 2^750, times r about
    2^1006), then the sender lies about σ: the victim proves σ_i ≡ m·k_i + r·χ_i and only
    the sender is named."""
    group, shares = key(4, 2, 3)
    _malicious_round2(monkeypatch, _edge, hatted=True)
    presigs = group.presign(shares, SIGNERS).only_result()
    monkeypatch.undo()
    lie_consistently(monkeypatch, sign.Round1, "sigma", lambda s: (s + 1) % Q, "st")
    digest = message_digest(b"edge", "sha256")
    res = group.sign(shares, presigs, digest)
    assert_blames_only_bad(res, group, proven=True)
    for p, a in res.aborts.items():
        if p != BAD:
            assert "sign identification" in str(a)


@pytest.mark.parametrize("hatted", [False, True], ids=["D", "D-hat"])
def test_a_wrong_alpha_is_named_with_evidence(monkeypatch, hatted):
    """A sender whose α does not match its proof (F encrypts another y than D carries) is
    named by the victim, with the failed Π^aff-g that any third party re-checks."""
    group, shares = key(4, 2, 1)
    _malicious_round2(
        monkeypatch, lambda x: (x, sample_pm(TEST.ell_prime)), hatted=hatted, f_offset=1
    )
    res = group.presign(shares, SIGNERS)
    abort = res.aborts[VICTIM]
    assert abort.culprits == (BAD,)
    assert affg.NAME in str(abort)
    identities = {p: k.public_bytes() for p, k in group.identities.items()}
    assert verify_blame(abort.blame, identities).proven


def test_the_round3_check_still_stands_behind_the_proofs(monkeypatch):
    """The range check no proof-valid message can fail is still there: with Π^aff-g
    verification switched off, an α beyond 2^mta_bound is refused and its sender named.
    (It is what keeps identification's plaintext bound true.)"""
    group, shares = key(4, 2, 1)
    over = 1 << (presign.mta_bound(TEST) + 2)
    _malicious_round2(monkeypatch, lambda x: (x, over))
    monkeypatch.setattr(affg, "verify", lambda ctx, stmt, proof, own=None: None)
    res = group.presign(shares, SIGNERS)
    abort = res.aborts[VICTIM]
    assert abort.culprits == (BAD,)
    assert "decrypted MtA share out of range" in str(abort)
