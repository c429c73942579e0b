"""The application interface: what the PBFT engine asks of the state machines it orders.

The engine (`LedgerState`, `blocks.execute`, `Chain`, `Replica`) knows a transaction as a
signed envelope (`SignedTx`) around payload bytes. Everything the payload means belongs to
an `Application`, as ABCI splits CometBFT's consensus from the application it drives
(`state/execution.go`): the engine checks the envelope (a validator's signature, expiry,
replay), decodes the payload and routes it by its type to the one application that
declared that type; the application checks it (`check_tx`) and applies it
(`deliver_tx`). Around each block the engine calls `begin_block` and `end_block`; after
it, it collects every application's changed storage entries (`take_changes`) and takes
the state digest over all of them, which goes into the block (the app hash). An
application changes the validator set only through the engine (`LedgerView.schedule`),
which applies the change at a checkpoint boundary, and answers read-only `query` calls.

Each application owns a few *tables* of the store's state prefix (`layout.state(table,
ident)`): it keeps its records as Python objects, marks the entries it changes
(`_set`), and re-encodes only those (`_lookup`). Two applications never share a table, so
the engine can add a second one (the bridge) without touching the first. Execution is
deterministic: an application reads nothing but its own tables, the transaction, the
block height and the `LedgerView`, through which it may also read (never write) another
application's records (`LedgerView.query`: the bridge reads the registry's keys).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from tssnode.crypto.encoding import Wire, wire
from tssnode.store import layout

if TYPE_CHECKING:
    from tssnode.ledger.genesis import Genesis, Validator
    from tssnode.ledger.transactions import SignedTx


@wire("tssnode.ledger.sign-subject/1")
@dataclass(frozen=True)
class SignSubject(Wire):
    """What an application asks to have signed for one of its subjects: its answer to
    `query("sign/<subject hex>")`, which the key registry checks an `AppSignRequest`
    against. `path` is the non-hardened derivation of the key to sign with."""

    key_id: str
    digest: bytes
    path: tuple[int, ...] = ()


class LedgerView(Protocol):
    """What an application sees of the engine's own state."""

    @property
    def genesis(self) -> Genesis: ...

    @property
    def height(self) -> int: ...

    @property
    def validators(self) -> Mapping[bytes, Validator]:
        """The current validator set (public key → validator)."""
        ...

    @property
    def next_validators(self) -> tuple[Validator, ...]:
        """The scheduled validator set (empty when no change is scheduled)."""
        ...

    @property
    def scheduled(self) -> bool:
        """Is a validator-set change scheduled (and not yet in force)?"""
        ...

    def config_for(self, seq: int) -> tuple[bytes, ...]: ...

    def schedule(self, members: Mapping[bytes, Validator], decided_at: int) -> None:
        """Make `members` the validator set from the first checkpoint at least one
        watermark window after `decided_at` (only while nothing is scheduled)."""
        ...

    def query(self, app: str, path: str) -> Wire | None:
        """Another application's `query(path)` (None if the ledger runs no such one): how
        one application reads another's records, as they stand at this point of the block
        (deterministic like everything else it reads; it never writes them)."""
        ...


class Tables(ABC):
    """Records kept as objects, stored one entry per record under the state prefix.

    A subclass marks what it changes with `_set(table, ident)` and says how to encode an
    entry in `_lookup(key)` (None: the record is gone). `take_changes` re-encodes the
    marked entries and returns the writes (None: delete); `entries` is the stored form.
    """

    def __init__(self) -> None:
        self._encoded: dict[bytes, bytes] = {}
        self._dirty: set[bytes] = set()

    def _set(self, table: int, ident: bytes = b"") -> None:
        self._dirty.add(layout.state(table, ident))

    @abstractmethod
    def _lookup(self, key: bytes) -> bytes | None:
        """The stored form of the entry at storage key `key` (None: no record)."""

    def take_changes(self) -> dict[bytes, bytes | None]:
        """Storage writes (None: delete) for every entry changed since the last call."""
        out: dict[bytes, bytes | None] = {}
        for key in sorted(self._dirty):
            raw = self._lookup(key)
            if raw is None:
                if self._encoded.pop(key, None) is not None:
                    out[key] = None
            elif self._encoded.get(key) != raw:
                self._encoded[key] = raw
                out[key] = raw
        self._dirty.clear()
        return out

    @property
    def unsaved(self) -> bool:
        return bool(self._dirty)

    def entries(self) -> dict[bytes, bytes]:
        """The stored form: storage key → record bytes."""
        return dict(self._encoded)


