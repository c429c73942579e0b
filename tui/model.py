"""The console's records of what the control API returns, read through the API's own
models (`tssnode.schema`, docs/api.md "Shapes").

A record is a frozen dataclass whose fields are named as its schema model's (or mapped to
them in `_names`), each with the console's default. One reader, `_read`, fills every
record: each field of the schema model validated on its own (`schema.read_fields`), a
missing, null or malformed one left at the record's default, an unknown one ignored, lists
made tuples and nested records read by their own `from_json`; so a node one version ahead
or behind still draws: the console shows what it gets and never fails on a shape. What is
not a field-for-field reading (a fallback, a field the console derives) is written out in
the record's `from_json`. No Textual here.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from pydantic import BaseModel

from tssnode import schema

R = TypeVar("R")


def _get(f: dict[str, Any], key: str, default: Any) -> Any:
    """Field `key` of `read_fields`' answer, or `default` if it is missing or null (for
    readings of events, `tui.state`)."""
    value = f.get(key)
    return default if value is None else value


def _strs(f: dict[str, Any], key: str) -> tuple[str, ...]:
    """A list field as text (party indices and peer ids alike: `ConsoleState.party`)."""
    return tuple(str(v) for v in f.get(key) or ())


def _raw(d: Any, key: str) -> Any:
    """A value the node's schema does not declare in the form the console reads (see its
    use), as it came."""
    return d.get(key) if isinstance(d, dict) else None


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """A record's field types, resolved once."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = get_type_hints(cls)
    return hints


def _as(hint: Any, value: Any) -> Any:
    """`value` (validated by the schema) in the type the record declares: a list as a
    tuple (of text, or of records read with their `from_json`), a nested record read with
    its `from_json`, a number as a float where the record keeps floats."""
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    if get_origin(hint) is tuple:
        item = get_args(hint)[0]
        items = value if isinstance(value, list) else []
        if dataclasses.is_dataclass(item):
            read = cast(Any, item).from_json
            return tuple(r for v in items if isinstance(v, dict) and (r := read(v)) is not None)
        return tuple(str(v) for v in items)
    if dataclasses.is_dataclass(hint):
        return cast(Any, hint).from_json(value)
    if hint is float:
        return float(value)
    return value


def _read(
    cls: type[R],
    model: type[BaseModel],
    d: Any,
    read: dict[str, Any] | None = None,
    **given: Any,
) -> R:
    """Record `cls` from the node's JSON `d`, read through schema `model` (the module's
    docstring); `given`: fields the caller has worked out itself. A record's `_names` maps
    a field to the schema's name for it; its `_text` fields take any text the schema does
    not name (a status from a newer node). `read`: `schema.read_fields(model, d)`, if the
    caller has it already."""
    f = schema.read_fields(model, d) if read is None else read
    names: dict[str, str] = getattr(cls, "_names", {})
    text: tuple[str, ...] = getattr(cls, "_text", ())
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for fld in dataclasses.fields(cast(Any, cls)):
        if fld.name in given:
            values[fld.name] = given[fld.name]
            continue
        key = names.get(fld.name, fld.name)
        value = f.get(key)
        if value is None and fld.name in text:
            raw = _raw(d, key)
            value = raw if isinstance(raw, str) and raw else None
        if value is not None:
            values[fld.name] = _as(hints[fld.name], value)
    return cast(R, cast(Any, cls)(**values))


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
    peer_id: str = ""
    network: str = "?"
    chain_id: str = ""
    height: int = 0
    view: int = 0
    primary: str = ""
    is_primary: bool = False
    peers_connected: int = 0
    validators: int = 0
    version: str = ""
    uptime_s: float = 0.0
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
    def from_json(cls, d: Any) -> Status:
        seq = _raw(d, "event_seq")  # (not sent by the node yet: not in the schema)
        event_seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
        return _read(cls, schema.Status, d, event_seq=event_seq)


@dataclass(frozen=True)
class Peer:
    peer_id: str = ""
    address: str = ""
    latency_ms: float | None = None
    last_seen: float | None = None
    status: str = "disconnected"  # "connected" | "disconnected"
    validator: bool = False

    @property
    def connected(self) -> bool:
        return self.status == "connected"

    @classmethod
    def from_json(cls, d: Any) -> Peer:
        return _read(cls, schema.Peer, d)


