"""Session ids: the one place they are made.

Every session's id comes out of `make_ssid`: SHA-256 of the canonical encoding of
["tssnode.ssid/1", protocol version, phase, curve, tier, ordered parties, threshold, the
caller's nonce (in the node, from the ledger transaction), the phase's public data]. The
phase functions below only choose the phase name and the public data. A sign session is
the one exception: its id is derived from its presignature's session id and the digest
(`sign_ssid`), since a sign round only finishes a presign session.

The bytes are part of the wire format: every party must compute the same id for a
session, and the id is signed into every message of it (`base.envelope_digest`).
tests/protocol/test_ssid.py pins known values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tssnode.crypto.encoding import dumps
from tssnode.crypto.group import Q
from tssnode.crypto.params import Parameters
from tssnode.protocol.base import PROTOCOL_VERSION
from tssnode.protocol.material import KeyPublic, KeyShare, Presignature

if TYPE_CHECKING:
    from tssnode.protocol.auxinfo import Reshare


def make_ssid(
    protocol: str,
    params: Parameters,
    parties: Sequence[int],
    threshold: int,
    nonce: bytes,
    extra: Any = None,
) -> bytes:
    """The session id: protocol and version, curve, tier, ordered parties, threshold, the
    caller's nonce (later the ledger transaction) and phase-specific public data."""
    data = dumps(
        [
            "tssnode.ssid/1",
            PROTOCOL_VERSION,
            protocol,
            "secp256k1",
            params,
            sorted(parties),
            threshold,
            nonce,
            extra,
        ]
    )
    return hashlib.sha256(data).digest()


def keygen_ssid(params: Parameters, parties: Sequence[int], threshold: int, nonce: bytes) -> bytes:
    """The ssid of a keygen (Fig. 5): nothing public exists yet beyond the group."""
    return make_ssid("keygen", params, parties, threshold, nonce)


def aux_ssid(
    params: Parameters,
    parties: Sequence[int],
    threshold: int,
    nonce: bytes,
    subject: KeyPublic | Reshare,
) -> bytes:
    """The ssid of a refresh of a key (`subject` is the key) or of a reshare (`subject` is
    the `Reshare`: old key and dealer mapping). `parties` and `threshold` are the
    session's, i.e. the new ones; make_ssid binds them too. Every party must agree on all
    of it: parties with different views then cannot even exchange messages, rather than
    blaming an honest dealer for a constant term they computed differently."""
    protocol = "aux" if isinstance(subject, KeyPublic) else "reshare"
    return make_ssid(protocol, params, parties, threshold, nonce, subject)


def presign_ssid(
    share: KeyShare, signers: tuple[int, ...], shift: int, digest: bytes | None, nonce: bytes
) -> bytes:
    """Presign session id: the key's public data and aux, the signers, the derivation
    shift and, for a raw-digest presignature, the digest itself."""
    key = share.key
    extra = [key, share.aux, shift % Q, digest]
    return make_ssid("presign", key.params, signers, key.threshold, nonce, extra)


def sign_ssid(presig: Presignature, digest: bytes) -> bytes:
    """Sign session id: the presign session and the digest."""
    return hashlib.sha256(b"tssnode.sign.ssid/1" + presig.ssid + digest).digest()
