"""The digest the node will sign, computed by the console itself so the operator can
check it before confirming.

The same four rules as the node's hashing policy (docs/api.md `POST /sign`, `hash`);
written again here because the console imports nothing from the node's internals.
`tests/tui/test_digests.py` checks them against the node's own implementation.
No Textual here.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from Crypto.Hash import keccak

HashName = Literal["sha256", "sha256d", "keccak256", "eip191"]
HASHES: tuple[HashName, ...] = ("sha256", "sha256d", "keccak256", "eip191")

HASH_HELP: dict[str, str] = {
    "sha256": "SHA-256 of the message",
    "sha256d": "SHA-256 twice (Bitcoin)",
    "keccak256": "Keccak-256 of the message (Ethereum)",
    "eip191": "Keccak-256 of the EIP-191 personal message",
}

_HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})*$")


class MessageError(ValueError):
    """A message the console cannot turn into bytes (bad hex)."""


def keccak256(data: bytes) -> bytes:
    """Keccak-256 with Ethereum's original padding (not SHA3-256)."""
    h = keccak.new(digest_bits=256)
    h.update(data)
    return h.digest()


def message_digest(message: bytes, hash_name: str) -> bytes:
    """The 32-byte digest signed for `message` under `hash_name`."""
    if hash_name == "sha256":
        return hashlib.sha256(message).digest()
    if hash_name == "sha256d":
        return hashlib.sha256(hashlib.sha256(message).digest()).digest()
    if hash_name == "keccak256":
        return keccak256(message)
    if hash_name == "eip191":
        return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)
    raise MessageError(f"unknown hash {hash_name!r}; one of {', '.join(HASHES)}")


def message_bytes(text: str, *, is_hex: bool) -> bytes:
    """The bytes the node receives: UTF-8 of the text, or the decoded hex (an optional
    0x prefix, an even number of hex digits, as the API accepts)."""
    if not is_hex:
        return text.encode()
    cleaned = text.strip()
    if not _HEX.match(cleaned):
        raise MessageError("not hexadecimal: use pairs of 0-9a-f, optionally after 0x")
    return bytes.fromhex(cleaned.removeprefix("0x"))
