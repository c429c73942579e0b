"""The key registry's transactions: typed payloads the ledger routes to `KeyRegistry`.

Key results are votes: each party of a session submits what it computed, and the registry
accepts a key once enough parties submitted the same bytes (`records.result_quorum`), so no
single party can record a false key. A signature needs no vote: the registry verifies it
against the request's digest and (derived) key, and the first signer's valid signature
settles the request. Beyond that the registry does no protocol maths: it checks shapes,
membership and agreement.

The wire names (`tssnode.tx.…`) are those the ledger used before the registry became an
application of its own, so stored blocks decode unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from tssnode.crypto.encoding import Wire, decode_any, dumps, wire
from tssnode.crypto.identity import IdentityKey
from tssnode.crypto.signature import Signature
from tssnode.errors import EncodingError
from tssnode.protocol.base import Blame
from tssnode.protocol.material import KeyPublic


@wire("tssnode.tx.validator-join/1")
@dataclass(frozen=True)
class ValidatorJoin(Wire):
    """A vote to add a validator; `possession` is the new key's signature on its key,
    name and address for this chain (`possession_bytes`): it holds the key and chose them."""

    public_key: bytes
    name: str
    address: str
    possession: bytes


@wire("tssnode.tx.validator-leave/1")
@dataclass(frozen=True)
class ValidatorLeave(Wire):
    """A vote to remove a validator (a validator's own leave takes effect alone)."""

    public_key: bytes


#: What a key may sign: "" anything its sign requests ask for; "bridge" only the bridge's
#: messages (mint authorisations, releases), which its signers compute from the ledger.
#: A purpose is fixed at keygen: a key that ever signed a requested digest could already
#: have signed a mint authorisation, so no key becomes a bridge key later.
#: A purpose is the name of the application whose messages the key signs
#: (`AppSignRequest.app`); the registry may not import its sibling applications, so they
#: are spelt out here, in `schema.KeygenBody` and in `node.executor.APP_RESULTS`, which
#: tests/test_one_place.py holds to the applications the node runs (`cli.daemon.APPS`).
KEY_PURPOSES = ("", "bridge")


@wire("tssnode.tx.keygen-request/2")
@dataclass(frozen=True)
class KeygenRequest(Wire):
    """Generate a t-of-n key among `parties` (validators; party id = position + 1), for
    `purpose` (`KEY_PURPOSES`)."""

    threshold: int
    parties: tuple[bytes, ...]
    tier: str
    purpose: str = ""

    def to_bytes(self) -> bytes:
        """A request without a purpose keeps the encoding every request had before
        (version 1), so that a chain's blocks and state digests do not change."""
        if not self.purpose:
            return KeygenRequestV1(self.threshold, self.parties, self.tier).to_bytes()
        return super().to_bytes()


@wire("tssnode.tx.keygen-request/1")
@dataclass(frozen=True)
class KeygenRequestV1(Wire):
    """A keygen request as submitted before keys had a purpose (in stored blocks)."""

    threshold: int
    parties: tuple[bytes, ...]
    tier: str

    def upgrade(self) -> KeygenRequest:
        return KeygenRequest(self.threshold, self.parties, self.tier)


def current(payload: Wire) -> Wire:
    """A payload as this version writes it: a keygen request stored before keys had a
    purpose (version 1, which a purpose-less request still encodes as) is upgraded."""
    return payload.upgrade() if isinstance(payload, KeygenRequestV1) else payload


def keygen_request(raw: bytes) -> KeygenRequest:
    """A stored keygen request's payload of either version (version 1 had no purpose)."""
    value = decode_any(raw)
    if isinstance(value, KeygenRequestV1):
        return value.upgrade()
    if not isinstance(value, KeygenRequest):
        raise EncodingError(f"a keygen request, not {type(value).__name__}")
    return value


@wire("tssnode.tx.keygen-result/1")
@dataclass(frozen=True)
class KeygenResult(Wire):
    request: bytes  # hash of the KeygenRequest transaction
    key: KeyPublic


@wire("tssnode.tx.refresh-request/1")
@dataclass(frozen=True)
class RefreshRequest(Wire):
    """Refresh the key's shares and aux info. With `parties` (validators, party id =
    position + 1) the key moves to that set: the old parties that stay deal their shares
    to everyone (resharing); `threshold` ≥ 0 changes t as well."""

    key_id: str
    parties: tuple[bytes, ...] = ()
    threshold: int = -1


@wire("tssnode.tx.refresh-result/1")
@dataclass(frozen=True)
class RefreshResult(Wire):
    request: bytes
    key: KeyPublic


@wire("tssnode.tx.presign-request/1")
@dataclass(frozen=True)
class PresignRequest(Wire):
    """Fill the key's presignature pool with `count` presignatures (root key, not bound
    to any digest); the ledger chooses one signer set for all of them."""

    key_id: str
    count: int


@wire("tssnode.tx.presign-ready/1")
@dataclass(frozen=True)
class PresignReady(Wire):
    """A signer holds pooled presignature `index` of presign request `request`, whose
    nonce point is `R` (compressed). It is usable once every signer said so, alike."""

    request: bytes
    index: int
    R: bytes


@wire("tssnode.tx.sign-request/1")
@dataclass(frozen=True)
class SignRequest(Wire):
    """Sign `digest` (32 bytes) with the key, derived along the non-hardened `path`.
    `exclude` lists validators the requester saw offline (or that failed the last try):
    the signers are chosen among the others when enough remain.

    With `hash_name` set, `message` is the message itself and every signer hashes it
    again: only such a request (root key) may use a pooled presignature, because a
    presignature made before the message is known must never sign a digest chosen by
    someone else (PROTOCOL.md, CVE-2025-66017). Without it, the signers presign for this
    digest alone."""

    key_id: str
    digest: bytes
    path: tuple[int, ...]
    exclude: tuple[bytes, ...] = ()
    message: bytes = b""
    hash_name: str = ""


@wire("tssnode.tx.app-sign-request/1")
@dataclass(frozen=True)
class AppSignRequest(Wire):
    """Sign what the ledger application `app` asks to have signed for its `subject` (the
    bridge: a final deposit's mint authorisation). The key's purpose must be `app`, and
    the registry checks with the application (`LedgerView.query(app, "sign/<subject>")`)
    that it asks for exactly this digest with this key along this path: nobody chooses
    what such a key signs but the application's own state. The signers presign for this
    digest alone; `exclude` as in `SignRequest`."""

    key_id: str
    app: str
    subject: bytes
    digest: bytes
    path: tuple[int, ...] = ()
    exclude: tuple[bytes, ...] = ()

    def as_sign_request(self) -> SignRequest:
        """The signature it asks for, as a plain request would (sessions and checks)."""
        return SignRequest(self.key_id, self.digest, self.path, self.exclude)


def sign_request(raw: bytes) -> SignRequest:
    """A stored sign request's payload, plain or an application's, as a `SignRequest`."""
    value = decode_any(raw)
    if isinstance(value, AppSignRequest):
        return value.as_sign_request()
    if not isinstance(value, SignRequest):
        raise EncodingError(f"a sign request, not {type(value).__name__}")
    return value


@wire("tssnode.tx.sign-result/1")
@dataclass(frozen=True)
class SignResult(Wire):
    request: bytes
    signature: Signature


@wire("tssnode.tx.blame/1")
@dataclass(frozen=True)
class BlameReport(Wire):
    """A session that aborted: the culprits and the signed messages that show it."""

    request: bytes
    blame: Blame


@wire("tssnode.tx.withdrawal/1")
@dataclass(frozen=True)
class Withdrawal(Wire):
    """A party cannot finish its part of a pending request's session (it restarted and
    its session state is gone): the request fails now, not after the other parties' round
    timeouts, and its requester retries. For a presign request this drops the
    presignatures the sender had not made yet."""

    request: bytes
    reason: str


Payload = (
    ValidatorJoin
    | ValidatorLeave
    | KeygenRequest
    | KeygenRequestV1
    | KeygenResult
    | RefreshRequest
    | RefreshResult
    | PresignRequest
    | PresignReady
    | SignRequest
    | AppSignRequest
    | SignResult
    | BlameReport
    | Withdrawal
)
PAYLOAD_TYPES: tuple[type[Wire], ...] = (
    ValidatorJoin,
    ValidatorLeave,
    KeygenRequest,
    KeygenRequestV1,
    KeygenResult,
    RefreshRequest,
    RefreshResult,
    PresignRequest,
    PresignReady,
    SignRequest,
    AppSignRequest,
    SignResult,
    BlameReport,
    Withdrawal,
)


def possession_bytes(chain_id: bytes, public_key: bytes, name: str, address: str) -> bytes:
    """What a joining validator signs: its key, name and address on this chain (so a
    relay cannot change where the validators will dial it)."""
    return dumps(["tssnode.join/2", chain_id, public_key, name, address])


def join_payload(
    new_key: IdentityKey, chain_id: bytes, name: str, address: str = ""
) -> ValidatorJoin:
    """The join vote for `new_key`, with its proof of possession."""
    pk = new_key.public_bytes()
    proof = new_key.sign(possession_bytes(chain_id, pk, name, address))
    return ValidatorJoin(pk, name, address, proof)
