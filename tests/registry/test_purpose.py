"""A key made for the bridge signs only the bridge's messages (issue 17): no sign or
presign request may use it, whoever submits one, and the purpose survives refreshes. A key
without a purpose keeps the encodings keys always had, so old blocks and state digests
stay as they were (test_compat's golden chain checks the digests)."""

from __future__ import annotations

from tests.ledger.conftest import APPS, Tx, key_public, pks, registry, run_block
from tssnode.crypto.encoding import decode_any
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.state import LedgerState
from tssnode.protocol.hashing import message_digest
from tssnode.registry.records import T_KEYS, KeyRecord, KeyRecordV2, key_record
from tssnode.registry.transactions import (
    KeygenRequest,
    KeygenRequestV1,
    KeygenResult,
    PresignRequest,
    RefreshRequest,
    RefreshResult,
    SignRequest,
    current,
    keygen_request,
)
from tssnode.store import layout


def _key(st_: LedgerState, keys: list[IdentityKey], tx: Tx, purpose: str) -> str:
    req = tx(keys[0], KeygenRequest(1, pks(keys), "insecure-test", purpose))
    assert run_block(st_, req) == ()
    kp = key_public(4, 1, seed=7 if purpose else 1)
    for k in keys[:3]:
        assert run_block(st_, tx(k, KeygenResult(req.hash, kp))) == ()
    return kp.key_id


def test_a_bridge_key_refuses_every_sign_and_presign_request(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    bridge = _key(st_, keys, tx, "bridge")
    plain = _key(st_, keys, tx, "")
    assert registry(st_).keys[bridge].purpose == "bridge"
    assert registry(st_).keys[plain].purpose == ""
    msg = b"mint 100 BTC to me"
    digest = message_digest(msg, "sha256")
    for k in keys:  # any validator, any form of request
        for payload in (
            SignRequest(bridge, b"\x11" * 32, ()),
            SignRequest(bridge, digest, (), message=msg, hash_name="sha256"),
            SignRequest(bridge, b"\x11" * 32, (1, 2)),
            PresignRequest(bridge, 1),
        ):
            (why,) = run_block(st_, tx(k, payload))
            assert "signs only bridge messages" in why[1]
    # the key without a purpose signs as before
    assert run_block(st_, tx(keys[0], SignRequest(plain, b"\x11" * 32, ()))) == ()
    # a refresh keeps the purpose
    r = tx(keys[1], RefreshRequest(bridge))
    assert run_block(st_, r) == ()
    fresh = key_public(4, 1, seed=7, epoch=1)
    for k in keys[:3]:
        assert run_block(st_, tx(k, RefreshResult(r.hash, fresh))) == ()
    rec = registry(st_).keys[bridge]
    assert rec.key.epoch == 1 and rec.purpose == "bridge"
    (why,) = run_block(st_, tx(keys[2], SignRequest(bridge, b"\x22" * 32, ())))
    assert "signs only bridge messages" in why[1]


def test_an_unknown_purpose_is_refused(genesis: Genesis, keys: list[IdentityKey], tx: Tx) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    (why,) = run_block(st_, tx(keys[0], KeygenRequest(1, pks(keys), "insecure-test", "mint")))
    assert "unknown key purpose" in why[1]


def test_a_key_without_purpose_keeps_its_old_encodings(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    plain = KeygenRequest(1, pks(keys), "insecure-test")
    assert plain.to_bytes() == KeygenRequestV1(1, pks(keys), "insecure-test").to_bytes()
    assert keygen_request(plain.to_bytes()) == plain
    bridge = KeygenRequest(1, pks(keys), "insecure-test", "bridge")
    assert decode_any(bridge.to_bytes()) == bridge != plain
    assert keygen_request(bridge.to_bytes()).purpose == "bridge"

    st_ = LedgerState.from_genesis(genesis, APPS)
    ids = [_key(st_, keys, tx, purpose) for purpose in ("", "bridge")]
    entries = st_.entries()
    for key_id, purpose in zip(ids, ("", "bridge"), strict=True):
        raw = entries[layout.state(T_KEYS, layout.key_id_bytes(key_id))]
        stored = decode_any(raw)
        assert isinstance(stored, KeyRecordV2 if not purpose else KeyRecord)
        assert key_record(raw) == registry(st_).keys[key_id]
    # and a ledger restored from those entries has the same records and digest
    again = LedgerState.from_entries(genesis, entries, APPS)
    assert registry(again).keys == registry(st_).keys
    assert again.digest() == st_.digest()


def test_a_stored_purpose_less_request_reads_back_as_the_current_type(
    keys: list[IdentityKey],
) -> None:
    """The node reads accepted requests back from its journal after a restart: a keygen
    request without a purpose comes back as version 1 bytes and must be followed (views,
    retries) as a `KeygenRequest` (a restarted node once answered 404 for its own)."""
    plain = KeygenRequest(1, pks(keys), "insecure-test")
    stored = decode_any(plain.to_bytes())
    assert isinstance(stored, KeygenRequestV1)
    assert current(stored) == plain and isinstance(current(stored), KeygenRequest)
    other = KeygenResult(b"\x01" * 32, key_public(4, 1))
    assert current(other) is other
