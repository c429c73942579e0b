"""Safe primes p = 2p' + 1: generation on a node, and the committed pool for tests.

Generation sieves p' and p together: for every small prime r, a candidate survives only
if p' mod r ∉ {0, (r − 1)/2} (the second case makes r divide 2p' + 1). The sieve runs over
a window of candidates with C-level slice assignments, so only about one candidate in
forty reaches a modular exponentiation. A survivor gets one base-2 Fermat test on p'
and then on p, and only a pair that passes both gets gmpy2's full primality test.

Every prime has its two top bits set, so the product of two is exactly twice as long.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import gmpy2
from gmpy2 import mpz

from tssnode.crypto.arith import rng_or_system
from tssnode.errors import PrimePoolExhausted, TssError

SIEVE_LIMIT = 1 << 18
WINDOW = 1 << 16  # candidates p' = start + 2k for k < WINDOW


def _small_primes(limit: int) -> list[int]:
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, limit, i)))
    return [i for i in range(3, limit) if sieve[i]]


SMALL_PRIMES = _small_primes(SIEVE_LIMIT)


def _window_survivors(start: int) -> Iterator[int]:
    """Offsets k (< WINDOW) such that p' = start + 2k passes the double sieve."""
    alive = bytearray([1]) * WINDOW
    for r in SMALL_PRIMES:
        s = start % r
        inv2 = (r + 1) // 2  # 2^(−1) mod r
        for bad in (0, (r - 1) // 2):  # p' ≡ 0 or p' ≡ (r−1)/2 (mod r)
            # start + 2k ≡ bad (mod r)  ⇔  k ≡ (bad − s)·2^(−1) (mod r)
            k0 = (bad - s) * inv2 % r
            if k0 < WINDOW:
                alive[k0::r] = bytes(len(range(k0, WINDOW, r)))
    return (k for k in range(WINDOW) if alive[k])


def _is_safe_prime_candidate(pp: mpz) -> bool:
    p = 2 * pp + 1
    if gmpy2.powmod(2, pp - 1, pp) != 1:
        return False
    # p = 2p'+1 with p' prime: 2^(p−1) ≡ 1 (mod p) already proves p prime (Pocklington),
    # the full tests below double-check both.
    if gmpy2.powmod(2, p - 1, p) != 1:
        return False
    return bool(gmpy2.is_prime(pp, 30) and gmpy2.is_prime(p, 30))


def safe_prime(
    bits: int,
    rng: random.Random | None = None,
    *,
    on_attempt: Callable[[int], None] | None = None,
) -> mpz:
    """A uniformly placed safe prime of exactly `bits` bits with its top two bits set."""
    if bits < 16:
        raise ValueError("safe primes here have at least 16 bits")
    r = rng_or_system(rng)
    tested = 0
    while True:
        # p' has bits−1 bits with its top two bits set, and is odd.
        start = r.getrandbits(bits - 1) | (0b11 << (bits - 3)) | 1
        for k in _window_survivors(start):
            pp = mpz(start + 2 * k)
            if pp.bit_length() != bits - 1:
                break
            tested += 1
            if on_attempt is not None:
                on_attempt(tested)
            if _is_safe_prime_candidate(pp):
                return 2 * pp + 1


def is_safe_prime(p: int) -> bool:
    p = mpz(p)
    return p > 5 and p % 2 == 1 and bool(gmpy2.is_prime(p, 30) and gmpy2.is_prime((p - 1) // 2, 30))


# -- the pool -------------------------------------------------------------------------------

POOL_PACKAGE = "tssnode.crypto.pool"


class PoolError(TssError):
    """A prime-pool file that is malformed or holds a number that is not a safe prime."""


@dataclass
class PrimePool:
    """Pre-generated safe primes of one size, handed out without repetition.

    `take` draws distinct primes; with `rng` the draw is a seeded shuffle so a test run is
    reproducible, and several pools (one per party) can be drawn from one list.
    """

    bits: int
    primes: list[mpz]

    @staticmethod
    def load(bits: int, path: Path | None = None) -> PrimePool:
        """Load the committed pool for `bits` (or a file in the same format)."""
        if path is None:
            text = resources.files(POOL_PACKAGE).joinpath(f"safe_primes_{bits}.txt").read_text()
            where = f"committed pool safe_primes_{bits}.txt"
        else:
            text = path.read_text()
            where = str(path)
        primes: list[mpz] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                p = mpz(line, 16)
            except ValueError:
                raise PoolError(f"{where}:{lineno}: not a hexadecimal number") from None
            # Cheap load-time check (two Fermat tests); the generator ran the full ones.
            if p.bit_length() != bits or not _is_fermat_safe(p):
                raise PoolError(f"{where}:{lineno}: not a {bits}-bit safe prime")
            primes.append(p)
        if len(set(primes)) != len(primes):
            raise PoolError(f"{where}: repeated prime")
        return PrimePool(bits, primes)

    def take(self, count: int, rng: random.Random | None = None) -> list[mpz]:
        """`count` distinct primes from the pool (removed from it)."""
        if count > len(self.primes):
            raise PrimePoolExhausted(
                f"pool of {self.bits}-bit safe primes has {len(self.primes)}, asked for {count}"
            )
        if rng is not None:
            rng.shuffle(self.primes)
        taken, self.primes = self.primes[:count], self.primes[count:]
        return taken


def _is_fermat_safe(p: mpz) -> bool:
    pp = (p - 1) // 2
    return bool(gmpy2.powmod(2, pp - 1, pp) == 1 and gmpy2.powmod(2, p - 1, p) == 1)


def format_pool(bits: int, primes: list[mpz], header: str) -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{int(p):0{bits // 4}x}" for p in primes]
    return "\n".join(lines) + "\n"