@dataclass(frozen=True)
class Validator:
    peer_id: str = ""
    index: int = 0
    status: str = "unknown"  # "online" | "offline" | "unknown" (not reported)
    keys: tuple[str, ...] = ()
    #: its Ed25519 identity key (hex), by which the genesis names it
    validator_key: str | None = None
    #: its name, if the node says it (the API does not yet: the console reads the genesis)
    name: str | None = None

    @classmethod
    def from_json(cls, d: Any) -> Validator:
        f = schema.read_fields(schema.Validator, d)
        name: str | None = f.get("name")
        return _read(
            cls,
            schema.Validator,
            d,
            f,
            # a node that does not report the peer id is still told apart by its key
            peer_id=f.get("peer_id") or f.get("validator_key") or "",
            name=(name.strip() or None) if name else None,
        )


@dataclass(frozen=True)
class Addresses:
    eth: str | None = None
    btc_p2wpkh: str | None = None

    @classmethod
    def from_json(cls, d: Any) -> Addresses:
        return _read(cls, schema.Addresses, d)


@dataclass(frozen=True)
class Child:
    path: str = ""
    public_key: str | None = None
    addresses: Addresses = Addresses()

    @classmethod
    def from_json(cls, d: Any) -> Child:
        return _read(cls, schema.Derived, d)


@dataclass(frozen=True)
class Key:
    key_id: str = ""
    status: str = "pending"  # "pending" | "active" | "failed"
    public_key: str | None = None
    threshold: int = 0
    parties: tuple[str, ...] = ()
    epoch: int = 0
    addresses: Addresses = Addresses()
    children: tuple[Child, ...] = ()
    presignatures: int = 0
    height: int | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def quorum(self) -> str:
        """'3 of 4': how many parties must sign (threshold t: any t+1)."""
        return f"{self.threshold + 1} of {len(self.parties)}" if self.parties else "?"

    @classmethod
    def from_json(cls, d: Any) -> Key:
        # (`children`: the node does not list a key's children; the console keeps those
        # derived through it, `ConsoleState`)
        return _read(cls, schema.Key, d)


@dataclass(frozen=True)
class Blame:
    culprits: tuple[str, ...] = ()
    check: str = ""
    round: int | None = None

    @classmethod
    def from_json(cls, d: Any) -> Blame | None:
        return _read(cls, schema.Blame, d) if isinstance(d, dict) else None


@dataclass(frozen=True)
class Signature:
    signature_id: str = ""
    status: str = "pending"  # "pending" | "done" | "failed"
    key_id: str = ""
    path: str | None = None
    digest: str = ""
    r: str | None = None
    s: str | None = None
    v: int | None = None
    signers: tuple[str, ...] = ()
    height: int | None = None
    blame: Blame | None = None
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
    def from_json(cls, d: Any) -> Signature:
        return _read(cls, schema.Signature, d)

    @classmethod
    def pending(cls, signature_id: str, key_id: str, digest: str, path: str | None) -> Signature:
        return cls(signature_id, "pending", key_id, path, digest, None, None, None, (), None, None)


@dataclass(frozen=True)
class Session:
    session_id: str = ""
    phase: str = "?"  # "keygen" | "aux" | "presign" | "sign"
    key_id: str = ""
    status: str = "running"  # "running" | "done" | "failed" | "stopped" (the ledger settled it)
    round: int = 0
    rounds: int = 0
    waiting_for: tuple[str, ...] = ()
    started: float | None = None
    elapsed_s: float | None = None
    culprits: tuple[str, ...] = ()
    error: str | None = None
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
    def from_json(cls, d: Any) -> Session:
        return _read(cls, schema.Session, d)


@dataclass(frozen=True)
class Certificate:
    signers: tuple[str, ...] = ()
    quorum: int = 0

    @classmethod
    def from_json(cls, d: Any) -> Certificate:
        return _read(cls, schema.Certificate, d)


@dataclass(frozen=True)
class Tx:
    """A transaction: a summary in a block listing (hash and kind), in full from
    `GET /blocks/{height}` and `GET /tx/{hash}` (submitter, payload)."""

    hash: str = "?"
    kind: str = "?"
    submitter: str | None = None
    height: int | None = None
    #: as the node sends it: the wire form (its tag, then its fields in order); an object
    #: of named fields from a node that sends one
    payload: tuple[Any, ...] | dict[str, Any] = ()

    @classmethod
    def from_json(cls, d: Any) -> Tx:
        if isinstance(d, str):  # a bare hash
            return cls(hash=d, kind="?")
        payload = _raw(d, "payload")
        if isinstance(payload, list):
            payload = tuple(payload)
        return _read(
            cls, schema.Transaction, d, payload=payload if isinstance(payload, tuple | dict) else ()
        )


