"""Scripts as Bitcoin Core's policy and RPC see them: parsing, the output types of
`Solver` (src/script/solver.cpp), signature-operation counts, `asm` text, and the
signature and public-key encodings the policy flags check.

Nothing here decides consensus validity: the kernel does (`kernel.Kernel.verify_inputs`).
These are the facts policy needs and the kernel's C API does not give: it takes only
consensus verification flags (an assertion aborts the process on any other bit), so
`LOW_S`, `STRICTENC` and `WITNESS_PUBKEYTYPE` are checked here (`policy.py`).
"""

from __future__ import annotations

OP_0 = 0x00
OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4 = 0x4C, 0x4D, 0x4E
OP_1NEGATE, OP_1, OP_16 = 0x4F, 0x51, 0x60
OP_RETURN = 0x6A
OP_DUP, OP_EQUAL, OP_EQUALVERIFY, OP_HASH160 = 0x76, 0x87, 0x88, 0xA9
OP_CHECKSIG, OP_CHECKSIGVERIFY = 0xAC, 0xAD
OP_CHECKMULTISIG, OP_CHECKMULTISIGVERIFY = 0xAE, 0xAF

MAX_SCRIPT_SIZE = 10_000
MAX_OP_RETURN_RELAY = 83  # -datacarriersize default before Core 30: the whole script
ANCHOR_PROGRAM = b"\x4e\x73"  # pay-to-anchor (P2A): OP_1 <0x4e73>

Op = tuple[int, bytes | None]

_NAMES = {
    0x50: "OP_RESERVED", 0x61: "OP_NOP", 0x62: "OP_VER", 0x63: "OP_IF", 0x64: "OP_NOTIF",
    0x65: "OP_VERIF", 0x66: "OP_VERNOTIF", 0x67: "OP_ELSE", 0x68: "OP_ENDIF",
    0x69: "OP_VERIFY", 0x6A: "OP_RETURN", 0x6B: "OP_TOALTSTACK", 0x6C: "OP_FROMALTSTACK",
    0x6D: "OP_2DROP", 0x6E: "OP_2DUP", 0x6F: "OP_3DUP", 0x70: "OP_2OVER", 0x71: "OP_2ROT",
    0x72: "OP_2SWAP", 0x73: "OP_IFDUP", 0x74: "OP_DEPTH", 0x75: "OP_DROP", 0x76: "OP_DUP",
    0x77: "OP_NIP", 0x78: "OP_OVER", 0x79: "OP_PICK", 0x7A: "OP_ROLL", 0x7B: "OP_ROT",
    0x7C: "OP_SWAP", 0x7D: "OP_TUCK", 0x7E: "OP_CAT", 0x7F: "OP_SUBSTR", 0x80: "OP_LEFT",
    0x81: "OP_RIGHT", 0x82: "OP_SIZE", 0x83: "OP_INVERT", 0x84: "OP_AND", 0x85: "OP_OR",
    0x86: "OP_XOR", 0x87: "OP_EQUAL", 0x88: "OP_EQUALVERIFY", 0x89: "OP_RESERVED1",
    0x8A: "OP_RESERVED2", 0x8B: "OP_1ADD", 0x8C: "OP_1SUB", 0x8D: "OP_2MUL", 0x8E: "OP_2DIV",
    0x8F: "OP_NEGATE", 0x90: "OP_ABS", 0x91: "OP_NOT", 0x92: "OP_0NOTEQUAL", 0x93: "OP_ADD",
    0x94: "OP_SUB", 0x95: "OP_MUL", 0x96: "OP_DIV", 0x97: "OP_MOD", 0x98: "OP_LSHIFT",
    0x99: "OP_RSHIFT", 0x9A: "OP_BOOLAND", 0x9B: "OP_BOOLOR", 0x9C: "OP_NUMEQUAL",
    0x9D: "OP_NUMEQUALVERIFY", 0x9E: "OP_NUMNOTEQUAL", 0x9F: "OP_LESSTHAN",
    0xA0: "OP_GREATERTHAN", 0xA1: "OP_LESSTHANOREQUAL", 0xA2: "OP_GREATERTHANOREQUAL",
    0xA3: "OP_MIN", 0xA4: "OP_MAX", 0xA5: "OP_WITHIN", 0xA6: "OP_RIPEMD160", 0xA7: "OP_SHA1",
    0xA8: "OP_SHA256", 0xA9: "OP_HASH160", 0xAA: "OP_HASH256", 0xAB: "OP_CODESEPARATOR",
    0xAC: "OP_CHECKSIG", 0xAD: "OP_CHECKSIGVERIFY", 0xAE: "OP_CHECKMULTISIG",
    0xAF: "OP_CHECKMULTISIGVERIFY", 0xB0: "OP_NOP1", 0xB1: "OP_CHECKLOCKTIMEVERIFY",
    0xB2: "OP_CHECKSEQUENCEVERIFY", 0xBA: "OP_CHECKSIGADD", 0xFF: "OP_INVALIDOPCODE",
    **{0xB3 + i: f"OP_NOP{4 + i}" for i in range(7)},
}  # fmt: skip
_SIGHASH_NAMES = {
    0x01: "ALL", 0x02: "NONE", 0x03: "SINGLE",
    0x81: "ALL|ANYONECANPAY", 0x82: "NONE|ANYONECANPAY", 0x83: "SINGLE|ANYONECANPAY",
}  # fmt: skip


