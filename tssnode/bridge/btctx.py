"""The Bitcoin transactions that release BTC (issue 18), as pure functions.

Every node builds the same release from its ledger state, byte for byte, and the group
signs it input by input with threshold ECDSA. Every input spends a P2WPKH output of a key
of the group (a `Coin`); every output (a `Payout`) is one of five standard templates.

    version 2 ‖ [marker 0x00 ‖ flag 0x01] ‖ inputs ‖ outputs ‖ [witnesses] ‖ locktime
    input    = outpoint (txid[32] ‖ vout[4]) ‖ empty scriptSig ‖ sequence 0xFFFFFFFD
    witness  = [DER(r, s) ‖ SIGHASH_ALL, compressed public key]          (BIP-141)
    signed   = BIP-143 digest of each input: scriptCode P2PKH(key hash), amount

    unsigned_release → sighashes → (threshold signing) → signed_release → verify_spends

Every input signals replace-by-fee (BIP-125), so a release stuck at too low a fee can be
replaced. `release_vsize` is the size of the signed transaction before it is signed, for
the fee: it counts every signature at its longest.

DEVIATION from the often quoted 73 bytes (72 of DER + the sighash byte): the longest
signature a release can carry is 71 bytes of DER + 1. A DER integer is 33 bytes
only when its top bit is set; a low s (≤ q/2 < 2²⁵⁵) never has it, and `signed_release`
refuses a high s. So 30 45 02 21 r[33] 02 20 s[32] ‖ 01 = 72 bytes, as in Bitcoin Core's
wallet (`DUMMY_MAXIMUM_SIGNATURE_CREATOR`). The bound is exact: a test builds it.

The script check is Bitcoin Core's own, libbitcoinkernel (`tssnode.bridge.kernel`), with
all consensus flags. The kernel checks no standardness rule (its C API aborts on the
policy flags), so `verify_spends` checks what relay policy adds for these witnesses: low
s, a compressed key, SIGHASH_ALL. Addresses follow BIP-173/350 (bech32, bech32m) and
base58check; the serialization and the digests come from python-bitcoinlib, held to
the strict form Core writes (see `_parse`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import base58
import bech32m
from bitcoin.core import (
    CMutableTransaction,
    COutPoint,
    CTransaction,
    CTxIn,
    CTxInWitness,
    CTxOut,
    CTxWitness,
)
from bitcoin.core.script import (
    SIGHASH_ALL,
    SIGVERSION_WITNESS_V0,
    CScript,
    CScriptWitness,
    SignatureHash,
)
from bitcoin.core.serialize import (
    BytesSerializer,
    DeserializationExtraDataError,
    SerializationError,
    VarIntSerializer,
)
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tssnode.bridge.kernel import KernelInputError, first_script_failure
from tssnode.crypto.addresses import BTC_HRP
from tssnode.crypto.digests import hash160
from tssnode.crypto.group import Point, Q
from tssnode.crypto.signature import HALF_Q
from tssnode.errors import InvalidPoint, TssError

# the reference code of BIP-173/350, whose steps `address_script` takes one by one to say
# which of them an address fails (the package's `decode` raises the same error for all)
_bech32 = bech32m.codecs

COIN = 100_000_000
MAX_MONEY = 21_000_000 * COIN
VERSION = 2
RBF_SEQUENCE = 0xFFFFFFFD  # below 0xFFFFFFFE: replaceable (BIP-125); locktime enforced
MAX_STANDARD_TX_WEIGHT = 400_000  # Core's policy: a heavier transaction is not relayed
DUST_RELAY_FEE = 3_000  # sat per 1,000 vbytes: Core's -dustrelayfee default
MAX_SIGNATURE_SIZE = 72  # DER of a low-s signature (≤ 71) + the sighash byte; see above
PUBLIC_KEY_SIZE = 33

#: base58check version bytes (P2PKH, P2SH); testnet, signet and regtest share theirs
_BASE58_VERSIONS = {"mainnet": (0x00, 0x05), "testnet": (0x6F, 0xC4)}
_BASE58_NETWORK = {
    "mainnet": "mainnet",
    "testnet": "testnet",
    "signet": "testnet",
    "regtest": "testnet",
}
_BECH32_MAX_LENGTH = 90
_UINT32 = 0xFFFFFFFF


class BtcTxError(TssError):
    """A Bitcoin address, output, transaction or signature a release cannot use."""


class ScriptRejected(BtcTxError):
    """An input of a signed release that Bitcoin would not accept: rejected by the
    kernel's consensus check (`by_kernel`) or by a standardness rule it does not check."""

    def __init__(self, index: int, reason: str, *, by_kernel: bool) -> None:
        super().__init__(f"input {index}: {reason}")
        self.index = index
        self.reason = reason
        self.by_kernel = by_kernel