@dataclass(frozen=True)
class Block:
    height: int = 0
    hash: str = ""
    prev_hash: str = ""
    proposer: str = ""
    view: int = 0
    time: float | None = None
    txs: tuple[Tx, ...] = ()
    commit_latency_ms: float | None = None
    certificate: Certificate = Certificate()
    #: True when this came from `GET /blocks/{height}` (transactions in full)
    full: bool = False

    @classmethod
    def from_json(cls, d: Any, *, full: bool = False) -> Block:
        txs = _raw(d, "txs")  # (a bare hash is a transaction too: `Tx.from_json`)
        items = txs if isinstance(txs, list) else []
        return _read(cls, schema.Block, d, txs=tuple(Tx.from_json(t) for t in items), full=full)


# -- the bridge (docs/api.md "The bridge", docs/bridge.md) ----------------------------------


@dataclass(frozen=True)
class BridgeInfo:
    """`GET /bridge`: the settings in force, or that none are yet (`set_up` False, with
    the number of setting proposals that wait for 2f+1 matching votes)."""

    set_up: bool = False
    proposals: int = 0
    key_id: str | None = None
    #: the bridge key's Ethereum address: the gateway's mint authority
    mint_authority: str | None = None
    chain_name: str | None = None
    s_hash: str | None = None
    chain_id: int | None = None
    gateway: str | None = None
    network: str | None = None
    #: the depth a deposit's block must reach
    confirmations: int | None = None
    fee_sats: int | None = None
    min_deposit_sats: int | None = None
    #: the ledger block that put the settings in force
    height: int | None = None
    #: the release side (burns back to Bitcoin), once its settings are in force
    release: ReleaseInfo | None = None
    #: whether this node watches the gateway on an EVM node ([bridge.evm]; None: not said)
    evm_watch: bool | None = None

    @classmethod
    def from_json(cls, d: Any) -> BridgeInfo:
        f = schema.read_fields(schema.BridgeInfo, d)
        watch = schema.read_fields(schema.BridgeWatch, f.get("watch"))
        return _read(
            cls,
            schema.BridgeInfo,
            d,
            f,
            set_up=f.get("set_up") is True,
            release=ReleaseInfo.from_json(f.get("release")),
            evm_watch=None if "evm" not in watch else isinstance(watch["evm"], dict),
        )


@dataclass(frozen=True)
class ReleaseInfo:
    """The release side of `GET /bridge`: its settings, the fee rate the validators agreed
    on, and the group's bitcoin against the wrapped token's supply."""

    #: the depth a burn's EVM block must reach
    evm_confirmations: int | None = None
    #: Bitcoin blocks a signed release may wait unconfirmed before it is bumped
    bump_after: int | None = None
    min_release_sats: int | None = None
    #: sat/vB: no release pays more
    max_fee_rate: int | None = None
    #: deposit coins swept into the main key together (0: never)
    sweep_at: int | None = None
    #: the ledger block that put these settings in force
    height: int | None = None
    #: sat/vB: the median of the validators' current reports (None: fewer than 2f+1)
    fee_rate: int | None = None
    #: the group's coins (final deposits and change, less what confirmed releases spent)
    holdings_sats: int | None = None
    #: the wrapped token's supply as this node's EVM node shows it (None: not known here)
    wrapped_supply: int | None = None
    coins: int | None = None
    #: where change and sweeps go
    main_address: str | None = None

    @classmethod
    def from_json(cls, d: Any) -> ReleaseInfo | None:
        """None for null (the release side is not set up) or anything but an object."""
        return _read(cls, schema.ReleaseInfo, d) if isinstance(d, dict) else None


@dataclass(frozen=True)
class DepositAddress:
    """One of `GET /bridge/addresses`: where BTC sent mints to `to`."""

    _names: ClassVar[dict[str, str]] = {"g_hash": "gHash", "p_hash": "pHash"}
    _text: ClassVar[tuple[str, ...]] = ("status",)

    address: str = ""
    to: str | None = None
    nonce: str | None = None
    g_hash: str | None = None
    p_hash: str | None = None
    payload: str | None = None
    status: str = "recorded"  # "recorded" | "pending"
    height: int | None = None

    @classmethod
    def from_json(cls, d: Any) -> DepositAddress:
        return _read(cls, schema.DepositAddress, d)


@dataclass(frozen=True)
class MintSignature:
    """A mint authorisation as the gateway takes it: r ‖ s ‖ v (v = 27 or 28), low s."""

    r: str = ""
    s: str = ""
    v: int | None = None

    def compact(self) -> str:
        """r ‖ s ‖ v as 65 bytes of hex with 0x: the `sig` of the gateway's `mint`."""
        r, s = (x.removeprefix("0x").rjust(64, "0") for x in (self.r, self.s))
        v = self.v if self.v is not None else 27
        return f"0x{r}{s}{v:02x}"

    @classmethod
    def from_json(cls, d: Any) -> MintSignature | None:
        """None unless it has both r and s."""
        sig = _read(cls, schema.MintSignature, d)
        return sig if sig.r and sig.s else None


