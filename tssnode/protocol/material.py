"""Key material as plain data: key shares, aux info, presignatures.

Each is a versioned `Wire` dataclass with a deterministic encoding (the node stores the
bytes, encrypted). Secret fields are excluded from `repr`, and the classes' reprs say
"secret hidden", so neither logs nor exception text can carry them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

from gmpy2 import mpz

from tssnode.crypto.encoding import AnyPoint, Big, NonZeroScalar, Scalar, Wire, wire
from tssnode.crypto.group import Point
from tssnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from tssnode.crypto.params import Parameters
from tssnode.crypto.pedersen import PedersenParams, PedersenSecret
from tssnode.crypto.polynomial import lagrange_at_zero
from tssnode.zk.common import Trapdoor


@wire("tssnode.key.public/1")
@dataclass(frozen=True)
class KeyPublic(Wire):
    """What everyone may know about a threshold key."""

    params: Parameters
    threshold: int
    parties: tuple[int, ...]
    public_key: Point  # X = Σ_j F_j(0)
    public_shares: dict[int, Point]  # X_k = x_k·G for every party k
    chain_code: bytes  # for non-hardened BIP-32 derivation
    rid: bytes  # the keygen's joint randomness
    epoch: int  # 0 after keygen and its first aux-info, +1 per refresh after that

    @cached_property
    def key_id(self) -> str:
        return hashlib.sha256(self.public_key.to_bytes() + self.chain_code).hexdigest()[:32]

    def effective_share_points(self, signers: tuple[int, ...], shift: int) -> dict[int, Point]:
        """X'_j = λ_j·(X_j + shift·G): the public shares of an additive sharing of the
        (derived) key over `signers` (Lagrange-weighted for t-of-n)."""
        from tssnode.crypto.group import base_mul

        delta = base_mul(shift)
        return {j: (self.public_shares[j] + delta) * lagrange_at_zero(j, signers) for j in signers}


@wire("tssnode.aux.public/1")
@dataclass(frozen=True)
class AuxPublic(Wire):
    """Every party's Paillier key and ring-Pedersen parameters (Fig. 6 output)."""

    paillier: dict[int, PaillierPublicKey]
    pedersen: dict[int, PedersenParams]


@wire("tssnode.aux.secret/1")
@dataclass(frozen=True, repr=False)
class AuxSecret(Wire):
    """This party's factorisation of N_i and λ_i with s_i = t_i^λ_i."""

    p: Big
    q: Big
    lam: Big

    def __repr__(self) -> str:
        return "AuxSecret(secret hidden)"

    def paillier(self) -> PaillierSecretKey:
        return PaillierSecretKey(mpz(self.p), mpz(self.q))

    def pedersen(self, public: PedersenParams) -> PedersenSecret:
        return PedersenSecret(mpz(self.p), mpz(self.q), mpz(self.lam), public)


@wire("tssnode.keyshare/1")
@dataclass(frozen=True, repr=False)
class KeyShare(Wire):
    """One party's share of a threshold key, with aux info once Fig. 6 has run."""

    key: KeyPublic
    self_id: int
    x: NonZeroScalar = field(repr=False)  # x_i with x_i·G = X_i
    aux: AuxPublic | None = None
    aux_secret: AuxSecret | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"KeyShare(key={self.key.key_id}, party={self.self_id}, epoch={self.key.epoch}, "
            f"aux={'yes' if self.aux else 'no'}, secret hidden)"
        )


@wire("tssnode.presign.transcript/1")
@dataclass(frozen=True)
class PresignTranscript(Wire):
    """Public data of a presign run that sign identification (Fig. 8 failure) needs:
    K_j for every signer, and the MtA ciphertexts D̂_{i,j} (under N_i) and F̂_{j,i}
    (under N_i as well: the sender's own β̂ encrypted to itself)."""

    K: dict[int, Big]
    D_hat: dict[int, dict[int, Big]]  # D_hat[i][j]: from j to i, under N_i
    F_hat: dict[int, dict[int, Big]]  # F_hat[j][i]: sent by i (about j), under N_i


@wire("tssnode.presignature/1")
@dataclass(frozen=True, repr=False)
class Presignature(Wire):
    """A single-use presignature record (R, k_i, χ_i) of Fig. 7's output."""

    ssid: bytes
    key_id: str
    self_id: int
    signers: tuple[int, ...]
    R: Point
    k: NonZeroScalar = field(repr=False)
    chi: Scalar = field(repr=False)
    shift: Scalar  # BIP-32 shift the presignature is bound to (0 for the root key)
    digest: bytes | None  # a raw digest the presignature is bound to, if any
    public_key: Point  # the (derived) key this presignature signs for
    transcript: PresignTranscript
    Delta_check: AnyPoint  # δ·G as computed, kept for audit

    def __repr__(self) -> str:
        return f"Presignature(key={self.key_id}, signers={self.signers}, secret hidden)"


@wire("tssnode.signature-share/1")
@dataclass(frozen=True)
class SignatureShare(Wire):
    sigma: Scalar


def own_trapdoor(share: KeyShare, paillier: PaillierSecretKey) -> Trapdoor:
    """This party's `Trapdoor` from its key share's aux secret (`paillier`: its Paillier
    key, which the caller has built already)."""
    if share.aux is None or share.aux_secret is None:
        raise ValueError("this key share has no aux info yet")
    pedersen = share.aux_secret.pedersen(share.aux.pedersen[share.self_id])
    return Trapdoor(pedersen=pedersen, paillier=paillier)
