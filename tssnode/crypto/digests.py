"""Hash functions beyond hashlib's: Keccak-256 (Ethereum's, not SHA3-256) and HASH160.

Both come from pycryptodome: OpenSSL 3 may not offer RIPEMD-160, and hashlib has no
Keccak with the original padding.
"""

from __future__ import annotations

import hashlib

from Crypto.Hash import RIPEMD160, keccak


def keccak256(data: bytes) -> bytes:
    h = keccak.new(digest_bits=256)
    h.update(data)
    return h.digest()


def hash160(data: bytes) -> bytes:
    """RIPEMD-160(SHA-256(data)), Bitcoin's key hash."""
    return RIPEMD160.new(hashlib.sha256(data).digest()).digest()
