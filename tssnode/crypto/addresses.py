"""Addresses of a group public key: Ethereum (EIP-55) and Bitcoin P2WPKH (BIP-173).

Encodings come from well-kept libraries (eth-utils for the checksum, the reference
`bech32` package for segwit addresses); this module only feeds them the right bytes.
"""

from __future__ import annotations

import bech32
from eth_utils.address import to_checksum_address

from tssnode.crypto.digests import hash160, keccak256
from tssnode.crypto.group import Point

#: Bech32 human-readable parts by Bitcoin network.
BTC_HRP = {"mainnet": "bc", "testnet": "tb", "signet": "tb", "regtest": "bcrt"}


def eth_address(public_key: Point) -> str:
    """0x + the last 20 bytes of keccak256(X ‖ Y), EIP-55 checksummed."""
    digest = keccak256(public_key.uncompressed()[1:])
    return str(to_checksum_address(digest[-20:]))


def btc_p2wpkh(public_key: Point, network: str = "mainnet") -> str:
    """Native segwit v0 address of the compressed key."""
    try:
        hrp = BTC_HRP[network]
    except KeyError:
        raise ValueError(f"unknown Bitcoin network {network!r}") from None
    address = bech32.encode(hrp, 0, hash160(public_key.to_bytes()))
    if address is None:
        raise ValueError("bech32 encoding failed")
    return str(address)