def _check_amount(value: object, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BtcTxError(f"{what} is not an integer number of satoshis")
    if not 0 <= value <= MAX_MONEY:
        raise BtcTxError(f"{what} {value} is outside [0, 21,000,000 BTC]")


@dataclass(frozen=True)
class Coin:
    """An output the group holds: a P2WPKH output of one of its (derived) keys."""

    txid: bytes  # 32 bytes, outpoint (internal) byte order = reversed display hex
    vout: int
    value: int  # satoshis
    key_hash: bytes  # HASH160 of the compressed public key that owns it (P2WPKH program)

    def __post_init__(self) -> None:
        if not isinstance(self.txid, bytes) or len(self.txid) != 32:
            raise BtcTxError("a coin's txid is 32 bytes")
        if not isinstance(self.vout, int) or not 0 <= self.vout <= _UINT32:
            raise BtcTxError("a coin's output index is a 32-bit unsigned integer")
        _check_amount(self.value, "a coin's value")
        if not isinstance(self.key_hash, bytes) or len(self.key_hash) != 20:
            raise BtcTxError("a coin's key hash is 20 bytes")

    @property
    def outpoint(self) -> tuple[bytes, int]:
        return self.txid, self.vout

    @property
    def script(self) -> bytes:
        """The scriptPubKey of the output: P2WPKH of the key hash."""
        return p2wpkh_script(self.key_hash)


@dataclass(frozen=True)
class Payout:
    """An output of a release."""

    script: bytes  # scriptPubKey
    value: int

    def __post_init__(self) -> None:
        if not isinstance(self.script, bytes):
            raise BtcTxError("a payout's script is bytes")
        _check_amount(self.value, "a payout's value")


# -- output templates ---------------------------------------------------------------------------


def p2pkh_script(key_hash: bytes) -> bytes:
    """OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG (also a P2WPKH input's scriptCode)."""
    return b"\x76\xa9\x14" + key_hash + b"\x88\xac"


def p2sh_script(script_hash: bytes) -> bytes:
    return b"\xa9\x14" + script_hash + b"\x87"


def p2wpkh_script(key_hash: bytes) -> bytes:
    return b"\x00\x14" + key_hash


def witness_script(version: int, program: bytes) -> bytes:
    """OP_n <program>: a segwit output (P2WPKH, P2WSH, P2TR)."""
    return bytes([0x50 + version if version else 0, len(program)]) + program


def output_type(script: bytes) -> str | None:
    """The template of a standard release output, or None."""
    n = len(script)
    if n == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return "p2pkh"
    if n == 23 and script[:2] == b"\xa9\x14" and script[22] == 0x87:
        return "p2sh"
    if n == 22 and script[:2] == b"\x00\x14":
        return "p2wpkh"
    if n == 34 and script[:2] == b"\x00\x20":
        return "p2wsh"
    if n == 34 and script[:2] == b"\x51\x20":
        return "p2tr"
    return None


def is_standard_output(script: bytes) -> bool:
    """P2PKH, P2SH, P2WPKH, P2WSH or P2TR: the outputs a release pays to. Narrower than
    Core's IsStandard (which also relays bare multisig, OP_RETURN, P2A and unknown witness
    versions): a payout is someone's address."""
    return output_type(script) is not None


def _is_witness_program(script: bytes) -> bool:
    """`CScript::IsWitnessProgram`."""
    if not 4 <= len(script) <= 42:
        return False
    if script[0] != 0 and not 0x51 <= script[0] <= 0x60:
        return False
    return script[1] + 2 == len(script)


def dust_limit(script: bytes) -> int:
    """Core's `GetDustThreshold` at the default dust relay fee (3 sat/vB): below it an
    output is dust and the transaction is not relayed. The output's size plus the size of
    the input that would spend it (148 bytes; 67 vbytes for a witness program), times
    the rate: P2WPKH 294, P2TR and P2WSH 330, P2SH 540, P2PKH 546."""
    if script[:1] == b"\x6a" or len(script) > 10_000:  # IsUnspendable
        return 0
    size = 8 + len(BytesSerializer.serialize(script))
    size += 32 + 4 + 1 + (107 // 4 if _is_witness_program(script) else 107) + 4
    return size * DUST_RELAY_FEE // 1000


# -- addresses ----------------------------------------------------------------------------------


def _check_network(network: str) -> str:
    if network not in BTC_HRP:
        raise BtcTxError(f"unknown Bitcoin network {network!r}")
    return network


def address_script(address: str, network: str) -> bytes:
    """The scriptPubKey of a P2PKH, P2SH, P2WPKH, P2WSH or P2TR address of `network`;
    BtcTxError saying what is wrong with any other string. Base58 addresses cannot tell
    testnet, signet and regtest apart (one version byte for all three), as in Core; bech32
    ones tell regtest (bcrt1) from the other two (tb1)."""
    _check_network(network)
    if not isinstance(address, str) or not address:
        raise BtcTxError("an address is a non-empty string")
    if not address.isascii() or not address.isprintable():
        raise BtcTxError("an address has only printable ASCII characters")
    # no Bitcoin prefix has a "1", and no base58 address of Bitcoin starts with one of them
    sep = address.find("1")
    if sep > 0 and address[:sep].lower() in BTC_HRP.values():
        return _segwit_script(address, network)
    return _base58_script(address, network)


def _networks_of_hrp(hrp: str) -> str:
    return "/".join(name for name, h in BTC_HRP.items() if h == hrp)


def _segwit_script(address: str, network: str) -> bytes:
    """BIP-173 and BIP-350, with the reason of each refusal."""
    if address != address.lower() and address != address.upper():
        raise BtcTxError("mixed-case bech32 address (BIP-173 allows all lower or all upper)")
    text = address.lower()
    sep = text.find("1")
    hrp, data_part = text[:sep], text[sep + 1 :]
    if hrp != BTC_HRP[network]:
        raise BtcTxError(f"a {_networks_of_hrp(hrp)} address (prefix {hrp}1), not {network}")
    if len(text) > _BECH32_MAX_LENGTH:
        raise BtcTxError(f"bech32 address longer than {_BECH32_MAX_LENGTH} characters")
    bad = sorted({c for c in data_part if c not in _bech32.CHARSET})
    if bad:
        raise BtcTxError(f"character(s) {''.join(bad)!r} are not in the bech32 alphabet")
    if len(data_part) < 6 + 1:
        raise BtcTxError("bech32 address too short: no witness version")
    try:
        _, data, encoding = _bech32.bech32_decode(text)
    except _bech32.DecodeError:
        raise BtcTxError("bech32/bech32m checksum does not match") from None
    version = data[0]
    if version > 16:
        raise BtcTxError(f"witness version {version} does not exist (0 to 16)")
    try:
        program = bytes(_bech32.convertbits(data[1:], 5, 8, False))
    except _bech32.DecodeError:
        raise BtcTxError("bech32 data has invalid padding") from None
    if not 2 <= len(program) <= 40:
        raise BtcTxError(f"witness program of {len(program)} bytes (BIP-141: 2 to 40)")
    if version == 0 and len(program) not in (20, 32):
        raise BtcTxError(f"witness v0 program of {len(program)} bytes (only 20 or 32)")
    if version == 0 and encoding != _bech32.Encoding.BECH32:
        raise BtcTxError("witness v0 address with a bech32m checksum (v0 uses bech32)")
    if version != 0 and encoding != _bech32.Encoding.BECH32M:
        raise BtcTxError(f"witness v{version} address with a bech32 checksum (BIP-350: bech32m)")
    if version > 1 or (version == 1 and len(program) != 32):
        raise BtcTxError(
            f"witness v{version} program of {len(program)} bytes: valid, but not an output "
            "type a release pays to (P2WPKH, P2WSH, P2TR)"
        )
    return witness_script(version, program)


def _base58_script(address: str, network: str) -> bytes:
    try:
        raw = base58.b58decode(address)
    except ValueError:
        prefixes = ", ".join(sorted({hrp + "1" for hrp in BTC_HRP.values()}))
        raise BtcTxError(
            f"neither a base58 address nor a bech32 one with a Bitcoin prefix ({prefixes})"
        ) from None
    try:
        payload = bytes(base58.b58decode_check(address))
    except ValueError:
        raise BtcTxError("base58check checksum does not match") from None
    if len(raw) != 25:
        raise BtcTxError(f"base58 address payload of {len(raw) - 4} bytes, not 21")
    version, body = payload[0], payload[1:]
    p2pkh, p2sh = _BASE58_VERSIONS[_BASE58_NETWORK[network]]
    if version == p2pkh:
        return p2pkh_script(body)
    if version == p2sh:
        return p2sh_script(body)
    for name, versions in _BASE58_VERSIONS.items():
        if version in versions:
            others = "testnet/signet/regtest" if name == "testnet" else name
            raise BtcTxError(f"a {others} base58 address (version {version}), not {network}")
    raise BtcTxError(f"base58 version byte {version} is not P2PKH or P2SH")


# -- sizes --------------------------------------------------------------------------------------


def release_weight(n_inputs: int, output_scripts: Sequence[bytes]) -> int:
    """The weight (BIP-141) of a signed release with `n_inputs` P2WPKH inputs, every
    signature at its longest (72 bytes with the sighash byte: see the module docstring).

    base    = version 4 ‖ #in ‖ 41 per input (36 outpoint, 1 empty scriptSig, 4 sequence)
              ‖ #out ‖ per output 8 + size + script ‖ locktime 4
    witness = marker and flag 2 ‖ per input: 1 (2 items) + 1 + 72 + 1 + 33 = 108
    weight  = 4 · base + witness
    """
    if n_inputs < 1:
        raise BtcTxError("a release has at least one input")
    if not output_scripts:
        raise BtcTxError("a release has at least one output")
    count = VarIntSerializer.serialize
    base = 4 + len(count(n_inputs)) + 41 * n_inputs + len(count(len(output_scripts)))
    base += sum(8 + len(BytesSerializer.serialize(s)) for s in output_scripts) + 4
    witness = 2 + n_inputs * (1 + 1 + MAX_SIGNATURE_SIZE + 1 + PUBLIC_KEY_SIZE)
    return 4 * base + witness


def release_vsize(n_inputs: int, output_scripts: Sequence[bytes]) -> int:
    """The virtual size, ⌈weight / 4⌉, of the signed release (`release_weight`): an upper
    bound on the signed transaction's, so that fee = rate · vsize never pays below rate."""
    return -(-release_weight(n_inputs, output_scripts) // 4)


# -- serialization ------------------------------------------------------------------------------


def _parse(raw: bytes) -> CTransaction:
    """A transaction in either serialization, by python-bitcoinlib; BtcTxError unless
    `raw` is exactly one, in the form Core writes."""
    if not isinstance(raw, bytes):
        raise BtcTxError("a transaction is bytes")
    # an input count of 0, where the segwit marker would be or after marker and flag (a
    # non-canonical 0 fails below): python-bitcoinlib would read on, for a flag or outputs
    if raw[4:5] == b"\x00" and (raw[5:6] != b"\x01" or raw[6:7] == b"\x00"):
        raise BtcTxError("transaction without inputs")
    try:
        tx = CTransaction.deserialize(raw)
    except DeserializationExtraDataError:
        raise BtcTxError("bytes after the end of the transaction") from None
    except SerializationError:
        raise BtcTxError("transaction truncated") from None
    if raw[4:6] == b"\x00\x01" and not tx.has_witness():
        raise BtcTxError("segwit serialization with no witness (superfluous marker)")
    # python-bitcoinlib reads a compact size in any width: the same fields written back
    # differ from `raw` only where a size took more bytes than it needs
    if tx.serialize() != raw:
        raise BtcTxError("non-canonical compact size in transaction")
    return tx


def txid(tx: bytes) -> bytes:
    """The txid in internal byte order (the reverse of the hex Core displays): double
    SHA-256 of the non-witness serialization, so the same before and after signing."""
    return bytes(_parse(tx).GetTxid())


# -- building and signing -----------------------------------------------------------------------


def unsigned_release(
    coins: Sequence[Coin], payouts: Sequence[Payout], *, locktime: int = 0
) -> bytes:
    """The release without witnesses: version 2, the coins as inputs in the given order
    (empty scriptSig, RBF_SEQUENCE), the payouts as outputs in the given order. The fee is
    what the coins hold beyond the payouts."""
    if not coins:
        raise BtcTxError("a release spends at least one coin")
    if not payouts:
        raise BtcTxError("a release pays at least one output")
    if not isinstance(locktime, int) or not 0 <= locktime <= _UINT32:
        raise BtcTxError("locktime is a 32-bit unsigned integer")
    seen: set[tuple[bytes, int]] = set()
    for i, coin in enumerate(coins):
        if not isinstance(coin, Coin):
            raise BtcTxError(f"input {i} is not a Coin")
        if coin.outpoint in seen:
            raise BtcTxError(f"input {i} spends {coin.txid[::-1].hex()}:{coin.vout} twice")
        seen.add(coin.outpoint)
    for i, payout in enumerate(payouts):
        if not isinstance(payout, Payout):
            raise BtcTxError(f"output {i} is not a Payout")
        kind = output_type(payout.script)
        if kind is None:
            raise BtcTxError(f"output {i} is not P2PKH, P2SH, P2WPKH, P2WSH or P2TR")
        if payout.value < dust_limit(payout.script):
            raise BtcTxError(
                f"output {i} ({kind}) of {payout.value} sat is dust "
                f"(below {dust_limit(payout.script)} sat)"
            )
    total_in = sum(coin.value for coin in coins)
    total_out = sum(payout.value for payout in payouts)
    if total_in > MAX_MONEY or total_out > MAX_MONEY:
        raise BtcTxError("a release moves more than 21,000,000 BTC")
    if total_out > total_in:
        raise BtcTxError(f"outputs {total_out} sat exceed inputs {total_in} sat")
    weight = release_weight(len(coins), [p.script for p in payouts])
    if weight > MAX_STANDARD_TX_WEIGHT:
        raise BtcTxError(f"signed weight {weight} above the standard {MAX_STANDARD_TX_WEIGHT}")
    tx = CTransaction(
        [CTxIn(COutPoint(c.txid, c.vout), CScript(), RBF_SEQUENCE) for c in coins],
        [CTxOut(p.value, CScript(p.script)) for p in payouts],
        locktime,
        VERSION,
    )
    return bytes(tx.serialize())


def _check_coins(tx: CTransaction, coins: Sequence[Coin]) -> None:
    if len(coins) != len(tx.vin):
        raise BtcTxError(f"{len(coins)} coins for {len(tx.vin)} inputs")
    for i, (coin, txin) in enumerate(zip(coins, tx.vin, strict=True)):
        if not isinstance(coin, Coin):
            raise BtcTxError(f"coin {i} is not a Coin")
        if coin.outpoint != (txin.prevout.hash, txin.prevout.n):
            raise BtcTxError(f"coin {i} is not the output input {i} spends")


def sighashes(tx: bytes, coins: Sequence[Coin]) -> list[bytes]:
    """The BIP-143 SIGHASH_ALL digest of each input, by python-bitcoinlib: scriptCode the
    P2PKH script of the coin's key hash, amount the coin's value. `coins` are the outputs
    the inputs spend, in input order."""
    parsed = _parse(tx)
    _check_coins(parsed, coins)
    mutable = CMutableTransaction.from_tx(parsed)
    # python-bitcoinlib packs nLockTime as a signed int32 into the digest: a locktime of
    # 2³¹ or more would raise there; the same 4 bytes as a negative number do not.
    if mutable.nLockTime > 0x7FFFFFFF:
        mutable.nLockTime -= 1 << 32
    return [
        bytes(
            SignatureHash(
                CScript(p2pkh_script(coin.key_hash)),
                mutable,
                index,
                SIGHASH_ALL,
                amount=coin.value,
                sigversion=SIGVERSION_WITNESS_V0,
            )
        )
        for index, coin in enumerate(coins)
    ]


def _check_public_key(key: bytes, index: int) -> None:
    if not isinstance(key, bytes) or len(key) != PUBLIC_KEY_SIZE or key[0] not in (2, 3):
        raise BtcTxError(f"input {index}: the public key is not 33 bytes compressed")
    try:
        Point.from_bytes(key)
    except InvalidPoint:
        raise BtcTxError(f"input {index}: the public key is not a curve point") from None


def signed_release(
    tx: bytes, signatures: Sequence[tuple[int, int]], public_keys: Sequence[bytes]
) -> bytes:
    """The release with its witnesses, [DER(r, s) ‖ SIGHASH_ALL, compressed public key]
    per input, in the segwit serialization. The signatures are not verified here
    (`verify_spends` does it, with the amounts); their form is: low s only."""
    parsed = _parse(tx)
    if parsed.has_witness():
        raise BtcTxError("the transaction already has witnesses: give the unsigned one")
    n = len(parsed.vin)
    if len(signatures) != n or len(public_keys) != n:
        raise BtcTxError(
            f"{len(signatures)} signatures and {len(public_keys)} public keys for {n} inputs"
        )
    witnesses: list[CTxInWitness] = []
    for index, ((r, s), key) in enumerate(zip(signatures, public_keys, strict=True)):
        if parsed.vin[index].scriptSig:
            raise BtcTxError(f"input {index}: a P2WPKH spend has an empty scriptSig")
        if not (0 < r < Q and 0 < s < Q):
            raise BtcTxError(f"input {index}: r or s out of range [1, q)")
        if s > HALF_Q:
            raise BtcTxError(
                f"input {index}: high-s signature (s > q/2): Bitcoin's standardness rules "
                "(LOW_S, BIP-146) reject it; normalise s to q - s"
            )
        _check_public_key(key, index)
        sig = encode_dss_signature(r, s) + bytes([SIGHASH_ALL])
        witnesses.append(CTxInWitness(CScriptWitness((sig, key))))
    signed = CTransaction(
        parsed.vin, parsed.vout, parsed.nLockTime, parsed.nVersion, CTxWitness(witnesses)
    )
    return bytes(signed.serialize())


# -- checking -----------------------------------------------------------------------------------


def _witness_problem(tx: CTransaction, index: int, coin: Coin) -> str | None:
    """Why the witness of a P2WPKH input is not what a release carries, or None."""
    stack = tx.wit.vtxinwit[index].scriptWitness.stack if tx.has_witness() else ()
    if tx.vin[index].scriptSig:
        return "scriptSig is not empty"
    if not stack:
        return "no witness (not signed)"
    if len(stack) != 2:
        return f"witness of {len(stack)} items, not [signature, public key]"
    sig, key = stack
    if hash160(key) != coin.key_hash:
        return "public key does not hash to the coin's key hash"
    if len(key) != PUBLIC_KEY_SIZE or key[0] not in (2, 3):
        return "public key is not compressed (standardness: WITNESS_PUBKEYTYPE)"
    if sig[-1:] != bytes([SIGHASH_ALL]):
        return f"sighash type {sig[-1:].hex() or 'missing'} is not SIGHASH_ALL"
    try:
        _, s = decode_dss_signature(sig[:-1])
    except ValueError:
        return "signature is not strict DER"
    if s > HALF_Q:
        return "high-s signature (standardness: LOW_S; the kernel checks consensus only)"
    return None


def verify_spends(tx: bytes, coins: Sequence[Coin]) -> None:
    """Check every input of a signed release against the coin it spends: its script by
    Bitcoin Core's consensus engine (libbitcoinkernel, all flags, with every spent output's
    amount and script), then the standardness rules the kernel leaves out (low s, a
    compressed key, SIGHASH_ALL). ScriptRejected names the first failing input."""
    parsed = _parse(tx)
    _check_coins(parsed, coins)
    try:
        failure = first_script_failure(tx, [(coin.value, coin.script) for coin in coins])
    except KernelInputError as exc:
        raise BtcTxError(str(exc)) from None
    for index, coin in enumerate(coins):
        problem = _witness_problem(parsed, index, coin)
        if failure is not None and failure.index == index:
            cause = (
                problem
                or "the signature does not verify over this input's BIP-143 digest "
                "(signed another digest, or the coin's amount differs)"
            )
            raise ScriptRejected(
                index, f"{failure.reason}; inferred cause: {cause}", by_kernel=True
            )
        if problem is not None:
            raise ScriptRejected(index, problem, by_kernel=False)
