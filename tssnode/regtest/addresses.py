"""Regtest addresses and output descriptors, both ways, without python-bitcoinlib's global
network selection (`bitcoin.SelectParams` would leak into the rest of a process).

    bech32  (BIP-173)  segwit v0:        bcrt1q…     P2WPKH (20 bytes), P2WSH (32 bytes)
    bech32m (BIP-350)  segwit v1..v16:   bcrt1p…     P2TR (v1, 32 bytes), P2A, unknown
    base58check                          m…/n…       P2PKH (version 111), 2… P2SH (196)

Encodings come from well-kept packages: `bech32m` (BIP-173 and BIP-350; the `bech32`
package the node uses predates bech32m) and `base58`. The descriptor checksum (BIP-380)
follows the BIP's reference code: no package offers it. `descriptor` gives the `desc`
field Core's RPC puts in every scriptPubKey object: `addr(…)`, `pk(…)`, `multi(…)` or
`raw(…)`.
"""

from __future__ import annotations

import base58
import bech32m

from tssnode.regtest import scripts

HRP = "bcrt"
P2PKH_VERSION = 111
P2SH_VERSION = 196

#: the bech32 alphabet (BIP-173), which descriptor checksums (BIP-380) print in too
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


class AddressError(ValueError):
    """Not a regtest address this service can pay to."""


# -- bech32 / bech32m (the `bech32m` package) and base58check (the `base58` package) ---------


def encode_segwit(version: int, program: bytes, hrp: str = HRP) -> str:
    """bech32 for witness v0, bech32m for v1+ (BIP-350)."""
    return str(bech32m.encode(hrp, version, program))


def decode_segwit(address: str, hrp: str = HRP) -> tuple[int, bytes]:
    """(witness version, program) of a bech32/bech32m address; AddressError otherwise."""
    try:
        decoded = bech32m.decode(hrp, address)
    except bech32m.HrpDoesNotMatch:
        raise AddressError(f"not a {hrp} (regtest) address") from None
    except (bech32m.DecodeError, ValueError, TypeError):
        raise AddressError("invalid bech32/bech32m address") from None
    return decoded.witver, bytes(decoded.witprog)


def encode_base58check(payload: bytes) -> str:
    return base58.b58encode_check(payload).decode("ascii")


def decode_base58check(text: str) -> bytes:
    try:
        return bytes(base58.b58decode_check(text))
    except ValueError:
        raise AddressError("invalid base58check string") from None


# -- address <-> scriptPubKey -------------------------------------------------------------------


def to_script(address: str) -> bytes:
    """The scriptPubKey an address pays to (regtest only); AddressError otherwise."""
    if address[:5].lower() == HRP + "1":
        version, program = decode_segwit(address)
        op = 0 if version == 0 else 0x50 + version
        return bytes([op, len(program)]) + program
    try:
        payload = decode_base58check(address)
    except AddressError:
        raise AddressError("Invalid or unsupported Segwit (Bech32) or Base58 encoding.") from None
    if len(payload) != 21:
        raise AddressError("invalid base58 payload length")
    if payload[0] == P2PKH_VERSION:
        return b"\x76\xa9\x14" + payload[1:] + b"\x88\xac"
    if payload[0] == P2SH_VERSION:
        return b"\xa9\x14" + payload[1:] + b"\x87"
    raise AddressError("not a regtest base58 address")


def from_script(spk: bytes) -> str | None:
    """The address of a scriptPubKey, or None (P2PK, multisig, OP_RETURN, nonstandard have
    none in Core's RPC)."""
    kind = scripts.classify(spk)
    if kind == "pubkeyhash":
        return encode_base58check(bytes([P2PKH_VERSION]) + spk[3:23])
    if kind == "scripthash":
        return encode_base58check(bytes([P2SH_VERSION]) + spk[2:22])
    witness = scripts.witness_program(spk)
    if witness is not None:
        return encode_segwit(*witness)
    return None


# -- output descriptors (BIP-380) --------------------------------------------------------------

_INPUT_CHARSET = (
    "0123456789()[],'/*abcdefgh@:$%{}"
    "IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~"
    'ijklmnopqrstuvwxyzABCDEFGH`#"\\ '
)
_DESC_GEN = (0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)


def _descsum_polymod(symbols: list[int]) -> int:
    chk = 1
    for value in symbols:
        top = chk >> 35
        chk = (chk & 0x7FFFFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= _DESC_GEN[i] if (top >> i) & 1 else 0
    return chk


def descriptor_checksum(desc: str) -> str:
    """The 8-character checksum Core appends after `#`."""
    symbols: list[int] = []
    groups: list[int] = []
    for c in desc:
        v = _INPUT_CHARSET.find(c)
        if v < 0:
            raise ValueError(f"character {c!r} not allowed in a descriptor")
        symbols.append(v & 31)
        groups.append(v >> 5)
        if len(groups) == 3:
            symbols.append(groups[0] * 9 + groups[1] * 3 + groups[2])
            groups = []
    if len(groups) == 1:
        symbols.append(groups[0])
    elif len(groups) == 2:
        symbols.append(groups[0] * 3 + groups[1])
    checksum = _descsum_polymod(symbols + [0] * 8) ^ 1
    return "".join(_CHARSET[(checksum >> (5 * (7 - i))) & 31] for i in range(8))


def descriptor(spk: bytes) -> str:
    """Core's inferred descriptor of a scriptPubKey it holds no keys for, with checksum."""
    kind = scripts.classify(spk)
    address = from_script(spk)
    if kind == "pubkey":
        body = f"pk({spk[1:-1].hex()})"
    elif kind == "multisig":
        ops = scripts.parse(spk)
        keys = ",".join(data.hex() for _, data in ops[1:-2] if data is not None)
        body = f"multi({ops[0][0] - 0x50},{keys})"
    elif address is not None and kind not in ("nonstandard", "nulldata"):
        body = f"addr({address})"
    else:
        body = f"raw({spk.hex()})"
    return f"{body}#{descriptor_checksum(body)}"
