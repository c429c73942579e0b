"""Peer ids without libp2p: the text and binary forms, and the Ed25519 key inside them.

A libp2p peer id of an Ed25519 key is an identity multihash of the protobuf-encoded public
key: ``00 24 | 08 01 12 20 | <32-byte key>`` (38 bytes), written in base58 as
``12D3KooW…``. Only this form is accepted: the key can be read straight out of the id, so
anything a peer signs can be checked against its id alone. Importing this module does not
import libp2p (the config parser uses it).
"""

from __future__ import annotations

import base58

from tssnode.net.errors import InvalidPeerId

#: multihash(identity, 36) ‖ protobuf PublicKey{Type: Ed25519, Data: 32 bytes}
ED25519_PEER_ID_PREFIX = bytes.fromhex("002408011220")
PEER_ID_BYTES = len(ED25519_PEER_ID_PREFIX) + 32


def check_peer_id(raw: bytes) -> bytes:
    """Return `raw` if it is the binary form of an Ed25519 peer id, else raise."""
    if len(raw) != PEER_ID_BYTES or not raw.startswith(ED25519_PEER_ID_PREFIX):
        raise InvalidPeerId("not an Ed25519 identity-multihash peer id")
    return raw


def from_text(text: str) -> bytes:
    """The binary peer id of its base58 text form."""
    if not isinstance(text, str) or not text or len(text) > 64:
        raise InvalidPeerId("a peer id is a short base58 string")
    try:
        raw = base58.b58decode(text)
    except ValueError as exc:
        raise InvalidPeerId(f"not base58: {text!r}") from exc
    check_peer_id(raw)
    if to_text(raw) != text:  # refuse non-canonical spellings (leading '1's and the like)
        raise InvalidPeerId(f"not the canonical spelling of a peer id: {text!r}")
    return raw


def to_text(raw: bytes) -> str:
    """The base58 text form of a binary peer id."""
    text: str = base58.b58encode(raw).decode("ascii")
    return text


def public_key(raw: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key inside a binary peer id."""
    return check_peer_id(raw)[len(ED25519_PEER_ID_PREFIX) :]


def from_public_key(key: bytes) -> bytes:
    """The binary peer id of a raw 32-byte Ed25519 public key."""
    if len(key) != 32:
        raise InvalidPeerId("an Ed25519 public key is 32 bytes")
    return ED25519_PEER_ID_PREFIX + key


def short(raw: bytes) -> str:
    """A short human label for logs: the last 8 characters of the text form."""
    return "…" + to_text(raw)[-8:]
