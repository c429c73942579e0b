"""Keys for protocol tests, made once per (n, t, seed) and reused (they are immutable)."""

from __future__ import annotations

import random
from functools import cache

from coincurve import PublicKey
from ecdsa import SECP256k1, VerifyingKey
from eth_keys import keys as eth_keys

from tssnode.crypto.group import Point
from tssnode.crypto.signature import Signature
from tssnode.protocol.material import KeyShare
from tssnode.testing.localgroup import LocalGroup, pool_primes

from ..conftest import TEST


@cache
def key(n: int, t: int, seed: int = 1) -> tuple[LocalGroup, dict[int, KeyShare]]:
    """Keygen + aux-info at the test tier with pool primes."""
    group = LocalGroup(tuple(range(1, n + 1)), t, TEST, seed=seed)
    shares = group.keygen().only_result()
    refreshed = group.aux(shares, pool_primes(TEST, random.Random(seed))).only_result()
    return group, refreshed


def verify_outside(public_key: Point, digest: bytes, sig: Signature) -> None:
    """Check a signature with three libraries nobody here wrote."""
    # coincurve (libsecp256k1)
    assert PublicKey(public_key.to_bytes()).verify(sig.der(), digest, hasher=None)
    # the pure-Python ecdsa package
    vk = VerifyingKey.from_string(public_key.to_bytes(), curve=SECP256k1)
    assert vk.verify_digest(sig.compact(), digest)
    # Ethereum's ecrecover through eth-keys, with v
    recovered = eth_keys.Signature(vrs=(sig.v, sig.r, sig.s)).recover_public_key_from_msg_hash(
        digest
    )
    assert recovered.to_bytes() == public_key.uncompressed()[1:]
    assert sig.eth_v() in (27, 28)
