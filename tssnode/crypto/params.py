"""Parameter tiers (PROTOCOL.md, "Curve and parameters").

One frozen `Parameters` object travels with every session and is bound into its session
id. `insecure-test` exists so the test suite can run with 1536-bit moduli (two 768-bit
safe primes, ℓ' = 512: see the DEVIATION note at the tier); it refuses to load unless the
caller says `allow_insecure=True` or the environment sets `TSSNODE_ALLOW_INSECURE=1` (the
test suite's conftest does; a node never does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tssnode.crypto.encoding import Wire, wire
from tssnode.errors import InvalidParameters

INSECURE_ENV = "TSSNODE_ALLOW_INSECURE"


@wire("tssnode.params/1")
@dataclass(frozen=True)
class Parameters(Wire):
    """Security parameters of one tier.

    ell       ℓ: bit bound of secret scalars (x, k, γ ∈ ±2^ℓ)
    ell_prime ℓ': bit bound of the MtA masks β ∈ ±2^ℓ'
    eps       ε: slack that statistically hides a secret in a proof response
    m         repetitions of Π^mod and Π^prm (independent binary / Z*_N challenges)
    """

    name: str
    paillier_bits: int
    prime_bits: int
    ell: int
    ell_prime: int
    eps: int
    m: int


STANDARD = Parameters("standard", 2048, 1024, 256, 1280, 512, 80)
HIGH = Parameters("high", 3072, 1536, 256, 1280, 512, 128)
# DEVIATION from the tier table: the test tier uses a 1536-bit N (two 768-bit safe
# primes from the committed pool) and ℓ' = 512, not 1024 bits and ℓ' = 1280. With a
# 1024-bit N, ℓ' = 1280 cannot work at all (the Π^aff-g mask β ∈ ±2^(ℓ'+ε) must be a
# Paillier plaintext below N/2), and identification cannot work with any ℓ': its Π^dec
# opens plaintexts of max(2ℓ+ε, ℓ'+ε) + 3 + bitlen(n) bits (what a proof-valid MtA share
# can reach: 1030 here for 4 signers), which with Π^dec's c + 128-bit mask must stay below
# N/8 (zk/dec.py). 1536 bits runs every step of the protocol. The tier is insecure for
# its modulus size and because Π^fac needs |N| ≥ 4ℓ + 2ε = 2048 bits to mean anything.
INSECURE_TEST = Parameters("insecure-test", 1536, 768, 256, 512, 512, 80)

TIERS = {p.name: p for p in (STANDARD, HIGH, INSECURE_TEST)}


_permitted = False


def permit_insecure() -> None:
    """Allow the insecure-test tier in this process (what `--allow-insecure` does)."""
    global _permitted
    _permitted = True


def insecure_allowed() -> bool:
    return _permitted or os.environ.get(INSECURE_ENV) == "1"


def tier(name: str, *, allow_insecure: bool = False) -> Parameters:
    """Look a tier up by name; `insecure-test` only with explicit permission."""
    try:
        params = TIERS[name]
    except KeyError:
        raise InvalidParameters(
            f"unknown parameter tier {name!r}; one of {sorted(TIERS)}"
        ) from None
    check_allowed(params, allow_insecure=allow_insecure)
    return params


def check_allowed(params: Parameters, *, allow_insecure: bool = False) -> None:
    """Refuse an unknown tier, and the test tier without permission."""
    if TIERS.get(params.name) != params:
        raise InvalidParameters(f"parameters {params.name!r} are not one of the known tiers")
    if params == INSECURE_TEST and not (allow_insecure or insecure_allowed()):
        raise InvalidParameters(
            f"the insecure-test tier is for tests only; pass allow_insecure or set {INSECURE_ENV}=1"
        )
