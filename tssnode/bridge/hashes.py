"""The bridge's hashes (RenVM's, with two fields added) and its deposit addresses.

    sHash   = keccak256("BTC/to" ‖ chain name)                 the selector
    pHash   = keccak256(payload)
    gHash   = keccak256(pHash ‖ sHash ‖ to[20] ‖ nonce[32])     packed: one per deposit address
    nHash   = keccak256(nonce[32] ‖ txid[32] ‖ vout[4, BE])     one per deposit output
    sigHash = keccak256(abi.encode(pHash, amount, sHash, to, nHash, chainId, gateway))

`txid` in nHash is in the byte order of the transaction's own serialization (its outpoint
bytes: double-SHA-256 of the transaction as computed), the reverse of the hex that Bitcoin
Core's RPC shows: `txid_bytes` converts, and a test vector fixes it. RenVM's sigHash binds
neither the EVM chain nor the gateway, so one authorisation could be replayed on another
deployment; this one binds both. sigHash is signed as it is (no Ethereum message prefix).

A deposit address is P2WPKH of the bridge key's non-hardened BIP-32 child at the path that
gHash gives (`deposit_path`): every node derives the same address from the ledger alone,
and the signers adjust their shares by the public shift (`crypto.derivation`).
"""

from __future__ import annotations

from eth_abi.abi import encode as abi_encode

from tssnode.crypto.addresses import btc_p2wpkh
from tssnode.crypto.derivation import HARDENED, Derived, derive
from tssnode.crypto.digests import keccak256
from tssnode.crypto.group import Point
from tssnode.errors import TssError

#: levels of the deposit path: gHash's 32 bytes as 8 big-endian words, each below 2^31
DEPOSIT_DEPTH = 8


class BridgeHashError(TssError):
    """A field of the wrong size or range for a bridge hash."""


def _sized(name: str, value: bytes, size: int) -> bytes:
    if len(value) != size:
        raise BridgeHashError(f"{name} is {size} bytes, not {len(value)}")
    return value


def s_hash(chain_name: str) -> bytes:
    """The selector of BTC minted to `chain_name` (e.g. "Ethereum")."""
    if not chain_name or not chain_name.isascii():
        raise BridgeHashError("a chain name is non-empty ASCII")
    return keccak256(b"BTC/to" + chain_name.encode())


def p_hash(payload: bytes) -> bytes:
    return keccak256(payload)


def g_hash(p: bytes, s: bytes, to: bytes, nonce: bytes) -> bytes:
    """The deposit address's hash: pHash ‖ sHash ‖ to (20 bytes) ‖ nonce (32), packed."""
    return keccak256(
        _sized("pHash", p, 32) + _sized("sHash", s, 32) + _sized("to", to, 20)
        + _sized("nonce", nonce, 32)
    )  # fmt: skip


def txid_bytes(txid_hex: str) -> bytes:
    """A txid as Bitcoin Core's RPC shows it → the bytes of its outpoint (reversed)."""
    raw = bytes.fromhex(txid_hex)
    return _sized("txid", raw, 32)[::-1]


def n_hash(nonce: bytes, txid: bytes, vout: int) -> bytes:
    """One deposit output: nonce ‖ txid (outpoint byte order, `txid_bytes`) ‖ vout (u32 BE)."""
    if not 0 <= vout < 2**32:
        raise BridgeHashError("vout is a 32-bit index")
    return keccak256(
        _sized("nonce", nonce, 32) + _sized("txid", txid, 32) + vout.to_bytes(4, "big")
    )


def sig_hash(
    p: bytes, amount: int, s: bytes, to: bytes, n: bytes, chain_id: int, gateway: bytes
) -> bytes:
    """The digest the group signs to authorise a mint (abi.encode, as the gateway does)."""
    if not 0 <= amount < 2**256 or not 0 <= chain_id < 2**256:
        raise BridgeHashError("amount and chain id are uint256")
    return keccak256(
        abi_encode(
            ["bytes32", "uint256", "bytes32", "address", "bytes32", "uint256", "address"],
            [
                _sized("pHash", p, 32), amount, _sized("sHash", s, 32), _sized("to", to, 20),
                _sized("nHash", n, 32), chain_id, _sized("gateway", gateway, 20),
            ],
        )
    )  # fmt: skip


def deposit_path(g: bytes) -> tuple[int, ...]:
    """gHash → the BIP-32 path of its deposit key: 8 words of 31 bits (248 of its bits)."""
    _sized("gHash", g, 32)
    return tuple(int.from_bytes(g[i : i + 4], "big") % HARDENED for i in range(0, 32, 4))


def deposit_key(bridge_key: Point, chain_code: bytes, g: bytes) -> Derived:
    """The child of the bridge key that holds deposits made for gHash `g`."""
    return derive(bridge_key, chain_code, deposit_path(g))


def deposit_address(bridge_key: Point, chain_code: bytes, g: bytes, network: str) -> str:
    """P2WPKH address (bech32) of `deposit_key`, on the Bitcoin `network`."""
    return btc_p2wpkh(deposit_key(bridge_key, chain_code, g).public_key, network)
