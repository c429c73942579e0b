"""Every shape of the control API, once: request bodies, response bodies and the events
the node streams, as pydantic models (issue 15, "One schema").

The routes (`tssnode.api.app`) validate request bodies with the `*Body` models and send
every JSON response through its response model; the OpenAPI document
(`tssnode.api.openapi`) is generated from these models; the Python client
(`tssnode.api.client`) returns them; the console (`tui.model`) reads with them
(`read_fields`). docs/api.md describes the same shapes in prose.

A leaf: it imports the standard library and pydantic only, so that a client (the console
on another machine) can take it without the node.

Two policies:

- **Request bodies are strict** (`extra="forbid"`, `strict=True`): an unknown key, `"2"`
  or `true` for an integer is a 422. A client that sends them has a bug, and a typo must
  not silently become a default.
- **Response bodies are tolerant of new fields, exact in theirs** (`extra="allow"`,
  `strict=True`): the node may add a field before a client knows it (the console must
  keep drawing a node one version ahead), and a field a model does not declare passes
  through the node's own validation untouched and stays readable by a client
  (`model_extra`); `extra="ignore"` would drop it on the way out of the node. Declared
  fields are exact and never coerced (`"1"` is no integer, so a node that sends one gets
  the 500 of a bug instead of a quietly changed answer): a required field is one the node
  always sends, `X | None` one it may send as null, a field with a default one it
  sometimes leaves out (`Response.to_json`, `exclude_unset`, then leaves it out too).
  Numbers are `int` where the node sends integers and `float` where it sends floats, so
  that a response validated and dumped again is the same JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import suppress
from functools import cache
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

#: The largest request body the API reads (1 MiB).
MAX_BODY = 1 << 20
#: Hex text, with or without a 0x prefix, whole bytes only.
HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})*$")
#: A libp2p peer id as text (base58btc, as `12D3Koo…`).
PEER_ID = r"^[1-9A-HJ-NP-Za-km-z]{1,128}$"

PeerId = Annotated[str, Field(pattern=PEER_ID)]

#: the status of a request (a keygen's try, a signature): what the ledger records
RequestStatus = Literal["pending", "done", "failed"]
KeyStatus = Literal["pending", "active", "failed"]
Phase = Literal["keygen", "aux", "presign", "sign"]
SessionStatus = Literal["running", "done", "failed", "stopped"]


# == request bodies ===========================================================================


class _Body(BaseModel):
    # strict: "2" and true are not the integer 2 (a client that sends them has a bug)
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


class KeygenBody(_Body):
    """`POST /keygen`: a threshold-`threshold` key over `parties` (null: every validator)."""

    threshold: int = Field(ge=0, le=64)
    parties: list[PeerId] | None = Field(default=None, max_length=256)
    single_signer: bool = False
    """a threshold of 0 makes a key any ONE party can use alone: only when asked so"""
    # registry.transactions.KEY_PURPOSES, which this leaf may not import (tests/test_one_place.py)
    purpose: Literal["", "bridge"] = ""
    """what the key may sign: "" what sign requests ask; "bridge" only the bridge's
    messages, which its signers compute from the ledger (fixed for the key's life)"""

    @model_validator(mode="after")
    def explicit_single_signer(self) -> KeygenBody:
        if self.threshold == 0 and not self.single_signer:
            raise ValueError(
                "threshold 0 lets any one party sign alone; set single_signer: true to ask for it"
            )
        return self


class SignBody(_Body):
    """`POST /sign`: exactly one of `message` (text, UTF-8) and `message_hex`."""

    key_id: str = Field(min_length=1, max_length=128)
    message: str | None = Field(default=None, max_length=MAX_BODY)
    message_hex: str | None = Field(default=None, max_length=2 * MAX_BODY)
    # crypto.digests.HASHES, which this leaf may not import (tests/test_one_place.py)
    hash: Literal["sha256", "sha256d", "keccak256", "eip191"] = "sha256"
    path: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def one_message(self) -> SignBody:
        if (self.message is None) == (self.message_hex is None):
            raise ValueError("give exactly one of message and message_hex")
        if self.message_hex is not None and not HEX.match(self.message_hex):
            raise ValueError("message_hex is not hexadecimal")
        return self

    def message_bytes(self) -> bytes:
        if self.message is not None:
            return self.message.encode()
        assert self.message_hex is not None
        return bytes.fromhex(self.message_hex.removeprefix("0x"))


class DeriveBody(_Body):
    """`POST /keys/{key_id}/derive`: a non-hardened BIP-32 path (`m/0/1`)."""

    path: str = Field(min_length=1, max_length=256)


Hex20 = Annotated[str, Field(pattern=r"^(0x)?[0-9a-fA-F]{40}$")]
Hex32 = Annotated[str, Field(pattern=r"^(0x)?[0-9a-fA-F]{64}$")]


class BridgeSetupBody(_Body):
    """`POST /bridge/setup`: this validator's vote for the bridge's settings (in force once
    2f+1 validators voted the same ones)."""

    key_id: str = Field(min_length=1, max_length=128)
    """a key made with `"purpose": "bridge"`"""
    chain_name: str = Field(min_length=1, max_length=32)
    """the EVM chain's name in sHash ("BTC/to<chain name>"), e.g. Ethereum"""
    chain_id: int = Field(ge=1, lt=2**64)
    gateway: Hex20
    """the gateway contract's address"""
    network: Literal["mainnet", "testnet", "signet", "regtest"]
    """the Bitcoin network"""
    confirmations: int = Field(ge=1, le=144)
    fee_sats: int = Field(ge=0, le=21_000_000 * 10**8)
    """what the bridge keeps of each deposit"""
    min_deposit_sats: int = Field(ge=294, le=21_000_000 * 10**8)
    """the smallest deposit that counts (above the fee and Bitcoin's dust limit)"""


class ReleaseSetupBody(_Body):
    """`POST /bridge/release-setup`: this validator's vote for the release side's settings
    (in force once 2f+1 validators voted the same ones, after the bridge's own)."""

    evm_confirmations: int = Field(ge=1, le=1000)
    """how deep a burn's EVM block must be"""
    bump_after: int = Field(ge=1, le=1008)
    """Bitcoin blocks a signed release may wait unconfirmed before it is bumped (RBF)"""
    min_release_sats: int = Field(ge=588, le=21_000_000 * 10**8)
    """the smallest burn released (the gateway's minimumBurn should match)"""
    max_fee_rate: int = Field(ge=1, le=100_000)
    """sat/vB: no release pays more, whatever the reports"""
    sweep_at: int = Field(default=0, ge=0, le=50)
    """deposits that are swept into the main key together (0: never)"""


class DepositAddressBody(_Body):
    """`POST /bridge/deposit-address`: where to send BTC so that it mints to `to`."""

    to: Hex20
    """the EVM address the deposit mints to"""
    nonce: Hex32 | None = None
    """32 bytes that tell addresses for the same `to` apart (random if absent)"""
    payload: str | None = Field(default=None, max_length=2 + 2 * 1024)
    """hex: application data the deposit commits to (pHash = keccak256(payload))"""

    @model_validator(mode="after")
    def hex_payload(self) -> DepositAddressBody:
        if self.payload is not None and not HEX.match(self.payload):
            raise ValueError("payload is not hexadecimal")
        return self


class PresignBody(_Body):
    """`POST /keys/{key_id}/presign`."""

    count: int = Field(default=1, ge=1, le=100)


class RefreshBody(_Body):
    """`POST /keys/{key_id}/refresh` (the body is optional): move the key to `parties`
    and/or change its threshold; nothing: refresh the shares of the same parties."""

    parties: list[PeerId] | None = Field(default=None, min_length=1, max_length=256)
    threshold: int | None = Field(default=None, ge=0, le=255)
    single_signer: bool = False

    @model_validator(mode="after")
    def explicit_single_signer(self) -> RefreshBody:
        if self.threshold == 0 and not self.single_signer:
            raise ValueError(
                "threshold 0 lets any one party sign alone; set single_signer: true to ask for it"
            )
        return self


class JoinVoteBody(_Body):
    """`POST /validators/join`: the hex of a node's `GET /join-request`."""

    request: str = Field(min_length=2, max_length=4096, pattern=HEX.pattern)


REQUEST_BODIES: tuple[type[_Body], ...] = (
    KeygenBody,
    SignBody,
    DeriveBody,
    PresignBody,
    RefreshBody,
    JoinVoteBody,
)


# == responses ================================================================================


class Response(BaseModel):
    """Base of every response body and event: extra fields allowed (see the module)."""

    model_config = ConfigDict(extra="allow", strict=True, use_attribute_docstrings=True)

    def to_json(self) -> Any:
        """The JSON value, with exactly the fields that were given (`exclude_unset`)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


def sent(value: Any) -> Any:
    """The JSON the API sends for a response model, a list of them, or None."""
    if isinstance(value, list):
        return [sent(v) for v in value]
    return value.to_json() if isinstance(value, Response) else value


class Error(Response):
    """Every 4xx and 5xx: what is wrong, in one sentence."""

    error: str


class Health(Response):
    """`GET /health` (200, or 503 with the reason) and `GET /health/live` (always 200)."""

    ok: bool
    reason: str | None = None
    """why the ledger cannot commit (stalled, below quorum); absent while healthy"""


class Admission(Response):
    """Who may connect (`tssnode.net.admission`) and what was refused, by reason."""

    open: bool
    validators: int | None
    """validators admitted in full; null: any authenticated peer (a bare net layer)"""
    followers: int
    joiners: int
    newcomers: list[str]
    newcomer_slots: int
    newcomer_seconds: float
    refused_at_handshake: int
    refused_peers: int
    drops: dict[str, int]


class Status(Response):
    """`GET /status`: the node, its chain and its liveness (docs/api.md)."""

    peer_id: str
    validator_key: str
    chain_id: str
    height: int
    view: int
    primary: str
    is_primary: bool
    validators: int
    version: str
    uptime_s: float
    last_block_age_s: float
    """seconds since this node last saw a block commit (or started)"""
    pending_requests: int
    """transactions waiting to be ordered into a block"""
    view_change: bool
    """a PBFT view change is under way"""
    validators_online: int
    quorum: int
    """validators needed to commit (n − f)"""
    stalled: bool
    """requests waiting (or a view change) and no block for `[ledger] stall_after` seconds"""
    below_quorum: bool
    liveness: str | None
    """why the ledger cannot commit (stalled or below quorum), or null"""
    network: str
    peers_connected: int
    addrs: list[str]
    warnings: list[str]
    """what is unsafe about this node, one sentence each"""
    admission: Admission
    buffers: dict[str, dict[str, Any]]
    """each bounded buffer the node keeps for its peers: its use, evictions and limits"""
    api_refused: dict[str, int]
    """requests the API refused with 429 since start, by limit"""


class Validator(Response):
    """One of `GET /validators`."""

    peer_id: str
    validator_key: str
    name: str | None
    """as the genesis or the join request gave it"""
    index: int
    status: Literal["online", "offline"]
    keys: list[str]
    """ids of the keys it is a party of"""


class Peer(Response):
    """One of `GET /peers`."""

    peer_id: str
    addrs: list[str]
    source: str
    """how this node learnt of it: bootstrap | pex | inbound | genesis | …"""
    connected: bool
    ready: bool
    latency_ms: float | None
    last_seen: float | None
    """Unix time of its last sign of life"""
    connects: int
    validator: bool
    status: Literal["connected", "disconnected"]
    address: str | None
    """its first address, or null"""


class Addresses(Response):
    eth: str
    btc_p2wpkh: str


class Blame(Response):
    """Why a session failed: the culprits (party indices, 1-based), the failed check and
    the round."""

    culprits: list[int]
    check: str
    round: int


class KeyTry(Response):
    """An earlier try of a keygen request that was retried."""

    request: str
    """the request id (its transaction hash) of that try"""
    status: RequestStatus
    blame: Blame | None


class Key(Response):
    """`GET /keys/{key_id}` and each of `GET /keys`."""

    key_id: str
    status: KeyStatus
    public_key: str | None
    """33-byte compressed point, hex; null until active"""
    threshold: int
    parties: list[str]
    holders: list[str] = Field(default_factory=list)
    """parties whose share of the current epoch the ledger has seen confirmed (absent for a
    keygen request accepted here and not in a block yet)"""
    epoch: int
    tier: str
    addresses: Addresses | None
    height: int | None
    error: str | None
    presignatures: int = 0
    """the ledger's ready pooled presignatures (an active key only)"""
    presignatures_pending: int = 0
    """...and those being made"""
    presignatures_mine: int = 0
    """of the ready ones, those the answering node is a signer of"""
    presignatures_held: int = 0
    """...and of those, the ones in its vault (fewer: it lost some)"""
    previous: list[KeyTry] = Field(default_factory=list)
    """the earlier tries of a retried keygen request, oldest first"""
    purpose: str = ""
    """"" (signs what sign requests ask) or "bridge" (only the bridge's messages)"""


class SignatureTry(Response):
    """An earlier try of a sign request that was retried."""

    status: RequestStatus
    blame: Blame | None
    signature_id: str


class Signature(Response):
    """`GET /signatures/{id}`. A request accepted here and not in a block yet has `error`
    (why it failed, or null) and no `path`, `attempts`, `previous`; one in the ledger has
    those three and no `error`."""

    signature_id: str
    status: RequestStatus
    key_id: str
    path: str | None = None
    """the BIP-32 path signed under (`m/0/1`), or null for the key itself"""
    digest: str
    r: str | None
    s: str | None
    v: int | None
    """27 or 28 (Ethereum's recovery id)"""
    signers: list[str]
    height: int | None
    blame: Blame | None
    error: str | None = None
    attempts: int = 1
    previous: list[SignatureTry] = Field(default_factory=list)


class Session(Response):
    """One of `GET /sessions`, `GET /sessions/{id}`."""

    session_id: str
    phase: Phase
    request: str
    """the request (transaction hash) it serves"""
    key_id: str
    """empty for a keygen (the key has no id yet)"""
    parties: list[str]
    """party indices (1-based), as text"""
    started: float
    """Unix time"""
    status: SessionStatus
    round: int
    """the round under way, the last one for a done session, the failing one for a failed one"""
    waiting_for: list[int] | None
    """party indices still awaited (while it runs), else null"""
    culprits: list[str] | None
    """party indices (as text) it failed for, else null"""
    error: str | None
    finished: float | None
    elapsed_s: float
    rounds: int | None
    """rounds of its phase, if known"""


class Certificate(Response):
    """The commit certificate of a block: the view and the validators whose votes it holds."""

    view: int
    signers: list[str]
    quorum: int


class Transaction(Response):
    """`GET /tx/{hash}`, and each transaction of a block (`payload` only in
    `GET /blocks/{height}`)."""

    hash: str
    kind: str
    """the payload's type: KeygenRequest, SignRequest, …"""
    submitter: str
    """the peer id of the validator that signed it"""
    height: int
    payload: list[Any] = Field(default_factory=list)
    """the payload as plain data: its wire tag, then its fields in order (bytes as hex,
    integers of 2^53 and more as 0x-hex)"""


class Block(Response):
    """One of `GET /blocks`, or `GET /blocks/{height}` (transactions in full)."""

    height: int
    hash: str
    prev_hash: str
    proposer: str
    view: int
    time: float | None
    """when this node committed it (Unix time, its own clock), if it noted it"""
    commit_latency_ms: int | None
    """ms from this node's first message about the height to the commit, if it ordered it"""
    txs: list[Transaction]
    certificate: Certificate


class KeyAccepted(Response):
    """202 of `POST /keygen`, `/keys/{id}/refresh`, `/keys/{id}/presign`, `/start`."""

    key_id: str
    tx: str


class SignAccepted(Response):
    """202 of `POST /sign`: the signature id (the request's transaction hash)."""

    signature_id: str
    tx: str
    digest: str


class BitcoinWatchInfo(Response):
    """This validator's watch of its Bitcoin node ([bridge.bitcoin])."""

    tip: int | None
    """the height its node showed last (None before the first look)"""
    reorgs: int
    mempool_payments: int
    """payments to deposit addresses in its node's mempool"""
    errors: int
    last_error: str | None


class GatewayWatchInfo(Response):
    """This validator's watch of the gateway on its EVM node ([bridge.evm])."""

    minted: int
    """mint authorisations it has seen the gateway use"""
    errors: int
    last_error: str | None


class BridgeWatch(Response):
    bitcoin: BitcoinWatchInfo | None
    """None: [bridge.bitcoin] is not configured (the node observes no deposits)"""
    evm: GatewayWatchInfo | None
    """None: [bridge.evm] is not configured (no deposit shows as minted here)"""


class ReleaseInfo(Response):
    """The release side of `GET /bridge`: its settings, the agreed fee rate, and the
    group's bitcoin."""

    evm_confirmations: int
    bump_after: int
    min_release_sats: int
    max_fee_rate: int
    sweep_at: int
    height: int
    fee_rate: int | None
    """sat/vB: the median of the validators' current reports (None: fewer than 2f+1)"""
    holdings_sats: int
    """the group's coins: final deposits and change, less what confirmed releases spent"""
    wrapped_supply: int | None
    """the wrapped token's total supply as this node's EVM node shows it (None: no
    [bridge.evm] here, or not read yet); holdings less supply is the mint fees kept"""
    coins: int
    main_address: str
    """where change and sweeps go: P2WPKH of the bridge key's child m/0"""


class BridgeInfo(Response):
    """`GET /bridge`: the bridge's settings in force (the fields after `proposals` only
    once it is set up)."""

    set_up: bool
    proposals: int
    """settings proposed and not yet agreed"""
    key_id: str | None = None
    mint_authority: str | None = None
    """the bridge key's Ethereum address: the gateway's mint authority"""
    chain_name: str | None = None
    s_hash: str | None = None
    chain_id: int | None = None
    gateway: str | None = None
    network: str | None = None
    confirmations: int | None = None
    fee_sats: int | None = None
    min_deposit_sats: int | None = None
    height: int | None = None
    """the block that put the settings in force"""
    watch: BridgeWatch
    """how this validator's watches of the two chains are doing"""
    release: ReleaseInfo | None = None
    """the release side, once its settings are in force (`POST /bridge/release-setup`)"""


class BridgeSetupAccepted(Response):
    """202 of `POST /bridge/setup`."""

    tx: str


class DepositAddress(Response):
    """`POST /bridge/deposit-address` (202 when new, 200 when the ledger has it already)
    and each of `GET /bridge/addresses`. RenVM's hashes: sHash = keccak256("BTC/to" ‖ chain
    name), pHash = keccak256(payload), gHash = keccak256(pHash ‖ sHash ‖ to ‖ nonce)."""

    address: str
    """P2WPKH (bech32) of the bridge key's child at the path gHash gives"""
    gHash: str
    pHash: str
    sHash: str
    nonce: str
    to: str
    payload: str
    key_id: str
    status: Literal["pending", "recorded"]
    """recorded: in the ledger; pending: accepted here, not in a block yet"""
    height: int | None


class MintSignature(Response):
    """A mint authorisation as the gateway takes it: r ‖ s ‖ v (v = 27 or 28), low s."""

    r: str
    s: str
    v: int


class Deposit(Response):
    """`GET /bridge/deposits/{txid}:{vout}` and each of `GET /bridge/deposits`: a payment to
    a deposit address. seen (in this node's Bitcoin mempool) and confirming (in a block,
    not final yet) are this node's view, with the digest it would have once final; final
    (2f+1 validators saw it at depth), signed (its mint authorisation is in the ledger) and
    orphaned (2f+1 saw its block leave the chain: not signed while so) are the ledger's;
    minted is signed with the authorisation used on the gateway as this node's EVM node
    shows it."""

    txid: str
    """as Bitcoin Core shows it"""
    vout: int
    status: Literal["seen", "confirming", "final", "signed", "minted", "orphaned"]
    confirmations: int | None
    """the depth of its block on this node's Bitcoin node (0: not in a block, or its block
    left the chain; None: not watched here, or older than the blocks kept)"""
    minted: bool | None
    """whether the gateway has used its authorisation (None: no [bridge.evm] here)"""
    value_sats: int
    amount: int
    """what the authorisation mints: value − the bridge's fee (satoshis, 8 decimals)"""
    to: str
    address: str
    gHash: str
    pHash: str
    nHash: str
    """keccak256(nonce ‖ txid ‖ vout), txid in outpoint byte order"""
    sigHash: str
    """keccak256(abi.encode(pHash, amount, sHash, to, nHash, chainId, gateway))"""
    block_hash: str | None
    block_height: int | None
    height: int | None
    """the ledger block where it became final"""
    signature: MintSignature | None


class ReleaseAttempt(Response):
    """One transaction of a release: a bump replaces it by another over the same inputs."""

    attempt: int
    txid: str
    """as Bitcoin Core shows it"""
    status: Literal["signing", "signed", "confirmed", "replaced"]
    fee_rate: int
    fee: int
    inputs: int
    signed_inputs: int
    raw: str | None
    """the signed transaction (hex) once every input is signed"""


class Release(Response):
    """`GET /bridge/releases/{burn_nonce}` and each of `GET /bridge/releases`: a burn and
    the bitcoin it releases. final: 2f+1 saw the burn at depth; signing: its release's
    inputs are being signed; broadcast: signed, the nodes broadcast it; confirmed;
    unpayable: its address is no standard output on the bridge's network. seen is this
    node's view (its EVM watch saw the burn, the ledger has no 2f+1 yet)."""

    burn_nonce: int
    to: str
    amount: int
    """satoshis burnt (one token unit is one satoshi)"""
    status: Literal["seen", "final", "signing", "broadcast", "confirmed", "unpayable"]
    release: int | None
    """the release (sequence number) that pays it"""
    txid: str | None
    """the attempt that confirmed, else the newest"""
    fee_rate: int | None
    paid: int | None
    """what its output pays: the amount less its share of the fee"""
    confirmations: int | None
    """depth of the release on this node's Bitcoin node (None: not seen in a block here)"""
    attempts: list[ReleaseAttempt]
    evm_tx: str
    evm_block: int
    height: int | None
    """the ledger block where the burn became final"""


class Derived(Response):
    """`POST /keys/{key_id}/derive`: a non-hardened child of the key."""

    path: str
    public_key: str
    addresses: Addresses


class JoinRequest(Response):
    """`GET /join-request`: this node's request to become a validator."""

    peer_id: str
    validator_key: str
    address: str
    is_validator: bool
    request: str
    """hex, for `POST /validators/join` at the validators"""


class JoinVoteAccepted(Response):
    """202 of `POST /validators/join`."""

    tx: str
    peer_id: str


class LegacySent(Response):
    """202 of the original project's `POST /broadcast` and `POST /direct-message`."""

    sent: bool
    seq: int


class LegacyMessage(Response):
    """One of the original project's `GET /get-message`, `GET /get-direct-message`."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    seq: int
    body_hex: str
    time: float


class OpenApiDocument(Response):
    """`GET /openapi.json`."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]
    security: list[dict[str, Any]]


# == events ===================================================================================


class _Event(Response):
    """An event of `GET /events` (the `data:` line; `event:` is its kind)."""

    seq: int
    """its number in the node's stream (0 for the note of events a slow reader missed)"""
    time: float


class PeerEvent(_Event):
    kind: Literal["peer.up", "peer.down"]
    peer_id: str
    detail: str
    """what the peer book saw: ready | disconnected | unresponsive"""


class BlockCommitted(_Event):
    kind: Literal["block.committed"]
    height: int
    hash: str
    txs: int
    """how many transactions"""
    latency_ms: int | None


class ViewChanged(_Event):
    """(Reserved: the node does not publish it yet.)"""

    kind: Literal["view.changed"]
    view: int
    primary: str


class SessionStarted(_Event):
    kind: Literal["session.started"]
    ssid: str
    phase: str
    parties: list[int]
    """party indices"""


class SessionRound(_Event):
    kind: Literal["session.round"]
    ssid: str
    phase: str
    round: int
    of: int | None
    """rounds of the phase, if known"""
    waiting_for: list[int]


class SessionDone(_Event):
    kind: Literal["session.done"]
    ssid: str
    phase: str
    seconds: float


class SessionFailed(_Event):
    kind: Literal["session.failed"]
    ssid: str
    phase: str
    round: int
    culprits: list[int]
    check: str


class ProofEvent(_Event):
    kind: Literal["proof.verified", "proof.rejected"]
    ssid: str
    phase: str
    proof: str
    party: int
    """the prover's party index"""
    seconds: float
    reason: str | None
    """why it was rejected, or null"""


class KeyActive(_Event):
    """(Reserved: the node does not publish it yet.)"""

    kind: Literal["key.active"]
    key_id: str
    public_key: str


class SignatureReady(_Event):
    kind: Literal["signature.ready"]
    signature_id: str
    key_id: str


class RequestSettled(_Event):
    """A request's outcome is in the ledger: published by every node as it executes the
    block that settles it (a sign request's first valid signature, a keygen's or
    refresh's agreed key, a blame or withdrawal that fails it). A client can follow its
    request here (`GET /events?kind=request.settled`) instead of polling for it."""

    kind: Literal["request.settled"]
    request: str
    """the request's id (a sign request's `signature_id`)"""
    request_kind: str
    """keygen, refresh or sign"""
    status: str
    """done or failed"""
    key_id: str
    """the key ("" for a keygen that failed)"""
    height: int
    """the block that settled it"""


class BlameEvent(_Event):
    """(Reserved: the node does not publish it yet.)"""

    kind: Literal["blame"]
    culprits: list[int]
    check: str


class LogEvent(_Event):
    """A note for the reader; today only that it `dropped` that many events."""

    kind: Literal["log"]
    level: str
    dropped: int | None = None
    message: str | None = None


Event = Annotated[
    PeerEvent
    | BlockCommitted
    | ViewChanged
    | SessionStarted
    | SessionRound
    | SessionDone
    | SessionFailed
    | ProofEvent
    | KeyActive
    | SignatureReady
    | RequestSettled
    | BlameEvent
    | LogEvent,
    Field(discriminator="kind"),
]
EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: Any) -> Event:
    """One event of the stream, validated (raises `pydantic.ValidationError`)."""
    return EVENT.validate_python(data)


