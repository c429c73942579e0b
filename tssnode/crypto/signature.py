"""ECDSA signatures over secp256k1: verification, low-s, recovery id, DER and compact forms.

The threshold protocol produces (r, s); this module is what every produced signature goes
through before anyone sees it (PROTOCOL.md, "Final"): normalised to low-s, given the
recovery id v, and verified against the public key with our own point arithmetic. DER
parsing uses `cryptography`'s strict ASN.1 reader (BER forms are refused).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tssnode.crypto.encoding import NonZeroScalar, Wire, wire
from tssnode.crypto.group import P_FIELD, Point, Q, base_mul, inv_mod_q
from tssnode.errors import EncodingError, InvalidPoint, TssError

HALF_Q = Q // 2


class InvalidSignature(TssError):
    """An ECDSA signature that does not verify, or is not in the required form."""


@wire("tssnode.signature/1")
@dataclass(frozen=True)
class Signature(Wire):
    """(r, s) with the recovery id v ∈ {0, 1} (bit 0: R.y odd; R.x ≥ q never happens in
    practice and is refused when recovering)."""

    r: NonZeroScalar
    s: NonZeroScalar
    v: int

    @property
    def is_low_s(self) -> bool:
        return self.s <= HALF_Q

    def der(self) -> bytes:
        return encode_dss_signature(self.r, self.s)

    def compact(self) -> bytes:
        """64 bytes r ‖ s (IEEE P1363)."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big")

    def eth_v(self) -> int:
        """27 or 28, as Ethereum's ecrecover takes it."""
        return 27 + self.v


def digest_to_scalar(digest: bytes) -> int:
    """The leftmost 256 bits of the digest as an integer mod q (SEC1 4.1.3 step 5)."""
    if len(digest) < 32:
        raise EncodingError("a message digest for secp256k1 has at least 32 bytes")
    return int.from_bytes(digest[:32], "big") % Q


def verify(public_key: Point, digest: bytes, r: int, s: int) -> None:
    """Plain ECDSA verification (high-s accepted). Raises InvalidSignature."""
    if public_key.is_identity:
        raise InvalidSignature("public key is the identity")
    if not (0 < r < Q and 0 < s < Q):
        raise InvalidSignature("r or s out of range [1, q)")
    e = digest_to_scalar(digest)
    w = inv_mod_q(s)
    R = base_mul(e * w) + public_key * (r * w)
    if R.is_identity or R.xy()[0] % Q != r:
        raise InvalidSignature("signature does not verify")


def verify_low_s(public_key: Point, digest: bytes, r: int, s: int) -> None:
    """Verification under Bitcoin's rule (BIP-146): s must be at most q/2."""
    if s > HALF_Q:
        raise InvalidSignature("high s (malleable) signature")
    verify(public_key, digest, r, s)


def parse_der(data: bytes) -> tuple[int, int]:
    """Strict DER Ecdsa-Sig-Value; r and s in [1, q)."""
    try:
        r, s = decode_dss_signature(bytes(data))
    except ValueError as exc:
        raise InvalidSignature("not a strict DER ECDSA signature") from exc
    if not (0 < r < Q and 0 < s < Q):
        raise InvalidSignature("r or s out of range [1, q)")
    return r, s


def parse_compact(data: bytes) -> tuple[int, int]:
    if len(data) != 64:
        raise InvalidSignature("a compact signature is 64 bytes")
    r, s = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big")
    if not (0 < r < Q and 0 < s < Q):
        raise InvalidSignature("r or s out of range [1, q)")
    return r, s


def finalize(public_key: Point, digest: bytes, R: Point, s: int) -> Signature:
    """From the threshold protocol's R and combined s to a checked, low-s signature.

    r = R.x mod q; s is replaced by q − s when above q/2, which flips R's y parity for
    recovery. The signature is verified against the public key before it is returned.
    """
    x, y = R.xy()
    if x >= Q:
        raise InvalidSignature("R.x ≥ q: recovery id would need the overflow bit")
    r = x % Q
    if r == 0 or s % Q == 0:
        raise InvalidSignature("r or s is zero")
    s %= Q
    v = y & 1
    if s > HALF_Q:
        s, v = Q - s, v ^ 1
    verify(public_key, digest, r, s)
    sig = Signature(r, s, v)
    if recover(digest, sig) != public_key:
        raise InvalidSignature("recovery id does not recover the public key")
    return sig


def recover(digest: bytes, sig: Signature) -> Point:
    """The public key Q with sig a valid signature of digest: Q = r⁻¹(s·R − e·G)."""
    if sig.v not in (0, 1):
        raise InvalidSignature("recovery id must be 0 or 1")
    x = sig.r
    if x >= P_FIELD:
        raise InvalidSignature("r is not an x coordinate")
    try:
        R = Point.from_bytes(bytes([2 + sig.v]) + x.to_bytes(32, "big"))
    except InvalidPoint as exc:
        raise InvalidSignature("r is not the x coordinate of a curve point") from exc
    e = digest_to_scalar(digest)
    r_inv = inv_mod_q(sig.r)
    pub = R * (sig.s * r_inv) - base_mul(e * r_inv)
    if pub.is_identity:
        raise InvalidSignature("recovered key is the identity")
    return pub
