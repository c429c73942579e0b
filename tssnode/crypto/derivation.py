"""Non-hardened BIP-32 derivation (CKDpub) for a threshold key.

The group key X and its chain key play the role of a BIP-32 extended public key. Child i
is X + IL·G with (IL, IR) = HMAC-SHA512(chain, ser_P(X) ‖ ser32(i)). Because the shift IL
is public, every party derives the same child and adjusts its own share by adding the
sum of shifts to it (a constant added to every Shamir share moves the secret by that
constant). Hardened indices need the secret key and are refused.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from tssnode.crypto.encoding import Scalar, Wire, wire
from tssnode.crypto.group import Point, Q, base_mul
from tssnode.errors import TssError

HARDENED = 1 << 31
#: The deepest path tssnode derives (the ledger refuses deeper sign requests too).
MAX_DEPTH = 16


class DerivationError(TssError):
    """A derivation path that is malformed, hardened, or lands on an invalid key."""


@wire("tssnode.derivation/1")
@dataclass(frozen=True)
class Derived(Wire):
    """A child public key, its chain code and the total shift from the root key."""

    path: tuple[int, ...]
    public_key: Point
    chain_code: bytes
    shift: Scalar


def parse_path(path: str) -> tuple[int, ...]:
    """'m/0/1' → (0, 1). Only non-hardened indices below 2^31."""
    parts = path.strip().split("/")
    if not parts or parts[0] != "m":
        raise DerivationError("a derivation path starts with 'm'")
    if len(parts) - 1 > MAX_DEPTH:
        raise DerivationError(f"a derivation path has at most {MAX_DEPTH} components")
    out: list[int] = []
    for part in parts[1:]:
        if part.endswith(("'", "h", "H")):
            raise DerivationError("hardened derivation needs the whole secret key; refused")
        # ASCII digits only: str.isdigit() also takes "٣" and "³"
        if not (part.isascii() and part.isdigit()) or (len(part) > 1 and part[0] == "0"):
            raise DerivationError(f"bad path component {part!r}")
        index = int(part)
        if index >= HARDENED:
            raise DerivationError("index must be below 2^31")
        out.append(index)
    return tuple(out)


def format_path(path: tuple[int, ...]) -> str:
    return "/".join(["m", *map(str, path)])


def ckd_pub(public_key: Point, chain_code: bytes, index: int) -> tuple[Point, bytes, int]:
    """One CKDpub step: (child key, child chain code, IL)."""
    if not 0 <= index < HARDENED:
        raise DerivationError("CKDpub takes non-hardened indices only")
    if len(chain_code) != 32:
        raise DerivationError("a chain code is 32 bytes")
    if public_key.is_identity:
        raise DerivationError("cannot derive from the identity")
    mac = hmac.new(chain_code, public_key.to_bytes() + index.to_bytes(4, "big"), hashlib.sha512)
    digest = mac.digest()
    il = int.from_bytes(digest[:32], "big")
    if il >= Q:
        raise DerivationError(f"index {index} gives IL ≥ q; BIP-32 says use the next index")
    child = base_mul(il) + public_key
    if child.is_identity:
        raise DerivationError(f"index {index} gives the identity; use the next index")
    return child, digest[32:], il


def derive(public_key: Point, chain_code: bytes, path: tuple[int, ...] | str) -> Derived:
    """Follow a whole path from the root key."""
    indices = parse_path(path) if isinstance(path, str) else tuple(path)
    key, chain, shift = public_key, chain_code, 0
    for index in indices:
        key, chain, il = ckd_pub(key, chain, index)
        shift = (shift + il) % Q
    return Derived(indices, key, chain, shift)