#: a deposit's statuses in the order it goes through them ("orphaned": 2f+1 validators saw
#: its block leave the chain after it was final)
DEPOSIT_STATUSES = ("seen", "confirming", "final", "signed", "minted", "orphaned")


@dataclass(frozen=True)
class Deposit:
    """One of `GET /bridge/deposits`: a Bitcoin output paid to a deposit address, from the
    mempool ("seen") to its mint. `confirmations` is the depth of its block on the
    node's Bitcoin view (None: the node does not say)."""

    _names: ClassVar[dict[str, str]] = {
        "g_hash": "gHash",
        "p_hash": "pHash",
        "n_hash": "nHash",
        "sig_hash": "sigHash",
    }
    _text: ClassVar[tuple[str, ...]] = ("status",)

    txid: str = ""  # as Bitcoin Core shows it
    vout: int = 0
    status: str = "unknown"  # DEPOSIT_STATUSES, or whatever a newer node says
    value_sats: int | None = None
    amount: int | None = None  # what it mints: value − the bridge's fee
    to: str | None = None
    address: str | None = None
    g_hash: str | None = None
    p_hash: str | None = None
    n_hash: str | None = None
    sig_hash: str | None = None
    block_hash: str | None = None
    block_height: int | None = None
    height: int | None = None  # the ledger block where it became final
    signature: MintSignature | None = None
    confirmations: int | None = None

    @property
    def outpoint(self) -> str:
        """'txid:vout', as `GET /bridge/deposits/{txid}:{vout}` and `tssnode bridge mint`
        take it."""
        return f"{self.txid}:{self.vout}"

    @classmethod
    def from_json(cls, d: Any) -> Deposit:
        f = schema.read_fields(schema.Deposit, d)
        sig = f.get("signature")
        signature = MintSignature.from_json(sig) if isinstance(sig, dict) else None
        return _read(cls, schema.Deposit, d, f, signature=signature)


#: a release's statuses in the order a burn goes through them ("unpayable": its address is
#: no standard output on the bridge's network, and nothing is sent)
RELEASE_STATUSES = ("seen", "final", "signing", "broadcast", "confirmed", "unpayable")


@dataclass(frozen=True)
class ReleaseAttempt:
    """One transaction of a release; a bump replaces it by another over the same inputs
    at a higher fee rate (the one before is then "replaced")."""

    _text: ClassVar[tuple[str, ...]] = ("status",)

    attempt: int = 0
    txid: str | None = None  # as Bitcoin Core shows it
    status: str = "unknown"  # "signing" | "signed" | "confirmed" | "replaced", or a newer node's
    fee_rate: int | None = None  # sat/vB
    fee: int | None = None  # satoshis: what the whole transaction pays
    inputs: int | None = None
    signed_inputs: int | None = None
    raw: str | None = None  # the signed transaction (hex), once every input is signed

    @classmethod
    def from_json(cls, d: Any) -> ReleaseAttempt:
        return _read(cls, schema.ReleaseAttempt, d)


@dataclass(frozen=True)
class Release:
    """One of `GET /bridge/releases`: a burn of the wrapped token and the bitcoin that
    pays it out, from this node's EVM watch ("seen") to its release's confirmation.
    `txid`, `fee_rate` and `confirmations` are of the attempt that confirmed, else the
    newest; `confirmations` is its depth on the node's Bitcoin view (None: not in a
    block there)."""

    _text: ClassVar[tuple[str, ...]] = ("status",)

    burn_nonce: int | None = None
    status: str = "unknown"  # RELEASE_STATUSES, or whatever a newer node says
    to: str | None = None  # the Bitcoin address paid
    amount: int | None = None  # satoshis burnt (one token unit is one satoshi)
    release: int | None = None  # the release (sequence number) that pays it
    txid: str | None = None
    fee_rate: int | None = None
    paid: int | None = None  # what its output pays: the amount less its share of the fee
    confirmations: int | None = None
    attempts: tuple[ReleaseAttempt, ...] = ()
    evm_tx: str | None = None
    evm_block: int | None = None
    height: int | None = None  # the ledger block where the burn became final

    @property
    def key(self) -> str:
        """The burn nonce as text: the row key, and what `GET /bridge/releases/{n}` takes."""
        return "?" if self.burn_nonce is None else str(self.burn_nonce)

    @property
    def replaced(self) -> int:
        """How many of its attempts a bump replaced."""
        return sum(a.status == "replaced" for a in self.attempts)

    @classmethod
    def from_json(cls, d: Any) -> Release:
        return _read(cls, schema.Release, d)
