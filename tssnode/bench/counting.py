"""Count the modular exponentiations a piece of code performs, and time their floor.

`record()` swaps gmpy2's `powmod` and `powmod_sec` for wrappers that remember every call
(base, exponent, modulus, constant-time or not) while the block runs; every
exponentiation in tssnode goes through those two functions. `floor()` replays exactly
those calls, with nothing around them, in one thread: the time the maths alone needs. A
measured time divided by its floor says how far the code is from pure exponentiation.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gmpy2


@dataclass
class Recording:
    calls: list[tuple[Any, Any, Any, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        return len(self.calls)

    def by_modulus(self) -> Counter[int]:
        """How many exponentiations per modulus size (bits, rounded to a multiple of 256)."""
        return Counter(256 * round(int(m).bit_length() / 256) for _, _, m, _ in self.calls)

    def floor(self, repeats: int = 3) -> float:
        """Seconds to replay every recorded exponentiation once (best of `repeats`)."""
        best = float("inf")
        pm, ps = _ORIGINAL
        for _ in range(repeats):
            t0 = time.perf_counter()
            for b, e, m, sec in self.calls:
                (ps if sec else pm)(b, e, m)
            best = min(best, time.perf_counter() - t0)
        return best

    def summary(self) -> str:
        parts = [f"{n}×{bits}" for bits, n in sorted(self.by_modulus().items())]
        return " + ".join(parts) if parts else "0"


_ORIGINAL = (gmpy2.powmod, gmpy2.powmod_sec)


@contextmanager
def record() -> Iterator[Recording]:
    rec = Recording()
    pm, ps = _ORIGINAL

    def powmod(b: Any, e: Any, m: Any) -> Any:
        with rec.lock:
            rec.calls.append((b, e, m, False))
        return pm(b, e, m)

    def powmod_sec(b: Any, e: Any, m: Any) -> Any:
        with rec.lock:
            rec.calls.append((b, e, m, True))
        return ps(b, e, m)

    gmpy2.powmod, gmpy2.powmod_sec = powmod, powmod_sec
    try:
        yield rec
    finally:
        gmpy2.powmod, gmpy2.powmod_sec = pm, ps
