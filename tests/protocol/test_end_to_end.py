"""keygen → aux-info → presign → sign, verified by outside libraries."""

from __future__ import annotations

import itertools
import random

import pytest

from tssnode.crypto.group import Q, base_mul
from tssnode.crypto.polynomial import interpolate_at_zero
from tssnode.protocol.base import ProtocolAbort
from tssnode.protocol.hashing import HASHES, message_digest
from tssnode.protocol.sign import resolve_digest
from tssnode.testing.localgroup import LocalGroup, pool_primes
from tssnode.testing.presigstore import PresignatureStore, PresignatureUsed

from ..conftest import STANDARD
from .helpers import key, verify_outside


# (five parties in the slow tier: every signing subset of a 5-party key, below, keeps n = 5
# in make test)
@pytest.mark.parametrize(
    ("n", "t"), [(3, 1), (4, 2), pytest.param(5, 3, marks=pytest.mark.slow), (3, 2)]
)
def test_full_pipeline(n, t):
    group, shares = key(n, t)
    X = shares[1].key.public_key
    assert all(s.key == shares[1].key for s in shares.values())
    # any t+1 shares reconstruct X (checked with curve arithmetic only, never in the product)
    assert base_mul(interpolate_at_zero({p: shares[p].x for p in range(1, t + 2)})) == X
    signers = tuple(range(n - t, n + 1))
    presigs = group.presign(shares, signers).only_result()
    assert len({p.R for p in presigs.values()}) == 1
    for h in HASHES:
        digest = message_digest(b"pay 1 BTC to bob", h)
        if h != HASHES[0]:
            presigs = group.presign(shares, signers).only_result()
        out = group.sign(shares, presigs, digest).only_result()
        results = list(out.values())
        assert len({r.signature for r in results}) == 1
        sig = results[0].signature
        assert sig.is_low_s
        verify_outside(X, digest, sig)


def test_every_t_plus_1_subset_of_a_5_party_key_signs():
    group, shares = key(5, 2)
    X = shares[1].key.public_key
    digest = message_digest(b"subset", "sha256")
    for signers in itertools.combinations(range(1, 6), 3):
        presigs = group.presign(shares, signers).only_result()
        out = group.sign(shares, presigs, digest).only_result()
        verify_outside(X, digest, out[signers[0]].signature)


def test_more_than_t_plus_1_signers():
    group, shares = key(5, 2)
    digest = message_digest(b"four signers", "sha256d")
    presigs = group.presign(shares, (1, 2, 4, 5)).only_result()
    verify_outside(
        shares[1].key.public_key,
        digest,
        group.sign(shares, presigs, digest).only_result()[1].signature,
    )


def test_refresh_keeps_key_changes_every_share_and_old_shares_do_not_combine():
    group, shares = key(4, 2)
    X = shares[1].key.public_key
    again = group.aux(shares, pool_primes(shares[1].key.params, random.Random(99))).only_result()
    assert all(s.key.public_key == X for s in again.values())
    assert all(again[p].x != shares[p].x for p in again)
    assert all(again[p].key.public_shares[p] != shares[p].key.public_shares[p] for p in again)
    assert again[1].key.epoch == shares[1].key.epoch + 1
    assert base_mul(interpolate_at_zero({p: again[p].x for p in (1, 2, 3)})) == X
    mixed = {1: shares[1].x, 2: again[2].x, 3: again[3].x}
    assert base_mul(interpolate_at_zero(mixed)) != X
    # an old share (with its old aux info) cannot take part in a presign with new ones
    with pytest.raises(ProtocolAbort):
        group.presign({1: shares[1], 2: again[2], 3: again[3]}, (1, 2, 3)).only_result()
    # and the new shares still sign
    digest = message_digest(b"after refresh", "sha256")
    presigs = group.presign(again, (2, 3, 4)).only_result()
    verify_outside(X, digest, group.sign(again, presigs, digest).only_result()[2].signature)


def test_presignature_is_single_use():
    group, shares = key(3, 1)
    presigs = group.presign(shares, (1, 2)).only_result()
    store = PresignatureStore()
    store.put(presigs[1])
    taken = store.take(presigs[1].ssid)
    assert taken == presigs[1]
    with pytest.raises(PresignatureUsed):
        store.take(presigs[1].ssid)
    store.put(presigs[2])
    with pytest.raises(ValueError):
        store.put(presigs[2])


