"""Signed PBFT and ledger messages: an Ed25519 signature over a chain-bound body.

Every message a validator signs is `Signed(body, signer, signature)` where `body` is the
canonical encoding of a tagged `Wire` value, `signer` the validator's 32-byte Ed25519
public key, and the signature covers `["tssnode.ledger.sig/1", chain_id, body]`, so that a
vote for one chain is worthless on another. Signatures are transferable: a prepared
certificate or an equivocation can be checked by anyone who knows the validator set.

Verification results are cached process-wide (a signature verifies the same way every
time); in a simulation with many replicas in one process this saves each broadcast from
being verified once per receiver.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TypeVar

from tssnode.crypto.encoding import Wire, decode_any, dumps, wire
from tssnode.crypto.identity import IdentityKey, verify_signature
from tssnode.errors import EncodingError
from tssnode.ledger.errors import InvalidMessage

SIG_DOMAIN = "tssnode.ledger.sig/1"
_CACHE_MAX = 1 << 16
_cache: dict[bytes, bool] = {}

W = TypeVar("W", bound=Wire)


@wire("tssnode.ledger.signed/1")
@dataclass(frozen=True)
class Signed(Wire):
    """A message body signed by a validator."""

    body: bytes
    signer: bytes
    signature: bytes

    def digest(self) -> bytes:
        return hashlib.sha256(self.body).digest()


def signing_bytes(chain_id: bytes, body: bytes) -> bytes:
    return dumps([SIG_DOMAIN, chain_id, body])


def sign_body(key: IdentityKey, chain_id: bytes, body: bytes) -> bytes:
    return key.sign(signing_bytes(chain_id, body))


def sign(key: IdentityKey, chain_id: bytes, value: Wire) -> Signed:
    body = value.to_bytes()
    return Signed(body, key.public_bytes(), sign_body(key, chain_id, body))


def check_signature(chain_id: bytes, signer: bytes, body: bytes, signature: bytes) -> bool:
    """True when `signer` signed `body` for `chain_id` (cached)."""
    token = b"%d:%b%b%b" % (
        len(signer),
        signer,
        signature,
        hashlib.sha256(chain_id + body).digest(),
    )
    hit = _cache.get(token)
    if hit is None:
        data = signing_bytes(chain_id, body)
        hit = len(signer) == 32 and verify_signature(signer, data, signature)
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[token] = hit
    return hit


def verify(chain_id: bytes, signed: Signed) -> bool:
    return check_signature(chain_id, signed.signer, signed.body, signed.signature)


def open_as(chain_id: bytes, signed: Signed, cls: type[W]) -> W:
    """The body of `signed` as a `cls`, after checking the signature."""
    if not verify(chain_id, signed):
        raise InvalidMessage("bad signature")
    try:
        return cls.from_bytes(signed.body)
    except EncodingError as exc:
        raise InvalidMessage(f"not a {cls.__name__}: {exc}") from exc


_decoded: dict[bytes, Wire] = {}


def decode_cached(data: bytes) -> Wire:
    """`decode_any` with a bounded process-wide cache: values are immutable, and in a
    simulation every broadcast is decoded once per receiver."""
    hit = _decoded.get(data)
    if hit is None:
        hit = decode_any(data)
        if len(_decoded) >= _CACHE_MAX // 4:
            _decoded.clear()
        _decoded[data] = hit
    return hit


def open_any(chain_id: bytes, signed: Signed) -> Wire:
    """The body of `signed` decoded by its tag, after checking the signature."""
    if not verify(chain_id, signed):
        raise InvalidMessage("bad signature")
    try:
        return decode_any(signed.body)
    except EncodingError as exc:
        raise InvalidMessage(f"undecodable body: {exc}") from exc
