"""The digest the node will sign, computed by the console itself so the operator can
check it before confirming.

The rules (docs/api.md `POST /sign`, `hash`) are the node's own, from
`tssnode.crypto.digests`, where they are defined once; here they only get the console's
error type. No Textual here.
"""

from __future__ import annotations

import re

from tssnode.crypto.digests import HASHES as HASHES  # the hash names, for the sign screen
from tssnode.crypto.digests import HashPolicyError
from tssnode.crypto.digests import message_digest as _message_digest

HASH_HELP: dict[str, str] = {
    "sha256": "SHA-256 of the message",
    "sha256d": "SHA-256 twice (Bitcoin)",
    "keccak256": "Keccak-256 of the message (Ethereum)",
    "eip191": "Keccak-256 of the EIP-191 personal message",
}

_HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})*$")


class MessageError(ValueError):
    """A message the console cannot turn into bytes (bad hex)."""


def message_digest(message: bytes, hash_name: str) -> bytes:
    """The 32-byte digest signed for `message` under `hash_name`."""
    try:
        return _message_digest(message, hash_name)
    except HashPolicyError as exc:
        raise MessageError(str(exc)) from None


def message_bytes(text: str, *, is_hex: bool) -> bytes:
    """The bytes the node receives: UTF-8 of the text, or the decoded hex (an optional
    0x prefix, an even number of hex digits, as the API accepts)."""
    if not is_hex:
        return text.encode()
    cleaned = text.strip()
    if not _HEX.match(cleaned):
        raise MessageError("not hexadecimal: use pairs of 0-9a-f, optionally after 0x")
    return bytes.fromhex(cleaned.removeprefix("0x"))
