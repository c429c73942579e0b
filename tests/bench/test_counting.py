"""The benchmarks' floor: what `record()` counts is what the code did, and it leaves
gmpy2 and `FixedBase` as they were."""

from __future__ import annotations

import random

import gmpy2
from gmpy2 import mpz

from tssnode.bench.counting import record
from tssnode.crypto.arith import FixedBase


def test_record_counts_exponentiations_and_the_tables_products_and_puts_everything_back():
    rng = random.Random(5)
    n = mpz(rng.getrandbits(512) | 1 | (1 << 511))
    real = (gmpy2.powmod, gmpy2.powmod_sec, FixedBase.__init__, FixedBase.pow)
    with record() as rec:
        gmpy2.powmod(3, 1000, n)
        gmpy2.powmod_sec(5, 999, n)
        fb = FixedBase(7, n, 512)
        e = rng.getrandbits(512)
        assert fb.pow(e) == pow(7, e, int(n))
        assert fb.pow(0) == 1
    assert (gmpy2.powmod, gmpy2.powmod_sec, FixedBase.__init__, FixedBase.pow) == real
    assert rec.count() == 2 and [c[3] for c in rec.calls] == [False, True]
    assert rec.products == {n: fb.products} and fb.products > 512  # table + one power
    assert rec.summary() == f"2×512 + {fb.products} products mod 512"  # fewer than 1000
    # the products are part of the floor unless left out
    assert rec.floor(repeats=1) > rec.floor(repeats=1, products=False) > 0
    with record() as empty:
        FixedBase(7, n, 512).products  # noqa: B018 - a table is work too
    assert empty.count() == 0 and empty.product_count() > 0
