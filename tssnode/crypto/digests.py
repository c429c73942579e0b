"""Hash functions beyond hashlib's (Keccak-256, Ethereum's, not SHA3-256; HASH160), and the
message-digest rules: the 32-byte digest signed for a message under a named hash.

The rules are defined here once and shared by the node's signers (`protocol.hashing`
re-exports them with the raw-digest policy), the command line (`tssnode verify`,
`tssnode simulate`) and the console, which shows the digest before the operator confirms.

Keccak and RIPEMD-160 come from pycryptodome: OpenSSL 3 may not offer RIPEMD-160, and
hashlib has no Keccak with the original padding.
"""

from __future__ import annotations

import hashlib
from typing import Literal, get_args

from Crypto.Hash import RIPEMD160, keccak

from tssnode.errors import TssError

HashName = Literal["sha256", "sha256d", "keccak256", "eip191"]
#: the hash names a sign request may give (docs/api.md `POST /sign`, `hash`)
HASHES: tuple[HashName, ...] = get_args(HashName)


class HashPolicyError(TssError):
    """A hash name that is not supported, or a raw digest where none is allowed."""


def keccak256(data: bytes) -> bytes:
    h = keccak.new(digest_bits=256)
    h.update(data)
    return h.digest()


def hash160(data: bytes) -> bytes:
    """RIPEMD-160(SHA-256(data)), Bitcoin's key hash."""
    return RIPEMD160.new(hashlib.sha256(data).digest()).digest()


def message_digest(message: bytes, hash_name: str) -> bytes:
    """The 32-byte digest the signers sign for `message` under `hash_name`."""
    if hash_name == "sha256":
        return hashlib.sha256(message).digest()
    if hash_name == "sha256d":
        return hashlib.sha256(hashlib.sha256(message).digest()).digest()
    if hash_name == "keccak256":
        return keccak256(message)
    if hash_name == "eip191":
        prefix = b"\x19Ethereum Signed Message:\n" + str(len(message)).encode()
        return keccak256(prefix + message)
    raise HashPolicyError(f"unknown hash {hash_name!r}; one of {', '.join(HASHES)}")
