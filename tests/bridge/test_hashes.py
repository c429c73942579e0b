"""The bridge's hashes and deposit addresses, against independent encodings."""

from __future__ import annotations

import struct

import bech32
import pytest
from bitcoin.core import CoreMainParams, b2lx
from Crypto.Hash import keccak as pycryptodome_keccak

from tssnode.bridge.hashes import (
    BridgeHashError,
    deposit_address,
    deposit_key,
    deposit_path,
    g_hash,
    n_hash,
    p_hash,
    s_hash,
    sig_hash,
    txid_bytes,
)
from tssnode.crypto.derivation import derive, format_path
from tssnode.crypto.digests import hash160
from tssnode.crypto.group import base_mul


def _keccak(data: bytes) -> bytes:
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


def _word(value: int | bytes) -> bytes:
    """One ABI word: a static value left-padded to 32 bytes."""
    raw = value if isinstance(value, bytes) else value.to_bytes(32, "big")
    return raw.rjust(32, b"\0")


def test_the_txid_byte_order_is_fixed_by_the_genesis_coinbase():
    """Bitcoin Core shows the genesis coinbase as 4a5e…a33b; its outpoint bytes (what
    python-bitcoinlib computes from the serialization) are the reverse."""
    coinbase = CoreMainParams.GENESIS_BLOCK.vtx[0]
    shown = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    assert b2lx(coinbase.GetTxid()) == shown
    assert txid_bytes(shown) == coinbase.GetTxid()
    assert txid_bytes(shown).hex().startswith("3ba3edfd")
    nonce = bytes(range(32))
    assert n_hash(nonce, txid_bytes(shown), 1) == _keccak(
        nonce + coinbase.GetTxid() + b"\x00\x00\x00\x01"
    )


def test_the_selector_payload_and_gateway_hashes():
    assert s_hash("Ethereum") == _keccak(b"BTC/toEthereum")
    assert p_hash(b"") == bytes.fromhex(
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )  # keccak256 of nothing
    p, s = p_hash(b"data"), s_hash("Ethereum")
    to, nonce = bytes.fromhex("11" * 20), bytes.fromhex("22" * 32)
    assert g_hash(p, s, to, nonce) == _keccak(p + s + to + nonce)
    with pytest.raises(BridgeHashError):
        g_hash(p, s, to + b"\0", nonce)
    with pytest.raises(BridgeHashError):
        s_hash("")


def test_sig_hash_is_the_abi_encoding_of_its_seven_fields():
    p, s, n = _keccak(b"p"), _keccak(b"s"), _keccak(b"n")
    to, gateway = bytes.fromhex("ab" * 20), bytes.fromhex("cd" * 20)
    amount, chain_id = 49_990_000, 31337
    words = [
        _word(p),
        _word(amount),
        _word(s),
        _word(to),
        _word(n),
        _word(chain_id),
        _word(gateway),
    ]
    assert sig_hash(p, amount, s, to, n, chain_id, gateway) == _keccak(b"".join(words))
    # each bound field changes it: another chain or gateway gets another digest
    assert sig_hash(p, amount, s, to, n, 1, gateway) != sig_hash(
        p, amount, s, to, n, 31337, gateway
    )
    assert sig_hash(p, amount, s, to, n, chain_id, to) != sig_hash(
        p, amount, s, to, n, chain_id, gateway
    )
    with pytest.raises(BridgeHashError):
        sig_hash(p, -1, s, to, n, chain_id, gateway)


def test_a_deposit_address_is_the_p2wpkh_of_the_child_at_the_ghash_path():
    root, chain_code = base_mul(0xC0FFEE), bytes(range(32))
    g = _keccak(b"a deposit")
    path = tuple(w & 0x7FFFFFFF for w in struct.unpack(">8I", g))
    assert deposit_path(g) == path
    child = derive(root, chain_code, format_path(path))
    assert deposit_key(root, chain_code, g).public_key == child.public_key
    address = deposit_address(root, chain_code, g, "regtest")
    version, program = bech32.decode("bcrt", address)
    assert version == 0 and bytes(program) == hash160(child.public_key.to_bytes())
    # another gHash, another address; the same one on another network, another prefix
    assert deposit_address(root, chain_code, _keccak(b"another"), "regtest") != address
    assert deposit_address(root, chain_code, g, "mainnet").startswith("bc1q")
