"""The console's records of what the control API returns, read through the API's own
models (`tssnode.schema`, docs/api.md "Shapes").

Each `from_json` reads the fields its schema model declares with `schema.read_fields`:
each field validated on its own, a missing or malformed one left at the console's default,
an unknown one ignored, so a node one version ahead or behind still draws: the console
shows what it gets and never fails on a shape. No Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tssnode import schema


def _get(f: dict[str, Any], key: str, default: Any) -> Any:
    """Field `key` of `read_fields`' answer, or `default` if it is missing or null."""
    value = f.get(key)
    return default if value is None else value


def _strs(f: dict[str, Any], key: str) -> tuple[str, ...]:
    """A list field as text (party indices and peer ids alike: `ConsoleState.party`)."""
    return tuple(str(v) for v in f.get(key) or ())


def _float(f: dict[str, Any], key: str) -> float | None:
    value = f.get(key)
    return None if value is None else float(value)


def _raw(d: Any, key: str) -> Any:
    """A value the node's schema does not declare in the form the console reads (see its
    use), as it came."""
    return d.get(key) if isinstance(d, dict) else None


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
    def from_json(cls, d: Any) -> Status:
        f = schema.read_fields(schema.Status, d)
        seq = _raw(d, "event_seq")  # (not sent by the node yet: not in the schema)
        return cls(
            peer_id=_get(f, "peer_id", ""),
            network=_get(f, "network", "?"),
            chain_id=_get(f, "chain_id", ""),
            height=_get(f, "height", 0),
            view=_get(f, "view", 0),
            primary=_get(f, "primary", ""),
            is_primary=_get(f, "is_primary", False),
            peers_connected=_get(f, "peers_connected", 0),
            validators=_get(f, "validators", 0),
            version=_get(f, "version", ""),
            uptime_s=_float(f, "uptime_s") or 0.0,
            event_seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            warnings=_strs(f, "warnings"),
            stalled=f.get("stalled") is True,
            liveness=f.get("liveness"),
            last_block_age_s=_float(f, "last_block_age_s"),
            pending_requests=_get(f, "pending_requests", 0),
            validator_key=f.get("validator_key"),
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
    def from_json(cls, d: Any) -> Peer:
        f = schema.read_fields(schema.Peer, d)
        return cls(
            peer_id=_get(f, "peer_id", ""),
            address=_get(f, "address", ""),
            latency_ms=_float(f, "latency_ms"),
            last_seen=_float(f, "last_seen"),
            status=_get(f, "status", "disconnected"),
            validator=_get(f, "validator", False),
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
    def from_json(cls, d: Any) -> Validator:
        f = schema.read_fields(schema.Validator, d)
        name: str | None = f.get("name")
        return cls(
            # a node that does not report the peer id is still told apart by its key
            peer_id=f.get("peer_id") or f.get("validator_key") or "",
            index=_get(f, "index", 0),
            status=_get(f, "status", "unknown"),
            keys=_strs(f, "keys"),
            validator_key=f.get("validator_key"),
            name=(name.strip() or None) if name else None,
        )


@dataclass(frozen=True)
class Addresses:
    eth: str | None = None
    btc_p2wpkh: str | None = None

    @classmethod
    def from_json(cls, d: Any) -> Addresses:
        f = schema.read_fields(schema.Addresses, d)
        return cls(eth=f.get("eth"), btc_p2wpkh=f.get("btc_p2wpkh"))


@dataclass(frozen=True)
class Child:
    path: str
    public_key: str | None
    addresses: Addresses

    @classmethod
    def from_json(cls, d: Any) -> Child:
        f = schema.read_fields(schema.Derived, d)
        return cls(
            path=_get(f, "path", ""),
            public_key=f.get("public_key"),
            addresses=Addresses.from_json(f.get("addresses")),
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
    def from_json(cls, d: Any) -> Key:
        f = schema.read_fields(schema.Key, d)
        # the node does not list a key's children: the console keeps those derived here
        # (`ConsoleState`), and reads them from a node that sends them as derive results
        children = _raw(d, "children")
        return cls(
            key_id=_get(f, "key_id", ""),
            status=_get(f, "status", "pending"),
            public_key=f.get("public_key"),
            threshold=_get(f, "threshold", 0),
            parties=_strs(f, "parties"),
            epoch=_get(f, "epoch", 0),
            addresses=Addresses.from_json(f.get("addresses")),
            children=tuple(
                Child.from_json(c)
                for c in (children if isinstance(children, list) else [])
                if isinstance(c, dict)
            ),
            presignatures=_get(f, "presignatures", 0),
            height=f.get("height"),
            error=f.get("error"),
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
        f = schema.read_fields(schema.Blame, d)
        return cls(culprits=_strs(f, "culprits"), check=_get(f, "check", ""), round=f.get("round"))


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
    def from_json(cls, d: Any) -> Signature:
        f = schema.read_fields(schema.Signature, d)
        return cls(
            signature_id=_get(f, "signature_id", ""),
            status=_get(f, "status", "pending"),
            key_id=_get(f, "key_id", ""),
            path=f.get("path"),
            digest=_get(f, "digest", ""),
            r=f.get("r"),
            s=f.get("s"),
            v=f.get("v"),
            signers=_strs(f, "signers"),
            height=f.get("height"),
            blame=Blame.from_json(f.get("blame")),
            error=f.get("error"),
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
    def from_json(cls, d: Any) -> Session:
        f = schema.read_fields(schema.Session, d)
        return cls(
            session_id=_get(f, "session_id", ""),
            phase=_get(f, "phase", "?"),
            key_id=_get(f, "key_id", ""),
            status=_get(f, "status", "running"),
            round=_get(f, "round", 0),
            rounds=_get(f, "rounds", 0),
            waiting_for=_strs(f, "waiting_for"),
            started=_float(f, "started"),
            elapsed_s=_float(f, "elapsed_s"),
            culprits=_strs(f, "culprits"),
            error=f.get("error"),
            request=f.get("request"),
        )


@dataclass(frozen=True)
class Certificate:
    signers: tuple[str, ...]
    quorum: int

    @classmethod
    def from_json(cls, d: Any) -> Certificate:
        f = schema.read_fields(schema.Certificate, d)
        return cls(signers=_strs(f, "signers"), quorum=_get(f, "quorum", 0))


@dataclass(frozen=True)
class Tx:
    """A transaction: a summary in a block listing (hash and kind), in full from
    `GET /blocks/{height}` and `GET /tx/{hash}` (submitter, payload)."""

    hash: str
    kind: str
    submitter: str | None = None
    height: int | None = None
    #: as the node sends it: the wire form (its tag, then its fields in order); an object
    #: of named fields from a node that sends one
    payload: tuple[Any, ...] | dict[str, Any] = ()

    @classmethod
    def from_json(cls, d: Any) -> Tx:
        if isinstance(d, str):  # a bare hash
            return cls(hash=d, kind="?")
        f = schema.read_fields(schema.Transaction, d)
        payload = _raw(d, "payload")
        return cls(
            hash=_get(f, "hash", "?"),
            kind=_get(f, "kind", "?"),
            submitter=f.get("submitter"),
            height=f.get("height"),
            payload=(
                tuple(payload)
                if isinstance(payload, list)
                else payload
                if isinstance(payload, dict)
                else ()
            ),
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
    def from_json(cls, d: Any, *, full: bool = False) -> Block:
        f = schema.read_fields(schema.Block, d)
        txs = f.get("txs")
        return cls(
            height=_get(f, "height", 0),
            hash=_get(f, "hash", ""),
            prev_hash=_get(f, "prev_hash", ""),
            proposer=_get(f, "proposer", ""),
            view=_get(f, "view", 0),
            time=_float(f, "time"),
            txs=tuple(Tx.from_json(t) for t in (txs if isinstance(txs, list) else [])),
            commit_latency_ms=_float(f, "commit_latency_ms"),
            certificate=Certificate.from_json(f.get("certificate")),
            full=full,
        )


# -- the bridge (docs/api.md "The bridge", docs/bridge.md) ----------------------------------


def _str_field(f: dict[str, Any], d: Any, key: str) -> str | None:
    """A text field whose values this console's schema may not all name (a status it
    lists as a Literal, from a newer node): read through the schema, else as it came if
    it is text."""
    value = f.get(key)
    if isinstance(value, str):
        return value
    raw = _raw(d, key)
    return raw if isinstance(raw, str) and raw else None


@dataclass(frozen=True)
class BridgeInfo:
    """`GET /bridge`: the settings in force, or that none are yet (`set_up` False, with
    the number of setting proposals that wait for 2f+1 matching votes)."""

    set_up: bool
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
        return cls(
            set_up=f.get("set_up") is True,
            proposals=_get(f, "proposals", 0),
            key_id=f.get("key_id"),
            mint_authority=f.get("mint_authority"),
            chain_name=f.get("chain_name"),
            s_hash=f.get("s_hash"),
            chain_id=f.get("chain_id"),
            gateway=f.get("gateway"),
            network=f.get("network"),
            confirmations=f.get("confirmations"),
            fee_sats=f.get("fee_sats"),
            min_deposit_sats=f.get("min_deposit_sats"),
            height=f.get("height"),
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
        if not isinstance(d, dict):
            return None
        f = schema.read_fields(schema.ReleaseInfo, d)
        return cls(
            evm_confirmations=f.get("evm_confirmations"),
            bump_after=f.get("bump_after"),
            min_release_sats=f.get("min_release_sats"),
            max_fee_rate=f.get("max_fee_rate"),
            sweep_at=f.get("sweep_at"),
            height=f.get("height"),
            fee_rate=f.get("fee_rate"),
            holdings_sats=f.get("holdings_sats"),
            wrapped_supply=f.get("wrapped_supply"),
            coins=f.get("coins"),
            main_address=f.get("main_address"),
        )


@dataclass(frozen=True)
class DepositAddress:
    """One of `GET /bridge/addresses`: where BTC sent mints to `to`."""

    address: str
    to: str | None
    nonce: str | None
    g_hash: str | None
    p_hash: str | None
    payload: str | None
    status: str  # "recorded" | "pending"
    height: int | None

    @classmethod
    def from_json(cls, d: Any) -> DepositAddress:
        f = schema.read_fields(schema.DepositAddress, d)
        return cls(
            address=_get(f, "address", ""),
            to=f.get("to"),
            nonce=f.get("nonce"),
            g_hash=f.get("gHash"),
            p_hash=f.get("pHash"),
            payload=f.get("payload"),
            status=_str_field(f, d, "status") or "recorded",
            height=f.get("height"),
        )


@dataclass(frozen=True)
class MintSignature:
    """A mint authorisation as the gateway takes it: r ‖ s ‖ v (v = 27 or 28), low s."""

    r: str
    s: str
    v: int | None

    def compact(self) -> str:
        """r ‖ s ‖ v as 65 bytes of hex with 0x: the `sig` of the gateway's `mint`."""
        r, s = (x.removeprefix("0x").rjust(64, "0") for x in (self.r, self.s))
        v = self.v if self.v is not None else 27
        return f"0x{r}{s}{v:02x}"

    @classmethod
    def from_json(cls, d: Any) -> MintSignature | None:
        f = schema.read_fields(schema.MintSignature, d)
        r, s = f.get("r"), f.get("s")
        if not r or not s:
            return None
        return cls(r=r, s=s, v=f.get("v"))


#: a deposit's statuses in the order it goes through them ("orphaned": 2f+1 validators saw
#: its block leave the chain after it was final)
DEPOSIT_STATUSES = ("seen", "confirming", "final", "signed", "minted", "orphaned")


@dataclass(frozen=True)
class Deposit:
    """One of `GET /bridge/deposits`: a Bitcoin output paid to a deposit address, from the
    mempool ("seen") to its mint. `confirmations` is the depth of its block on the
    node's Bitcoin view (None: the node does not say)."""

    txid: str  # as Bitcoin Core shows it
    vout: int
    status: str  # DEPOSIT_STATUSES, or whatever a newer node says
    value_sats: int | None
    amount: int | None  # what it mints: value − the bridge's fee
    to: str | None
    address: str | None
    g_hash: str | None
    p_hash: str | None
    n_hash: str | None
    sig_hash: str | None
    block_hash: str | None
    block_height: int | None
    height: int | None  # the ledger block where it became final
    signature: MintSignature | None
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
        return cls(
            txid=_get(f, "txid", ""),
            vout=_get(f, "vout", 0),
            status=_str_field(f, d, "status") or "unknown",
            value_sats=f.get("value_sats"),
            amount=f.get("amount"),
            to=f.get("to"),
            address=f.get("address"),
            g_hash=f.get("gHash"),
            p_hash=f.get("pHash"),
            n_hash=f.get("nHash"),
            sig_hash=f.get("sigHash"),
            block_hash=f.get("block_hash"),
            block_height=f.get("block_height"),
            height=f.get("height"),
            signature=MintSignature.from_json(sig) if isinstance(sig, dict) else None,
            confirmations=f.get("confirmations"),
        )


#: a release's statuses in the order a burn goes through them ("unpayable": its address is
#: no standard output on the bridge's network, and nothing is sent)
RELEASE_STATUSES = ("seen", "final", "signing", "broadcast", "confirmed", "unpayable")


@dataclass(frozen=True)
class ReleaseAttempt:
    """One transaction of a release; a bump replaces it by another over the same inputs
    at a higher fee rate (the one before is then "replaced")."""

    attempt: int
    txid: str | None  # as Bitcoin Core shows it
    status: str  # "signing" | "signed" | "confirmed" | "replaced", or a newer node's
    fee_rate: int | None  # sat/vB
    fee: int | None  # satoshis: what the whole transaction pays
    inputs: int | None
    signed_inputs: int | None
    raw: str | None  # the signed transaction (hex), once every input is signed

    @classmethod
    def from_json(cls, d: Any) -> ReleaseAttempt:
        f = schema.read_fields(schema.ReleaseAttempt, d)
        return cls(
            attempt=_get(f, "attempt", 0),
            txid=f.get("txid"),
            status=_str_field(f, d, "status") or "unknown",
            fee_rate=f.get("fee_rate"),
            fee=f.get("fee"),
            inputs=f.get("inputs"),
            signed_inputs=f.get("signed_inputs"),
            raw=f.get("raw"),
        )


@dataclass(frozen=True)
class Release:
    """One of `GET /bridge/releases`: a burn of the wrapped token and the bitcoin that
    pays it out, from this node's EVM watch ("seen") to its release's confirmation.
    `txid`, `fee_rate` and `confirmations` are of the attempt that confirmed, else the
    newest; `confirmations` is its depth on the node's Bitcoin view (None: not in a
    block there)."""

    burn_nonce: int | None
    status: str  # RELEASE_STATUSES, or whatever a newer node says
    to: str | None  # the Bitcoin address paid
    amount: int | None  # satoshis burnt (one token unit is one satoshi)
    release: int | None  # the release (sequence number) that pays it
    txid: str | None
    fee_rate: int | None
    paid: int | None  # what its output pays: the amount less its share of the fee
    confirmations: int | None
    attempts: tuple[ReleaseAttempt, ...]
    evm_tx: str | None
    evm_block: int | None
    height: int | None  # the ledger block where the burn became final

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
        f = schema.read_fields(schema.Release, d)
        attempts = f.get("attempts")
        return cls(
            burn_nonce=f.get("burn_nonce"),
            status=_str_field(f, d, "status") or "unknown",
            to=f.get("to"),
            amount=f.get("amount"),
            release=f.get("release"),
            txid=f.get("txid"),
            fee_rate=f.get("fee_rate"),
            paid=f.get("paid"),
            confirmations=f.get("confirmations"),
            attempts=tuple(
                ReleaseAttempt.from_json(a)
                for a in (attempts if isinstance(attempts, list) else [])
                if isinstance(a, dict)
            ),
            evm_tx=f.get("evm_tx"),
            evm_block=f.get("evm_block"),
            height=f.get("height"),
        )
