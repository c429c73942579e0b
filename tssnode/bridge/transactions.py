"""The bridge's transactions: typed payloads the ledger routes to `BridgeApp`.

What Bitcoin shows is agreed by votes, as keys are in the registry: each validator watches
Bitcoin on its own and submits what it saw (`DepositObserved`), and a deposit is final
only when 2f+1 validators submitted the same observation, so no single node's view of
Bitcoin (or a lying Bitcoin node behind it) mints anything. The bridge's settings are
agreed the same way (`BridgeSetup`). A mint signature needs no vote: the bridge verifies
it against the digest it computes itself (`MintSigned`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tssnode.crypto.encoding import Wire, wire
from tssnode.crypto.signature import Signature


@wire("tssnode.tx.bridge-setup/1")
@dataclass(frozen=True)
class BridgeSetup(Wire):
    """A vote for the bridge's settings: in force once 2f+1 validators voted the same.

    `key_id` names a registry key made with purpose "bridge"; the EVM side is `chain_name`
    (sHash's "BTC/to<chain name>"), `chain_id` and the gateway contract's address
    (`gateway`, 20 bytes), all bound into every mint digest; Bitcoin is `network`
    ("mainnet", "testnet", "signet" or "regtest"). A deposit counts after `confirmations`
    blocks, pays `fee_sats` to the bridge, and must be at least `min_deposit_sats`."""

    key_id: str
    chain_name: str
    chain_id: int
    gateway: bytes
    network: str
    confirmations: int
    fee_sats: int
    min_deposit_sats: int


@wire("tssnode.tx.bridge-deposit-address/1")
@dataclass(frozen=True)
class DepositAddressRequest(Wire):
    """Record a deposit address: BTC sent to it mints to `to` (20 bytes) on the EVM chain.
    `nonce` (32 bytes) tells addresses for the same `to` apart; `payload` is the
    application data RenVM's pHash commits to (may be empty). Recording it in the ledger
    is what keeps the nonce: a RenVM user who lost it lost the deposit (ren-js #70)."""

    to: bytes
    nonce: bytes
    payload: bytes = b""


@wire("tssnode.tx.bridge-deposit-observed/1")
@dataclass(frozen=True)
class DepositObserved(Wire):
    """A validator's view of one deposit output, `confirmations` deep on its Bitcoin node.

    `txid` in outpoint byte order (`hashes.txid_bytes`), `value` in satoshis, `script` the
    output's scriptPubKey, `block_hash` (internal byte order) and `block_height` where it
    was mined, `g_hash` the deposit address it pays. A validator's later observation of the
    same output (after a reorg moved it to another block) replaces its earlier one."""

    txid: bytes
    vout: int
    value: int
    script: bytes
    block_hash: bytes
    block_height: int
    g_hash: bytes


@wire("tssnode.tx.bridge-deposit-orphaned/1")
@dataclass(frozen=True)
class DepositOrphaned(Wire):
    """A validator's view that a final deposit's block (`block_hash`, as the ledger has it)
    is no longer on its Bitcoin node's best chain, that chain is at least `confirmations`
    blocks past the deposit's height, and the output is in none of its blocks. At 2f+1
    identical votes the deposit is orphaned: never signed while so."""

    txid: bytes
    vout: int
    block_hash: bytes


@wire("tssnode.tx.bridge-mint-signed/1")
@dataclass(frozen=True)
class MintSigned(Wire):
    """A signer's threshold signature over a final deposit's sigHash: the mint
    authorisation the gateway checks with ecrecover (65 bytes r ‖ s ‖ v for it)."""

    txid: bytes
    vout: int
    signature: Signature

    @classmethod
    def of(cls, subject: bytes, signature: Signature) -> MintSigned:
        """For the deposit whose outpoint (txid ‖ vout, `records.outpoint`) is `subject`."""
        return cls(subject[:32], int.from_bytes(subject[32:36], "big"), signature)


# -- part 2: burns and releases ----------------------------------------------------------------


@wire("tssnode.tx.bridge-release-setup/1")
@dataclass(frozen=True)
class ReleaseSetup(Wire):
    """A vote for the release side's settings (in force once 2f+1 voted the same, after
    the bridge's own): a burn counts `evm_confirmations` blocks deep on the EVM chain; a
    release not confirmed `bump_after` Bitcoin blocks after it was signed is bumped; no
    burn below `min_release_sats` is released; no fee rate above `max_fee_rate` sat/vB is
    paid; `sweep_at` deposits (0: never) are swept into the main key in the background."""

    evm_confirmations: int
    bump_after: int
    min_release_sats: int
    max_fee_rate: int
    sweep_at: int


@wire("tssnode.tx.bridge-fee-report/1")
@dataclass(frozen=True)
class FeeReport(Wire):
    """A validator's fee rate (sat/vB, its Bitcoin node's `estimatesmartfee`); a release
    pays the median of the current reports (a third of liars cannot move it out of the
    honest ones' range)."""

    sat_per_vb: int


@wire("tssnode.tx.bridge-burn-observed/1")
@dataclass(frozen=True)
class BurnObserved(Wire):
    """A validator's view of one `LogBurn` of the gateway, `evm_confirmations` deep:
    `to` is the address string the burner gave, `amount` the tokens burnt (satoshis);
    `evm_tx`, `evm_block` (hashes) and `evm_height` where it was. Final at 2f+1
    identical observations; the burn nonce makes it releasable once, forever."""

    nonce: int
    to: bytes
    amount: int
    evm_tx: bytes
    evm_block: bytes
    evm_height: int


@wire("tssnode.tx.bridge-input-signed/1")
@dataclass(frozen=True)
class InputSigned(Wire):
    """A signer's threshold signature over one release input's BIP-143 sighash."""

    seq: int
    attempt: int
    index: int
    signature: Signature


@wire("tssnode.tx.bridge-release-confirmed/1")
@dataclass(frozen=True)
class ReleaseConfirmed(Wire):
    """A validator's view that attempt `attempt` of release `seq` (`txid`) is in block
    `block_hash` at `block_height`, as deep as a deposit must be. 2f+1 identical: the
    release is confirmed, its inputs spent, its change a coin."""

    seq: int
    attempt: int
    txid: bytes
    block_hash: bytes
    block_height: int


@wire("tssnode.tx.bridge-bump/1")
@dataclass(frozen=True)
class BumpRequest(Wire):
    """A validator's view that attempt `attempt` of release `seq` is still not confirmed
    `bump_after` blocks after it saw it signed. 2f+1: a replacement over the same inputs
    at a higher fee rate is built (replace-by-fee: never two payouts of one burn)."""

    seq: int
    attempt: int


Payload = (
    BridgeSetup | DepositAddressRequest | DepositObserved | DepositOrphaned | MintSigned
    | ReleaseSetup | FeeReport | BurnObserved | InputSigned | ReleaseConfirmed | BumpRequest
)  # fmt: skip
PAYLOAD_TYPES: tuple[type[Wire], ...] = (
    BridgeSetup,
    DepositAddressRequest,
    DepositObserved,
    DepositOrphaned,
    MintSigned,
    ReleaseSetup,
    FeeReport,
    BurnObserved,
    InputSigned,
    ReleaseConfirmed,
    BumpRequest,
)


def signed_result(subject: bytes, signature: Signature) -> Wire:
    """The bridge's transaction for a signature its `AppSignRequest` asked for: a mint's
    (subject: a deposit's outpoint) or a release input's (`records.release_subject`)."""
    if len(subject) == 17 and subject[:1] == b"r":
        seq, attempt = int.from_bytes(subject[1:9], "big"), int.from_bytes(subject[9:13], "big")
        return InputSigned(seq, attempt, int.from_bytes(subject[13:17], "big"), signature)
    return MintSigned.of(subject, signature)
