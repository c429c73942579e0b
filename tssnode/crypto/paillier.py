"""Paillier encryption over N = p·q with safe primes p, q (CGGMP21 §2.2 and Fig. 6).

enc(m; ρ) = (1 + N)^m · ρ^N mod N². Plaintexts are signed: decryption returns the
representative in (−N/2, N/2]. The holder of the secret key does every exponentiation by
CRT (mod p² and q² for ciphertexts, mod p and q for nonces); p and q never leave
`PaillierSecretKey`, whose repr shows only the public modulus.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property

import gmpy2
from gmpy2 import mpz

from tssnode.crypto.arith import (
    CrtModulus,
    is_not_prime,
    is_unit,
    powmod_public,
    powmod_secret,
    sample_unit,
)
from tssnode.crypto.encoding import Big, Wire, wire
from tssnode.crypto.params import Parameters
from tssnode.errors import InvalidCiphertext, InvalidModulus


@wire("tssnode.paillier.pk/1")
@dataclass(frozen=True)
class PaillierPublicKey(Wire):
    n: Big

    @cached_property
    def n2(self) -> mpz:
        return mpz(self.n) * self.n

    def validate(self, params: Parameters) -> None:
        """Structural checks every receiver runs (PROTOCOL.md, "Paillier ... moduli")."""
        validate_modulus(self.n, params.paillier_bits)

    def encrypt_with(self, m: int, rho: int) -> mpz:
        """enc(m; ρ) = (1 + mN) · ρ^N mod N²; ρ is a secret base, N a public exponent."""
        n, n2 = self.n, self.n2
        return (1 + mpz(m) % n * n) * powmod_public(rho, n, n2) % n2

    def encrypt(self, m: int, rng: random.Random | None = None) -> tuple[mpz, mpz]:
        """A fresh encryption of m: (ciphertext, nonce)."""
        rho = sample_unit(self.n, rng)
        return self.encrypt_with(m, rho), rho

    def add(self, c1: int, c2: int) -> mpz:
        """enc(m1) ⊕ enc(m2) = enc(m1 + m2)."""
        return mpz(c1) * c2 % self.n2

    def mul(self, c: int, k: int) -> mpz:
        """k ⊙ enc(m) = enc(k·m) for a public k (may be negative)."""
        return powmod_public(c, k, self.n2)

    def mul_secret(self, c: int, k: int) -> mpz:
        """k ⊙ enc(m) for a secret k: constant-time exponentiation."""
        return powmod_secret(c, k, self.n2)

    def is_ciphertext(self, c: int) -> bool:
        return is_unit(mpz(c), self.n2)

    def check_ciphertext(self, c: int) -> None:
        """Refuse anything outside Z*_{N²}."""
        if not self.is_ciphertext(c):
            raise InvalidCiphertext("ciphertext not in Z*_{N^2}")


def validate_modulus(n: int, bits: int) -> None:
    """N has exactly `bits` bits, is odd and is not prime."""
    n = mpz(n)
    if n.bit_length() != bits:
        raise InvalidModulus(f"modulus has {n.bit_length()} bits, expected {bits}")
    if n % 2 == 0:
        raise InvalidModulus("modulus is even")
    if not is_not_prime(n):
        raise InvalidModulus("modulus is prime")


@dataclass(frozen=True, repr=False)
class PaillierSecretKey:
    """The factorisation of N. Holds no other secret; never printed."""

    p: mpz
    q: mpz
    public: PaillierPublicKey = field(init=False)

    def __post_init__(self) -> None:
        p, q = mpz(self.p), mpz(self.q)
        if p == q:
            raise InvalidModulus("p and q are equal")
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "q", q)
        object.__setattr__(self, "public", PaillierPublicKey(p * q))

    def __repr__(self) -> str:
        return f"PaillierSecretKey(n={int(self.n).bit_length()} bits, secret hidden)"

    @property
    def n(self) -> mpz:
        return mpz(self.public.n)

    @cached_property
    def phi(self) -> mpz:
        return (self.p - 1) * (self.q - 1)

    @cached_property
    def crt_n(self) -> CrtModulus:
        return CrtModulus(self.p, self.q, self.p - 1, self.q - 1)

    @cached_property
    def crt_n2(self) -> CrtModulus:
        p2, q2 = self.p * self.p, self.q * self.q
        return CrtModulus(p2, q2, self.p * (self.p - 1), self.q * (self.q - 1))

    @cached_property
    def _h(self) -> tuple[mpz, mpz]:
        # h_p = L_p((1+N)^(p−1) mod p²)^(−1) mod p with L_p(x) = (x − 1)/p, likewise h_q.
        p, q, n = self.p, self.q, self.n
        hp = gmpy2.invert((gmpy2.powmod(1 + n, p - 1, p * p) - 1) // p, p)
        hq = gmpy2.invert((gmpy2.powmod(1 + n, q - 1, q * q) - 1) // q, q)
        return hp, hq

    @cached_property
    def n_inv_mod_phi(self) -> mpz:
        return gmpy2.invert(self.n, self.phi)

    def encrypt_with(self, m: int, rho: int) -> mpz:
        """enc(m; ρ) with ρ^N computed by CRT mod p² and q²."""
        n = self.n
        n2 = self.crt_n2.m
        return (1 + mpz(m) % n * n) * self.crt_n2.pow(rho, n, secret=False) % n2

    def encrypt(self, m: int, rng: random.Random | None = None) -> tuple[mpz, mpz]:
        rho = sample_unit(self.n, rng)
        return self.encrypt_with(m, rho), rho

    def decrypt(self, c: int) -> mpz:
        """The plaintext in (−N/2, N/2]; CRT with constant-time exponentiation."""
        self.public.check_ciphertext(c)
        return self.centre(self.decrypt_mod_n(c))

    def decrypt_mod_n(self, c: int) -> mpz:
        p, q = self.p, self.q
        hp, hq = self._h
        cp = _powsec(mpz(c) % (p * p), p - 1, p * p)
        cq = _powsec(mpz(c) % (q * q), q - 1, q * q)
        mp = (cp - 1) // p * hp % p
        mq = (cq - 1) // q * hq % q
        return self.crt_n.combine(mp, mq)

    def decrypt_plain(self, c: int) -> mpz:
        """Textbook decryption without CRT: m = L(c^λ mod N²)·μ mod N. Kept for tests and bench."""
        self.public.check_ciphertext(c)
        n, n2 = self.n, self.n * self.n
        lam = self.phi
        mu = gmpy2.invert((gmpy2.powmod(1 + n, lam, n2) - 1) // n, n)
        return self.centre((_powsec(mpz(c), lam, n2) - 1) // n * mu % n)

    def centre(self, m: int) -> mpz:
        m = mpz(m) % self.n
        return m - self.n if m > self.n // 2 else m

    def nonce(self, c: int, m: int) -> mpz:
        """Recover ρ from c = enc(m; ρ): ρ = (c·(1+N)^(−m) mod N)^(N^(−1) mod φ(N)) mod N."""
        n = self.n
        u = mpz(c) * (1 + (-mpz(m)) % n * n) % (n * n) % n
        return self.crt_n.pow(u, self.n_inv_mod_phi, secret=True)


def _powsec(base: mpz, exp: mpz, mod: mpz) -> mpz:
    return gmpy2.powmod_sec(base, exp, mod)


def keypair_from_primes(p: int, q: int) -> PaillierSecretKey:
    return PaillierSecretKey(mpz(p), mpz(q))
