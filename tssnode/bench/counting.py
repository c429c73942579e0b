"""Count the modular arithmetic a piece of code performs, and time its floor.

`record()` swaps gmpy2's `powmod` and `powmod_sec` for wrappers that remember every call
(base, exponent, modulus, constant-time or not) while the block runs; every
exponentiation in tssnode goes through those two functions. It also counts the modular
products of `FixedBase`, the fixed-base table of Π^prm's verifier, which computes its
powers with products instead of exponentiations. `floor()` replays exactly those
exponentiations, and as many products modulo the same moduli, with nothing around them,
in one thread: the time the maths alone needs. A measured time divided by its floor says
how far the code is from its arithmetic; `floor(products=False)` leaves the products out
(the floor of exponentiations alone).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gmpy2
from gmpy2 import mpz

from tssnode.crypto.arith import FixedBase


@dataclass
class Recording:
    calls: list[tuple[Any, Any, Any, bool]] = field(default_factory=list)
    #: modulus → how many modular products `FixedBase` did with it
    products: Counter[Any] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        return len(self.calls)

    def product_count(self) -> int:
        return sum(self.products.values())

    def by_modulus(self) -> Counter[int]:
        """How many exponentiations per modulus size (bits, rounded to a multiple of 256)."""
        return Counter(256 * round(int(m).bit_length() / 256) for _, _, m, _ in self.calls)

    def floor(self, repeats: int = 3, products: bool = True) -> float:
        """Seconds to replay every recorded exponentiation once, and (with `products`) as
        many products modulo the same moduli (best of `repeats`)."""
        best = float("inf")
        pm, ps = _ORIGINAL
        rng = random.Random(0)
        operands = {m: (mpz(rng.randrange(1, m)), mpz(rng.randrange(1, m))) for m in self.products}
        for _ in range(repeats):
            t0 = time.perf_counter()
            for b, e, m, sec in self.calls:
                (ps if sec else pm)(b, e, m)
            if products:
                for m, k in self.products.items():
                    x, y = operands[m]
                    for _ in range(k):
                        x = x * y % m
            best = min(best, time.perf_counter() - t0)
        return best

    def summary(self) -> str:
        parts = [f"{n}×{bits}" for bits, n in sorted(self.by_modulus().items())]
        if self.products:
            bits = sorted({256 * round(int(m).bit_length() / 256) for m in self.products})
            mods = "/".join(str(b) for b in bits)
            parts.append(f"{self.products_text()} mod {mods}")
        return " + ".join(parts) if parts else "0"

    def products_text(self) -> str:
        """The table's products, e.g. "33.8k products"."""
        k = self.product_count()
        return f"{k / 1000:.1f}k products" if k >= 1000 else f"{k} products"


_ORIGINAL = (gmpy2.powmod, gmpy2.powmod_sec)


@contextmanager
def record() -> Iterator[Recording]:
    rec = Recording()
    pm, ps = _ORIGINAL
    fb_init, fb_pow = FixedBase.__init__, FixedBase.pow

    def powmod(b: Any, e: Any, m: Any) -> Any:
        with rec.lock:
            rec.calls.append((b, e, m, False))
        return pm(b, e, m)

    def powmod_sec(b: Any, e: Any, m: Any) -> Any:
        with rec.lock:
            rec.calls.append((b, e, m, True))
        return ps(b, e, m)

    def init(self: FixedBase, *args: Any, **kwargs: Any) -> None:
        fb_init(self, *args, **kwargs)
        with rec.lock:
            rec.products[self.n] += self.products

    def power(self: FixedBase, e: int) -> Any:
        before = self.products
        out = fb_pow(self, e)
        with rec.lock:
            rec.products[self.n] += self.products - before
        return out

    gmpy2.powmod, gmpy2.powmod_sec = powmod, powmod_sec
    FixedBase.__init__, FixedBase.pow = init, power  # type: ignore[method-assign]
    try:
        yield rec
    finally:
        gmpy2.powmod, gmpy2.powmod_sec = pm, ps
        FixedBase.__init__, FixedBase.pow = fb_init, fb_pow  # type: ignore[method-assign]
