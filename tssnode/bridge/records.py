"""The bridge's records: its settings, deposit addresses, deposits and observation votes.

Each is stored under its own key of the store's state prefix, in the bridge's tables (the
engine's are 0, 1, 5, 6 and the registry's 2, 3, 4, 7).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tssnode.crypto.encoding import Wire, wire
from tssnode.crypto.group import Point
from tssnode.crypto.signature import Signature

#: The bridge's state tables.
T_CONFIG, T_ADDRESSES, T_DEPOSITS, T_VOTES = 8, 9, 10, 11
#: the longest payload a deposit address commits to
MAX_PAYLOAD = 1024
#: Bitcoin networks a bridge may watch (their bech32 prefixes: `crypto.addresses.BTC_HRP`)
NETWORKS = ("mainnet", "testnet", "signet", "regtest")
#: most confirmations a bridge may ask for (a day of Bitcoin blocks)
MAX_CONFIRMATIONS = 144
#: the dust limit of a P2WPKH output at Bitcoin Core's default dust relay fee: no deposit
#: may be smaller (one that small could never be spent economically)
P2WPKH_DUST = 294
#: a deposit's status in the ledger: final (2f+1 saw it at depth), signed (its mint
#: authorisation is in the ledger), orphaned (2f+1 saw its block leave the best chain with
#: the output in no other block: it is not signed while so, and 2f+1 observations of it in
#: another block make it final, or signed, again)
FINAL, SIGNED, ORPHANED = "final", "signed", "orphaned"


def outpoint(txid: bytes, vout: int) -> bytes:
    """A deposit's id: txid (outpoint byte order) ‖ vout (u32 big-endian)."""
    return txid + vout.to_bytes(4, "big")


def p2wpkh_script(key_hash: bytes) -> bytes:
    """OP_0 <20-byte key hash>: the scriptPubKey of a P2WPKH output."""
    return b"\x00\x14" + key_hash


@wire("tssnode.bridge.config/1")
@dataclass(frozen=True)
class BridgeConfig(Wire):
    """The bridge's settings in force (`transactions.BridgeSetup`), with the bridge key's
    public key and chain code copied from the registry when they were agreed (a refresh
    keeps both, so deposit addresses and the mint authority never change)."""

    key_id: str
    public_key: Point
    chain_code: bytes
    chain_name: str
    chain_id: int
    gateway: bytes
    network: str
    confirmations: int
    fee_sats: int
    min_deposit_sats: int
    height: int  # the block that put them in force


@wire("tssnode.bridge.address/1")
@dataclass(frozen=True)
class DepositAddress(Wire):
    """A recorded deposit address: the hashes that make it, and who asked for it when."""

    g_hash: bytes
    p_hash: bytes
    to: bytes
    nonce: bytes
    payload: bytes
    address: str
    key_hash: bytes  # HASH160 of the deposit key (its output script's program)
    requester: bytes
    height: int


@wire("tssnode.bridge.deposit/1")
@dataclass(frozen=True)
class Deposit(Wire):
    """A final deposit: 2f+1 validators saw this output at this depth. `amount` (value −
    fee) is what the mint authorisation lets the gateway mint; `signature` is empty until
    a signer's valid one is in the ledger (status "signed")."""

    txid: bytes
    vout: int
    value: int
    g_hash: bytes
    block_hash: bytes
    block_height: int
    height: int  # the ledger block where it became final
    amount: int
    n_hash: bytes
    sig_hash: bytes
    status: str
    signature: Signature | None = None


@wire("tssnode.bridge.votes/1")
@dataclass(frozen=True)
class Observations(Wire):
    """The live observations of one output: each distinct observation (its encoded
    `DepositObserved`) with the validators that submitted it, sorted; a validator is in
    at most one of them."""

    seen: tuple[tuple[bytes, tuple[bytes, ...]], ...]

    def voting(self, sender: bytes, observed: bytes) -> Observations:
        """These observations after `sender` submitted `observed` (its earlier one, if
        any, withdrawn)."""
        out: dict[bytes, tuple[bytes, ...]] = {}
        for raw, voters in self.seen:
            rest = tuple(v for v in voters if v != sender)
            if rest:
                out[raw] = rest
        out[observed] = tuple(sorted((*out.get(observed, ()), sender)))
        return Observations(tuple(sorted(out.items())))

    def voters(self, observed: bytes) -> tuple[bytes, ...]:
        return dict(self.seen).get(observed, ())


def orphan_vote_id(op: bytes) -> bytes:
    """Where votes that a final deposit's block left the chain are kept (in `T_VOTES`, apart
    from observations by length: 37 bytes)."""
    return op + b"o"


