"""Who holds a key, and a party giving up its session (issue 12).

A key turns active on a quorum of identical results, so a party that crashed before it
voted is a party of the key without a confirmed share. Such a party is never chosen as a
signer (a restarted node once failed a signature with "this node holds no share"); it
becomes a holder when it confirms the key later. A `Withdrawal` fails a pending request at
once instead of after the other parties' round timeouts."""

from __future__ import annotations

from tests.ledger.conftest import APPS, Tx, key_public, pks, registry, run_block
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.state import LedgerState
from tssnode.registry.records import T_KEYS, WITHDRAWN_CHECK, KeyRecordV1, presig_id
from tssnode.registry.transactions import (
    KeygenRequest,
    KeygenResult,
    PresignReady,
    PresignRequest,
    RefreshRequest,
    RefreshResult,
    SignRequest,
    Withdrawal,
)
from tssnode.store import layout


def _key_by(st_: LedgerState, keys: list[IdentityKey], tx: Tx, voters: list[IdentityKey]) -> str:
    """A 1-of-4 key accepted on the results of `voters` (a quorum) only."""
    req = tx(keys[0], KeygenRequest(1, pks(keys), "insecure-test"))
    run_block(st_, req)
    kp = key_public(4, 1)
    for k in voters:
        assert run_block(st_, tx(k, KeygenResult(req.hash, kp))) == ()
    assert registry(st_).requests[req.hash].status == "done"
    return kp.key_id


