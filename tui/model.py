"""Typed records of what the control API returns (docs/api.md "Shapes").

Each `from_json` reads the documented fields and tolerates missing or extra ones, so a
node one version ahead or behind still draws: the console shows what it gets and never
fails on a shape. No Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _str(d: dict[str, Any], key: str, default: str = "") -> str:
    value = d.get(key)
    return default if value is None else str(value)


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    value = d.get(key)
    return None if value is None else str(value)


def _int(d: dict[str, Any], key: str, default: int = 0) -> int:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def _opt_float(d: dict[str, Any], key: str) -> float | None:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _strs(d: dict[str, Any], key: str) -> tuple[str, ...]:
    value = d.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value)


def _dict(d: dict[str, Any], key: str) -> dict[str, Any]:
    value = d.get(key)
    return value if isinstance(value, dict) else {}


def short(text: str | None, head: int = 6, tail: int = 4) -> str:
    """'12D3KooWAbc…xYz9': enough of an id to tell ids apart on screen."""
    if not text:
        return "-"
    if len(text) <= head + tail + 1:
        return text
    return f"{text[:head]}…{text[-tail:]}"


def short_peer(peer_id: str | None) -> str:
    """'12D3…p3dJd4bQ': libp2p ids share their first characters, so keep more of the end."""
    if not peer_id:
        return "-"
    return peer_id if len(peer_id) <= 14 else f"{peer_id[:4]}…{peer_id[-8:]}"


@dataclass(frozen=True)
class Status:
    peer_id: str
    network: str
    chain_id: str
    height: int
    view: int
    primary: str
    is_primary: bool
    peers_connected: int
    validators: int
    version: str
    uptime_s: float
    #: not in docs/api.md yet: the newest event sequence number, to resume the stream
    event_seq: int | None = None
    #: what is unsafe about the node, one sentence each (e.g. its vault key's location)
    warnings: tuple[str, ...] = ()
    #: liveness (docs/api.md): the ledger has work and commits nothing, and why
    stalled: bool = False
    liveness: str | None = None
    last_block_age_s: float | None = None
    pending_requests: int = 0
    #: the node's Ed25519 identity key (hex): how the genesis names it
    validator_key: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Status:
        seq = d.get("event_seq")
        return cls(
            peer_id=_str(d, "peer_id"),
            network=_str(d, "network", "?"),
            chain_id=_str(d, "chain_id"),
            height=_int(d, "height"),
            view=_int(d, "view"),
            primary=_str(d, "primary"),
            is_primary=bool(d.get("is_primary")),
            peers_connected=_int(d, "peers_connected"),
            validators=_int(d, "validators"),
            version=_str(d, "version"),
            uptime_s=_opt_float(d, "uptime_s") or 0.0,
            event_seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            warnings=_strs(d, "warnings"),
            stalled=d.get("stalled") is True,
            liveness=_opt_str(d, "liveness"),
            last_block_age_s=_opt_float(d, "last_block_age_s"),
            pending_requests=_int(d, "pending_requests"),
            validator_key=_opt_str(d, "validator_key"),
        )


@dataclass(frozen=True)
class Peer:
    peer_id: str
    address: str
    latency_ms: float | None
    last_seen: float | None
    status: str  # "connected" | "disconnected"
    validator: bool

    @property
    def connected(self) -> bool:
        return self.status == "connected"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Peer:
        return cls(
            peer_id=_str(d, "peer_id"),
            address=_str(d, "address"),
            latency_ms=_opt_float(d, "latency_ms"),
            last_seen=_opt_float(d, "last_seen"),
            status=_str(d, "status", "disconnected"),
            validator=bool(d.get("validator")),
        )


@dataclass(frozen=True)
class Validator:
    peer_id: str
    index: int
    status: str  # "online" | "offline" | "unknown" (not reported)
    keys: tuple[str, ...]
    #: its Ed25519 identity key (hex), by which the genesis names it
    validator_key: str | None = None
    #: its name, if the node says it (the API does not yet: the console reads the genesis)
    name: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Validator:
        name = _opt_str(d, "name")
        return cls(
            # a node that does not report the peer id is still told apart by its key
            peer_id=_str(d, "peer_id") or _str(d, "validator_key"),
            index=_int(d, "index"),
            status=_str(d, "status", "unknown"),
            keys=_strs(d, "keys"),
            validator_key=_opt_str(d, "validator_key"),
            name=(name.strip() or None) if name else None,
        )


@dataclass(frozen=True)
class Addresses:
    eth: str | None = None
    btc_p2wpkh: str | None = None

    @classmethod
    def from_json(cls, d: Any) -> Addresses:
        if not isinstance(d, dict):
            return cls()
        return cls(eth=_opt_str(d, "eth"), btc_p2wpkh=_opt_str(d, "btc_p2wpkh"))


@dataclass(frozen=True)
class Child:
    path: str
    public_key: str | None
    addresses: Addresses

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Child:
        return cls(
            path=_str(d, "path"),
            public_key=_opt_str(d, "public_key"),
            addresses=Addresses.from_json(d.get("addresses")),
        )


@dataclass(frozen=True)
class Key:
    key_id: str
    status: str  # "pending" | "active" | "failed"
    public_key: str | None
    threshold: int
    parties: tuple[str, ...]
    epoch: int
    addresses: Addresses
    children: tuple[Child, ...]
    presignatures: int
    height: int | None
    error: str | None

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def quorum(self) -> str:
        """'3 of 4': how many parties must sign (threshold t: any t+1)."""
        return f"{self.threshold + 1} of {len(self.parties)}" if self.parties else "?"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Key:
        children = d.get("children")
        return cls(
            key_id=_str(d, "key_id"),
            status=_str(d, "status", "pending"),
            public_key=_opt_str(d, "public_key"),
            threshold=_int(d, "threshold"),
            parties=_strs(d, "parties"),
            epoch=_int(d, "epoch"),
            addresses=Addresses.from_json(d.get("addresses")),
            children=tuple(Child.from_json(c) for c in (children or []) if isinstance(c, dict)),
            presignatures=_int(d, "presignatures"),
            height=d["height"] if isinstance(d.get("height"), int) else None,
            error=_opt_str(d, "error"),
        )


@dataclass(frozen=True)
class Blame:
    culprits: tuple[str, ...]
    check: str
    round: int | None

    @classmethod
    def from_json(cls, d: Any) -> Blame | None:
        if not isinstance(d, dict):
            return None
        rnd = d.get("round")
        return cls(
            culprits=_strs(d, "culprits"),
            check=_str(d, "check"),
            round=rnd if isinstance(rnd, int) else None,
        )


@dataclass(frozen=True)
class Signature:
    signature_id: str
    status: str  # "pending" | "done" | "failed"
    key_id: str
    path: str | None
    digest: str
    r: str | None
    s: str | None
    v: int | None
    signers: tuple[str, ...]
    height: int | None
    blame: Blame | None
    #: why a request that never reached a block failed (expired, refused by the ledger)
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status == "done" and bool(self.r) and bool(self.s)

    def compact(self) -> str:
        """r ‖ s ‖ v as 65 bytes of hex (what wallets call a recoverable signature)."""
        v = self.v if self.v is not None else 27
        return f"{(self.r or '').rjust(64, '0')}{(self.s or '').rjust(64, '0')}{v:02x}"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Signature:
        v = d.get("v")
        height = d.get("height")
        return cls(
            signature_id=_str(d, "signature_id"),
            status=_str(d, "status", "pending"),
            key_id=_str(d, "key_id"),
            path=_opt_str(d, "path"),
            digest=_str(d, "digest"),
            r=_opt_str(d, "r"),
            s=_opt_str(d, "s"),
            v=v if isinstance(v, int) else None,
            signers=_strs(d, "signers"),
            height=height if isinstance(height, int) else None,
            blame=Blame.from_json(d.get("blame")),
            error=_opt_str(d, "error"),
        )

    @classmethod
    def pending(cls, signature_id: str, key_id: str, digest: str, path: str | None) -> Signature:
        return cls(signature_id, "pending", key_id, path, digest, None, None, None, (), None, None)


@dataclass(frozen=True)
class Session:
    session_id: str
    phase: str  # "keygen" | "aux" | "presign" | "sign"
    key_id: str
    status: str  # "running" | "done" | "failed" | "stopped" (the ledger settled it)
    round: int
    rounds: int
    waiting_for: tuple[str, ...]
    started: float | None
    elapsed_s: float | None
    culprits: tuple[str, ...]
    error: str | None
    #: the id of the request (its transaction) the session works for, if the node says
    request: str | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def progress(self) -> tuple[int, int]:
        """(rounds done, rounds) as shown: a finished session is complete whatever round
        the node last reported (it may report the first round of a session it finished)."""
        if self.status == "done":
            total = max(self.round, self.rounds)
            return total, total
        return self.round, self.rounds

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Session:
        return cls(
            session_id=_str(d, "session_id"),
            phase=_str(d, "phase", "?"),
            key_id=_str(d, "key_id"),
            status=_str(d, "status", "running"),
            round=_int(d, "round"),
            rounds=_int(d, "rounds"),
            waiting_for=_strs(d, "waiting_for"),
            started=_opt_float(d, "started"),
            elapsed_s=_opt_float(d, "elapsed_s"),
            culprits=_strs(d, "culprits"),
            error=_opt_str(d, "error"),
            request=_opt_str(d, "request"),
        )


@dataclass(frozen=True)
class Certificate:
    signers: tuple[str, ...]
    quorum: int

    @classmethod
    def from_json(cls, d: Any) -> Certificate:
        if not isinstance(d, dict):
            return cls((), 0)
        return cls(signers=_strs(d, "signers"), quorum=_int(d, "quorum"))


@dataclass(frozen=True)
class Tx:
    """A transaction: a summary in a block listing (hash and kind), in full from
    `GET /blocks/{height}` and `GET /tx/{hash}` (submitter, payload)."""

    hash: str
    kind: str
    submitter: str | None = None
    height: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Any) -> Tx:
        if isinstance(d, str):  # a bare hash
            return cls(hash=d, kind="?")
        if not isinstance(d, dict):
            return cls(hash="?", kind="?")
        height = d.get("height")
        return cls(
            hash=_str(d, "hash", "?"),
            kind=_str(d, "kind", "?"),
            submitter=_opt_str(d, "submitter"),
            height=height if isinstance(height, int) else None,
            payload=_dict(d, "payload"),
        )


@dataclass(frozen=True)
class Block:
    height: int
    hash: str
    prev_hash: str
    proposer: str
    view: int
    time: float | None
    txs: tuple[Tx, ...]
    commit_latency_ms: float | None
    certificate: Certificate
    #: True when this came from `GET /blocks/{height}` (transactions in full)
    full: bool = False

    @classmethod
    def from_json(cls, d: dict[str, Any], *, full: bool = False) -> Block:
        txs = d.get("txs")
        return cls(
            height=_int(d, "height"),
            hash=_str(d, "hash"),
            prev_hash=_str(d, "prev_hash"),
            proposer=_str(d, "proposer"),
            view=_int(d, "view"),
            time=_opt_float(d, "time"),
            txs=tuple(Tx.from_json(t) for t in (txs if isinstance(txs, list) else [])),
            commit_latency_ms=_opt_float(d, "commit_latency_ms"),
            certificate=Certificate.from_json(d.get("certificate")),
            full=full,
        )
