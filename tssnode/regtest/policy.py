"""Bitcoin Core's standardness policy (src/policy/policy.cpp), with its default settings.

    IsStandardTx       version 1..2, weight ≤ 400 000, scriptSig ≤ 1650 bytes and push-only,
                       standard outputs only (P2PK, P2PKH, P2SH, bare multisig ≤ 3 keys,
                       P2WPKH, P2WSH, P2TR, P2A, witness v2..16, OP_RETURN ≤ 83 bytes of
                       script), no dust (3000 sat/kvB dust relay fee), one OP_RETURN
    AreInputsStandard  no spend of a nonstandard or unknown-witness output; a P2SH redeem
                       script with at most 15 signature operations
    IsWitnessStandard  P2WSH: script ≤ 3600 bytes, ≤ 100 items of ≤ 80 bytes; taproot: no
                       annex, tapscript items ≤ 80 bytes; no witness on non-witness inputs
    script flags       LOW_S, STRICTENC (hash types, public-key encoding), CLEANSTACK for
                       key-hash spends, WITNESS_PUBKEYTYPE: see `check_script_policy`

Raises `TxRejected` with Core's reject reason. DEVIATION: Core 28+ also accepts version-3
(TRUC) transactions under their own topology rules and Core 29 lets a zero-fee parent
carry one dust output (ephemeral dust); neither is implemented, so both are refused as
"version" and "dust". The script flags are checked here, not by the kernel, because its
C API accepts consensus flags only.
"""

from __future__ import annotations

from collections.abc import Sequence

from tssnode.regtest import scripts
from tssnode.regtest.chain import Coin
from tssnode.regtest.errors import TxRejected
from tssnode.regtest.txs import Tx, TxIn

MAX_STANDARD_VERSION = 2
MAX_STANDARD_TX_WEIGHT = 400_000
MIN_STANDARD_TX_NONWITNESS_SIZE = 65
MAX_STANDARD_SCRIPTSIG_SIZE = 1650
MAX_STANDARD_TX_SIGOPS_COST = 16_000
MAX_P2SH_SIGOPS = 15
MAX_STANDARD_P2WSH_SCRIPT_SIZE = 3600
MAX_STANDARD_P2WSH_STACK_ITEMS = 100
MAX_STANDARD_P2WSH_STACK_ITEM_SIZE = 80
MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE = 80
DUST_RELAY_FEE = 3000  # sat/kvB
ANNEX_TAG = 0x50
TAPROOT_LEAF_TAPSCRIPT = 0xC0


def is_standard_output(spk: bytes) -> bool:
    """`IsStandard` for one scriptPubKey."""
    kind = scripts.classify(spk)
    if kind == "nonstandard":
        return False
    if kind == "multisig":
        ops = scripts.parse(spk)
        m, n = ops[0][0] - 0x50, ops[-2][0] - 0x50
        return 1 <= n <= 3 and 1 <= m <= n
    if kind == "nulldata":
        return len(spk) <= scripts.MAX_OP_RETURN_RELAY
    return True


def check_standard(tx: Tx, *, permit_bare_multisig: bool = True) -> None:
    """`IsStandardTx`, then the minimum non-witness size."""
    if not 1 <= tx.version <= MAX_STANDARD_VERSION:
        raise TxRejected("version")
    if tx.weight > MAX_STANDARD_TX_WEIGHT:
        raise TxRejected("tx-size")
    for txin in tx.vin:
        if len(txin.script_sig) > MAX_STANDARD_SCRIPTSIG_SIZE:
            raise TxRejected("scriptsig-size")
        if not scripts.is_push_only(txin.script_sig):
            raise TxRejected("scriptsig-not-pushonly")
    data_outputs = 0
    for out in tx.vout:
        if not is_standard_output(out.script):
            raise TxRejected("scriptpubkey")
        kind = scripts.classify(out.script)
        if kind == "nulldata":
            data_outputs += 1
        elif kind == "multisig" and not permit_bare_multisig:
            raise TxRejected("bare-multisig")
    if any(out.value < scripts.dust_threshold(out.script, DUST_RELAY_FEE) for out in tx.vout):
        raise TxRejected("dust")
    if data_outputs > 1:
        raise TxRejected("multi-op-return")
    if tx.stripped_size < MIN_STANDARD_TX_NONWITNESS_SIZE:
        raise TxRejected("tx-size-small")


def _redeem_script(txin: TxIn) -> bytes | None:
    stack = scripts.pushes(txin.script_sig)
    return stack[-1] if stack else None


def check_inputs_standard(tx: Tx, coins: Sequence[Coin]) -> None:
    """`AreInputsStandard`."""
    for txin, coin in zip(tx.vin, coins, strict=True):
        kind = scripts.classify(coin.script)
        if kind in ("nonstandard", "witness_unknown"):
            raise TxRejected("bad-txns-nonstandard-inputs")
        if kind == "scripthash":
            redeem = _redeem_script(txin)
            if redeem is None or scripts.sigop_count(redeem, True) > MAX_P2SH_SIGOPS:
                raise TxRejected("bad-txns-nonstandard-inputs")


