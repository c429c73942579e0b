"""`tssnode.testing.localgroup`: a key's whole life in one process at the test tier, with
the prime sources it offers. A broken group (phases wired to the wrong sessions, shares
mixed up, primes handed out twice) cannot produce a signature that verifies."""

from __future__ import annotations

import hashlib
import random

from coincurve import PublicKey

from tests.conftest import TEST
from tssnode.testing.localgroup import LocalGroup, pool_primes


def test_keygen_aux_presign_sign_makes_a_valid_signature():
    group = LocalGroup((1, 2, 3), 1, TEST, seed=11)
    shares = group.keygen().only_result()
    refreshed = group.aux(shares, pool_primes(TEST, random.Random(11))).only_result()
    key = refreshed[1].key
    assert all(s.key.public_key == key.public_key for s in refreshed.values())
    assert all(s.aux is not None for s in refreshed.values())
    presigs = group.presign(refreshed, (1, 3)).only_result()
    assert sorted(presigs) == [1, 3]
    digest = hashlib.sha256(b"localgroup").digest()
    sigs = group.sign(refreshed, presigs, digest).only_result()
    assert len({(r.signature.r, r.signature.s) for r in sigs.values()}) == 1
    sig = sigs[1].signature
    assert PublicKey(key.public_key.to_bytes()).verify(sig.der(), digest, hasher=None)


def test_the_same_seed_makes_the_same_key_and_sessions_differ():
    first = LocalGroup((1, 2, 3), 1, TEST, seed=4).keygen().only_result()
    again = LocalGroup((1, 2, 3), 1, TEST, seed=4).keygen().only_result()
    other = LocalGroup((1, 2, 3), 1, TEST, seed=5).keygen().only_result()
    assert first[1].key == again[1].key
    assert first[1].key.public_key != other[1].key.public_key
    group = LocalGroup((1, 2, 3), 1, TEST, seed=4)
    one, two = group.keygen().only_result(), group.keygen().only_result()
    assert (
        one[1].key.public_key != two[1].key.public_key
    )  # each session: its own nonce and randomness


def test_pool_primes_never_hand_out_a_prime_twice():
    source = pool_primes(TEST, random.Random(1))
    drawn = [p for party in (1, 2, 3, 4) for p in source(party)()]
    assert len(drawn) == 8 and len(set(drawn)) == 8
    assert all(p.bit_length() == TEST.prime_bits for p in drawn)