def test_derived_key_signs():
    from tssnode.crypto.derivation import derive

    group, shares = key(3, 1)
    root = shares[1].key
    d = derive(root.public_key, root.chain_code, "m/44/60/0/7")
    presigs = group.presign(shares, (1, 3), shift=d.shift).only_result()
    assert all(p.public_key == d.public_key for p in presigs.values())
    digest = message_digest(b"from a child key", "eip191")
    sig = group.sign(shares, presigs, digest).only_result()[1].signature
    verify_outside(d.public_key, digest, sig)
    with pytest.raises(AssertionError):
        verify_outside(root.public_key, digest, sig)


def test_hash_policy_raw_digests_need_a_bound_presignature():
    from tssnode.protocol.hashing import HashPolicyError

    group, shares = key(3, 1)
    raw = bytes(range(32))
    pooled = group.presign(shares, (1, 2)).only_result()
    with pytest.raises(HashPolicyError):
        resolve_digest(pooled[1], raw_digest=raw)
    assert resolve_digest(pooled[1], message=b"m", hash_name="keccak256") == message_digest(
        b"m", "keccak256"
    )
    with pytest.raises(HashPolicyError):
        resolve_digest(pooled[1], message=b"m", hash_name="md5")
    bound = group.presign(shares, (1, 2), digest=raw).only_result()
    assert resolve_digest(bound[1], raw_digest=raw) == raw
    with pytest.raises(HashPolicyError):
        resolve_digest(bound[1], message=b"m", hash_name="sha256")
    with pytest.raises(HashPolicyError):
        resolve_digest(bound[1], raw_digest=bytes(32))
    sig = group.sign(shares, bound, raw).only_result()[1].signature
    verify_outside(shares[1].key.public_key, raw, sig)
    assert pooled[1].ssid != bound[1].ssid


def test_secrets_do_not_appear_in_reprs():
    group, shares = key(3, 1)
    presigs = group.presign(shares, (1, 2)).only_result()
    s, p = shares[1], presigs[1]
    assert s.aux_secret is not None
    text = repr(s) + str(s) + repr(p) + repr(s.aux_secret) + repr(s.aux_secret.paillier())
    for secret in (s.x, s.aux_secret.p, s.aux_secret.lam, p.k, p.chi):
        assert str(int(secret)) not in text and f"{int(secret):x}" not in text


def test_key_material_round_trips():
    from tssnode.protocol.material import KeyShare, Presignature

    group, shares = key(3, 1)
    presigs = group.presign(shares, (2, 3)).only_result()
    for s in shares.values():
        assert KeyShare.from_bytes(s.to_bytes()) == s
    for p in presigs.values():
        assert Presignature.from_bytes(p.to_bytes()) == p
    assert shares[1].to_bytes() == KeyShare.from_bytes(shares[1].to_bytes()).to_bytes()


def test_scalars_stay_in_range():
    _, shares = key(3, 1)
    for s in shares.values():
        assert 0 < s.x < Q


@pytest.mark.slow
def test_full_size_end_to_end_n3():
    group = LocalGroup((1, 2, 3), 1, STANDARD, seed=7)
    shares = group.keygen().only_result()
    shares = group.aux(shares, pool_primes(STANDARD, random.Random(7))).only_result()
    assert shares[1].aux is not None
    assert all(pk.n.bit_length() == 2048 for pk in shares[1].aux.paillier.values())
    digest = message_digest(b"full size", "sha256")
    presigs = group.presign(shares, (1, 3)).only_result()
    out = group.sign(shares, presigs, digest).only_result()
    verify_outside(shares[1].key.public_key, digest, out[1].signature)


@pytest.mark.slow  # (25 s on 2 cores; the fast tier runs n up to 5)
def test_ten_parties():
    """n = 10, t = 6: keygen, aux-info, presign with 7 signers, sign."""
    group, shares = key(10, 6)
    signers = (2, 3, 5, 6, 7, 9, 10)
    presigs = group.presign(shares, signers).only_result()
    digest = message_digest(b"ten parties", "sha256")
    sig = group.sign(shares, presigs, digest).only_result()[2].signature
    verify_outside(shares[1].key.public_key, digest, sig)