class ScriptParseError(ValueError):
    """A push runs past the end of the script."""


def parse(script: bytes) -> list[Op]:
    """(opcode, pushed data or None) for each operation; ScriptParseError if truncated."""
    ops: list[Op] = []
    i, n = 0, len(script)
    while i < n:
        op = script[i]
        i += 1
        if op > OP_PUSHDATA4:
            ops.append((op, None))
            continue
        if op < OP_PUSHDATA1:
            size = op
        else:
            width = {OP_PUSHDATA1: 1, OP_PUSHDATA2: 2, OP_PUSHDATA4: 4}[op]
            if i + width > n:
                raise ScriptParseError("truncated push length")
            size = int.from_bytes(script[i : i + width], "little")
            i += width
        if i + size > n:
            raise ScriptParseError("push past the end of the script")
        ops.append((op, script[i : i + size]))
        i += size
    return ops


def is_push_only(script: bytes) -> bool:
    """`CScript::IsPushOnly`: only pushes and OP_1NEGATE..OP_16 (OP_RESERVED excluded)."""
    try:
        return all(op <= OP_16 and op != 0x50 for op, _ in parse(script))
    except ScriptParseError:
        return False


def pushes(script: bytes) -> list[bytes] | None:
    """The stack a push-only script leaves (small integers as their minimal encoding), or
    None if it is not push-only."""
    if not is_push_only(script):
        return None
    stack: list[bytes] = []
    for op, data in parse(script):
        if data is not None:
            stack.append(data)
        elif op == OP_1NEGATE:
            stack.append(b"\x81")
        else:
            stack.append(bytes([op - 0x50]))
    return stack


def witness_program(spk: bytes) -> tuple[int, bytes] | None:
    """`CScript::IsWitnessProgram`: (version, program) or None."""
    if not 4 <= len(spk) <= 42:
        return None
    if spk[0] != OP_0 and not OP_1 <= spk[0] <= OP_16:
        return None
    if spk[1] + 2 != len(spk):
        return None
    return (0 if spk[0] == OP_0 else spk[0] - 0x50), spk[2:]


def is_p2sh(spk: bytes) -> bool:
    return len(spk) == 23 and spk[0] == OP_HASH160 and spk[1] == 0x14 and spk[22] == OP_EQUAL


def _is_pubkey(data: bytes | None) -> bool:
    if data is None:
        return False
    return (len(data) == 33 and data[0] in (2, 3)) or (len(data) == 65 and data[0] == 4)


def classify(spk: bytes) -> str:
    """Core's `TxoutType` name (`GetTxnOutputType`) of a scriptPubKey."""
    if is_p2sh(spk):
        return "scripthash"
    witness = witness_program(spk)
    if witness is not None:
        version, program = witness
        if version == 1 and program == ANCHOR_PROGRAM:
            return "anchor"
        if version == 0 and len(program) == 20:
            return "witness_v0_keyhash"
        if version == 0 and len(program) == 32:
            return "witness_v0_scripthash"
        if version == 1 and len(program) == 32:
            return "witness_v1_taproot"
        return "witness_unknown" if version != 0 else "nonstandard"
    if spk[:1] == bytes([OP_RETURN]) and is_push_only(spk[1:]):
        return "nulldata"
    try:
        ops = parse(spk)
    except ScriptParseError:
        return "nonstandard"
    if len(ops) == 2 and ops[1][0] == OP_CHECKSIG and _is_pubkey(ops[0][1]):
        return "pubkey"
    if (
        len(spk) == 25
        and spk[:3] == bytes([OP_DUP, OP_HASH160, 0x14])
        and spk[23:] == bytes([OP_EQUALVERIFY, OP_CHECKSIG])
    ):
        return "pubkeyhash"
    if len(ops) >= 4 and ops[-1][0] == OP_CHECKMULTISIG:
        m, n = ops[0][0], ops[-2][0]
        keys = ops[1:-2]
        if (
            OP_1 <= m <= OP_16
            and OP_1 <= n <= OP_16
            and m <= n
            and n - 0x50 == len(keys)
            and all(_is_pubkey(data) for _, data in keys)
        ):
            return "multisig"
    return "nonstandard"


def is_unspendable(spk: bytes) -> bool:
    """`CScript::IsUnspendable`: never enters the UTXO set."""
    return spk[:1] == bytes([OP_RETURN]) or len(spk) > MAX_SCRIPT_SIZE


