"""Fixtures for ledger tests: deterministic validator keys, a genesis, block helpers."""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PrivateKey

from tssnode.crypto.derivation import derive
from tssnode.crypto.group import Q, base_mul
from tssnode.crypto.identity import IdentityKey
from tssnode.crypto.params import INSECURE_TEST
from tssnode.crypto.signature import Signature
from tssnode.ledger.blocks import execute
from tssnode.ledger.genesis import Genesis, Validator, make_genesis
from tssnode.ledger.messages import Batch
from tssnode.ledger.state import LedgerState
from tssnode.ledger.transactions import SignedTx, make_tx
from tssnode.protocol.material import KeyPublic
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import Payload

#: The applications a test ledger runs (as the node's does).
APPS = (KeyRegistry,)


def pks(keys: list[IdentityKey]) -> tuple[bytes, ...]:
    """The validators' public keys, in the order given."""
    return tuple(k.public_bytes() for k in keys)


def registry(state: LedgerState) -> KeyRegistry:
    """The key registry of a ledger state."""
    return state.app(KeyRegistry)


def key(i: int) -> IdentityKey:
    return IdentityKey.from_seed(hashlib.sha256(b"ledger-test-key:%d" % i).digest())


@pytest.fixture
def keys() -> list[IdentityKey]:
    return sorted((key(i) for i in range(4)), key=lambda k: k.public_bytes())


@pytest.fixture
def genesis(keys: list[IdentityKey]) -> Genesis:
    return make_genesis(
        [Validator(k.public_bytes(), f"v{i}", "") for i, k in enumerate(keys)],
        chain_name="test",
        checkpoint_interval=4,
        window=8,
    )


class Tx:
    """Builds signed transactions for a genesis with unique nonces."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.n = 0

    def __call__(self, signer: IdentityKey, payload: Payload, expiry: int = 100) -> SignedTx:
        self.n += 1
        return make_tx(signer, self.genesis.chain_id, payload, expiry=expiry, nonce=b"%d" % self.n)


@pytest.fixture
def tx(genesis: Genesis) -> Tx:
    return Tx(genesis)


def run_block(state: LedgerState, *txs: SignedTx) -> tuple[tuple[int, str], ...]:
    """Execute one block of `txs`; the rejected (index, reason) pairs."""
    block, _ = execute(state, b"\x00" * 32, Batch(tuple(t.to_bytes() for t in txs)))
    return block.rejected


def key_public(parties: int, threshold: int, seed: int = 1, epoch: int = 0) -> KeyPublic:
    shares = {j: base_mul(seed * 1000 + j + epoch * 7) for j in range(1, parties + 1)}
    return KeyPublic(
        INSECURE_TEST,
        threshold,
        tuple(range(1, parties + 1)),
        base_mul(seed),
        shares,
        b"c" * 32,
        b"r" * 32,
        epoch,
    )


def real_signature(digest: bytes, path: tuple[int, ...] = (), seed: int = 1) -> Signature:
    """A valid signature by the secret of `key_public(…, seed)` (its secret is `seed`),
    derived along `path`, made by libsecp256k1 (coincurve)."""
    kp = key_public(4, 1, seed=seed)
    secret = (seed + derive(kp.public_key, kp.chain_code, path).shift) % Q
    raw = PrivateKey(secret.to_bytes(32, "big")).sign_recoverable(digest, hasher=None)
    return Signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64])
