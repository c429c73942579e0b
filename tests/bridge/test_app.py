"""The bridge application on a real ledger state beside the key registry: settings by
2f+1 votes for a bridge key only, deposit addresses, deposits final on 2f+1 identical
observations, mint signatures verified against the digest the ledger computed."""

from __future__ import annotations

import pytest

from tests.ledger.conftest import Tx, key_public, pks, real_signature, registry, run_block
from tssnode.bridge.app import BridgeApp
from tssnode.bridge.hashes import (
    deposit_address,
    deposit_key,
    g_hash,
    n_hash,
    p_hash,
    s_hash,
    sig_hash,
)
from tssnode.bridge.records import FINAL, ORPHANED, SIGNED, outpoint, p2wpkh_script
from tssnode.bridge.transactions import (
    BridgeSetup,
    DepositAddressRequest,
    DepositObserved,
    DepositOrphaned,
    MintSigned,
)
from tssnode.crypto.digests import hash160
from tssnode.crypto.group import Q
from tssnode.crypto.identity import IdentityKey
from tssnode.crypto.signature import Signature
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.state import LedgerState
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import AppSignRequest, KeygenRequest, KeygenResult, SignResult

APPS = (KeyRegistry, BridgeApp)
SEED = 7  # the bridge key's secret in these tests (`key_public(…, seed=SEED)`)
GATEWAY = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
TO = bytes.fromhex("70997970c51812dc3a010c7d01b50e0d17dc79c8")
NONCE = bytes(range(32))


def bridge(st_: LedgerState) -> BridgeApp:
    return st_.app(BridgeApp)


def _key(st_: LedgerState, keys: list[IdentityKey], tx: Tx, purpose: str, seed: int) -> str:
    req = tx(keys[0], KeygenRequest(1, pks(keys), "insecure-test", purpose))
    assert run_block(st_, req) == ()
    kp = key_public(4, 1, seed=seed)
    for k in keys[:3]:
        assert run_block(st_, tx(k, KeygenResult(req.hash, kp))) == ()
    return kp.key_id


def _setup(key_id: str, **change: object) -> BridgeSetup:
    fields: dict[str, object] = {
        "key_id": key_id, "chain_name": "Ethereum", "chain_id": 31337, "gateway": GATEWAY,
        "network": "regtest", "confirmations": 6, "fee_sats": 10_000,
        "min_deposit_sats": 20_000,
    }  # fmt: skip
    fields.update(change)
    return BridgeSetup(**fields)  # type: ignore[arg-type]


@pytest.fixture
def ready(genesis: Genesis, keys: list[IdentityKey], tx: Tx) -> LedgerState:
    """A ledger with a bridge key and the bridge set up by three of four validators."""
    st_ = LedgerState.from_genesis(genesis, APPS)
    key_id = _key(st_, keys, tx, "bridge", SEED)
    for k in keys[:3]:
        assert run_block(st_, tx(k, _setup(key_id))) == ()
    assert bridge(st_).config is not None
    return st_


