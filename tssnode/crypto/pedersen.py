"""Ring-Pedersen parameters (N̂, s, t) with s = t^λ (CGGMP21 Def. 2.3, Fig. 6).

commit(x, y) = s^x · t^y mod N̂ for signed x, y. The owner knows λ and φ(N̂) and commits
by CRT; everyone else uses public exponentiation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property

import gmpy2
from gmpy2 import mpz

from tssnode.crypto.arith import (
    CrtModulus,
    is_unit,
    powmod_public,
    powmod_secret,
    randbelow,
    sample_qr,
)
from tssnode.crypto.encoding import Big, Wire, wire
from tssnode.crypto.paillier import validate_modulus
from tssnode.crypto.params import Parameters
from tssnode.errors import InvalidModulus


@wire("tssnode.pedersen/1")
@dataclass(frozen=True)
class PedersenParams(Wire):
    n: Big
    s: Big
    t: Big

    def validate(self, params: Parameters) -> None:
        """N̂ well formed; s, t ∈ Z*_N̂, distinct, neither 1 (Π^prm then shows s ∈ ⟨t⟩)."""
        validate_modulus(self.n, params.paillier_bits)
        for name, v in (("s", self.s), ("t", self.t)):
            if not is_unit(mpz(v), self.n):
                raise InvalidModulus(f"ring-Pedersen {name} not in Z*_N")
            if v == 1:
                raise InvalidModulus(f"ring-Pedersen {name} is 1")
        if self.s == self.t:
            raise InvalidModulus("ring-Pedersen s equals t")

    def commit(self, x: int, y: int) -> mpz:
        """s^x · t^y mod N̂."""
        n = self.n
        return powmod_public(self.s, x, n) * powmod_public(self.t, y, n) % n

    def commit_secret(self, x: int, y: int) -> mpz:
        """s^x · t^y mod N̂ for secret x, y (constant-time exponentiation): what a prover
        uses with someone else's parameters, where it has no CRT."""
        n = mpz(self.n)
        return powmod_secret(self.s, x, n) * powmod_secret(self.t, y, n) % n

    def pow(self, base: int, exp: int) -> mpz:
        """base^exp mod N̂ (public exponent; a negative one inverts the base)."""
        return powmod_public(base, exp, self.n)

    def verify(self, x: int, y: int, a: int, b: int, e: int) -> bool:
        """s^x · t^y ≡ a · b^e (mod N̂): the check every range proof makes."""
        n = self.n
        return bool(self.commit(x, y) == mpz(a) * powmod_public(b, e, n) % n)


@dataclass(frozen=True, repr=False)
class PedersenSecret:
    """The owner's trapdoor: the factorisation of N̂ and λ with s = t^λ."""

    p: mpz
    q: mpz
    lam: mpz
    public: PedersenParams = field(compare=False)

    def __repr__(self) -> str:
        return "PedersenSecret(secret hidden)"

    @cached_property
    def phi(self) -> mpz:
        return (self.p - 1) * (self.q - 1)

    @cached_property
    def crt(self) -> CrtModulus:
        return CrtModulus(self.p, self.q, self.p - 1, self.q - 1)

    def commit(self, x: int, y: int) -> mpz:
        """s^x · t^y = t^(λx + y) mod N̂ by CRT (one exponentiation, reduced mod φ; the
        exponent involves λ, so constant-time even where x and y are public)."""
        return self.crt.pow(self.public.t, (self.lam * x + y) % self.phi, secret=True)

    def pow(self, base: int, exp: int) -> mpz:
        """`PedersenParams.pow` for the owner, `base` a unit mod N̂: by CRT, the exponent
        reduced mod φ (so constant-time: the reduction involves the secret φ)."""
        return self.crt.pow(base, exp, secret=True)

    def verify(self, x: int, y: int, a: int, b: int, e: int) -> bool:
        """`PedersenParams.verify` for the owner: s^x · t^y ≡ a · b^e (mod N̂), the left
        side by `commit` (one half-size CRT exponentiation for the verifier's two
        full-size ones). The same answer for every input, since s = t^λ."""
        n = mpz(self.public.n)
        return bool(self.commit(x, y) == mpz(a) * powmod_public(b, e, n) % n)


def generate(p: int, q: int, rng: random.Random | None = None) -> PedersenSecret:
    """t a random square, λ ← Z_φ(N), s = t^λ (Fig. 6, round 1)."""
    p, q = mpz(p), mpz(q)
    n = p * q
    phi = (p - 1) * (q - 1)
    crt = CrtModulus(p, q, p - 1, q - 1)
    while True:
        t = sample_qr(n, rng)
        lam = randbelow(phi, rng)
        s = crt.pow(t, lam, secret=True)
        if t != 1 and s != 1 and s != t and gmpy2.gcd(s, n) == 1:
            return PedersenSecret(p, q, lam, PedersenParams(n, s, t))