def check_witness_standard(tx: Tx, coins: Sequence[Coin]) -> None:
    """`IsWitnessStandard`."""
    bad = TxRejected("bad-witness-nonstandard")
    for txin, coin in zip(tx.vin, coins, strict=True):
        if not txin.witness:
            continue
        spk, p2sh = coin.script, False
        if scripts.is_p2sh(spk):
            redeem = _redeem_script(txin)
            if redeem is None:
                raise bad
            spk, p2sh = redeem, True
        if scripts.classify(spk) == "anchor":
            raise bad  # a pay-to-anchor output is spent with an empty witness
        program = scripts.witness_program(spk)
        if program is None:
            raise bad  # witness stuffing on a non-witness input
        version, prog = program
        stack = list(txin.witness)
        if version == 0 and len(prog) == 32:
            if len(stack[-1]) > MAX_STANDARD_P2WSH_SCRIPT_SIZE:
                raise bad
            if len(stack) - 1 > MAX_STANDARD_P2WSH_STACK_ITEMS:
                raise bad
            if any(len(item) > MAX_STANDARD_P2WSH_STACK_ITEM_SIZE for item in stack[:-1]):
                raise bad
        if version == 1 and len(prog) == 32 and not p2sh:
            if len(stack) >= 2 and stack[-1][:1] == bytes([ANNEX_TAG]):
                raise bad
            if len(stack) >= 2:
                control = stack[-1]
                if not control:
                    raise bad
                if control[0] & 0xFE == TAPROOT_LEAF_TAPSCRIPT and any(
                    len(item) > MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE for item in stack[:-2]
                ):
                    raise bad


def _signature_error(sig: bytes) -> str | None:
    """`CheckSignatureEncoding` under STRICTENC | LOW_S | DERSIG."""
    if not sig:
        return None
    if not scripts.is_valid_signature_encoding(sig):
        return "Non-canonical DER signature"
    if not scripts.is_low_s(sig):
        return "Non-canonical signature: S value is unnecessarily high"
    if not scripts.is_defined_hashtype(sig):
        return "Signature hash type missing or not understood"
    return None


def _key_error(key: bytes, segwit: bool) -> str | None:
    """`CheckPubKeyEncoding` under STRICTENC | WITNESS_PUBKEYTYPE."""
    if not scripts.is_valid_pubkey_encoding(key):
        return "Public key is neither compressed or uncompressed"
    if segwit and not scripts.is_compressed_pubkey(key):
        return "Using non-compressed keys in segwit"
    return None


def _key_hash_spend(stack: Sequence[bytes], segwit: bool) -> str | None:
    if len(stack) != 2:
        return None if segwit else "Stack size must be exactly one after execution"
    return _signature_error(stack[0]) or _key_error(stack[1], segwit)


def _signatures_only(items: Sequence[bytes]) -> str | None:
    """Scripts whose signatures cannot be told from other items without running them:
    the items that are DER signatures are checked (LOW_S and hash type)."""
    for item in items:
        if item[:1] == b"\x30" and scripts.is_valid_signature_encoding(item):
            error = _signature_error(item)
            if error:
                return error
    return None


def script_policy_error(txin: TxIn, coin: Coin) -> str | None:
    """The policy script flag an input breaks (Core's script error text), or None."""
    kind = scripts.classify(coin.script)
    stack = scripts.pushes(txin.script_sig) or []
    if kind == "pubkeyhash":
        return _key_hash_spend(stack, segwit=False)
    if kind == "witness_v0_keyhash":
        return _key_hash_spend(txin.witness, segwit=True)
    if kind == "pubkey":
        if len(stack) != 1:
            return "Stack size must be exactly one after execution"
        return _signature_error(stack[0])
    if kind == "scripthash" and stack:
        inner = scripts.classify(stack[-1])
        if inner == "witness_v0_keyhash":
            return _key_hash_spend(txin.witness, segwit=True)
        if inner == "witness_v0_scripthash":
            return _signatures_only(txin.witness[:-1])
        return _signatures_only(stack[:-1])
    if kind == "witness_v0_scripthash":
        return _signatures_only(txin.witness[:-1])
    if kind == "multisig":
        return _signatures_only(stack[1:])
    return None


def check_script_policy(tx: Tx, coins: Sequence[Coin]) -> None:
    """The standard script flags beyond consensus, per input, in input order."""
    for txin, coin in zip(tx.vin, coins, strict=True):
        error = script_policy_error(txin, coin)
        if error:
            raise TxRejected(f"non-mandatory-script-verify-flag ({error})")