@cache
def event_models() -> dict[str, type[_Event]]:
    """Each event kind's model ("peer.up" → `PeerEvent`), from the `Event` union."""
    union = get_args(Event)[0]
    out: dict[str, type[_Event]] = {}
    for model in get_args(union):
        for kind in get_args(model.model_fields["kind"].annotation):
            out[kind] = model
    return out


def read_event(data: Any) -> tuple[str, dict[str, Any]]:
    """An event as a tolerant client reads it: its kind, and the fields its kind's model
    declares that `data` has and that validate (`read_fields`; "kind" among them). A kind
    no model knows gives the kind and the fields every event has (seq, time); no kind
    at all gives ""."""
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if not isinstance(kind, str):
        return "", {}
    model = event_models().get(kind, _Event)
    return kind, {**read_fields(model, data), "kind": kind}


# == reading responses tolerantly =============================================================


def _models_in(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_models_in(arg) for arg in get_args(annotation))


@cache
def _readers(model: type[BaseModel]) -> tuple[tuple[str, str, TypeAdapter[Any] | None], ...]:
    out = []
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        nested = _models_in(annotation)
        if info.metadata and not nested:
            annotation = Annotated[(annotation, *info.metadata)]
        out.append((name, info.alias or name, None if nested else TypeAdapter(annotation)))
    return tuple(out)


def read_fields(model: type[BaseModel], data: Any) -> dict[str, Any]:
    """The declared fields of response `model` that `data` (a decoded JSON object) has and
    that validate, each on its own and in pydantic's lax mode (41.0 is the integer 41), by
    field name: how a client reads a node one version ahead or behind without failing on
    its shape (a missing or malformed field is left out, an unknown one ignored). A field
    that holds models (an object, a list of them) is given as it came, to be read the same
    way with its own model."""
    if not isinstance(data, Mapping):
        return {}
    out: dict[str, Any] = {}
    for name, key, adapter in _readers(model):
        if key not in data:
            continue
        if adapter is None:
            out[name] = data[key]
            continue
        with suppress(ValidationError):
            out[name] = adapter.validate_python(data[key])
    return out