def test_signers_are_chosen_among_holders_only(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    silent = keys[3]
    key_id = _key_by(st_, keys, tx, keys[:3])
    rec = registry(st_).keys[key_id]
    assert silent.public_bytes() not in rec.holders and set(rec.holders) == set(pks(keys[:3]))
    silent_id = rec.parties.index(silent.public_bytes()) + 1
    # over many requests (signers are chosen by hash order), never the party without a share
    for i in range(40):
        s = tx(keys[i % 3], SignRequest(key_id, bytes([i]) * 32, ()))
        assert run_block(st_, s) == ()
        assert silent_id not in registry(st_).requests[s.hash].signers
    p = tx(keys[0], PresignRequest(key_id, 2))
    run_block(st_, p)
    assert silent_id not in registry(st_).presigs[presig_id(p.hash, 0)].signers


def test_a_late_party_confirms_the_key_it_holds_and_nothing_else(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    key_id = _key_by(st_, keys, tx, keys[:3])
    request = next(h for h, r in registry(st_).requests.items() if r.kind == "keygen")
    late = keys[3]
    # a different key (its share does not fit) is no confirmation
    why = run_block(st_, tx(late, KeygenResult(request, key_public(4, 1, seed=9))))[0][1]
    assert "not the key's current epoch" in why
    assert late.public_bytes() not in registry(st_).keys[key_id].holders
    assert run_block(st_, tx(late, KeygenResult(request, key_public(4, 1)))) == ()
    assert set(registry(st_).keys[key_id].holders) == set(pks(keys))
    # after a refresh, the keygen's key is an old epoch: a confirmation of it is refused
    st2 = LedgerState.from_genesis(genesis, APPS)
    key2 = _key_by(st2, keys, tx, keys[:3])
    req2 = next(h for h, r in registry(st2).requests.items() if r.kind == "keygen")
    r = tx(keys[0], RefreshRequest(key2))
    run_block(st2, r)
    for k in keys[:3]:
        run_block(st2, tx(k, RefreshResult(r.hash, key_public(4, 1, epoch=1))))
    assert registry(st2).keys[key2].key.epoch == 1
    why = run_block(st2, tx(late, KeygenResult(req2, key_public(4, 1))))[0][1]
    assert "not the key's current epoch" in why
    # the refresh's own late confirmation is accepted
    assert run_block(st2, tx(keys[3], RefreshResult(r.hash, key_public(4, 1, epoch=1)))) == ()
    assert set(registry(st2).keys[key2].holders) == set(pks(keys))


def test_a_refresh_needs_t_plus_1_holders_and_gives_the_others_a_share(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    key_id = _key_by(st_, keys, tx, keys[:3])
    # a reshare that keeps only one holder (t + 1 = 2 must stay) is refused, even though
    # it keeps two parties: the non-holder deals nothing
    two = pks([keys[0], keys[3]])
    for k in keys[:3]:
        why = run_block(st_, tx(k, RefreshRequest(key_id, two, 1)))
    assert "share holders must stay" in why[0][1]
    r = tx(keys[0], RefreshRequest(key_id))
    assert run_block(st_, r) == ()
    assert registry(st_).keys[key_id].refreshing == r.hash


def test_a_version_1_key_record_loads_with_every_party_a_holder(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    key_id = _key_by(st_, keys, tx, keys[:3])
    rec = registry(st_).keys[key_id]
    v1 = KeyRecordV1(rec.key_id, rec.key, rec.parties, rec.created, rec.refreshing)
    entries = st_.entries()
    stored = layout.state(T_KEYS, layout.key_id_bytes(key_id))
    assert entries[stored][:40] != v1.to_bytes()[:40]  # (the tag differs)
    entries[stored] = v1.to_bytes()
    old = LedgerState.from_entries(genesis, entries, APPS)
    assert set(registry(old).keys[key_id].holders) == set(rec.parties)
    # the stored bytes, and so the state digest, stay until the record changes
    assert old.entries()[stored] == v1.to_bytes()
    assert old.digest() == LedgerState.from_entries(genesis, entries, APPS).digest()


def test_a_withdrawal_fails_a_pending_request_at_once(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    key_id = _key_by(st_, keys, tx, keys[:3])
    s = tx(keys[0], SignRequest(key_id, b"\x11" * 32, ()))
    run_block(st_, s)
    req = registry(st_).requests[s.hash]
    signer = next(k for k in keys if k.public_bytes() == req.parties[req.signers[0] - 1])
    outsider = next(
        k for k in keys if k.public_bytes() not in [req.parties[j - 1] for j in req.signers]
    )
    reason = "the node restarted and lost its session state"
    assert "not a party" in run_block(st_, tx(outsider, Withdrawal(s.hash, reason)))[0][1]
    assert "reason" in run_block(st_, tx(signer, Withdrawal(s.hash, "")))[0][1]
    assert "reason" in run_block(st_, tx(signer, Withdrawal(s.hash, "x" * 201)))[0][1]
    assert "no such request" in run_block(st_, tx(signer, Withdrawal(b"\x00" * 32, reason)))[0][1]
    assert run_block(st_, tx(signer, Withdrawal(s.hash, reason))) == ()
    failed = registry(st_).requests[s.hash]
    assert failed.status == "failed"
    (blame,) = failed.blames
    me = req.parties.index(signer.public_bytes()) + 1
    assert blame.culprits == (me,) and blame.check == f"{WITHDRAWN_CHECK}: {reason}"
    assert "already failed" in run_block(st_, tx(signer, Withdrawal(s.hash, reason)))[0][1]


def test_a_withdrawal_ends_a_refresh_and_a_presign_request(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st_ = LedgerState.from_genesis(genesis, APPS)
    key_id = _key_by(st_, keys, tx, keys[:3])
    r = tx(keys[0], RefreshRequest(key_id))
    run_block(st_, r)
    assert run_block(st_, tx(keys[2], Withdrawal(r.hash, "restarted"))) == ()
    assert (
        registry(st_).requests[r.hash].status == "failed"
        and registry(st_).keys[key_id].refreshing == b""
    )
    # presign: the ready presignature stays, the unfinished ones go
    p = tx(keys[0], PresignRequest(key_id, 3))
    run_block(st_, p)
    rec = registry(st_).presigs[presig_id(p.hash, 0)]
    parties = registry(st_).keys[key_id].parties
    signers = [k for k in keys if k.public_bytes() in [parties[j - 1] for j in rec.signers]]
    R = b"\x02" + b"\x11" * 32
    for k in signers:
        run_block(st_, tx(k, PresignReady(p.hash, 0, R)))
    run_block(st_, tx(signers[0], PresignReady(p.hash, 1, R)))
    assert run_block(st_, tx(signers[1], Withdrawal(p.hash, "restarted"))) == ()
    assert set(registry(st_).presigs) == {presig_id(p.hash, 0)}
    assert registry(st_).requests[p.hash].status == "done"  # (a presign request stays done)
    why = run_block(st_, tx(signers[1], Withdrawal(p.hash, "restarted")))[0][1]
    assert "owes no presignature" in why
