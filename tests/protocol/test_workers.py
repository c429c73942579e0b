"""A round's per-peer work on a worker pool (`protocol.base.Workers`, `[node] workers`):
the same results as one after another, each piece with the GIL released, and every piece
really handed to the pool."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gmpy2
import pytest

from tssnode.protocol.base import SERIAL, Workers, fork_rng
from tssnode.protocol.hashing import message_digest
from tssnode.testing.localgroup import LocalGroup, pool_primes

from ..conftest import TEST
from .helpers import key, verify_outside


class CountingPool(ThreadPoolExecutor):
    """A thread pool that counts the pieces handed to it."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.submitted = 0
        self._lock = threading.Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_map_keeps_order_releases_the_gil_and_raises_the_first_error():
    seen: list[tuple[int, bool]] = []

    def piece(x: int) -> int:
        seen.append((threading.get_ident(), gmpy2.get_context().allow_release_gil))
        if x == 3:
            raise ValueError("piece 3")
        return x * x

    with ThreadPoolExecutor(2) as pool:
        workers = Workers(pool)
        assert workers.map(piece, [5, 1, 4]) == [25, 1, 16]
        assert all(released for _, released in seen)
        assert threading.get_ident() not in {ident for ident, _ in seen}
        with pytest.raises(ValueError, match="piece 3"):
            workers.map(piece, [1, 3, 2])
        seen.clear()
        assert workers.map(piece, [6]) == [36]  # one piece: no hop to the pool
        assert [ident for ident, _ in seen] == [threading.get_ident()]
    seen.clear()
    assert SERIAL.map(piece, [2, 1]) == [4, 1]
    assert {ident for ident, _ in seen} == {threading.get_ident()}  # serial: in the caller


def test_fork_rng_is_reproducible_and_none_stays_none():
    a = [r.getrandbits(64) for r in fork_rng(random.Random(9), 3)]  # type: ignore[union-attr]
    b = [r.getrandbits(64) for r in fork_rng(random.Random(9), 3)]  # type: ignore[union-attr]
    assert a == b and len(set(a)) == 3
    assert fork_rng(None, 2) == [None, None]


def test_a_seeded_key_comes_out_the_same_with_a_pool_and_signs():
    """aux-info and presign with their per-peer proofs on a 2-thread pool give exactly
    the shares and presignatures that the serial run gives (so the pool changes nothing
    but the time), and the pieces really went to the pool."""
    base, shares = key(4, 2)
    signers = (1, 2, 4)
    runs = []
    with CountingPool(2) as pool:
        for workers in (SERIAL, Workers(pool)):
            group = LocalGroup(
                base.parties, 2, TEST, seed=7, identities=base.identities, party_workers=workers
            )
            refreshed = group.aux(shares, pool_primes(TEST, random.Random(3))).only_result()
            presigs = group.presign(refreshed, signers).only_result()
            runs.append((refreshed, presigs, group))
    (serial_shares, serial_presigs, _), (pooled_shares, pooled_presigs, group) = runs
    assert pooled_shares == serial_shares
    assert pooled_presigs == serial_presigs
    # aux: per party 1 Π^mod + 3 shares with Π^fac; presign: per signer 2 pieces in each
    # of its 3 rounds
    assert pool.submitted == 4 * (1 + 3) + 3 * 3 * 2
    digest = message_digest(b"pooled", "sha256")
    out = group.sign(pooled_shares, pooled_presigs, digest).only_result()
    verify_outside(pooled_shares[1].key.public_key, digest, out[1].signature)
