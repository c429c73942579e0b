"""Shared fixtures: seeded randomness and key material from the committed prime pool.

The whole suite runs with the `insecure-test` tier allowed (1536-bit moduli from the
768-bit pool); tests marked `slow` use the `standard` tier and the 1024-bit pool.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ["TSSNODE_ALLOW_INSECURE"] = "1"

from tssnode.crypto import params as params_mod
from tssnode.crypto.paillier import PaillierSecretKey
from tssnode.crypto.pedersen import PedersenSecret
from tssnode.crypto.pedersen import generate as pedersen_generate
from tssnode.crypto.primes import PrimePool
from tssnode.zk.common import ProofContext

#: Outside test vectors (Wycheproof, BIP-32), carried in the repository (tests/vectors).
VECTORS = Path(os.environ.get("TSSNODE_VECTORS", Path(__file__).resolve().parent / "vectors"))

TEST = params_mod.INSECURE_TEST
STANDARD = params_mod.STANDARD

_POOLS: dict[int, PrimePool] = {}


def pool_primes(bits: int) -> list:
    if bits not in _POOLS:
        _POOLS[bits] = PrimePool.load(bits)
    return list(_POOLS[bits].primes)


class KeyFactory:
    """Paillier and ring-Pedersen keys from the pool, distinct within one test."""

    def __init__(self, params: params_mod.Parameters, rng: random.Random) -> None:
        self.params = params
        self.rng = rng
        self._primes = pool_primes(params.prime_bits)
        rng.shuffle(self._primes)

    def primes(self) -> tuple:
        p, q = self._primes.pop(), self._primes.pop()
        return p, q

    def paillier(self) -> PaillierSecretKey:
        return PaillierSecretKey(*self.primes())

    def pedersen(self) -> PedersenSecret:
        return pedersen_generate(*self.primes(), rng=self.rng)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A per-test seeded generator, so a failure replays exactly."""
    return random.Random(request.node.nodeid)


@pytest.fixture
def params() -> params_mod.Parameters:
    return TEST


@pytest.fixture
def keys(params: params_mod.Parameters, rng: random.Random) -> KeyFactory:
    return KeyFactory(params, rng)


@pytest.fixture
def ctx(params: params_mod.Parameters) -> ProofContext:
    return ProofContext(ssid=b"test-session", prover=1, params=params)


@pytest.fixture
def make_ctx(params: params_mod.Parameters) -> Callable[..., ProofContext]:
    def make(ssid: bytes = b"test-session", prover: int = 1) -> ProofContext:
        return ProofContext(ssid=ssid, prover=prover, params=params)

    return make
