"""Resharing a key to a changed party set, folded into the aux-info/refresh session."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from tssnode.crypto.encoding import decode_any
from tssnode.crypto.group import Q, base_mul
from tssnode.crypto.identity import IdentityKey
from tssnode.crypto.polynomial import interpolate_at_zero
from tssnode.protocol import auxinfo
from tssnode.protocol.evidence import BlameRejected, verify_blame
from tssnode.protocol.hashing import message_digest
from tssnode.protocol.material import KeyShare
from tssnode.protocol.ssid import aux_ssid
from tssnode.testing.localgroup import LocalGroup, pool_primes
from tssnode.testing.protocol_faults import resign
from tssnode.testing.protocol_runner import RunResult, make_configs

from ..conftest import TEST
from .helpers import key, verify_outside

T = 1  # a 2-of-4 key: threshold t = 1, any t + 1 = 2 parties sign


def new_group(old: LocalGroup, old_ids: dict[int, int | None], t: int = T) -> LocalGroup:
    """The group of the new party set: new id → old id (None for a newcomer, who gets a
    fresh identity key; the others keep theirs)."""
    identities = {
        new: old.identities[was] if was is not None else IdentityKey.generate()
        for new, was in old_ids.items()
    }
    return LocalGroup(tuple(sorted(old_ids)), t, TEST, seed=old.seed, identities=identities)


def reshared(
    old_ids: dict[int, int | None], dealers: tuple[int, ...] | None = None, t: int = T, seed=1
) -> tuple[dict[int, KeyShare], dict[int, KeyShare], LocalGroup, RunResult]:
    """Reshare the cached 2-of-4 key; `dealers` (new ids) default to every old party."""
    old_group, old = key(4, T)
    group = new_group(old_group, old_ids, t)
    if dealers is None:
        dealers = tuple(p for p, was in old_ids.items() if was is not None)
    dealt = {p: old[old_ids[p]] for p in dealers}  # type: ignore[index]
    res = group.reshare(dealt, pool_primes(TEST, random.Random(seed)))
    return old, res.only_result(), group, res


def assert_sharing(shares: dict[int, KeyShare], old: KeyShare, t: int) -> None:
    """One new key, the same public key and chain code; x_j·G = X_j; every t + 1 shares
    give x·G = X."""
    new = shares[min(shares)].key
    assert all(s.key == new for s in shares.values())
    assert new.public_key == old.key.public_key and new.chain_code == old.key.chain_code
    assert new.parties == tuple(sorted(shares)) and new.threshold == t
    assert new.epoch == old.key.epoch + 1
    for p, s in shares.items():
        assert base_mul(s.x) == new.public_shares[p]
        assert s.aux is not None and set(s.aux.paillier) == set(new.parties)
    for subset in itertools.combinations(sorted(shares), t + 1):
        secret = interpolate_at_zero({p: shares[p].x for p in subset})
        assert base_mul(secret) == new.public_key


def sign_with(group: LocalGroup, shares: dict[int, KeyShare], signers, text: bytes) -> None:
    digest = message_digest(text, "sha256")
    presigs = group.presign(shares, signers).only_result()
    sig = group.sign(shares, presigs, digest).only_result()[signers[0]].signature
    verify_outside(shares[signers[0]].key.public_key, digest, sig)


def test_reshare_to_a_fifth_party_keeps_the_key_and_it_signs():
    old, new, group, _ = reshared({1: 1, 2: 2, 3: 3, 4: 4, 5: None})
    assert_sharing(new, old[1], T)
    # the new shares do not combine with old ones
    assert base_mul(interpolate_at_zero({1: old[1].x, 5: new[5].x})) != old[1].key.public_key
    assert all(new[p].x != old[p].x for p in old)
    sign_with(group, new, (2, 5), b"signed with the newcomer")


def test_reshare_to_three_when_a_party_leaves():
    # old party 3 leaves; old 4 becomes new 3
    old, new, group, _ = reshared({1: 1, 2: 2, 3: 4})
    assert set(new) == {1, 2, 3}  # the leaver is not in the session and gets nothing
    assert_sharing(new, old[1], T)
    leaver = old[3].x
    assert base_mul(interpolate_at_zero({1: new[1].x, 3: leaver})) != old[1].key.public_key
    sign_with(group, new, (1, 3), b"after a party left")
    # the reshared key refreshes as usual
    again = group.aux(new, pool_primes(TEST, random.Random(5))).only_result()
    assert_sharing(again, new[1], T)


def test_reshare_with_exactly_t_plus_1_dealers_and_a_new_threshold():
    """Old parties 2 and 4 join without dealing, beside a newcomer; t goes 1 → 2."""
    old, new, group, _ = reshared({1: 1, 2: 2, 3: 3, 4: 4, 5: None}, dealers=(1, 3), t=2)
    assert_sharing(new, old[1], 2)
    two = interpolate_at_zero({1: new[1].x, 2: new[2].x})
    assert base_mul(two) != old[1].key.public_key  # t + 1 = 3 shares needed now
    sign_with(group, new, (2, 4, 5), b"3-of-5 after resharing")


# -- faults -------------------------------------------------------------------------------------

BAD = 2


def assert_blames_only(res: RunResult, bad: int, group: LocalGroup, plan: auxinfo.Reshare) -> list:
    """Some honest party aborts; every honest abort names `bad` alone with evidence of its
    own signed messages that verify_blame does not reject. Returns the honest blames."""
    identities = {p: k.public_bytes() for p, k in group.identities.items()}
    honest = [a.blame for p, a in res.aborts.items() if p != bad]
    assert honest, f"nobody noticed (results for {sorted(res.results)})"
    for blame in honest:
        assert blame.culprits == (bad,), blame
        assert all(m.sender == bad for m in blame.messages)
        verify_blame(blame, identities, reshare=plan)
    for party, stop in res.stopped.items():
        assert party == bad or all(a.culprits == (bad,) for a in stop.aborts.values())
    return honest


def _plan() -> auxinfo.Reshare:
    _, old = key(4, T)
    return auxinfo.Reshare(old[1].key, {p: p for p in range(1, 5)})


def deal_constant(monkeypatch: pytest.MonkeyPatch, party: int, change) -> None:
    """`party` deals a polynomial with constant term change(the right one)."""
    original = auxinfo.start

    def start(cfg, share, primes=None, *, reshare=None):
        first = original(cfg, share, primes, reshare=reshare)
        if cfg.self_id == party:
            first.plan = dataclasses.replace(first.plan, constant=change(first.plan.constant))
        return first

    monkeypatch.setattr(auxinfo, "start", start)


def test_dealer_with_a_wrong_constant_term_is_blamed_with_proof(monkeypatch):
    deal_constant(monkeypatch, BAD, lambda c: c + 1)
    old_group, old = key(4, T)
    group = new_group(old_group, {1: 1, 2: 2, 3: 3, 4: 4, 5: None})
    res = group.reshare({p: old[p] for p in range(1, 5)}, pool_primes(TEST, random.Random(2)))
    identities = {p: k.public_bytes() for p, k in group.identities.items()}
    plan = _plan()
    for blame in assert_blames_only(res, BAD, group, plan):
        assert blame.check == auxinfo.WRONG_CONSTANT and blame.round == 3
        assert verify_blame(blame, identities, reshare=plan).proven
        # without the public input it cannot be re-checked, and is not accepted as proven
        assert not verify_blame(blame, identities).proven
        # against a public input where the dealt constant term is right, it is rejected
        bad_open = decode_any(blame.messages[0].body)
        assert isinstance(bad_open, auxinfo.Open)
        lying = dataclasses.replace(
            plan.old_key,
            public_shares={
                **plan.old_key.public_shares,
                BAD: bad_open.F[0] * pow(plan.lagrange(BAD), -1, Q),
            },
        )
        with pytest.raises(BlameRejected, match="right one"):
            verify_blame(blame, identities, reshare=dataclasses.replace(plan, old_key=lying))


def test_newcomer_with_a_non_zero_constant_term_is_blamed(monkeypatch):
    deal_constant(monkeypatch, 5, lambda c: 7)
    old_group, old = key(4, T)
    group = new_group(old_group, {1: 1, 2: 2, 3: 3, 4: 4, 5: None})
    res = group.reshare({p: old[p] for p in range(1, 5)}, pool_primes(TEST, random.Random(3)))
    for blame in assert_blames_only(res, 5, group, _plan()):
        assert "non-zero constant term" in blame.check


def test_dealer_sending_a_share_off_its_commitments_is_blamed(monkeypatch):
    """BAD encrypts f(1) + 1 to party 1: a valid ciphertext of a wrong share."""
    original = auxinfo.Round3.finalize

    def finalize(self):
        outcome = original(self)
        if self.cfg.self_id != BAD:
            return outcome
        nxt = outcome.next
        msgs = []
        for msg in outcome.messages:
            if msg.recipient == 1:
                C, _ = nxt.opens[1].N.encrypt(nxt.mine.f(1) + 1)
                body = dataclasses.replace(decode_any(msg.body), C=C)
                msg = resign(msg, body, self.cfg.identity)
            msgs.append(msg)
        outcome.messages = msgs
        return outcome

    monkeypatch.setattr(auxinfo.Round3, "finalize", finalize)
    old_group, old = key(4, T)
    group = new_group(old_group, {1: 1, 2: 2, 3: 3, 4: 4, 5: None})
    res = group.reshare({p: old[p] for p in range(1, 5)}, pool_primes(TEST, random.Random(4)))
    blames = assert_blames_only(res, BAD, group, _plan())
    assert [b.check for b in blames] == ["share: share does not match the dealer's commitments"]
    assert 1 in res.aborts


# -- inputs -------------------------------------------------------------------------------------


def test_too_few_dealers_is_refused_before_anything_is_sent():
    old_group, old = key(4, T)
    group = new_group(old_group, {1: 1, 2: 2, 3: None})
    primes = pool_primes(TEST, random.Random(6))
    with pytest.raises(ValueError, match=r"at least t\+1 = 2 dealers"):
        group.reshare({1: old[1]}, primes)


def test_reshare_inputs_are_checked():
    old_group, old = key(4, T)
    plan = auxinfo.Reshare(old[1].key, {1: 1, 2: 2, 3: 3})
    ids = {p: old_group.identities[p] for p in (1, 2, 3)} | {4: IdentityKey.generate()}
    ssid = aux_ssid(TEST, (1, 2, 3, 4), T, b"n", plan)
    cfgs = make_configs((1, 2, 3, 4), T, TEST, ssid, 1, ids)
    auxinfo.start(cfgs[1], old[1], reshare=plan)  # fine
    auxinfo.start(cfgs[4], None, reshare=plan)  # a newcomer brings nothing
    with pytest.raises(ValueError, match="needs its share"):
        auxinfo.start(cfgs[1], None, reshare=plan)
    with pytest.raises(ValueError, match="needs its share"):
        auxinfo.start(cfgs[2], old[3], reshare=plan)  # another party's share
    with pytest.raises(ValueError, match="only a dealer"):
        auxinfo.start(cfgs[4], old[4], reshare=plan)
    with pytest.raises(ValueError, match="distinct"):
        auxinfo.start(cfgs[4], None, reshare=auxinfo.Reshare(old[1].key, {1: 1, 2: 1}))
    with pytest.raises(ValueError, match="party of the session"):
        auxinfo.start(cfgs[4], None, reshare=auxinfo.Reshare(old[1].key, {1: 1, 9: 2}))
    big_t = make_configs((1, 2, 3, 4), 4, TEST, ssid, 1, ids)
    with pytest.raises(ValueError, match="t'"):
        auxinfo.start(big_t[4], None, reshare=plan)
    with pytest.raises(ValueError, match="needs this party's key share"):
        auxinfo.start(cfgs[4], None)


def test_session_id_binds_the_reshare():
    _, old = key(4, T)
    k = old[1].key
    base = aux_ssid(TEST, (1, 2, 3), T, b"n", auxinfo.Reshare(k, {1: 1, 2: 2, 3: 4}))
    others = [
        aux_ssid(TEST, (1, 2, 3), T, b"n", auxinfo.Reshare(k, {1: 1, 2: 2, 3: 3})),
        aux_ssid(TEST, (1, 2, 3), T, b"n", auxinfo.Reshare(k, {1: 1, 2: 2})),
        aux_ssid(TEST, (1, 2, 3, 4), T, b"n", auxinfo.Reshare(k, {1: 1, 2: 2, 3: 4})),
        aux_ssid(TEST, (1, 2, 3), 2, b"n", auxinfo.Reshare(k, {1: 1, 2: 2, 3: 4})),
        aux_ssid(TEST, (1, 2, 3), T, b"n", k),
    ]
    assert base not in others and len(set(others)) == len(others)
