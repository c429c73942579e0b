"""Big-integer helpers on gmpy2: sampling, signed ranges, CRT exponentiation.

Randomness comes from a `random.Random` instance so that tests and benchmarks can run
seeded; production code passes nothing and gets `secrets.SystemRandom` (os.urandom).

Exponentiation policy (PROTOCOL.md): a secret exponent goes through `gmpy2.powmod_sec`
(constant time), a public one through `gmpy2.powmod`. Where the holder knows the
factorisation, both go through `CrtModulus`, which does two half-size exponentiations.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Final

import gmpy2
from gmpy2 import mpz

from tssnode.crypto.group import Q

#: The default randomness source: the operating system's CSPRNG.
SYSTEM_RNG: Final[random.Random] = secrets.SystemRandom()

ONE: Final = mpz(1)


def rng_or_system(rng: random.Random | None) -> random.Random:
    return SYSTEM_RNG if rng is None else rng


def randbelow(n: int, rng: random.Random | None = None) -> mpz:
    """Uniform in [0, n)."""
    r = rng_or_system(rng)
    bits = int(n).bit_length()
    while True:
        x = r.getrandbits(bits)
        if x < n:
            return mpz(x)


def sample_pm(bits: int, rng: random.Random | None = None) -> mpz:
    """Uniform in the paper's ±2^bits, i.e. the integers [−2^bits, 2^bits]."""
    return randbelow((1 << (bits + 1)) + 1, rng) - (ONE << bits)


def sample_pm_times(bits: int, factor: int, rng: random.Random | None = None) -> mpz:
    """Uniform in ±2^bits·factor (the paper's ±2^ℓ·N̂ ranges)."""
    bound = mpz(factor) << bits
    return randbelow(2 * bound + 1, rng) - bound


def in_pm(x: int, bits: int) -> bool:
    """|x| ≤ 2^bits."""
    return abs(int(x)) <= (1 << bits)


def in_pm_times(x: int, bits: int, factor: int) -> bool:
    """|x| ≤ 2^bits·factor."""
    return bool(abs(mpz(x)) <= (mpz(factor) << bits))


def sample_unit(n: int, rng: random.Random | None = None) -> mpz:
    """Uniform in Z*_n."""
    while True:
        x = randbelow(n, rng)
        if x > 0 and gmpy2.gcd(x, n) == 1:
            return x


def is_unit(x: int, n: int) -> bool:
    """x ∈ Z*_n, with x given as its least non-negative representative."""
    return bool(0 < x < n and gmpy2.gcd(x, n) == 1)


def sample_scalar(rng: random.Random | None = None) -> int:
    """Uniform non-zero scalar mod q."""
    while True:
        k = int(randbelow(Q, rng))
        if k:
            return k


def sample_qr(n: int, rng: random.Random | None = None) -> mpz:
    """A uniformly random square in Z*_n."""
    r = sample_unit(n, rng)
    return r * r % n


@lru_cache(maxsize=1024)
def _not_prime(n: int) -> bool:
    return not gmpy2.is_prime(n, 25)


def is_not_prime(n: int) -> bool:
    """n fails 25 Miller–Rabin rounds (a composite, for the odd n > 1 it is used on).
    Remembered per process: one peer's modulus is checked by its key's validation, its
    ring-Pedersen parameters' validation, Π^prm and Π^mod, each a full exponentiation."""
    return _not_prime(int(n))


def powmod_public(base: int, exp: int, n: int) -> mpz:
    """base^exp mod n for a public exponent; a negative exponent inverts the base."""
    return gmpy2.powmod(base, exp, n)


def powmod_secret(base: int, exp: int, n: int) -> mpz:
    """base^exp mod n in constant time for a secret exponent (n odd)."""
    if exp < 0:
        base = gmpy2.invert(base, n)
        exp = -exp
    if exp == 0:
        return ONE % n
    return gmpy2.powmod_sec(base % n, exp, n)


