"""Transactions and the deterministic state machine."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ledger.conftest import (
    APPS,
    Tx,
    key,
    key_public,
    pks,
    real_signature,
    registry,
    run_block,
)
from tssnode.crypto.encoding import decode_any
from tssnode.crypto.group import Q
from tssnode.crypto.identity import IdentityKey
from tssnode.crypto.signature import Signature
from tssnode.ledger.envelope import sign
from tssnode.ledger.errors import InvalidTransaction
from tssnode.ledger.evidence import make_evidence
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.messages import Commit
from tssnode.ledger.state import LedgerState, quorum
from tssnode.ledger.transactions import Misbehaviour, SignedTx, make_tx
from tssnode.protocol.base import Blame
from tssnode.protocol.hashing import message_digest
from tssnode.registry.records import presig_id
from tssnode.registry.transactions import (
    BlameReport,
    KeygenRequest,
    KeygenResult,
    PresignReady,
    PresignRequest,
    RefreshRequest,
    RefreshResult,
    SignRequest,
    SignResult,
    ValidatorLeave,
    join_payload,
)


def test_quorum_sizes() -> None:
    assert [quorum(n) for n in (1, 2, 3, 4, 5, 6, 7, 10)] == [1, 2, 3, 3, 4, 5, 5, 7]


def test_refused_transactions_say_why(genesis: Genesis, keys: list[IdentityKey], tx: Tx) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    req = KeygenRequest(1, pks(keys), "insecure-test")
    outsider = key(99)
    cases = {
        "not a validator": tx(outsider, req),
        "expiry": tx(keys[0], req, expiry=10_000),
        "threshold": tx(keys[0], KeygenRequest(4, pks(keys), "insecure-test")),
        "unknown parameter tier": tx(keys[0], KeygenRequest(1, pks(keys), "nope")),
        "every party must be a validator": tx(
            keys[0], KeygenRequest(1, (outsider.public_bytes(),), "insecure-test")
        ),
        "no key": tx(keys[0], SignRequest("00" * 16, b"d" * 32, ())),
    }
    for reason, t in cases.items():
        with pytest.raises(InvalidTransaction, match=reason):
            st_.check(t)
    forged = make_tx(keys[0], b"another chain" + b"\x00" * 19, req, expiry=5)
    with pytest.raises(InvalidTransaction, match="signature"):
        st_.check(forged)
    good = tx(keys[0], req)
    assert run_block(st_, good, good) == ((1, "the transaction is already in the ledger"),)
    with pytest.raises(InvalidTransaction, match="already in the ledger"):
        st_.check(good)


def keygen(st_: LedgerState, keys: list[IdentityKey], tx: Tx, threshold: int = 1) -> str:
    req = tx(keys[0], KeygenRequest(threshold, pks(keys), "insecure-test"))
    assert run_block(st_, req) == ()
    kp = key_public(len(keys), threshold)
    results = [tx(k, KeygenResult(req.hash, kp)) for k in keys]
    need = quorum(len(keys))
    for r in results[: need - 1]:
        assert run_block(st_, r) == ()
        assert registry(st_).requests[req.hash].status == "pending"
    assert run_block(st_, results[need - 1]) == ()
    assert registry(st_).requests[req.hash].status == "done"
    assert registry(st_).keys[kp.key_id].key == kp
    # the voters hold the key; a late party's same result confirms it holds it too
    voted = {k.public_bytes() for k in keys[:need]}
    assert set(registry(st_).keys[kp.key_id].holders) == voted
    for late in results[need:]:
        assert run_block(st_, late) == ()
    assert set(registry(st_).keys[kp.key_id].holders) == set(pks(keys))
    # ... once: the request is finished
    assert "already done" in run_block(st_, tx(keys[-1], KeygenResult(req.hash, kp)))[0][1]
    return kp.key_id


def test_keygen_result_needs_a_quorum_of_identical_results(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    req = tx(keys[0], KeygenRequest(1, pks(keys), "insecure-test"))
    run_block(st_, req)
    honest, forged = key_public(4, 1, seed=1), key_public(4, 1, seed=2)
    # one faulty party votes for a forged key: it never reaches a quorum
    assert run_block(st_, tx(keys[3], KeygenResult(req.hash, forged))) == ()
    for k in keys[:2]:
        run_block(st_, tx(k, KeygenResult(req.hash, honest)))
    assert registry(st_).requests[req.hash].status == "pending"
    run_block(st_, tx(keys[2], KeygenResult(req.hash, honest)))
    assert honest.key_id in registry(st_).keys and forged.key_id not in registry(st_).keys
    assert not [v for v in registry(st_).votes.values() if v.subject == req.hash]
    wrong = key_public(4, 2, seed=3)
    req2 = tx(keys[0], KeygenRequest(1, pks(keys), "insecure-test"))
    run_block(st_, req2)
    assert "does not match" in run_block(st_, tx(keys[0], KeygenResult(req2.hash, wrong)))[0][1]


def test_sign_flow_signers_result_and_blame(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    key_id = keygen(st_, keys, tx)
    sreq = tx(keys[1], SignRequest(key_id, b"\x11" * 32, (0, 5)))
    run_block(st_, sreq)
    rec = registry(st_).requests[sreq.hash]
    assert rec.kind == "sign" and len(rec.signers) == 2  # t + 1
    assert rec.signers == registry(st_.copy()).choose_signers(registry(st_).keys[key_id], sreq.hash)
    signer_keys = [k for k in keys if k.public_bytes() in [rec.parties[j - 1] for j in rec.signers]]
    other = next(k for k in keys if k not in signer_keys)
    good = real_signature(b"\x11" * 32, (0, 5))
    sig = SignResult(sreq.hash, good)
    assert "not a party" in run_block(st_, tx(other, sig))[0][1]
    # a signature that does not verify is refused: for the root key instead of m/0/5, a
    # flipped recovery id, a high s (the same signature, malleated), or plain garbage
    bad = [
        real_signature(b"\x11" * 32),
        Signature(good.r, good.s, 1 - good.v),
        Signature(good.r, Q - good.s, 1 - good.v),
        Signature(5, 7, 0),
    ]
    for wrong in bad:
        why = run_block(st_, tx(signer_keys[0], SignResult(sreq.hash, wrong)))[0][1]
        assert "does not verify" in why
    # one valid signature settles the request: no agreement needed
    assert run_block(st_, tx(signer_keys[1], sig)) == ()
    assert registry(st_).requests[sreq.hash].status == "done"
    assert registry(st_).requests[sreq.hash].result == good.to_bytes()
    assert "already done" in run_block(st_, tx(signer_keys[0], sig))[0][1]
    # presign requests are orders: done at once, with signers
    p = tx(keys[2], PresignRequest(key_id, 3))
    run_block(st_, p)
    assert (
        registry(st_).requests[p.hash].status == "done"
        and len(registry(st_).requests[p.hash].signers) == 2
    )
    # a blame from a signer marks a pending sign request failed, with the evidence
    s2 = tx(keys[1], SignRequest(key_id, b"\x22" * 32, ()))
    run_block(st_, s2)
    r2 = registry(st_).requests[s2.hash]
    me = r2.signers[0]
    culprit = r2.signers[1]
    reporter = next(k for k in keys if k.public_bytes() == r2.parties[me - 1])
    blame = Blame(b"ssid", 2, (culprit,), "Π^enc failed", ())
    assert (
        "cannot report itself"
        in run_block(st_, tx(reporter, BlameReport(s2.hash, Blame(b"s", 2, (me,), "x", ()))))[0][1]
    )
    assert run_block(st_, tx(reporter, BlameReport(s2.hash, blame))) == ()
    assert registry(st_).requests[s2.hash].status == "failed"
    assert registry(st_).requests[s2.hash].blames == (blame,)


def _signer_keys(st_: LedgerState, keys: list[IdentityKey], pid: bytes) -> list[IdentityKey]:
    rec = registry(st_).presigs[pid]
    parties = registry(st_).keys[rec.key_id].parties
    chosen = {parties[j - 1] for j in rec.signers}
    return [k for k in keys if k.public_bytes() in chosen]


def _sign_msg(key_id: str, msg: bytes, **kw: object) -> SignRequest:
    return SignRequest(key_id, message_digest(msg, "sha256"), (), message=msg, hash_name="sha256",
                       **kw)  # type: ignore[arg-type]  # fmt: skip


def _with_presign_request(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx, count: int
) -> tuple[LedgerState, str, SignedTx]:
    """A ledger with a 1-of-4 key and a committed presign request for `count`."""
    st_ = LedgerState.from_genesis(genesis, APPS)
    key_id = keygen(st_, keys, tx)
    p = tx(keys[2], PresignRequest(key_id, count))
    run_block(st_, p)
    return st_, key_id, p


def test_presignature_pool_ready_taken_once_dropped_on_refresh(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_, key_id, p = _with_presign_request(genesis, keys, tx, 2)
    first, second = presig_id(p.hash, 0), presig_id(p.hash, 1)
    assert set(registry(st_).presigs) == {first, second} and registry(st_).pool_size(key_id) == 2
    assert registry(st_).pool_size(key_id, ready_only=True) == 0
    signers = _signer_keys(st_, keys, first)
    outsider = next(k for k in keys if k not in signers)
    R = b"\x02" + b"\x11" * 32
    assert "not a signer" in run_block(st_, tx(outsider, PresignReady(p.hash, 0, R)))[0][1]
    assert "33 bytes" in run_block(st_, tx(signers[0], PresignReady(p.hash, 0, R[:5])))[0][1]
    for k in signers:  # every signer must report it, alike, before it is usable
        assert not registry(st_).presigs[first].ready
        assert run_block(st_, tx(k, PresignReady(p.hash, 0, R))) == ()
    assert (
        registry(st_).presigs[first].ready and registry(st_).pool_size(key_id, ready_only=True) == 1
    )
    # signers that disagree on R drop the presignature
    run_block(st_, tx(signers[0], PresignReady(p.hash, 1, R)))
    run_block(st_, tx(signers[1], PresignReady(p.hash, 1, b"\x03" + b"\x22" * 32)))
    assert second not in registry(st_).presigs

    # a raw-digest request never takes a pooled presignature (CVE-2025-66017) ...
    raw = tx(keys[0], SignRequest(key_id, b"\x33" * 32, ()))
    run_block(st_, raw)
    assert registry(st_).requests[raw.hash].presig == b"" and first in registry(st_).presigs
    # ... nor a derived-key request; a message the ledger hashed itself does
    derived = tx(keys[0], SignRequest(key_id, message_digest(b"m", "sha256"), (1,), message=b"m",
                                      hash_name="sha256"))  # fmt: skip
    run_block(st_, derived)
    assert registry(st_).requests[derived.hash].presig == b""
    s1 = tx(keys[1], _sign_msg(key_id, b"pay 1 BTC"))
    run_block(st_, s1)
    r1 = registry(st_).requests[s1.hash]
    assert r1.presig == first and first not in registry(st_).presigs
    assert r1.signers == tuple(sorted(registry(st_).keys[key_id].parties.index(k.public_bytes()) + 1
                                      for k in signers))  # fmt: skip
    s2 = tx(keys[1], _sign_msg(key_id, b"pay 2 BTC"))
    run_block(st_, s2)
    assert registry(st_).requests[s2.hash].presig == b""  # the pool is empty: presign on demand
    # a digest that is not the message's hash, or an unknown hash, is refused
    lie = SignRequest(key_id, b"\x44" * 32, (), message=b"x", hash_name="sha256")
    assert "not the hash" in run_block(st_, tx(keys[0], lie))[0][1]
    odd = SignRequest(key_id, b"\x44" * 32, (), message=b"x", hash_name="md5")
    assert "unknown hash" in run_block(st_, tx(keys[0], odd))[0][1]
    # an excluded signer makes a presignature ineligible
    p2 = tx(keys[2], PresignRequest(key_id, 1))
    run_block(st_, p2)
    third = presig_id(p2.hash, 0)
    for k in _signer_keys(st_, keys, third):
        run_block(st_, tx(k, PresignReady(p2.hash, 0, R)))
    excluded = _signer_keys(st_, keys, third)[0].public_bytes()
    s3 = tx(keys[1], _sign_msg(key_id, b"pay 3 BTC", exclude=(excluded,)))
    run_block(st_, s3)
    assert registry(st_).requests[s3.hash].presig == b"" and third in registry(st_).presigs
    # a refresh makes every presignature of the key useless: dropped
    r = tx(keys[0], RefreshRequest(key_id))
    run_block(st_, r)
    for k in keys[:3]:
        run_block(st_, tx(k, RefreshResult(r.hash, key_public(4, 1, seed=1, epoch=1))))
    assert registry(st_).pool_size(key_id) == 0 and not registry(st_).presigs
    again = LedgerState.from_entries(genesis, st_.entries(), APPS)
    assert again.digest() == st_.digest()


def test_a_blamed_presign_request_drops_its_unfinished_presignatures(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_, key_id, p = _with_presign_request(genesis, keys, tx, 2)
    signers = _signer_keys(st_, keys, presig_id(p.hash, 0))
    R = b"\x02" + b"\x11" * 32
    for k in signers:
        run_block(st_, tx(k, PresignReady(p.hash, 0, R)))
    parties = registry(st_).keys[key_id].parties
    other = parties.index(signers[1].public_bytes()) + 1
    blame = Blame(b"ssid", 1, (other,), "timeout: no message in time", ())
    assert run_block(st_, tx(signers[0], BlameReport(p.hash, blame))) == ()
    assert set(registry(st_).presigs) == {presig_id(p.hash, 0)}  # the ready one stays
    assert "at most" in run_block(st_, tx(keys[0], PresignRequest(key_id, 100)))[0][1]
    # indices and hashes no presign request can have are refused, not a crash (struct
    # packing of a negative or 2^40 index once took the whole replica down)
    for index, request in ((-1, p.hash), (2**40, p.hash), (0, b"short")):
        why = run_block(st_, tx(signers[0], PresignReady(request, index, R)))[0][1]
        assert "no such pooled presignature" in why


def test_refresh(genesis: Genesis, keys: list[IdentityKey], tx: Tx) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    key_id = keygen(st_, keys, tx)
    old = registry(st_).keys[key_id].key
    r = tx(keys[0], RefreshRequest(key_id))
    run_block(st_, r)
    assert "already pending" in run_block(st_, tx(keys[1], RefreshRequest(key_id)))[0][1]
    new = key_public(4, 1, seed=1, epoch=1)
    assert new.public_key == old.public_key and new.epoch == 1
    bad = key_public(4, 1, seed=9, epoch=1)
    assert "does not continue" in run_block(st_, tx(keys[0], RefreshResult(r.hash, bad)))[0][1]
    for k in keys[:3]:
        run_block(st_, tx(k, RefreshResult(r.hash, new)))
    assert (
        registry(st_).keys[key_id].key.epoch == 1 and registry(st_).keys[key_id].refreshing == b""
    )


def test_refresh_to_another_party_set(genesis: Genesis, keys: list[IdentityKey], tx: Tx) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    key_id = keygen(st_, keys, tx)  # 1-of-4: t + 1 = 2 of the old parties must stay
    stay = pks(keys[:1])
    refused = {
        "must stay": RefreshRequest(key_id, stay, 0),
        "distinct": RefreshRequest(key_id, stay * 2),
        "must be a validator": RefreshRequest(key_id, (*pks(keys[:2]), key(77).public_bytes())),
        "threshold": RefreshRequest(key_id, pks(keys[:3]), 3),
    }
    for why, payload in refused.items():
        assert why in run_block(st_, tx(keys[0], payload))[0][1]
    three = pks(keys[1:])  # keys[0] leaves the key
    change = RefreshRequest(key_id, three, 2)
    # a change of parties or threshold is voted: 2f+1 = 3 of 4 must ask for the same one
    for k in keys[1:3]:
        assert run_block(st_, tx(k, change)) == ()
        assert not registry(st_).keys[key_id].refreshing
    assert "already voted" in run_block(st_, tx(keys[1], change))[0][1]
    r = tx(keys[3], change)
    assert run_block(st_, r) == ()
    assert registry(st_).keys[key_id].refreshing == r.hash  # the deciding vote names the request
    assert registry(st_).requests[r.hash].parties == three
    assert not [v for v in registry(st_).votes.values() if v.subject == b"reshare"]
    refused = "under way"  # no signing while the shares and parties change
    assert refused in run_block(st_, tx(keys[1], SignRequest(key_id, b"\x11" * 32, ())))[0][1]
    old = key_public(4, 1, seed=1, epoch=1)
    assert "does not continue" in run_block(st_, tx(keys[1], RefreshResult(r.hash, old)))[0][1]
    moved = key_public(3, 2, seed=1, epoch=1)
    assert "not a party" in run_block(st_, tx(keys[0], RefreshResult(r.hash, moved)))[0][1]
    for k in keys[1:]:
        run_block(st_, tx(k, RefreshResult(r.hash, moved)))
    rec = registry(st_).keys[key_id]
    assert rec.parties == three and rec.key.threshold == 2 and rec.key.epoch == 1


def test_membership_votes_schedule_a_change_at_a_checkpoint_boundary(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    newcomer = key(50)
    join = join_payload(newcomer, genesis.chain_id, "v4", "/ip4/127.0.0.1/tcp/9")
    run_block(st_, tx(keys[0], join))
    assert "already voted" in run_block(st_, tx(keys[0], join))[0][1]
    run_block(st_, tx(keys[1], join))
    assert st_.header.activation == 0  # 2 of 4 is not 2f+1
    run_block(st_, tx(keys[2], join))  # decided at height 4
    K, L = genesis.checkpoint_interval, genesis.window
    assert st_.height == 4
    boundary = -(-(4 + L) // K) * K
    assert st_.header.activation == boundary + 1
    assert newcomer.public_bytes() in st_.config_for(boundary + 1)
    assert newcomer.public_bytes() not in st_.config_for(boundary)
    assert st_.window_limit(4) == boundary  # no window spans two validator sets
    while st_.height < boundary:
        run_block(st_)
    assert newcomer.public_bytes() not in st_.validators
    run_block(st_)
    assert newcomer.public_bytes() in st_.validators and len(st_.validators) == 5
    # a relay cannot change where the validators will dial the newcomer
    relayed = join_payload(key(53), genesis.chain_id, "v5", "/ip4/10.0.0.1/tcp/1")
    moved = type(relayed)(relayed.public_key, "v5", "/ip4/6.6.6.6/tcp/1", relayed.possession)
    assert "possession" in run_block(st_, tx(keys[0], moved))[0][1]
    # a bad proof of possession is refused
    fake = join_payload(key(51), genesis.chain_id, "x")
    forged = type(fake)(fake.public_key, "x", "", key(52).sign(b"nope"))
    assert "possession" in run_block(st_, tx(keys[0], forged))[0][1]
    # a validator may leave on its own
    run_block(st_, tx(newcomer, ValidatorLeave(newcomer.public_bytes())))
    assert st_.header.activation > st_.height
    assert newcomer.public_bytes() not in st_.config_for(st_.header.activation)


def test_misbehaviour_evidence_is_checked_and_recorded(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    bad = keys[3]
    a = sign(bad, genesis.chain_id, Commit(0, 5, b"a" * 32))
    b = sign(bad, genesis.chain_id, Commit(0, 5, b"b" * 32))
    ev = make_evidence(a, b)
    assert run_block(st_, tx(keys[0], Misbehaviour(ev))) == ()
    rec = st_.misbehaviour[ev.digest()]
    assert rec.culprit == bad.public_bytes()
    assert "already recorded" in run_block(st_, tx(keys[1], Misbehaviour(ev)))[0][1]
    same = make_evidence(a, sign(bad, genesis.chain_id, Commit(1, 5, b"b" * 32)))
    assert "different slots" in run_block(st_, tx(keys[0], Misbehaviour(same)))[0][1]
    other = make_evidence(a, sign(keys[2], genesis.chain_id, Commit(0, 5, b"b" * 32)))
    assert "not signed by the culprit" in run_block(st_, tx(keys[0], Misbehaviour(other)))[0][1]


def test_state_survives_its_stored_form(genesis: Genesis, keys: list[IdentityKey], tx: Tx) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    keygen(st_, keys, tx)
    again = LedgerState.from_entries(genesis, st_.entries(), APPS)
    assert again.digest() == st_.digest()
    assert (
        registry(again).keys == registry(st_).keys
        and registry(again).requests == registry(st_).requests
    )
    assert isinstance(decode_any(st_.entries()[next(iter(st_.entries()))]), object)


_ACTIONS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=25
)


@settings(max_examples=40, deadline=None)
@given(_ACTIONS, st.integers(1, 5))
def test_same_blocks_same_digest_at_every_height(actions: list, per_block: int) -> None:
    """Two states fed the same blocks agree on the digest at every height, and the
    stored entries written block by block rebuild the same state."""
    from tests.ledger.conftest import key as mk

    ks = sorted((mk(i) for i in range(4)), key=lambda k: k.public_bytes())
    from tssnode.ledger.genesis import Validator, make_genesis

    g = make_genesis([Validator(k.public_bytes(), f"v{i}", "") for i, k in enumerate(ks)])
    tx = Tx(g)
    a, b = LedgerState.from_genesis(g, APPS), LedgerState.from_genesis(g, APPS)
    stored = dict(a.entries())
    txs = []
    for who, kind, arg in actions:
        signer = ks[who]
        if kind == 0:
            txs.append(tx(signer, KeygenRequest(arg % 3, pks(ks), "insecure-test")))
        elif kind == 1:
            reqs = sorted(registry(a).requests) or [b"\x00" * 32]
            txs.append(tx(signer, KeygenResult(reqs[arg % len(reqs)], key_public(4, 1, arg))))
        elif kind == 2:
            txs.append(tx(signer, join_payload(mk(60 + arg), g.chain_id, f"n{arg}")))
        elif kind == 3:
            txs.append(tx(signer, ValidatorLeave(ks[arg].public_bytes())))
        else:
            txs.append(txs[arg % len(txs)] if txs else tx(signer, RefreshRequest("00" * 16)))
    for i in range(0, len(txs), per_block):
        chunk = txs[i : i + per_block]
        from tssnode.ledger.blocks import execute
        from tssnode.ledger.messages import Batch

        batch = Batch(tuple(t.to_bytes() for t in chunk))
        ba, changes = execute(a, b"p" * 32, batch)
        bb, _ = execute(b, b"p" * 32, batch)
        assert ba == bb and a.digest() == b.digest()
        for k, v in changes.items():
            if v is None:
                stored.pop(k, None)
            else:
                stored[k] = v
        assert LedgerState.from_entries(g, stored, APPS).digest() == a.digest()
