"""The key registry's records: keys, requests, pooled presignatures and votes.

Each is stored under its own key of the store's state prefix, in the registry's tables
(`T_KEYS`, `T_REQUESTS`, `T_VOTES`, `T_PRESIGS`); their wire names are those the ledger
used before the registry became an application, so stored state decodes unchanged and
keeps its digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from tssnode.crypto.encoding import Wire, decode_any, dumps, wire
from tssnode.errors import EncodingError
from tssnode.ledger.state import quorum
from tssnode.protocol.base import Blame
from tssnode.protocol.material import KeyPublic
from tssnode.store import layout

#: The registry's state tables (the engine's are 0, 1, 5 and 6).
T_KEYS, T_REQUESTS, T_VOTES, T_PRESIGS = 2, 3, 4, 7
MEMBERSHIP = b"membership"
RESHARE = b"reshare"
MAX_PRESIGN_COUNT = 100
#: pending + ready pooled presignatures one key may have
MAX_POOL = 100
#: a pooled presignature not ready this many blocks after its request is dropped
PRESIG_PENDING_BLOCKS = 64
#: longest message a sign request carries itself (longer ones are signed by digest)
MAX_SIGN_MESSAGE = 64 * 1024
#: The check of the blame a `Withdrawal` records (not evidence: the party says so itself).
WITHDRAWN_CHECK = "withdrawn"
MAX_WITHDRAW_REASON = 200


def result_quorum(m: int) -> int:
    """How many of a session's m parties must submit the same result before it counts."""
    return quorum(m)


@wire("tssnode.ledger.state.key/3")
@dataclass(frozen=True)
class KeyRecord(Wire):
    """A threshold key and its parties (party id j = parties[j - 1]).

    `holders` are the parties known to hold a share of the current epoch: those who
    submitted the accepted result, and those who confirmed it later with the same key. A
    key turns active on a quorum of votes, so a party that crashed before voting is a
    party without (or with an unconfirmed) share; signers are chosen among holders only.
    A party stores its share (synced) before it votes, so a holder's share is on its disk.
    `purpose` is what it may sign (`transactions.KEY_PURPOSES`), fixed at keygen.
    """

    key_id: str
    key: KeyPublic
    parties: tuple[bytes, ...]
    created: int  # height of the keygen result
    refreshing: bytes  # hash of a pending refresh request, or b""
    holders: tuple[bytes, ...]  # sorted
    purpose: str = ""

    def to_bytes(self) -> bytes:
        """A key without a purpose is stored as every key was before (version 2), so that
        the state digest of a chain without bridge keys does not change."""
        if not self.purpose:
            return KeyRecordV2(
                self.key_id, self.key, self.parties, self.created, self.refreshing, self.holders
            ).to_bytes()
        return super().to_bytes()

    def holds(self, validator: bytes) -> bool:
        return validator in self.holders

    def with_refreshing(self, refreshing: bytes) -> KeyRecord:
        return replace(self, refreshing=refreshing)


@wire("tssnode.ledger.state.key/2")
@dataclass(frozen=True)
class KeyRecordV2(Wire):
    """A key record as stored before keys had a purpose: any request could sign."""

    key_id: str
    key: KeyPublic
    parties: tuple[bytes, ...]
    created: int
    refreshing: bytes
    holders: tuple[bytes, ...]

    def upgrade(self) -> KeyRecord:
        return KeyRecord(
            self.key_id, self.key, self.parties, self.created, self.refreshing, self.holders
        )


@wire("tssnode.ledger.state.key/1")
@dataclass(frozen=True)
class KeyRecordV1(Wire):
    """A key record as stored before holders were recorded: every party counted as one."""

    key_id: str
    key: KeyPublic
    parties: tuple[bytes, ...]
    created: int
    refreshing: bytes

    def upgrade(self) -> KeyRecord:
        holders = tuple(sorted(self.parties))
        return KeyRecord(
            self.key_id, self.key, self.parties, self.created, self.refreshing, holders
        )


def key_record(raw: bytes) -> KeyRecord:
    """A stored key record of any version (older ones are upgraded on load)."""
    value = decode_any(raw)
    if isinstance(value, KeyRecordV1 | KeyRecordV2):
        return value.upgrade()
    if not isinstance(value, KeyRecord):
        raise EncodingError(f"a key record, not {type(value).__name__}")
    return value


@wire("tssnode.ledger.state.request/1")
@dataclass(frozen=True)
class RequestRecord(Wire):
    """A keygen, refresh, presign or sign request and where it stands."""

    kind: str  # "keygen" | "refresh" | "presign" | "sign"
    sender: bytes
    height: int
    payload: bytes
    key_id: str  # "" for keygen until done
    parties: tuple[bytes, ...]  # validators taking part (party id = position + 1)
    signers: tuple[int, ...]  # party ids chosen for presign/sign
    status: str  # "pending" | "done" | "failed"
    result: bytes  # the accepted result (KeyPublic or Signature encoding)
    blames: tuple[Blame, ...]
    presig: bytes = b""  # a sign request's pooled presignature (its `presig_id`), if any


def presig_id(request: bytes, index: int) -> bytes:
    """The id of pooled presignature `index` of presign request `request`."""
    return request + layout.u32(index)


@wire("tssnode.ledger.state.presig/1")
@dataclass(frozen=True)
class PresigRecord(Wire):
    """A pooled presignature: made by `signers` (party ids) for `key_id` at `epoch`;
    ready once every signer voted the same R (`voters` holds who did)."""

    key_id: str
    epoch: int
    signers: tuple[int, ...]
    R: bytes
    voters: tuple[bytes, ...]
    ready: bool
    height: int  # of the presign request


@wire("tssnode.ledger.state.vote/1")
@dataclass(frozen=True)
class VoteRecord(Wire):
    subject: bytes
    value: bytes
    voters: tuple[bytes, ...]


def vote_id(subject: bytes, value: bytes) -> bytes:
    return hashlib.sha256(dumps([subject, value])).digest()
