"""The message hashing policy (PROTOCOL.md "Presignatures", CVE-2025-66017).

A signature made from a pooled presignature signs a digest that the signer computed
itself from the message and a named hash. A caller-supplied raw digest is only signed
with a presignature that was made for that digest (the digest is bound into the
presign session id), so nobody can choose a digest after seeing R.
"""

from __future__ import annotations

import hashlib

from tssnode.crypto.digests import keccak256
from tssnode.errors import TssError

HASHES = ("sha256", "sha256d", "keccak256", "eip191")


class HashPolicyError(TssError):
    """A hash name that is not supported, or a raw digest where none is allowed."""


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