def test_settings_need_a_bridge_key_and_2f_plus_1_identical_votes(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    plain = _key(st_, keys, tx, "", 1)
    key_id = _key(st_, keys, tx, "bridge", SEED)
    refusals = {
        "purpose 'bridge'": _setup(plain),
        "no key": _setup("ab" * 32),
        "non-zero address": _setup(key_id, gateway=bytes(20)),
        "unknown Bitcoin network": _setup(key_id, network="litecoin"),
        "must exceed the fee": _setup(key_id, fee_sats=30_000),
        "at least 294": _setup(key_id, fee_sats=0, min_deposit_sats=100),
        "confirmations": _setup(key_id, confirmations=0),
    }
    for reason, payload in refusals.items():
        (why,) = run_block(st_, tx(keys[0], payload))
        assert reason in why[1], (reason, why)
    # two votes, and a third for other settings: nothing yet
    run_block(st_, tx(keys[0], _setup(key_id)), tx(keys[1], _setup(key_id)))
    run_block(st_, tx(keys[2], _setup(key_id, chain_id=1)))
    assert bridge(st_).config is None
    (why,) = run_block(st_, tx(keys[0], _setup(key_id)))
    assert "already voted" in why[1]
    # the third identical vote decides, with the key as the registry has it
    assert run_block(st_, tx(keys[3], _setup(key_id))) == ()
    cfg = bridge(st_).config
    assert cfg is not None and cfg.chain_id == 31337 and cfg.gateway == GATEWAY
    assert cfg.public_key == registry(st_).keys[key_id].key.public_key
    assert bridge(st_).setup_votes == {}  # the other proposal went with the decision
    (why,) = run_block(st_, tx(keys[2], _setup(key_id, chain_id=1)))
    assert "already set up" in why[1]


def test_a_deposit_address_is_the_one_every_node_derives(
    ready: LedgerState, keys: list[IdentityKey], tx: Tx
) -> None:
    cfg = bridge(ready).config
    assert cfg is not None
    req = tx(keys[1], DepositAddressRequest(TO, NONCE, b"app data"))
    assert run_block(ready, req) == ()
    g = g_hash(p_hash(b"app data"), s_hash("Ethereum"), TO, NONCE)
    rec = bridge(ready).addresses[g]
    assert rec.address == deposit_address(cfg.public_key, cfg.chain_code, g, "regtest")
    assert rec.address.startswith("bcrt1q") and rec.requester == keys[1].public_bytes()
    assert rec.key_hash == hash160(
        deposit_key(cfg.public_key, cfg.chain_code, g).public_key.to_bytes()
    )
    (why,) = run_block(ready, tx(keys[2], DepositAddressRequest(TO, NONCE, b"app data")))
    assert "already recorded" in why[1]
    for bad, reason in (
        (DepositAddressRequest(bytes(20), NONCE), "non-zero"),
        (DepositAddressRequest(TO, NONCE[:31]), "32 bytes"),
        (DepositAddressRequest(TO, NONCE, bytes(1025)), "at most 1024"),
    ):
        (why,) = run_block(ready, tx(keys[0], bad))
        assert reason in why[1]


def _observed(
    rec_key_hash: bytes, g: bytes, block: bytes = b"\xbb" * 32, **change: object
) -> DepositObserved:
    fields: dict[str, object] = {
        "txid": b"\x5a" * 32, "vout": 1, "value": 50_000_000, "script": p2wpkh_script(rec_key_hash),
        "block_hash": block, "block_height": 120, "g_hash": g,
    }  # fmt: skip
    fields.update(change)
    return DepositObserved(**fields)  # type: ignore[arg-type]


def _address(st_: LedgerState, keys: list[IdentityKey], tx: Tx) -> tuple[bytes, bytes]:
    assert run_block(st_, tx(keys[0], DepositAddressRequest(TO, NONCE))) == ()
    g = g_hash(p_hash(b""), s_hash("Ethereum"), TO, NONCE)
    return g, bridge(st_).addresses[g].key_hash


def test_a_deposit_is_final_on_2f_plus_1_identical_observations(
    ready: LedgerState, keys: list[IdentityKey], tx: Tx
) -> None:
    g, kh = _address(ready, keys, tx)
    for bad, reason in (
        (_observed(kh, g, script=p2wpkh_script(b"\x01" * 20)), "does not pay"),
        (_observed(kh, g, value=19_999), "at least 20000"),
        (_observed(kh, b"\x01" * 32), "no deposit address"),
    ):
        (why,) = run_block(ready, tx(keys[0], bad))
        assert reason in why[1]
    op = outpoint(b"\x5a" * 32, 1)
    # two validators saw it in block bb…, one (a lying or forked view) in another block
    run_block(ready, tx(keys[0], _observed(kh, g)), tx(keys[1], _observed(kh, g)))
    run_block(ready, tx(keys[2], _observed(kh, g, block=b"\xcc" * 32)))
    assert op not in bridge(ready).deposits
    # a reorg moved it: the first two see it in block cc… now; their votes follow them
    assert run_block(ready, tx(keys[0], _observed(kh, g, block=b"\xcc" * 32))) == ()
    assert op not in bridge(ready).deposits
    assert run_block(ready, tx(keys[1], _observed(kh, g, block=b"\xcc" * 32))) == ()
    dep = bridge(ready).deposits[op]
    assert dep.status == FINAL and dep.block_hash == b"\xcc" * 32
    assert dep.amount == 50_000_000 - 10_000
    n = n_hash(NONCE, b"\x5a" * 32, 1)
    assert dep.n_hash == n
    assert dep.sig_hash == sig_hash(
        p_hash(b""), dep.amount, s_hash("Ethereum"), TO, n, 31337, GATEWAY
    )
    assert op not in bridge(ready).observations
    (why,) = run_block(ready, tx(keys[3], _observed(kh, g, block=b"\xcc" * 32)))
    assert "already final" in why[1]


def test_a_mint_signature_must_verify_against_the_ledgers_own_digest(
    ready: LedgerState, keys: list[IdentityKey], tx: Tx
) -> None:
    g, kh = _address(ready, keys, tx)
    run_block(ready, *(tx(k, _observed(kh, g)) for k in keys[:3]))
    op = outpoint(b"\x5a" * 32, 1)
    dep = bridge(ready).deposits[op]
    good = real_signature(dep.sig_hash, seed=SEED)
    assert good.is_low_s
    for bad, reason in (
        (real_signature(b"\x01" * 32, seed=SEED), "does not verify"),  # another digest
        (real_signature(dep.sig_hash, seed=1), "does not verify"),  # another key
        (
            Signature(good.r, Q - good.s, good.v ^ 1),
            "does not verify",
        ),  # high s
        (Signature(good.r, good.s, good.v ^ 1), "does not verify"),  # wrong recovery id
    ):
        (why,) = run_block(ready, tx(keys[0], MintSigned(b"\x5a" * 32, 1, bad)))
        assert reason in why[1], why
    (why,) = run_block(ready, tx(keys[0], MintSigned(b"\x5a" * 32, 2, good)))
    assert "no final deposit" in why[1]
    assert run_block(ready, tx(keys[2], MintSigned(b"\x5a" * 32, 1, good))) == ()
    dep = bridge(ready).deposits[op]
    assert dep.status == SIGNED and dep.signature == good
    (why,) = run_block(ready, tx(keys[1], MintSigned(b"\x5a" * 32, 1, good)))
    assert "already signed" in why[1]
    # everything survives a restart from the stored entries, digest and all
    again = LedgerState.from_entries(ready.genesis, ready.entries(), APPS)
    assert bridge(again).deposits == bridge(ready).deposits
    assert bridge(again).addresses == bridge(ready).addresses
    assert bridge(again).config == bridge(ready).config
    assert again.digest() == ready.digest()


def test_the_bridge_key_signs_a_final_deposits_digest_through_the_registry(
    ready: LedgerState, keys: list[IdentityKey], tx: Tx
) -> None:
    """An `AppSignRequest`: only for the bridge's key, only the digest the bridge asks
    for, one at a time per deposit; its signature settles the registry's request and,
    submitted to the bridge, the deposit."""
    g, kh = _address(ready, keys, tx)
    key_id = bridge(ready).config.key_id  # type: ignore[union-attr]
    op = outpoint(b"\x5a" * 32, 1)
    early = AppSignRequest(key_id, "bridge", op, b"\x01" * 32)
    (why,) = run_block(ready, tx(keys[0], early))
    assert "asks no such signature" in why[1]  # not final yet
    run_block(ready, *(tx(k, _observed(kh, g)) for k in keys[:3]))
    dep = bridge(ready).deposits[op]
    plain = _key(ready, keys, tx, "", 1)
    for bad, reason in (
        (AppSignRequest(key_id, "bridge", op, b"\x01" * 32), "asks no such signature"),
        (AppSignRequest(key_id, "bridge", op, dep.sig_hash, (1,)), "asks no such signature"),
        (AppSignRequest(plain, "bridge", op, dep.sig_hash), "is not the bridge key"),
        (AppSignRequest(key_id, "registry", op, dep.sig_hash), "is not the registry key"),
    ):
        (why,) = run_block(ready, tx(keys[0], bad))
        assert reason in why[1], why
    ask = tx(keys[1], AppSignRequest(key_id, "bridge", op, dep.sig_hash))
    assert run_block(ready, ask) == ()
    (why,) = run_block(ready, tx(keys[2], AppSignRequest(key_id, "bridge", op, dep.sig_hash)))
    assert "being signed already" in why[1]
    req = registry(ready).requests[ask.hash]
    assert req.kind == "sign" and req.status == "pending" and len(req.signers) == 2
    signer = next(k for k in keys if k.public_bytes() == req.parties[req.signers[0] - 1])
    (why,) = run_block(
        ready, tx(signer, SignResult(ask.hash, real_signature(b"\x01" * 32, seed=SEED)))
    )
    assert "does not verify" in why[1]
    sig = real_signature(dep.sig_hash, seed=SEED)
    assert run_block(ready, tx(signer, SignResult(ask.hash, sig))) == ()
    assert registry(ready).requests[ask.hash].status == "done"
    assert run_block(ready, tx(signer, MintSigned.of(op, sig))) == ()
    assert bridge(ready).deposits[op].status == SIGNED
    assert bridge(ready).query(f"sign/{op.hex()}") is None  # nothing left to sign


@pytest.mark.parametrize("signed", [False, True])
def test_a_reorg_past_final_is_recorded_and_never_signs_or_mints_twice(
    ready: LedgerState, keys: list[IdentityKey], tx: Tx, signed: bool
) -> None:
    """2f+1 votes that a final deposit's block left the chain orphan it: it is not signed
    while so (its signature, if it had one, is kept: it may be out already). 2f+1
    observations of the output in another block bring it back with the same digest, so
    the gateway's spent nHash still stops a second mint."""
    g, kh = _address(ready, keys, tx)
    run_block(ready, *(tx(k, _observed(kh, g)) for k in keys[:3]))
    op, txid, old = outpoint(b"\x5a" * 32, 1), b"\x5a" * 32, b"\xbb" * 32
    before = bridge(ready).deposits[op]
    sig = real_signature(before.sig_hash, seed=SEED)
    if signed:
        assert run_block(ready, tx(keys[0], MintSigned(txid, 1, sig))) == ()
    for bad, reason in (
        (DepositOrphaned(txid, 1, b"\xcc" * 32), "recorded in another block"),
        (DepositOrphaned(txid, 2, old), "no final deposit"),
        (DepositOrphaned(txid[:31], 1, old), "32 bytes"),
    ):
        (why,) = run_block(ready, tx(keys[0], bad))
        assert reason in why[1], why
    run_block(ready, *(tx(k, DepositOrphaned(txid, 1, old)) for k in keys[:2]))
    assert bridge(ready).deposits[op].status == (SIGNED if signed else FINAL)
    (why,) = run_block(ready, tx(keys[1], DepositOrphaned(txid, 1, old)))
    assert "already voted" in why[1]
    # the votes survive a restart, and the third decides
    ready = LedgerState.from_entries(ready.genesis, ready.entries(), APPS)
    assert run_block(ready, tx(keys[3], DepositOrphaned(txid, 1, old))) == ()
    dep = bridge(ready).deposits[op]
    assert dep.status == ORPHANED and dep.signature == (sig if signed else None)
    assert bridge(ready).orphan_votes == {}
    assert bridge(ready).query(f"sign/{op.hex()}") is None  # never signed while orphaned
    (why,) = run_block(ready, tx(keys[1], MintSigned(txid, 1, sig)))
    assert "already orphaned" in why[1]
    (why,) = run_block(ready, tx(keys[2], DepositOrphaned(txid, 1, old)))
    assert "already orphaned" in why[1]
    # the output mined again in block dd…: 2f+1 observations move it there
    moved = _observed(kh, g, block=b"\xdd" * 32, block_height=125)
    (why,) = run_block(ready, tx(keys[0], _observed(kh, g, block=b"\xdd" * 32, value=60_000)))
    assert "another value" in why[1]
    run_block(ready, *(tx(k, moved) for k in keys[:3]))
    dep = bridge(ready).deposits[op]
    assert dep.status == (SIGNED if signed else FINAL)
    assert (dep.block_hash, dep.block_height) == (b"\xdd" * 32, 125)
    assert (dep.n_hash, dep.sig_hash, dep.amount) == (
        before.n_hash, before.sig_hash, before.amount,
    )  # fmt: skip
    (why,) = run_block(ready, tx(keys[3], moved))
    assert "already final" in why[1]
    again = LedgerState.from_entries(ready.genesis, ready.entries(), APPS)
    assert bridge(again).deposits == bridge(ready).deposits
    assert again.digest() == ready.digest()