class Application(Tables):
    """A deterministic state machine the engine drives (see the module docstring).

    A subclass declares its `name`, the state `tables` it owns and the `payload_types`
    routed to it, and is constructed without arguments; the engine then `attach`es it to
    its `LedgerView` and either `load`s its stored entries or calls `init_genesis`.
    """

    name: ClassVar[str]
    tables: ClassVar[frozenset[int]]
    payload_types: ClassVar[tuple[type[Wire], ...]]

    def __init__(self) -> None:
        super().__init__()
        self._ledger: LedgerView | None = None

    @property
    def ledger(self) -> LedgerView:
        if self._ledger is None:
            raise RuntimeError(f"application {self.name} is not attached to a ledger")
        return self._ledger

    def attach(self, ledger: LedgerView) -> None:
        self._ledger = ledger

    def init_genesis(self) -> None:
        """Set up the state of an empty chain (default: nothing)."""

    def load(self, entries: Mapping[bytes, bytes]) -> None:
        """Restore the records from their stored entries (only this application's tables)."""
        for key, raw in entries.items():
            self._restore(key[1], key[2:], raw)
        self._encoded = dict(entries)

    @abstractmethod
    def _restore(self, table: int, ident: bytes, raw: bytes) -> None:
        """Restore one record from its stored bytes."""

    @abstractmethod
    def check_tx(self, tx: SignedTx, payload: Any, height: int) -> None:
        """Raise `InvalidTransaction` unless `payload` (of one of `payload_types`, sent in
        `tx`) may enter block `height`; change nothing."""

    @abstractmethod
    def deliver_tx(self, tx: SignedTx, payload: Any, height: int) -> None:
        """Apply a transaction `check_tx` accepted at this height."""

    def begin_block(self, height: int, *, validators_changed: bool) -> None:
        """Called before the block's transactions (after the engine put a scheduled
        validator set in force, if `validators_changed`)."""

    def end_block(self, height: int) -> None:
        """Called after the block's transactions."""

    def query(self, path: str) -> Wire | None:
        """A read-only lookup by path (application-defined); None if nothing is there."""
        return None


class OnePathApplication(Application):
    """An application whose check and delivery of a transaction run one path (`execute`,
    with `apply` False to check only), so the two cannot disagree on what a transaction
    may do: the key registry and the bridge are written this way."""

    @abstractmethod
    def execute(self, tx: SignedTx, payload: Any, height: int, *, apply: bool) -> None:
        """Raise `InvalidTransaction` unless `payload` may enter block `height`; with
        `apply`, also apply it."""

    def check_tx(self, tx: SignedTx, payload: Any, height: int) -> None:
        self.execute(tx, payload, height, apply=False)

    def deliver_tx(self, tx: SignedTx, payload: Any, height: int) -> None:
        self.execute(tx, payload, height, apply=True)


#: How the engine makes an application: its class, or any function without arguments.
AppFactory = Callable[[], Application]


def route(apps: list[Application]) -> dict[type, Application]:
    """Payload type → the application it belongs to (each type to exactly one, and each
    table owned by one)."""
    by_type: dict[type, Application] = {}
    owner: dict[int, str] = {}
    for app in apps:
        for t in app.tables:
            if t in owner:
                raise ValueError(f"state table {t} claimed by {owner[t]} and {app.name}")
            owner[t] = app.name
        for ptype in app.payload_types:
            if ptype in by_type:
                raise ValueError(f"{ptype.__name__} routed to two applications")
            by_type[ptype] = app
    return by_type