def sigop_count(script: bytes, accurate: bool) -> int:
    """`CScript::GetSigOpCount(fAccurate)`; stops at a parse error as Core does."""
    count, last = 0, 0xFF
    i, n = 0, len(script)
    while i < n:
        op = script[i]
        i += 1
        if op <= OP_PUSHDATA4:
            if op < OP_PUSHDATA1:
                size = op
            else:
                width = {OP_PUSHDATA1: 1, OP_PUSHDATA2: 2, OP_PUSHDATA4: 4}[op]
                if i + width > n:
                    break
                size = int.from_bytes(script[i : i + width], "little")
                i += width
            if i + size > n:
                break
            i += size
        elif op in (OP_CHECKSIG, OP_CHECKSIGVERIFY):
            count += 1
        elif op in (OP_CHECKMULTISIG, OP_CHECKMULTISIGVERIFY):
            count += last - 0x50 if accurate and OP_1 <= last <= OP_16 else 20
        last = op
    return count


def output_size(value_spk: bytes) -> int:
    """Serialized size of a CTxOut with this scriptPubKey: value, compact size, script."""
    n = len(value_spk)
    compact = 1 if n < 0xFD else 3 if n <= 0xFFFF else 5
    return 8 + compact + n


def dust_threshold(spk: bytes, dust_relay_fee: int = 3000) -> int:
    """`GetDustThreshold`: an output is dust below what spending it would cost at the dust
    relay fee (3000 sat/kvB): 294 sats for P2WPKH, 330 P2WSH/P2TR, 540 P2SH, 546 P2PKH."""
    if is_unspendable(spk):
        return 0
    size = output_size(spk)
    if witness_program(spk) is not None:
        size += 32 + 4 + 1 + (107 // 4) + 4
    else:
        size += 32 + 4 + 1 + 107 + 4
    return -((-dust_relay_fee * size) // 1000)


# -- signature and key encodings (BIP-66 DER, low S, hash types) ------------------------------

_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def is_valid_signature_encoding(sig: bytes) -> bool:
    """BIP-66 strict DER (`IsValidSignatureEncoding`), `sig` including its hash-type byte."""
    if not 9 <= len(sig) <= 73 or sig[0] != 0x30 or sig[1] != len(sig) - 3:
        return False
    len_r = sig[3]
    if 5 + len_r >= len(sig):
        return False
    len_s = sig[5 + len_r]
    if len_r + len_s + 7 != len(sig):
        return False
    if sig[2] != 0x02 or len_r == 0 or sig[4] & 0x80:
        return False
    if len_r > 1 and sig[4] == 0 and not sig[5] & 0x80:
        return False
    if sig[len_r + 4] != 0x02 or len_s == 0 or sig[len_r + 6] & 0x80:
        return False
    return not (len_s > 1 and sig[len_r + 6] == 0 and not sig[len_r + 7] & 0x80)


def is_low_s(sig: bytes) -> bool:
    """S ≤ n/2 (`SCRIPT_VERIFY_LOW_S`); `sig` is a valid DER encoding plus hash type."""
    len_r = sig[3]
    len_s = sig[5 + len_r]
    s = int.from_bytes(sig[6 + len_r : 6 + len_r + len_s], "big")
    return s <= _HALF_N


def is_defined_hashtype(sig: bytes) -> bool:
    return bool(sig) and sig[-1] in _SIGHASH_NAMES


def is_valid_pubkey_encoding(key: bytes) -> bool:
    """STRICTENC's `IsCompressedOrUncompressedPubKey`."""
    return _is_pubkey(key)


def is_compressed_pubkey(key: bytes) -> bool:
    return len(key) == 33 and key[0] in (2, 3)


# -- asm --------------------------------------------------------------------------------------


def _scriptnum(data: bytes) -> int:
    if not data:
        return 0
    value = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        return -(value & ~(0x80 << (8 * (len(data) - 1))))
    return value


def asm(script: bytes, sighash_decode: bool = False) -> str:
    """`ScriptToAsmStr`: pushes of ≤ 4 bytes as numbers, others as hex (a signature as
    hex plus `[ALL]` when `sighash_decode`), opcodes by name, `[error]` on a bad push."""
    out: list[str] = []
    i, n = 0, len(script)
    while i < n:
        op = script[i]
        i += 1
        if op <= OP_PUSHDATA4:
            if op < OP_PUSHDATA1:
                size = op
            else:
                width = {OP_PUSHDATA1: 1, OP_PUSHDATA2: 2, OP_PUSHDATA4: 4}[op]
                if i + width > n:
                    out.append("[error]")
                    break
                size = int.from_bytes(script[i : i + width], "little")
                i += width
            if i + size > n:
                out.append("[error]")
                break
            data = script[i : i + size]
            i += size
            if size <= 4:
                out.append(str(_scriptnum(data)))
            elif (
                sighash_decode
                and not is_unspendable(script)
                and is_valid_signature_encoding(data)
                and is_defined_hashtype(data)
            ):
                out.append(data[:-1].hex() + f"[{_SIGHASH_NAMES[data[-1]]}]")
            else:
                out.append(data.hex())
        elif op == OP_1NEGATE:
            out.append("-1")
        elif OP_1 <= op <= OP_16:
            out.append(str(op - 0x50))
        else:
            out.append(_NAMES.get(op, "OP_UNKNOWN"))
    return " ".join(out)
