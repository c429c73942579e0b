"""The journal of accepted requests, on a real LevelDB: what a restart gives back."""

from __future__ import annotations

from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.transactions import make_tx
from tssnode.node.accepted import AcceptedRequests
from tssnode.registry.transactions import KeygenRequest
from tssnode.store import LevelStore


def _tx(key: IdentityKey, expiry: int = 50):
    payload = KeygenRequest(1, (key.public_bytes(),), "insecure-test")
    return make_tx(key, b"\x01" * 32, payload, expiry=expiry)


def test_accepted_requests_survive_a_reopen_until_ordered_or_failed(tmp_path):
    key = IdentityKey.generate()
    a, b, c = _tx(key), _tx(key), _tx(key)
    store = LevelStore(tmp_path / "db")
    journal = AcceptedRequests(store)
    for tx in (a, b, c):
        journal.accept(tx)
    store.close()

    store = LevelStore(tmp_path / "db")  # as after a kill -9: only what was synced
    journal = AcceptedRequests(store)
    assert {h: tx.to_bytes() for h, tx in journal.unordered()} == {
        tx.hash: tx.to_bytes() for tx in (a, b, c)
    }
    journal.ordered(a.hash)
    journal.failed(b.hash, "expired at height 50 before it was ordered")
    journal.retried(a.hash, c.hash)
    store.close()

    store = LevelStore(tmp_path / "db")
    journal = AcceptedRequests(store)
    assert [h for h, _ in journal.unordered()] == [c.hash]
    assert journal.get(a.hash).ordered and journal.get(a.hash).tx == b""  # the ledger has it
    assert journal.get(b.hash).failure == "expired at height 50 before it was ordered"
    # a failed request keeps its transaction: after a restart its id still answers
    assert [(h, tx.to_bytes()) for h, tx in journal.failures()] == [(b.hash, b.to_bytes())]
    assert dict(journal.links()) == {a.hash: c.hash}
    journal.failed(a.hash, "too late")  # an ordered request never turns failed
    assert journal.get(a.hash).failure is None
    assert journal.get(bytes(32)) is None
    store.close()


def test_a_request_the_ledger_refused_as_it_was_handed_over_is_forgotten(tmp_path):
    key = IdentityKey.generate()
    a = _tx(key)
    store = LevelStore(tmp_path / "db")
    journal = AcceptedRequests(store)
    journal.accept(a)
    journal.forget(a.hash)
    store.close()
    store = LevelStore(tmp_path / "db")
    journal = AcceptedRequests(store)
    assert journal.get(a.hash) is None and list(journal.unordered()) == []
    store.close()
