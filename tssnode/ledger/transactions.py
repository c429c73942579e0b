"""Ledger transactions: a payload in a signed envelope from the submitting validator.

`SignedTx(payload, sender, nonce, expiry, signature)`: the payload is the canonical
encoding of a payload object, the signature is the sender's Ed25519 signature bound to
the chain id (`envelope.signing_bytes`), `expiry` is the last height at which the
transaction may be included (replay protection without an unbounded index), and `nonce`
makes two otherwise equal requests distinct. The transaction hash is SHA-256 of the
envelope's encoding.

What a payload means is an application's business (`tssnode.ledger.app`): the engine
routes each payload type to the application that declared it. The one payload the engine
itself understands is `Misbehaviour`, the evidence of a validator that signed two
conflicting PBFT messages.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property

from tssnode.crypto.encoding import Wire, dumps, wire
from tssnode.crypto.identity import IdentityKey
from tssnode.errors import EncodingError
from tssnode.ledger.envelope import check_signature, decode_cached, sign_body
from tssnode.ledger.errors import InvalidTransaction
from tssnode.ledger.evidence import EquivocationEvidence


@wire("tssnode.tx.misbehaviour/1")
@dataclass(frozen=True)
class Misbehaviour(Wire):
    """A validator that signed two conflicting PBFT messages."""

    evidence: EquivocationEvidence


@wire("tssnode.tx/1")
@dataclass(frozen=True)
class SignedTx(Wire):
    payload: bytes
    sender: bytes
    nonce: bytes
    expiry: int
    signature: bytes

    @cached_property
    def _unsigned(self) -> bytes:
        return dumps(["tssnode.tx.unsigned/1", self.payload, self.sender, self.nonce, self.expiry])

    def unsigned_bytes(self) -> bytes:
        return self._unsigned

    @cached_property
    def hash(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()

    def decode_payload(self) -> Wire:
        """The payload object (the engine routes it by its type; see `ledger.app`)."""
        try:
            value = decode_cached(self.payload)
        except EncodingError as exc:
            raise InvalidTransaction(f"undecodable payload: {exc}") from exc
        if not isinstance(value, Wire):
            raise InvalidTransaction(f"{type(value).__name__} is not a transaction payload")
        return value

    def signature_ok(self, chain_id: bytes) -> bool:
        return check_signature(chain_id, self.sender, self.unsigned_bytes(), self.signature)


def make_tx(
    key: IdentityKey,
    chain_id: bytes,
    payload: Wire,
    *,
    expiry: int,
    nonce: bytes | None = None,
) -> SignedTx:
    """A transaction signed by `key`, valid up to and including height `expiry`."""
    unsigned = SignedTx(
        payload.to_bytes(), key.public_bytes(), nonce or os.urandom(16), expiry, b""
    )
    return SignedTx(
        unsigned.payload,
        unsigned.sender,
        unsigned.nonce,
        expiry,
        sign_body(key, chain_id, unsigned.unsigned_bytes()),
    )


def decode_tx(data: bytes) -> SignedTx:
    try:
        return SignedTx.from_bytes(data)
    except EncodingError as exc:
        raise InvalidTransaction(f"undecodable transaction: {exc}") from exc
