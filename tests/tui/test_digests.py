"""The console computes the digest it shows before signing with its own code (tui may
not import the node's internals); it must agree with the node's hashing policy."""

from __future__ import annotations

import hashlib

import pytest

from tssnode.protocol.hashing import HASHES as NODE_HASHES
from tssnode.protocol.hashing import message_digest as node_digest
from tui.digests import HASHES, MessageError, message_bytes, message_digest

MESSAGES = [
    b"",
    b"hello",
    "grüße, 世界".encode(),
    bytes(range(256)),
    b"x" * 1000,
    b"\x19Ethereum Signed Message:\n5hello",
]


def test_same_hash_names_as_the_node():
    assert HASHES == NODE_HASHES


@pytest.mark.parametrize("hash_name", HASHES)
@pytest.mark.parametrize("message", MESSAGES, ids=range(len(MESSAGES)))
def test_digest_matches_the_node(hash_name, message):
    assert message_digest(message, hash_name) == node_digest(message, hash_name)


def test_known_values():
    assert message_digest(b"hello", "sha256") == hashlib.sha256(b"hello").digest()
    # Keccak-256 of the empty string (Ethereum's, not SHA3-256's a7ffc6f8…)
    assert message_digest(b"", "keccak256").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    # the personal_sign digest of "hello" as Ethereum wallets compute it
    assert message_digest(b"hello", "eip191").hex() == (
        "50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
    )


def test_unknown_hash_is_refused():
    with pytest.raises(MessageError, match="unknown hash"):
        message_digest(b"x", "md5")


def test_message_bytes():
    assert message_bytes("héllo", is_hex=False) == "héllo".encode()
    assert message_bytes("0xdeadBEEF", is_hex=True) == bytes.fromhex("deadbeef")
    assert message_bytes(" 00ff ", is_hex=True) == b"\x00\xff"
    for bad in ("abc", "0xzz", "12 34"):
        with pytest.raises(MessageError, match="not hexadecimal"):
            message_bytes(bad, is_hex=True)
