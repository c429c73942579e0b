"""Addresses, descriptors and script text against published vectors (BIP-173, BIP-350,
BIP-380) and independent implementations (the `bech32` and `base58` packages)."""

from __future__ import annotations

import base58
import bech32
import pytest

from tssnode.regtest import addresses, scripts
from tssnode.regtest.addresses import AddressError

BIP_VALID = [
    (
        "bc",
        "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
        "0014751e76e8199196d454941c45d1b3a323f1433bd6",
    ),
    (
        "tb",
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
    ),
    (
        "bc",
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    ),
]
BIP_INVALID = [
    ("bc", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd"),  # v1, bech32
    ("tb", "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf"),  # v2, bech32
    ("bc", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh"),  # v0, bech32m
]


@pytest.mark.parametrize(("hrp", "address", "spk"), BIP_VALID)
def test_bip173_and_bip350_valid_vectors(hrp, address, spk):
    version, program = addresses.decode_segwit(address, hrp)
    op = 0 if version == 0 else 0x50 + version
    assert (bytes([op, len(program)]) + program).hex() == spk
    assert addresses.encode_segwit(version, program, hrp) == address.lower()


@pytest.mark.parametrize(("hrp", "address"), BIP_INVALID)
def test_bip350_checksum_variant_is_enforced(hrp, address):
    with pytest.raises(AddressError):
        addresses.decode_segwit(address, hrp)


def test_regtest_addresses_round_trip_and_agree_with_reference_code():
    program = bytes(range(20))
    ours = addresses.encode_segwit(0, program)
    assert ours == bech32.encode("bcrt", 0, list(program))
    assert addresses.to_script(ours) == b"\x00\x14" + program
    p2pkh = b"\x76\xa9\x14" + program + b"\x88\xac"
    legacy = addresses.from_script(p2pkh)
    assert legacy == base58.b58encode_check(b"\x6f" + program).decode()
    assert addresses.to_script(legacy) == p2pkh
    p2sh = b"\xa9\x14" + program + b"\x87"
    assert addresses.from_script(p2sh) == base58.b58encode_check(b"\xc4" + program).decode()
    with pytest.raises(AddressError):  # a mainnet address on regtest
        addresses.to_script("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")


def test_descriptor_checksum_bip380_vector():
    assert addresses.descriptor_checksum("raw(deadbeef)") == "89f8spxm"
    assert addresses.descriptor(b"\x6a\x04\xde\xad\xbe\xef").startswith("raw(6a04deadbeef)#")


def test_output_types_as_core_names_them():
    key = bytes.fromhex("02" + "11" * 32)
    cases = {
        b"\x76\xa9\x14" + bytes(20) + b"\x88\xac": "pubkeyhash",
        b"\xa9\x14" + bytes(20) + b"\x87": "scripthash",
        b"\x00\x14" + bytes(20): "witness_v0_keyhash",
        b"\x00\x20" + bytes(32): "witness_v0_scripthash",
        b"\x51\x20" + bytes(32): "witness_v1_taproot",
        b"\x51\x02\x4e\x73": "anchor",
        b"\x52\x02\x00\x00": "witness_unknown",
        b"\x21" + key + b"\xac": "pubkey",
        b"\x51\x21" + key + b"\x51\xae": "multisig",
        b"\x6a\x04\xde\xad\xbe\xef": "nulldata",
        b"\x00\x15" + bytes(21): "nonstandard",
    }
    assert {spk: scripts.classify(spk) for spk in cases} == cases


def test_asm_text_as_core_writes_it():
    p2pkh = b"\x76\xa9\x14" + bytes(20) + b"\x88\xac"
    assert scripts.asm(p2pkh) == f"OP_DUP OP_HASH160 {'00' * 20} OP_EQUALVERIFY OP_CHECKSIG"
    assert scripts.asm(b"\x00\x14" + bytes(20)) == f"0 {'00' * 20}"
    assert scripts.asm(b"\x6a\x04\xde\xad\xbe\xef") == "OP_RETURN -1874767326"
    assert scripts.asm(b"\x4c\x05\x01") == "[error]"
    sig = bytes.fromhex("3006020101020101") + b"\x01"
    assert scripts.asm(bytes([len(sig)]) + sig, sighash_decode=True) == "3006020101020101[ALL]"


def test_strict_der_and_low_s():
    low = bytes.fromhex("3006020101020101") + b"\x01"
    assert scripts.is_valid_signature_encoding(low) and scripts.is_low_s(low)
    assert not scripts.is_valid_signature_encoding(b"\x30\x06\x02\x01\x81\x02\x01\x01\x01")
    n_half_plus = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A1
    s = n_half_plus.to_bytes(32, "big")
    high = bytes([0x30, 5 + 32, 2, 1, 1, 2, 32]) + s + b"\x01"
    assert scripts.is_valid_signature_encoding(high) and not scripts.is_low_s(high)