class CrtModulus:
    """Exponentiation modulo m = m_p·m_q by the Chinese remainder theorem.

    `m_p`, `m_q` are coprime (p and q for N, p² and q² for N²) and `phi_p`, `phi_q` the
    orders of their unit groups, so that exponents can be reduced before exponentiating
    when the base is a unit.
    """

    __slots__ = ("m", "m_p", "m_q", "phi_p", "phi_q", "q_inv")

    def __init__(self, m_p: int, m_q: int, phi_p: int, phi_q: int) -> None:
        self.m_p, self.m_q = mpz(m_p), mpz(m_q)
        self.phi_p, self.phi_q = mpz(phi_p), mpz(phi_q)
        self.m = self.m_p * self.m_q
        self.q_inv = gmpy2.invert(self.m_q, self.m_p)

    def combine(self, x_p: int, x_q: int) -> mpz:
        """The unique x mod m with x ≡ x_p (mod m_p) and x ≡ x_q (mod m_q)."""
        h = (x_p - x_q) * self.q_inv % self.m_p
        return mpz(x_q + h * self.m_q)

    def pow(self, base: int, exp: int, *, secret: bool) -> mpz:
        """base^exp mod m for a unit `base`; `secret` selects the constant-time path."""
        base = mpz(base)
        if exp < 0:
            base = gmpy2.invert(base, self.m)
            exp = -exp
        e_p, e_q = mpz(exp) % self.phi_p, mpz(exp) % self.phi_q
        f = powmod_secret if secret else powmod_public
        return self.combine(f(base % self.m_p, e_p, self.m_p), f(base % self.m_q, e_q, self.m_q))


class FixedBase:
    """Many exponentiations of one public base (Brickell–Gordon–McCurley–Wilson).

    The table holds g_j = base^(2^(w·j)), one squaring chain. A power base^e with w-bit
    digits e_j is Π_d (Π_{j: e_j ≥ d} g_j): going down from the largest digit value d, B
    gathers the g_j whose digit is d and A multiplies B in once per value, so each g_j
    ends up in A e_j times. That is one product per non-zero digit and one per digit
    value: about 2048/6 + 63 ≈ 400 for a 2048-bit exponent with w = 6, against the
    ≈ 2400 (mostly squarings) of a `powmod`; the table is the 2048 squarings of one.
    Π^prm's verifier does m = 80 powers of its base t: 55 ms against 199 ms for 80
    `powmod`s and 77 ms for the full-row comb this replaced (which spent 22 ms on a
    table of 13,000 products). Public exponents only: the digits show in the timing.

    `products` counts the modular products done so far (table included): the
    arithmetic a benchmark's floor replays (`tssnode.bench.counting`).
    """

    __slots__ = ("mask", "n", "powers", "products", "w")

    def __init__(self, base: int, n: int, max_bits: int, w: int = 6) -> None:
        self.n, self.w, self.mask = mpz(n), w, (1 << w) - 1
        g = mpz(base) % self.n
        rows = max(1, (max_bits + w - 1) // w)
        self.powers: list[mpz] = [g]
        with gil_held():
            for _ in range(rows - 1):
                for _ in range(w):
                    g = g * g % self.n
                self.powers.append(g)
        self.products = (rows - 1) * w

    def pow(self, e: int) -> mpz:
        """base^e mod n for 0 ≤ e < 2^max_bits."""
        if e < 0 or int(e).bit_length() > len(self.powers) * self.w:
            raise ValueError("exponent outside the table's range")
        n, mask, w, powers = self.n, self.mask, self.w, self.powers
        by_digit: list[list[mpz]] = [[] for _ in range(mask + 1)]
        rest, j = int(e), 0
        while rest:
            by_digit[rest & mask].append(powers[j])
            rest >>= w
            j += 1
        acc: mpz | None = None  # A
        run: mpz | None = None  # B
        products = 0
        with gil_held():
            for d in range(mask, 0, -1):
                for g in by_digit[d]:
                    if run is None:
                        run = g
                    else:
                        run = run * g % n
                        products += 1
                if run is not None:
                    if acc is None:
                        acc = run
                    else:
                        acc = acc * run % n
                        products += 1
        self.products += products
        return ONE if acc is None else acc % n


def isqrt_ceil(n: int) -> mpz:
    r = gmpy2.isqrt(n)
    return r if r * r == n else r + 1


@contextmanager
def gil_released() -> Iterator[None]:
    """Let gmpy2 release the GIL in this thread (for proof work in worker threads)."""
    ctx = gmpy2.get_context()
    before = ctx.allow_release_gil
    ctx.allow_release_gil = True
    try:
        yield
    finally:
        ctx.allow_release_gil = before


@contextmanager
def gil_held() -> Iterator[None]:
    """Keep the GIL through many small gmpy2 operations (a fixed-base table's products).

    With `allow_release_gil` each multiplication and reduction gives the GIL up and takes
    it back; for 2048-bit operands that costs more than it frees: two threads each running
    a Π^prm comb (80 powers of one base) took 260 ms with it, 161 ms without, against 78 ms
    for one. Exponentiations are long enough to release the GIL; loops of products are not.
    """
    ctx = gmpy2.get_context()
    before = ctx.allow_release_gil
    ctx.allow_release_gil = False
    try:
        yield
    finally:
        ctx.allow_release_gil = before
