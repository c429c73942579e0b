"""The application interface: the engine routes payloads by type to the application that
declared them, takes one digest over every application's tables, stores and restores
each, and takes a second application beside the key registry without either knowing the
other (as the bridge will be)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from tests.ledger.conftest import Tx, key_public, run_block
from tests.ledger.harness import keygen_tx
from tssnode.crypto.encoding import Wire, wire
from tssnode.crypto.identity import IdentityKey
from tssnode.errors import EncodingError
from tssnode.ledger.app import Application
from tssnode.ledger.chain import Chain
from tssnode.ledger.errors import InvalidTransaction
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.replica import Replica
from tssnode.ledger.state import LedgerState
from tssnode.ledger.transactions import SignedTx
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import KeygenRequest, KeygenResult
from tssnode.store.errors import StoreCorrupt
from tssnode.testing.memstore import MemoryStore
from tssnode.testing.pbftsim import SimNetwork

T_NOTES = 9


@wire("tests.ledger.note/1")
@dataclass(frozen=True)
class Note(Wire):
    text: str


class Notes(Application):
    """A second application: validators post short notes; each is kept by its tx hash,
    and a counter of all notes is kept under its own entry."""

    name: ClassVar[str] = "notes"
    tables: ClassVar[frozenset[int]] = frozenset({T_NOTES})
    payload_types: ClassVar[tuple[type[Wire], ...]] = (Note,)

    def __init__(self) -> None:
        super().__init__()
        self.notes: dict[bytes, str] = {}
        self.blocks = 0

    def _restore(self, table: int, ident: bytes, raw: bytes) -> None:
        if ident == b"":
            self.blocks = int.from_bytes(raw, "big")
        else:
            self.notes[ident] = raw.decode()

    def _lookup(self, key: bytes) -> bytes | None:
        ident = key[2:]
        if ident == b"":
            return self.blocks.to_bytes(8, "big")
        text = self.notes.get(ident)
        return None if text is None else text.encode()

    def init_genesis(self) -> None:
        self._set(T_NOTES)

    def check_tx(self, tx: SignedTx, payload: Any, height: int) -> None:
        if not 0 < len(payload.text) <= 16:
            raise InvalidTransaction("a note has 1 to 16 characters")

    def deliver_tx(self, tx: SignedTx, payload: Any, height: int) -> None:
        self.notes[tx.hash] = payload.text
        self._set(T_NOTES, tx.hash)

    def end_block(self, height: int) -> None:
        self.blocks += 1
        self._set(T_NOTES)

    def query(self, path: str) -> Wire | None:
        kind, _, ident = path.partition("/")
        text = self.notes.get(bytes.fromhex(ident)) if kind == "note" else None
        return None if text is None else Note(text)


BOTH = (KeyRegistry, Notes)


def test_payloads_are_routed_to_their_application(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    st = LedgerState.from_genesis(genesis, BOTH)
    parties = tuple(k.public_bytes() for k in keys)
    kg, note = tx(keys[0], KeygenRequest(1, parties, "insecure-test")), tx(keys[1], Note("hi"))
    bad = tx(keys[2], Note("x" * 17))
    assert run_block(st, kg, note, bad) == ((2, "a note has 1 to 16 characters"),)
    assert kg.hash in st.app(KeyRegistry).requests and kg.hash not in st.app(Notes).notes
    assert st.app(Notes).notes == {note.hash: "hi"} and st.app(Notes).blocks == 1
    assert st.app(Notes).query(f"note/{note.hash.hex()}") == Note("hi")
    assert st.app(KeyRegistry).query(f"request/{kg.hash.hex()}") is not None
    assert st.app(KeyRegistry).query("request/zz") is None

    # a ledger without the notes application refuses a note, and the registry is unchanged
    alone = LedgerState.from_genesis(genesis, (KeyRegistry,))
    assert run_block(alone, tx(keys[1], Note("hi"))) == ((0, "Note is not a transaction payload"),)
    with pytest.raises(KeyError):
        alone.app(Notes)


def test_one_digest_over_every_application_and_each_restored(
    genesis: Genesis, keys: list[IdentityKey], tx: Tx
) -> None:
    a, b = LedgerState.from_genesis(genesis, BOTH), LedgerState.from_genesis(genesis, BOTH)
    parties = tuple(k.public_bytes() for k in keys)
    kg = tx(keys[0], KeygenRequest(1, parties, "insecure-test"))
    run_block(a, kg, tx(keys[1], Note("one")))
    run_block(b, kg, tx(keys[1], Note("two")))
    # the same registry state, another note: another digest
    assert a.app(KeyRegistry).entries() == b.app(KeyRegistry).entries()
    assert a.digest() != b.digest()

    kp = key_public(4, 1)
    run_block(a, *(tx(k, KeygenResult(kg.hash, kp)) for k in keys[:3]))
    again = LedgerState.from_entries(genesis, a.entries(), BOTH)
    assert again.digest() == a.digest()
    assert again.app(Notes).notes == a.app(Notes).notes and again.app(Notes).blocks == 2
    assert again.app(KeyRegistry).keys == a.app(KeyRegistry).keys
    copy = a.copy()
    run_block(copy, tx(keys[2], Note("three")))
    assert len(a.app(Notes).notes) == 1  # the copy's applications are its own

    # entries of an application this ledger does not run are not silently dropped
    with pytest.raises(EncodingError, match="belong to no application"):
        LedgerState.from_entries(genesis, a.entries(), (KeyRegistry,))
    store = MemoryStore()
    chain = Chain(store, genesis, BOTH)
    assert chain.state.app(Notes).blocks == 0
    with pytest.raises(StoreCorrupt):
        Chain(store, genesis, (KeyRegistry,))
    assert Chain(store, genesis, BOTH).state.digest() == chain.state.digest()


def test_applications_cannot_share_a_table_or_take_the_engines(genesis: Genesis) -> None:
    class Thief(Notes):
        name = "thief"
        tables = frozenset({1})  # the engine's validators
        payload_types = ()

    class Twin(Notes):
        name = "twin"
        payload_types = ()

    with pytest.raises(ValueError, match="engine table"):
        LedgerState.from_genesis(genesis, (Thief,))
    with pytest.raises(ValueError, match="claimed by notes and twin"):
        LedgerState.from_genesis(genesis, (Notes, Twin))

    class Greedy(Notes):
        name = "greedy"
        tables = frozenset({10})

    with pytest.raises(ValueError, match="Note routed to two applications"):
        LedgerState.from_genesis(genesis, (Notes, Greedy))


def _note(tag: bytes, text: str):
    def submit(r: Replica) -> None:
        r.submit_payload(Note(text), nonce=tag)

    return submit


def test_replicas_agree_on_both_applications_through_a_crash() -> None:
    net = SimNetwork.make("two-apps", 4, apps=BOTH)
    ids = sorted(net.ids)
    for i in range(6):
        net.submit(ids[i % 4], keygen_tx(b"k%d" % i))
        net.submit(ids[(i + 1) % 4], _note(b"n%d" % i, f"note {i}"))
    net.run(10, stop=lambda: all(not r.pending for r in net.alive_replicas()))
    net.crash(ids[3])
    for i in range(6, 9):
        net.submit(ids[i % 3], _note(b"n%d" % i, f"note {i}"))
    net.run(net.now + 10, stop=lambda: all(not r.pending for r in net.alive_replicas()))
    net.restart(ids[3])
    net.run(net.now + 60, stop=lambda: len({r.chain.height for r in net.alive_replicas()}) == 1)
    replicas = net.alive_replicas()
    assert len(replicas) == 4
    digests = {r.chain.state.digest() for r in replicas}
    assert len(digests) == 1
    notes = replicas[0].chain.state.app(Notes).notes
    assert sorted(notes.values()) == sorted(f"note {i}" for i in range(9))
    assert len(replicas[0].chain.state.app(KeyRegistry).requests) == 6
