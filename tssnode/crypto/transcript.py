"""Fiat–Shamir transcripts: injective, length-prefixed, domain-separated hashing.

Every item absorbed is the canonical CBOR encoding (see `encoding`) of `[label, value]`.
CBOR items carry their type and length and are prefix-free, so a sequence of items can be
read back in only one way: two different transcripts never hash the same input (the
ambiguity of tss-lib's '$' separator, CVE-2022-47931, cannot occur). A transcript starts
from the proof's domain, the session id and the prover id, so a proof made for one
session, party or proof type is useless for any other.

Challenges are squeezed from SHAKE-256 with a label and a counter and drawn by rejection
sampling, so they are uniform in their range with no modular bias. Several challenges
(Π^mod's y_i, Π^prm's bits) are each derived from their own index: no challenge depends on
how many others were drawn before it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import gmpy2
from gmpy2 import mpz

from tssnode.crypto.encoding import dumps
from tssnode.crypto.group import Q

_DOMAIN_ROOT = "tssnode/fiat-shamir/1"


class Transcript:
    """A running Fiat–Shamir hash. `append` absorbs; the `challenge_*` methods do not."""

    __slots__ = ("_h",)

    def __init__(self, domain: str, ssid: bytes, prover: int | bytes | str) -> None:
        self._h = hashlib.shake_256()
        self._absorb([_DOMAIN_ROOT, domain, ssid, prover])

    def _absorb(self, value: Any) -> None:
        self._h.update(dumps(value))

    def append(self, label: str, value: Any) -> Transcript:
        """Absorb one labelled item (any encodable value: int, mpz, Point, bytes, lists, Wire)."""
        self._absorb(["item", label, value])
        return self

    def _squeeze(self, label: str, index: int, attempt: int, nbytes: int) -> bytes:
        h = self._h.copy()
        h.update(dumps(["challenge", label, index, attempt]))
        return h.digest(nbytes)

    def _below(self, label: str, index: int, bound: int) -> mpz:
        """Uniform in [0, bound) by rejection sampling."""
        bits = int(bound - 1).bit_length()
        nbytes = (bits + 7) // 8 + 1
        mask = (1 << bits) - 1
        attempt = 0
        while True:
            x = int.from_bytes(self._squeeze(label, index, attempt, nbytes), "big") & mask
            if x < bound:
                return mpz(x)
            attempt += 1

    def digest(self, label: str = "digest", size: int = 32) -> bytes:
        """A labelled hash of everything absorbed so far."""
        return self._squeeze(label, 0, 0, size)

    def challenge_scalar(self, label: str = "e") -> int:
        """Uniform in [0, q)."""
        return int(self._below(label, 0, Q))

    def challenge_pm_q(self, label: str = "e") -> mpz:
        """Uniform in the paper's ±q: the integers (−q, q)."""
        return self._below(label, 0, 2 * Q - 1) - (Q - 1)

    def challenge_pm_bits(self, c: int, label: str = "e") -> mpz:
        """Uniform in ±2^c: the integers (−2^c, 2^c)."""
        bound = mpz(1) << c
        return self._below(label, 0, 2 * bound - 1) - (bound - 1)

    def challenge_bits(self, m: int, label: str = "bits") -> list[int]:
        """m independent binary challenges; bit i is derived from index i alone."""
        return [self._squeeze(label, i, 0, 1)[0] & 1 for i in range(m)]

    def challenge_units(self, n: int, m: int, label: str = "y") -> list[mpz]:
        """m elements of Z*_n, each derived from its own index by rejection sampling."""
        out: list[mpz] = []
        for i in range(m):
            retry = 0
            while True:
                # A non-unit only turns up when n has a small factor; the retry is still a
                # function of (label, i, retry) alone.
                y = self._below(f"{label}#{retry}", i, n)
                if y > 0 and gmpy2.gcd(y, n) == 1:
                    out.append(y)
                    break
                retry += 1
        return out
