"""The engine's replicated state: the validator set, replay protection, misbehaviour, and
the applications it drives (`tssnode.ledger.app`).

`LedgerState` holds the engine's own tables (the header with its scheduled validator set,
the validators, the hashes of recent transactions, recorded misbehaviour) and routes every
transaction's payload to the application that declared its type. Applying a block changes
a few entries; each part remembers which (`take_changes`), so the chain store writes just
those in the block's batch. The state digest is SHA-256 over every (storage key, record)
pair of the engine and all its applications, in key order, so two nodes with the same
digest hold byte-identical state.

Membership changes are decided by an application (the key registry counts the votes) and
*scheduled* by the engine (`schedule`): a change applies from sequence c + 1 where c is
the first checkpoint at least one watermark window (L) after the block that decided it.
Every replica that can see a sequence that high has executed the deciding block, and no
window ever spans two validator sets (`window_limit`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tssnode.crypto.encoding import Wire, wire
from tssnode.errors import EncodingError
from tssnode.ledger.app import AppFactory, Application, Tables, route
from tssnode.ledger.errors import InvalidTransaction
from tssnode.ledger.evidence import check_evidence
from tssnode.ledger.genesis import Genesis, Validator
from tssnode.ledger.transactions import Misbehaviour, SignedTx
from tssnode.store import layout

#: The engine's own state tables; applications use others (the key registry: 2, 3, 4, 7).
T_HEADER, T_VALIDATORS, T_RECENT, T_MISBEHAVIOUR = 0, 1, 5, 6
ENGINE_TABLES = frozenset({T_HEADER, T_VALIDATORS, T_RECENT, T_MISBEHAVIOUR})

A = TypeVar("A", bound=Application)


def max_faulty(n: int) -> int:
    """f for n = 3f + 1 (or more) replicas."""
    return (n - 1) // 3


def quorum(n: int) -> int:
    """2f + 1 out of n (n - f: any two quorums share an honest replica)."""
    return n - max_faulty(n)


@wire("tssnode.ledger.state.header/1")
@dataclass(frozen=True)
class Header(Wire):
    height: int
    next_validators: tuple[Validator, ...]
    activation: int  # first sequence of next_validators; 0 when nothing is scheduled


@wire("tssnode.ledger.state.misbehaviour/1")
@dataclass(frozen=True)
class MisbehaviourRecord(Wire):
    culprit: bytes
    height: int
    evidence: bytes  # encoded EquivocationEvidence


class LedgerState(Tables):
    """The replicated state after `header.height` blocks: the engine's tables and its
    applications'. Implements the `LedgerView` the applications see."""

    def __init__(
        self, genesis: Genesis, header: Header, validators: dict[bytes, Validator],
        apps: Sequence[AppFactory],
    ) -> None:  # fmt: skip
        super().__init__()
        self.genesis = genesis
        self.header = header
        self.validators = validators
        self.recent: dict[bytes, int] = {}
        self.misbehaviour: dict[bytes, MisbehaviourRecord] = {}
        self._factories = tuple(apps)
        self.apps: list[Application] = [make() for make in self._factories]
        for app in self.apps:
            if app.tables & ENGINE_TABLES:
                raise ValueError(f"application {app.name} claims an engine table")
            app.attach(self)
        self._route = route(self.apps)

    # -- construction and persistence ---------------------------------------------------------

    @staticmethod
    def from_genesis(genesis: Genesis, apps: Sequence[AppFactory]) -> LedgerState:
        validators = {v.public_key: v for v in genesis.validators}
        st = LedgerState(genesis, Header(0, (), 0), validators, apps)
        st._set(T_HEADER)
        for pk in st.validators:
            st._set(T_VALIDATORS, pk)
        for app in st.apps:
            app.init_genesis()
        st.take_changes()
        return st

    @staticmethod
    def from_entries(
        genesis: Genesis, entries: Mapping[bytes, bytes], apps: Sequence[AppFactory]
    ) -> LedgerState:
        """The state from its stored entries (storage key → record bytes)."""
        st = LedgerState(genesis, Header.from_bytes(entries[layout.state(T_HEADER)]), {}, apps)
        own: dict[bytes, bytes] = {}
        theirs: dict[int, dict[bytes, bytes]] = {}
        for key, raw in entries.items():
            table, ident = key[1], key[2:]
            if table == T_VALIDATORS:
                st.validators[ident] = Validator.from_bytes(raw)
            elif table == T_RECENT:
                st.recent[ident] = layout.read_u64(raw)
            elif table == T_MISBEHAVIOUR:
                st.misbehaviour[ident] = MisbehaviourRecord.from_bytes(raw)
            elif table != T_HEADER:
                theirs.setdefault(table, {})[key] = raw
                continue
            own[key] = raw
        for app in st.apps:
            app.load({k: v for t in app.tables for k, v in theirs.pop(t, {}).items()})
        if theirs:
            # entries no application claims: a store written with an application this
            # node does not run, whose state it must not silently drop
            raise EncodingError(f"state tables {sorted(theirs)} belong to no application")
        st._encoded = own
        return st

    def entries(self) -> dict[bytes, bytes]:
        out = dict(self._encoded)
        for app in self.apps:
            out.update(app.entries())
        return out

    def copy(self) -> LedgerState:
        return LedgerState.from_entries(self.genesis, self.entries(), self._factories)

    def _lookup(self, key: bytes) -> bytes | None:
        table, ident = key[1], key[2:]
        value: Wire | None
        if table == T_HEADER:
            return self.header.to_bytes()
        if table == T_VALIDATORS:
            value = self.validators.get(ident)
        elif table == T_RECENT:
            expiry = self.recent.get(ident)
            return None if expiry is None else layout.u64(expiry)
        else:
            value = self.misbehaviour.get(ident)
        return None if value is None else bytes(value.to_bytes())

    def take_changes(self) -> dict[bytes, bytes | None]:
        """Storage writes (None: delete) for every entry changed since the last call, of
        the engine and every application."""
        out = super().take_changes()
        for app in self.apps:
            out.update(app.take_changes())
        return out

    def digest(self) -> bytes:
        """SHA-256 over every (key, record) in key order (after `take_changes`)."""
        if self.unsaved or any(app.unsaved for app in self.apps):
            raise RuntimeError("state digest taken with unsaved changes")
        h = hashlib.sha256(b"tssnode.ledger.state/1" + self.genesis.chain_id)
        for key, value in sorted(self._all_entries()):
            h.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(8, "big") + value)
        return h.digest()

    def _all_entries(self) -> Iterator[tuple[bytes, bytes]]:
        yield from self._encoded.items()
        for app in self.apps:
            yield from app._encoded.items()

    def app(self, kind: type[A]) -> A:
        """The application of this class (KeyError if the ledger does not run one)."""
        for app in self.apps:
            if isinstance(app, kind):
                return app
        raise KeyError(f"this ledger runs no {kind.__name__}")

    # -- the validator set (the LedgerView of the applications) --------------------------------

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def next_validators(self) -> tuple[Validator, ...]:
        return self.header.next_validators

    @property
    def scheduled(self) -> bool:
        return bool(self.header.activation)

    def validator_keys(self) -> list[bytes]:
        return sorted(self.validators)

    def config_for(self, seq: int) -> tuple[bytes, ...]:
        """The validator keys (sorted) that order sequence `seq` (> height - L)."""
        hd = self.header
        if hd.activation and seq >= hd.activation:
            return tuple(v.public_key for v in hd.next_validators)
        return tuple(sorted(self.validators))

    def window_limit(self, low: int) -> int:
        """The highest sequence a replica with low watermark `low` may accept."""
        limit = low + self.genesis.window
        if self.header.activation and low < self.header.activation - 1:
            limit = min(limit, self.header.activation - 1)
        return limit

    def schedule(self, members: Mapping[bytes, Validator], decided_at: int) -> None:
        if self.header.activation:
            raise RuntimeError("a validator-set change is already scheduled")
        k, window = self.genesis.checkpoint_interval, self.genesis.window
        boundary = -(-(decided_at + window) // k) * k  # first checkpoint ≥ height + L
        nxt = tuple(members[pk] for pk in sorted(members))
        self._put_header(Header(self.header.height, nxt, boundary + 1))

    def query(self, app: str, path: str) -> Wire | None:
        for a in self.apps:
            if a.name == app:
                return a.query(path)
        return None

    def _put_header(self, header: Header) -> None:
        self.header = header
        self._set(T_HEADER)

    # -- transactions -------------------------------------------------------------------------

    def check(self, tx: SignedTx, height: int | None = None) -> Wire:
        """The payload of `tx` if it may enter block `height` (default: the next one)."""
        h = self.height + 1 if height is None else height
        payload, app = self._check(tx, h)
        self._guarded(app.check_tx if app else self._check_misbehaviour, tx, payload, h)
        return payload

    def _check(self, tx: SignedTx, h: int) -> tuple[Wire, Application | None]:
        """The envelope's checks: the payload, and the application it is routed to (None
        for the engine's own `Misbehaviour`)."""
        if tx.sender not in self.config_for(h):
            raise InvalidTransaction("the sender is not a validator")
        if not h <= tx.expiry <= h + self.genesis.tx_lifetime:
            raise InvalidTransaction(
                f"expiry {tx.expiry} outside [{h}, {h + self.genesis.tx_lifetime}]"
            )
        if tx.hash in self.recent:
            raise InvalidTransaction("the transaction is already in the ledger")
        if len(tx.nonce) > 32:
            raise InvalidTransaction("nonce longer than 32 bytes")
        if not tx.signature_ok(self.genesis.chain_id):
            raise InvalidTransaction("bad transaction signature")
        payload = tx.decode_payload()
        if isinstance(payload, Misbehaviour):
            return payload, None
        app = self._route.get(type(payload))
        if app is None:
            raise InvalidTransaction(f"{type(payload).__name__} is not a transaction payload")
        return payload, app

    @staticmethod
    def _guarded(step: Any, tx: SignedTx, payload: Wire, height: int) -> None:
        try:
            step(tx, payload, height)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            # a field no check anticipated (every replica fails alike): refuse, never crash
            raise InvalidTransaction(f"malformed {type(payload).__name__}: {exc}") from None

    def apply_tx(self, tx: SignedTx, height: int) -> None:
        """Check `tx` and apply it (raises `InvalidTransaction`, changing nothing, if not)."""
        payload, app = self._check(tx, height)
        self._guarded(app.check_tx if app else self._check_misbehaviour, tx, payload, height)
        self.recent[tx.hash] = tx.expiry
        self._set(T_RECENT, tx.hash)
        if app is None:
            assert isinstance(payload, Misbehaviour)
            self._record_misbehaviour(payload, height)
        else:
            app.deliver_tx(tx, payload, height)

    def begin_block(self, height: int) -> None:
        """Promote a scheduled validator set, forget expired transactions, and let each
        application begin the block."""
        if height != self.height + 1:
            raise ValueError(f"block {height} does not follow {self.height}")
        hd = self.header
        promoted = bool(hd.activation and height >= hd.activation)
        if promoted:
            for pk in self.validators:
                self._set(T_VALIDATORS, pk)
            self.validators = {v.public_key: v for v in hd.next_validators}
            for pk in self.validators:
                self._set(T_VALIDATORS, pk)
            self._put_header(Header(hd.height, (), 0))
        for h, expiry in list(self.recent.items()):
            if expiry < height:
                del self.recent[h]
                self._set(T_RECENT, h)
        for app in self.apps:
            app.begin_block(height, validators_changed=promoted)

    def end_block(self, height: int) -> None:
        for app in self.apps:
            app.end_block(height)
        self._put_header(Header(height, self.header.next_validators, self.header.activation))

    # -- misbehaviour (the engine's own transaction) --------------------------------------------

    def _check_misbehaviour(self, tx: SignedTx, p: Misbehaviour, height: int) -> None:
        why = check_evidence(self.genesis.chain_id, p.evidence)
        if why is not None:
            raise InvalidTransaction(why)
        if p.evidence.digest() in self.misbehaviour:
            raise InvalidTransaction("this evidence is already recorded")
        culprit = p.evidence.culprit
        if culprit not in self.validators and culprit not in self.config_for(height):
            raise InvalidTransaction("the culprit is not a validator")

    def _record_misbehaviour(self, p: Misbehaviour, height: int) -> None:
        digest = p.evidence.digest()
        self.misbehaviour[digest] = MisbehaviourRecord(
            p.evidence.culprit, height, p.evidence.to_bytes()
        )
        self._set(T_MISBEHAVIOUR, digest)