def setup_vote_id(raw: bytes) -> bytes:
    """Where votes for one proposed setup are kept (in `T_VOTES`, apart from outpoints by
    length: 32 bytes, where an outpoint is 36)."""
    return hashlib.sha256(b"tssnode.bridge.setup/" + raw).digest()


# -- part 2: the group's coins, burns and releases ------------------------------------------

#: The release side's state tables: its settings, the group's coins, the burns, each release
#: attempt, the validators' fee reports, and the votes on burns, confirmations and bumps.
T_RCONFIG, T_COINS, T_BURNS, T_RELEASES, T_FEES, T_RVOTES = 12, 13, 14, 15, 16, 17
#: The group's main Bitcoin key: change and sweeps go to P2WPKH of the bridge key's child at
#: this path (a deposit key's path is 8 words long, so none is this one)
MAIN_PATH = (0,)
#: ledger blocks a validator's fee report counts for
FEE_REPORT_BLOCKS = 200
#: a burn's status: final (2f+1 saw it at depth), releasing (in a release being signed or
#: broadcast), released (its release confirmed), unpayable (its address is not a standard
#: output on the bridge's network: the tokens are burnt and nothing can be sent)
BURN_FINAL, BURN_RELEASING, BURN_RELEASED, BURN_UNPAYABLE = (
    "final", "releasing", "released", "unpayable",
)  # fmt: skip
#: a release attempt's status: signing (its inputs being signed), signed (every input:
#: the nodes broadcast it), confirmed, replaced (a bump signed a replacement; it may
#: still confirm instead, and is then recorded as the one that did)
R_SIGNING, R_SIGNED, R_CONFIRMED, R_REPLACED = "signing", "signed", "confirmed", "replaced"


@wire("tssnode.bridge.release-config/1")
@dataclass(frozen=True)
class ReleaseConfig(Wire):
    """The release side's settings in force (`transactions.ReleaseSetup`)."""

    evm_confirmations: int
    bump_after: int
    min_release_sats: int
    max_fee_rate: int
    sweep_at: int
    height: int


@wire("tssnode.bridge.coin/1")
@dataclass(frozen=True)
class Coin(Wire):
    """An output the group holds: a final deposit or a release's change. `path` derives its
    key from the bridge key; `spender` is the release that spends it (0: none yet)."""

    txid: bytes
    vout: int
    value: int
    path: tuple[int, ...]
    key_hash: bytes
    spender: int = 0


@wire("tssnode.bridge.burn/1")
@dataclass(frozen=True)
class Burn(Wire):
    """A burn 2f+1 validators saw on the gateway at depth: `amount` satoshis (one token unit
    is one satoshi) to be released to `to` (the address string the burner gave)."""

    nonce: int
    to: str
    script: bytes  # its output script (empty if unpayable)
    amount: int
    evm_tx: bytes
    evm_block: bytes
    evm_height: int
    height: int  # the ledger block where it became final
    status: str
    release: int = 0  # the release that pays it
    paid: int = 0  # what its output paid (amount less its share of the fee)


@wire("tssnode.bridge.release/1")
@dataclass(frozen=True)
class Release(Wire):
    """One attempt at a release: a transaction spending `inputs` (outpoints of the group's
    coins), paying each burn in `burns` (by nonce) its output in `outputs`, in order, then
    the change to the main key if any; built by every validator alike from ledger state.
    A bump is a new attempt of the same `seq` over the same inputs at a higher fee rate."""

    seq: int
    attempt: int
    burns: tuple[int, ...]
    inputs: tuple[bytes, ...]
    outputs: tuple[tuple[bytes, int], ...]  # (script, value)
    change: int  # the change output's value (0: none)
    fee_rate: int  # sat/vB
    fee: int
    tx: bytes  # unsigned
    txid: bytes
    sighashes: tuple[bytes, ...]
    signatures: tuple[Signature | None, ...]
    status: str
    height: int  # the ledger block that built it
    signed_tx: bytes = b""
    block_hash: bytes = b""  # where it confirmed
    block_height: int = 0


def release_key(seq: int, attempt: int) -> bytes:
    return seq.to_bytes(8, "big") + attempt.to_bytes(4, "big")


def release_subject(seq: int, attempt: int, index: int) -> bytes:
    """What a release input's `AppSignRequest` names: b"r" ‖ seq ‖ attempt ‖ input index."""
    return b"r" + release_key(seq, attempt) + index.to_bytes(4, "big")


@wire("tssnode.bridge.fee/1")
@dataclass(frozen=True)
class Fee(Wire):
    """A validator's last fee report: its rate (sat/vB) and the ledger block it came in."""

    sat_per_vb: int
    height: int
