"""Everything the console knows about its node, and how snapshots and events change it.

`ConsoleState` is plain Python: the API's answers (`apply_snapshot`) and the event
stream (`apply_event`) go in; out come the screen areas that changed, what to fetch
next, and alerts worth a notification. The widgets only draw it, so the console's
logic is tested without a terminal. No Textual here.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Any, Literal

from tssnode import schema
from tui.model import (
    Block,
    BridgeInfo,
    Child,
    Deposit,
    DepositAddress,
    Key,
    Peer,
    Release,
    Session,
    Signature,
    Status,
    Validator,
    _get,
    _strs,
    short,
    short_peer,
)
from tui.stats import MAX_LOG_LINES, LogBook, LogLine, ProofStats

#: Screen areas, each drawn by one widget module.
Area = Literal[
    "header", "peers", "validators", "sessions", "proofs", "chain", "keys", "log", "bridge"
]
#: Snapshot kinds the console fetches; ("key", id), ("signature", id), ("block", height)
#: fetch one item; BRIDGE_FETCHES are the bridge's views (the Bridge screen's).
Fetch = tuple[str, str]
Severity = Literal["information", "warning", "error"]
#: "connecting": nothing is known of the node's health yet (no status, or not every list
#: loaded once): neither red nor green
Health = Literal["connecting", "ok", "degraded", "down"]
#: (severity, title, message) of a notice that answers the operator
Notice = tuple[Severity, str, str]

SNAPSHOTS = ("status", "validators", "peers", "sessions", "keys", "blocks")
#: the bridge's views: GET /bridge, /bridge/addresses, /bridge/deposits, /bridge/releases
#: (`tui.link`)
BRIDGE_FETCHES = ("bridge", "bridge.addresses", "bridge.deposits", "bridge.releases")
SESSION_GRACE_S = 120.0  # keep a session seen in events this long if a list lacks it

# What the console keeps, whatever the node sends (a console runs for days against busy
# networks): each collection that grows with events is cut back to its bound, oldest first.
MAX_BLOCKS = 200  # block summaries (the Chain table)
MAX_SESSIONS = 200  # protocol sessions (finished ones go before running ones)
MAX_SIGNATURES = 200  # signatures the console follows
MAX_PEERS = 500  # peers (disconnected ones go first)
MAX_VIEW_CHANGES = 20  # view changes (the Chain screen shows the newest two)
MAX_ALIASES = 200  # request id → the key or signature id it became
MAX_FOLLOWED = 50  # the operator's requests followed until done (the oldest dropped)
MAX_DEPOSITS = 500  # bridge deposits (the node lists them oldest first: the newest kept)
MAX_DEPOSIT_ADDRESSES = 500  # bridge deposit addresses (likewise)
MAX_RELEASES = 500  # bridge releases (the node lists them by burn nonce: the newest kept)

#: what each ledger request is called in notices
REQUEST_WORDS = {
    "keygen": "Keygen",
    "sign": "Signing",
    "refresh_key": "Refresh",
    "presign": "Presigning",
    "derive": "Derivation",
}


@dataclass
class Changes:
    """What one update did: areas to redraw, items to fetch, alerts to show."""

    areas: set[Area] = field(default_factory=set)
    fetch: list[Fetch] = field(default_factory=list)
    alerts: list[tuple[Severity, str]] = field(default_factory=list)
    #: answers to the operator's own requests (sent, refused, done, failed): noticed at
    #: once, never summed up with the node's news
    answers: list[Notice] = field(default_factory=list)

    def merge(self, other: Changes) -> Changes:
        self.areas |= other.areas
        self.fetch += [f for f in other.fetch if f not in self.fetch]
        self.alerts += other.alerts
        self.answers += other.answers
        return self


@dataclass(frozen=True)
class ViewChange:
    time: float
    view: int
    primary: str


@dataclass
class Link:
    """The console's connection to the node."""

    url: str = ""
    connected: bool = False
    synced: bool = False  # every snapshot has been loaded once since connecting
    reason: str = "connecting"
    retry_at: float | None = None
    attempts: int = 0
    ever_connected: bool = False
    ever_synced: bool = False  # the node's state was loaded in full at least once
    stream_error: str | None = None  # the event stream failed; polling meanwhile


@dataclass
class BridgeView:
    """What the console knows of the node's bridge. Its views are read only while the
    Bridge screen is shown (`shown`): when it opens, at every block with transactions and
    every settled request of the bridge key (a mint or a release's input signed), and at
    each poll (the confirmations of deposits and releases grow with Bitcoin's blocks, which
    no ledger event tells of)."""

    info: BridgeInfo | None = None  # GET /bridge; None until read
    #: the node runs no bridge (GET /bridge answered 404): what it said
    absent: str | None = None
    addresses: list[DepositAddress] = field(default_factory=list)
    deposits: list[Deposit] = field(default_factory=list)  # as the node lists them
    releases: list[Release] = field(default_factory=list)  # likewise
    #: the node shows no releases (GET /bridge/releases answered 404: a node from before
    #: them): what it said; not asked again until the screen opens again
    releases_absent: str | None = None
    #: the last failure to read a bridge view (other than "no bridge"), until one is read
    error: str | None = None
    shown: bool = False  # the Bridge screen is on screen

    @property
    def set_up(self) -> bool:
        return self.info is not None and self.info.set_up


@dataclass
class Followed:
    """A request the operator sent, followed until it is done: its notice then says so
    (or that it failed; a request the node retries may still be done after that)."""

    action: str  # "keygen" | "sign" | "refresh_key" | "presign"
    ident: str  # the request's id: key id (keygen), signature id (sign), else its tx
    key_id: str
    epoch: int = 0  # refresh: the key's epoch when asked
    count: int = 0  # presign: how many were asked for
    before: int = 0  # presign: the key's presignatures when asked
    failed: bool = False  # its failure was told


class ConsoleState:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        tz: tzinfo | None = None,
        max_blocks: int = MAX_BLOCKS,
        max_sessions: int = MAX_SESSIONS,
        max_signatures: int = MAX_SIGNATURES,
        max_log_lines: int = MAX_LOG_LINES,
    ) -> None:
        self.clock = clock
        self.tz = tz
        self.max_blocks = max_blocks
        self.max_sessions = max_sessions
        self.max_signatures = max_signatures
        self.link = Link()
        self.status: Status | None = None
        self.peers: dict[str, Peer] = {}
        self.validators: list[Validator] = []
        self.sessions: dict[str, Session] = {}
        self.keys: dict[str, Key] = {}
        self.signatures: dict[str, Signature] = {}  # newest last
        self.blocks: dict[int, Block] = {}
        self.proofs = ProofStats()
        self.view_changes: deque[ViewChange] = deque(maxlen=MAX_VIEW_CHANGES)
        self.log = LogBook(max_log_lines)
        self.last_seq: int | None = None
        # what the operator has selected and what they have asked for
        self.selected_key: str | None = None
        self.selected_signature: str | None = None
        self.selected_block: int | None = None
        self.in_flight: set[str] = set()
        self.requested_keys: dict[str, Key] = {}  # asked for, not yet listed by the node
        self.aliases: dict[str, str] = {}  # request id → the key or signature id it became
        self.followed: dict[str, Followed] = {}  # the operator's requests, until done
        self.bridge = BridgeView()
        # the validators' names (tui.names: validator key hex or peer id → name), and this
        # node's own (its config's name) if the genesis does not name it
        self.names: dict[str, str] = {}
        self.own_name: str | None = None

    # -- presentation helpers --------------------------------------------------------------
    def now(self) -> float:
        return self.clock()

    def clock_text(self, t: float | None) -> str:
        if t is None:
            return "-"
        return datetime.fromtimestamp(t, self.tz).strftime("%H:%M:%S")

    def ago(self, t: float | None) -> str:
        if t is None:
            return "never"
        return duration(max(0.0, self.now() - t)) + " ago"

    def party(self, party: str | int | None) -> str:
        """A validator as the operator sees it everywhere: 'node4 #4 …cHMU' (its name if
        known, its index in the validator set and the end of its peer id). Events name
        parties by index, routes by peer id; both come out the same. Other peers: the
        name if known and a shortened peer id."""
        if party is None or party == "":
            return "-"
        text = str(party)
        for v in self.validators:
            if (text.isdigit() and v.index == int(text)) or v.peer_id == text:
                name = self.validator_name(v)
                label = f"#{v.index} …{v.peer_id[-4:]}"
                return f"{name} {label}" if name else label
        if text.isdigit():
            return f"#{text}"
        name = self.name_of(text)
        return f"{name} {short_peer(text)}" if name else short_peer(text)

    def party_short(self, party: str | int | None) -> str:
        """A party where there is little room (a column listing several): its name if
        known, else as `party` says it."""
        text = "" if party is None else str(party)
        for v in self.validators:
            if (text.isdigit() and v.index == int(text)) or v.peer_id == text:
                return self.validator_name(v) or self.party(text)
        return self.name_of(text) or self.party(party)

    def name_of(self, peer_id: str | None) -> str | None:
        """The name of a node by its peer id (or validator key), if known."""
        if not peer_id:
            return None
        for v in self.validators:
            if v.peer_id == peer_id:
                return self.validator_name(v)
        return self._known_name(peer_id)

    def validator_name(self, v: Validator) -> str | None:
        """What the node calls it (not in the API yet), else the genesis, else, for this
        node, its config's name."""
        if v.name:
            return v.name
        if v.validator_key and v.validator_key.lower() in self.names:
            return self.names[v.validator_key.lower()]
        return self._known_name(v.peer_id)

    def _known_name(self, peer_id: str) -> str | None:
        name = self.names.get(peer_id) or self.names.get(peer_id.lower())
        if name is None and self.status is not None:
            if self.status.peer_id == peer_id and self.status.validator_key:
                name = self.names.get(self.status.validator_key.lower())
            if name is None and self.status.peer_id == peer_id:
                name = self.own_name
        return name

    def note(self, level: str, text: str, source: str = "console") -> None:
        self.log.add(LogLine(self.now(), level, source, text))

    # -- derived views -----------------------------------------------------------------------
    @property
    def me(self) -> str | None:
        return self.status.peer_id if self.status else None

    def quorum(self) -> tuple[int, int, int]:
        """(validators online, validators, votes a commit needs)."""
        known = self.validators and all(v.status != "unknown" for v in self.validators)
        if known:
            n = len(self.validators)
            online = sum(v.status == "online" for v in self.validators)
        elif self.validators:  # statuses not reported: count this node and its peers
            n = len(self.validators)
            online = min(n, 1 + sum(p.connected and p.validator for p in self.peers.values()))
        else:
            n = self.status.validators if self.status else 0
            online = 1 + sum(p.connected and p.validator for p in self.peers.values()) if n else 0
        needed = n - (n - 1) // 3 if n else 0  # n − f with f = ⌊(n−1)/3⌋
        latest = self.latest_block()
        if latest and latest.certificate.quorum:
            needed = latest.certificate.quorum
        return online, n, needed

    @property
    def loaded(self) -> bool:
        """Whether the node's state has been loaded in full at least once (its status,
        then every list): before that the console cannot judge its health."""
        return self.status is not None and (self.link.synced or self.link.ever_synced)

    def synced(self) -> None:
        """Every snapshot has been loaded since connecting."""
        self.link.synced = True
        self.link.ever_synced = True

    def health(self) -> tuple[Health, str]:
        if not self.loaded:  # neutral: no quorum is judged from half the lists
            if self.link.connected:
                return "connecting", "loading the node's state…"
            if self.link.attempts:
                return "connecting", f"connecting… ({self.link.reason})"
            return "connecting", "connecting…"
        if not self.link.connected:
            return "down", self.link.reason
        online, n, needed = self.quorum()
        if n and online < needed:
            return "down", f"below quorum: {online} of {n} validators online, {needed} needed"
        if self.status is not None and self.status.stalled:  # amber, never green
            return "degraded", f"stalled: {self.status.liveness or 'no blocks'}"
        if not self.link.synced:
            return "degraded", "loading"
        if self.link.stream_error is not None:
            return "degraded", f"no event stream ({self.link.stream_error}); polling"
        gone = [p for p in self.peers.values() if p.validator and not p.connected]
        if gone:
            names = ", ".join(self.party(p.peer_id) for p in gone)
            return "degraded", f"{names} disconnected"
        return "ok", "healthy"

    def latest_block(self) -> Block | None:
        return self.blocks[max(self.blocks)] if self.blocks else None

    def current_key(self) -> Key | None:
        """The selected key, or else the first active key, or else the first key."""
        if self.selected_key in self.keys:
            return self.keys[self.selected_key]
        active = [k for k in self.keys.values() if k.active]
        candidates = active or list(self.keys.values())
        return candidates[0] if candidates else None

    def current_signature(self) -> Signature | None:
        """The selected signature of the current key, or else its newest finished one,
        or else its newest one."""
        key = self.current_key()
        mine = self.signatures_of(key.key_id) if key else []
        for sig in mine:
            if sig.signature_id == self.selected_signature:
                return sig
        done = [s for s in mine if s.done]
        candidates = done or mine
        return candidates[0] if candidates else None

    def signatures_of(self, key_id: str) -> list[Signature]:
        return [s for s in reversed(self.signatures.values()) if s.key_id == key_id]

    def online_parties(self, key: Key) -> int | None:
        """How many of the key's parties are online, if the validator list says."""
        if not self.validators or any(v.status == "unknown" for v in self.validators):
            return None
        online = {v.peer_id for v in self.validators if v.status == "online"}
        return sum(p in online for p in key.parties)

    def resolve(self, ident: str) -> str:
        """The id a request id became (keys and signatures), or the id itself."""
        seen = {ident}
        while ident in self.aliases and self.aliases[ident] not in seen:
            ident = self.aliases[ident]
            seen.add(ident)
        return ident

    def session_elapsed(self, s: Session) -> float | None:
        # `started` is a Unix time; anything before 2001 is some other clock: not used
        if s.running and s.started is not None and s.started > 1e9:
            return max(0.0, self.now() - s.started)
        return s.elapsed_s

    # -- the link ----------------------------------------------------------------------------
    def link_up(self, url: str) -> Changes:
        reconnect = self.link.ever_connected
        self.link.ever_synced |= self.link.synced
        self.link = replace(
            self.link,
            url=url,
            connected=True,
            reason="connected",
            retry_at=None,
            attempts=0,
            ever_connected=True,
            synced=False,
            stream_error=None,
        )
        self.note("info", f"connected to {url}")
        # (a restarted node may run one, or show releases, now: asked again)
        self.bridge.absent = self.bridge.releases_absent = None
        alerts: list[tuple[Severity, str]] = [("information", "reconnected")] if reconnect else []
        return Changes({"header", "log"}, alerts=alerts)

    def link_down(self, reason: str, retry_in: float | None) -> Changes:
        was = self.link.connected
        self.link.ever_synced |= self.link.synced
        self.link.connected = False
        self.link.synced = False
        self.link.reason = reason
        self.link.attempts += 1
        self.link.retry_at = None if retry_in is None else self.now() + retry_in
        alerts: list[tuple[Severity, str]] = []
        if was:
            self.note("error", f"lost the node: {reason}")
            alerts.append(("error", f"disconnected: {reason}"))
        return Changes({"header", "log"}, alerts=alerts)

    def stream_down(self, reason: str, retry_in: float) -> Changes:
        first = self.link.stream_error is None
        self.link.stream_error = reason
        changes = Changes({"header"})
        if first:
            self.note("warning", f"event stream lost ({reason}); polling, retrying")
            changes.areas.add("log")
            changes.alerts.append(("warning", f"no event stream: {reason}"))
        return changes

    def stream_up(self) -> Changes:
        if self.link.stream_error is None:
            return Changes()
        self.link.stream_error = None
        self.note("info", "event stream back")
        return Changes({"header", "log"})

    def restarted(self, status: Status) -> bool:
        """Whether `status` comes from a node that restarted since the last one we saw
        (its event numbers started again from 1)."""
        old = self.status
        return old is not None and (status.uptime_s < old.uptime_s or status.peer_id != old.peer_id)

    # -- snapshots ---------------------------------------------------------------------------
    def apply_snapshot(self, kind: str, data: Any, ident: str = "") -> Changes:
        """The answer of one GET: a list route, or one key/signature/block (`ident` is
        the id it was asked for; a node may answer for a request id with the key or
        signature it became, under that one's own id)."""
        changes = self._snapshot(kind, data, ident)
        if self.followed and changes.areas & {"keys", "sessions"}:
            changes.merge(self._follow_up())
        return changes

    def _snapshot(self, kind: str, data: Any, ident: str) -> Changes:
        if kind == "status" and isinstance(data, dict):
            return self._set_status(Status.from_json(data))
        if kind == "validators":
            self.validators = sorted(
                (Validator.from_json(d) for d in _dicts(data)), key=lambda v: v.index
            )
            return Changes({"validators", "header", "keys"})
        if kind == "peers":
            self.peers = {p.peer_id: p for p in (Peer.from_json(d) for d in _dicts(data))}
            self._trim_peers()
            return Changes({"peers", "header"})
        if kind == "sessions":
            listed = {
                s.session_id: self._newer_session(s)
                for s in (Session.from_json(d) for d in _dicts(data))
            }
            # a session the stream told of just now may be newer than this answer
            recent = self.now() - SESSION_GRACE_S
            for ssid, s in self.sessions.items():
                if ssid not in listed and s.started is not None and s.started >= recent:
                    listed[ssid] = s
            self.sessions = listed
            self._trim_sessions()
            return Changes({"sessions"})
        if kind == "keys":
            read = (self._with_children(Key.from_json(d)) for d in _dicts(data))
            known = {k.key_id: k for k in read}
            for rid in list(self.requested_keys):  # followed until active or failed
                if rid in known:
                    if known[rid].status == "pending":
                        self.requested_keys[rid] = known[rid]
                    else:
                        del self.requested_keys[rid]
            missing = [rid for rid in self.requested_keys if rid not in known]
            self.keys = known
            self.keys.update({rid: self.requested_keys[rid] for rid in missing})
            # a request the list does not show (yet, or any more: it became a key under
            # its own id): ask for it by the request's id
            return Changes({"keys"}, fetch=[("key", rid) for rid in missing])
        if kind == "key" and isinstance(data, dict):
            key = self._with_children(Key.from_json(data))
            self.keys[key.key_id] = key
            if key.status != "pending":
                self.requested_keys.pop(key.key_id, None)
            if ident and ident != key.key_id:  # the request became this key
                self._alias(ident, key.key_id)
                self.keys.pop(ident, None)
                self.requested_keys.pop(ident, None)
                if self.selected_key == ident:
                    self.selected_key = key.key_id
            return Changes({"keys"})
        if kind == "signature" and isinstance(data, dict):
            sig = Signature.from_json(data)
            if ident and ident != sig.signature_id:  # a retry under a new id
                self._alias(ident, sig.signature_id)
                self.signatures.pop(ident, None)
                if self.selected_signature == ident:
                    self.selected_signature = sig.signature_id
            self.signatures.pop(sig.signature_id, None)
            self.signatures[sig.signature_id] = sig
            self._trim_signatures()
            changes = Changes({"keys"})
            followed = self.resolve(ident or sig.signature_id) in (
                self.resolve(f) for f in self.followed
            )
            if sig.status == "failed" and sig.blame and not followed:  # else: its answer
                culprits = ", ".join(self.party(c) for c in sig.blame.culprits)
                changes.alerts.append(("error", f"signing failed: {culprits}: {sig.blame.check}"))
            return changes
        if kind == "blocks":
            for block in (Block.from_json(d) for d in _dicts(data)):
                old = self.blocks.get(block.height)
                if old is None or not old.full:
                    self.blocks[block.height] = _with_times_of(block, old)
            self._trim_blocks()
            return Changes({"chain", "header"})
        if kind == "block" and isinstance(data, dict):
            block = Block.from_json(data, full=True)
            self.blocks[block.height] = _with_times_of(block, self.blocks.get(block.height))
            self._trim_blocks()
            return Changes({"chain"})
        if kind in BRIDGE_FETCHES:
            return self._bridge_snapshot(kind, data)
        return Changes()

    # -- the bridge ----------------------------------------------------------------------------
    def _bridge_snapshot(self, kind: str, data: Any) -> Changes:
        bridge = self.bridge
        if kind == "bridge":
            if not isinstance(data, dict):
                return Changes()
            was_set_up = bridge.set_up
            bridge.info = BridgeInfo.from_json(data)
            bridge.absent = bridge.error = None
            changes = Changes({"bridge"})
            if not bridge.info.set_up:  # (no lists before the settings)
                bridge.addresses, bridge.deposits, bridge.releases = [], [], []
            elif not was_set_up:  # its lists, now that there are any
                changes.fetch += [(k, "") for k in self._bridge_lists()]
            return changes
        if kind == "bridge.addresses":
            listed = list(_dicts(data))[-MAX_DEPOSIT_ADDRESSES:]
            bridge.addresses = [DepositAddress.from_json(d) for d in listed]
        elif kind == "bridge.releases":
            listed = list(_dicts(data))[-MAX_RELEASES:]
            bridge.releases = [Release.from_json(d) for d in listed]
            bridge.releases_absent = None
        else:
            listed = list(_dicts(data))[-MAX_DEPOSITS:]
            bridge.deposits = [Deposit.from_json(d) for d in listed]
        bridge.error = None
        return Changes({"bridge"})

    def _bridge_lists(self) -> list[str]:
        """The bridge's lists to read once it is set up: all but the releases of a node
        that said it shows none."""
        absent = self.bridge.releases_absent is not None
        return [k for k in BRIDGE_FETCHES[1:] if not (absent and k == "bridge.releases")]

    def bridge_fetches(self) -> list[Fetch]:
        """The bridge's views to read now: none unless the Bridge screen is shown and the
        node is connected; GET /bridge alone until the bridge is set up (its lists are
        refused before), and nothing more once the node said it runs no bridge."""
        bridge = self.bridge
        if not bridge.shown or not self.link.connected or bridge.absent is not None:
            return []
        if not bridge.set_up:
            return [("bridge", "")]
        return [("bridge", ""), *((kind, "") for kind in self._bridge_lists())]

    def show_bridge(self, shown: bool) -> Changes:
        """The Bridge screen came into view (or left it): read the bridge now, from
        GET /bridge, whatever was known (a node that ran no bridge may run one now)."""
        opened = shown and not self.bridge.shown
        self.bridge.shown = shown
        if opened:
            self.bridge.absent = self.bridge.releases_absent = None
            return Changes(fetch=self.bridge_fetches())
        return Changes()

    def fetch_failed(self, kind: str, reason: str, status: int | None = None) -> Changes:
        """A GET the node refused. GET /bridge's 404 says the node runs no bridge: the
        Bridge screen says so (and the Log once), and nothing more is asked of it.
        GET /bridge/releases' 404 says the node is from before releases: likewise, for
        its releases only (the rest of the bridge is read as before)."""
        bridge = self.bridge
        if kind == "bridge" and status == 404:
            if bridge.absent is None:
                self.note("info", f"this node runs no bridge (GET /bridge: {reason})")
            bridge.absent = reason
            bridge.info, bridge.addresses, bridge.deposits = None, [], []
            bridge.releases, bridge.releases_absent = [], None
            bridge.error = None
            return Changes({"bridge", "log"})
        if kind == "bridge.releases" and status == 404:
            if bridge.releases_absent is None:
                self.note("info", f"this node shows no releases (GET /bridge/releases: {reason})")
            bridge.releases_absent = reason
            bridge.releases = []
            return Changes({"bridge", "log"})
        self.note("warning", f"GET {kind}: {reason}")
        if kind in BRIDGE_FETCHES:
            bridge.error = f"GET {kind}: {reason}"
            return Changes({"bridge", "log"})
        return Changes({"log"})

    def _newer_session(self, listed: Session) -> Session:
        """A session as the node lists it, with what the stream told since, or told
        better: rounds only go forward, and a finished session does not run again."""
        old = self.sessions.get(listed.session_id)
        if old is None:
            return listed
        if listed.running and not old.running:
            return replace(old, request=old.request or listed.request)
        if old.round > listed.round:
            listed = replace(listed, round=old.round, waiting_for=old.waiting_for)
        if not old.running and not listed.running and old.elapsed_s is not None:
            # finished: its time does not grow (a node may keep counting a failed one)
            elapsed = listed.elapsed_s
            listed = replace(
                listed, elapsed_s=old.elapsed_s if elapsed is None else min(elapsed, old.elapsed_s)
            )
        return replace(
            listed,
            rounds=listed.rounds or old.rounds,
            request=listed.request or old.request,
            culprits=listed.culprits or old.culprits,
            error=listed.error or old.error,
        )

    def _set_status(self, status: Status) -> Changes:
        old = self.status
        self.status = status
        changes = Changes({"header"})
        for warning in status.warnings:  # once each, when the node first reports it
            if old is None or warning not in old.warnings:
                self.log.add(LogLine(self.now(), "warning", "node", warning))
                changes.areas.add("log")
                changes.alerts.append(("warning", f"node: {warning}"))
        if status.stalled and not (old and old.stalled):
            what = f"ledger stalled: {status.liveness or 'no blocks'}"
            self.log.add(LogLine(self.now(), "warning", "node", what))
            changes.areas.add("log")
            changes.alerts.append(("warning", what))
        if (
            old
            and status.view > old.view
            and not any(v.view == status.view for v in self.view_changes)
        ):
            changes.merge(self._view_changed(self.now(), status.view, status.primary))
        if old and status.height > old.height:  # blocks the stream did not tell of
            changes.fetch += [("blocks", ""), ("keys", "")]
        return changes

    # -- the bounds (MAX_*): oldest first -----------------------------------------------------
    def _trim_blocks(self) -> None:
        extra = len(self.blocks) - self.max_blocks
        if extra > 0:
            for height in sorted(self.blocks)[:extra]:
                del self.blocks[height]

    def _with_children(self, key: Key) -> Key:
        """`key` as the node answered it, with the children derived through this console
        (the node keeps none: a derivation is a public computation, so every answer comes
        without them)."""
        known = self.keys.get(key.key_id)
        if known is None or not known.children:
            return key
        return replace(key, children=known.children)

    def _trim_sessions(self) -> None:
        """Finished sessions go first, then running ones; the oldest first in each."""
        extra = len(self.sessions) - self.max_sessions
        if extra > 0:
            order = sorted(self.sessions.values(), key=lambda s: (s.running, s.started or 0.0))
            for s in order[:extra]:
                del self.sessions[s.session_id]

    def _trim_signatures(self) -> None:
        """The oldest first (the dict is in order of arrival)."""
        while len(self.signatures) > self.max_signatures:
            del self.signatures[next(iter(self.signatures))]

    def _trim_peers(self) -> None:
        """Disconnected peers go first, the oldest first."""
        extra = len(self.peers) - MAX_PEERS
        if extra > 0:
            gone = [p for p in self.peers.values() if not p.connected]
            rest = [p for p in self.peers.values() if p.connected]
            for p in (gone + rest)[:extra]:
                del self.peers[p.peer_id]

    def _alias(self, ident: str, becomes: str) -> None:
        self.aliases.pop(ident, None)
        self.aliases[ident] = becomes
        while len(self.aliases) > MAX_ALIASES:
            del self.aliases[next(iter(self.aliases))]

    # -- the operator's actions ----------------------------------------------------------------
    def accepted(self, action: str, result: Any, request: dict[str, Any]) -> Changes:
        """The node accepted `action`: show its effect before the ledger reports it, say
        so with the request's id, and follow the request until it is done or fails."""
        res = result if isinstance(result, dict) else {}
        tx_id = str(res.get("tx", ""))
        tx = short(tx_id, 8, 4)
        changes = Changes({"keys", "log"})
        word = REQUEST_WORDS.get(action, action)
        title = f"{word} submitted"
        if action == "keygen" and "key_id" in res:
            key_id = str(res["key_id"])
            parties = request.get("parties") or [v.peer_id for v in self.validators]
            placeholder = Key.from_json(
                {
                    "key_id": key_id,
                    "status": "pending",
                    "threshold": request.get("threshold"),
                    "parties": parties,
                }
            )
            self.requested_keys[key_id] = placeholder
            self.keys.setdefault(key_id, placeholder)
            self.selected_key = key_id
            self._follow(Followed(action, key_id, key_id))
            text = f"keygen requested: key {key_id} (tx {tx})"
            notice = f"request {key_id}\nthe key is pending; a notice follows when it is active"
        elif action == "sign" and "signature_id" in res:
            sig_id = str(res["signature_id"])
            key_id = str(request.get("key_id", ""))
            digest = str(res.get("digest") or request.get("digest", ""))
            path = request.get("path")
            self.signatures[sig_id] = Signature.pending(
                sig_id, key_id, digest, None if path is None else str(path)
            )
            self._trim_signatures()
            self.selected_signature = sig_id
            self.selected_key = key_id or self.selected_key
            self._follow(Followed(action, sig_id, key_id))
            text = f"signing requested: signature {sig_id}, digest {digest} (tx {tx})"
            notice = f"signature {sig_id}\ndigest {digest}"
        elif action == "derive" and "path" in res:
            child = Child.from_json(res)
            key = self.current_key()
            if key is not None and all(c.path != child.path for c in key.children):
                self.keys[key.key_id] = replace(key, children=(*key.children, child))
            eth = child.addresses.eth or short(child.public_key)
            title = "Derived"
            text = notice = f"derived {child.path}: {eth}"
        else:
            key_id = str(res.get("key_id") or request.get("key_id") or "")
            key = self.keys.get(key_id) or self.current_key()
            key_id = key_id or (key.key_id if key else "")
            what = {"refresh_key": "refresh", "presign": "presigning"}.get(action, action)
            text = f"{what} requested for key {short(key_id)} (tx {tx})"
            notice = f"request {tx_id or '?'}\nfor key {short(key_id)}"
            try:
                count = int(request.get("count") or 0)
            except (TypeError, ValueError):
                count = 0
            if action == "presign" and count:
                notice += f": {count} presignatures"
            if key is not None and action == "refresh_key":
                notice += f": epoch {key.epoch} → {key.epoch + 1}"
            if key is not None and action in ("refresh_key", "presign"):
                self._follow(
                    Followed(
                        action,
                        tx_id or key_id,
                        key.key_id,
                        epoch=key.epoch,
                        count=count,
                        before=key.presignatures,
                    )
                )
        self.note("info", text)
        changes.answers.append(("information", title, notice))
        return changes

    def refused(self, action: str, reason: str) -> Changes:
        self.note("error", f"{action}: {reason}")
        title = f"{REQUEST_WORDS.get(action, action)} not sent"
        return Changes({"log"}, answers=[("error", title, reason)])

    def cancelled(self, action: str) -> Changes:
        """The operator cancelled the confirmation of `action`."""
        word = REQUEST_WORDS.get(action, action)
        self.note("info", f"{word.lower()} cancelled at the confirmation: nothing was sent")
        return Changes({"log"}, answers=[("warning", f"{word} cancelled", "nothing was sent")])

    # -- the operator's requests, followed ---------------------------------------------------
    def _followed_signatures(self) -> list[Fetch]:
        """The signatures the operator asked for that are still pending."""
        return [
            ("signature", ident)
            for ident, r in self.followed.items()
            if r.action == "sign" and not r.failed
        ]

    def _follow(self, request: Followed) -> None:
        self.followed.pop(request.ident, None)
        self.followed[request.ident] = request
        while len(self.followed) > MAX_FOLLOWED:
            del self.followed[next(iter(self.followed))]

    def _follow_up(self) -> Changes:
        """Notices for the followed requests that are now done or have failed."""
        changes = Changes()
        for ident, request in list(self.followed.items()):
            outcome = self._outcome(request)
            if outcome is None:
                continue
            done, text = outcome
            word = REQUEST_WORDS.get(request.action, request.action)
            if done:
                del self.followed[ident]
                self.note("info", f"{word} {ident} done: {text}")
                changes.answers.append(("information", f"{word} done", text))
            elif not request.failed:  # still followed: the node may retry it
                request.failed = True
                self.note("error", f"{word} {ident} failed: {text}")
                changes.answers.append(("error", f"{word} failed", text))
        if changes.answers:
            changes.areas.add("log")
        return changes

    def _outcome(self, request: Followed) -> tuple[bool, str] | None:
        """(done, what happened), or None while the request is under way."""
        if request.action == "keygen":
            key = self.keys.get(self.resolve(request.ident))
            if key is None:
                return None
            if key.active:
                eth = f"\nEthereum {key.addresses.eth}" if key.addresses.eth else ""
                return True, f"key {key.key_id} is active ({key.quorum} sign){eth}"
            if key.status == "failed":
                return False, f"key {key.key_id}: {key.error or 'the node gives no reason'}"
            return None
        if request.action == "sign":
            sig = self.signatures.get(self.resolve(request.ident))
            if sig is None:
                return None
            if sig.done:
                return True, f"signature {sig.signature_id} is ready (y copies it)"
            if sig.status == "failed":
                why = sig.error or "the node gives no reason"
                if sig.blame:
                    culprits = ", ".join(self.party(c) for c in sig.blame.culprits)
                    why = f"{culprits or 'nobody named'}: {sig.blame.check}"
                return False, f"signature {sig.signature_id}: {why}"
            return None
        key = self.keys.get(request.key_id)
        mine = [s for s in self.sessions.values() if s.request == request.ident]
        if request.action == "refresh_key" and key is not None and key.epoch > request.epoch:
            return True, f"key {short(key.key_id)} re-shared: epoch {key.epoch}"
        if request.action == "presign":
            made = sum(s.status == "done" for s in mine)
            if request.count and made >= request.count:
                return True, f"{made} presignatures made for key {short(request.key_id)}"
            if (
                key is not None
                and request.count
                and key.presignatures >= request.before + request.count
            ):
                return True, f"key {short(key.key_id)} has {key.presignatures} presignatures"
        failed = [s for s in mine if s.status == "failed"]
        if failed:
            s = failed[-1]
            culprits = ", ".join(self.party(c) for c in s.culprits) or "nobody named"
            return False, f"{s.phase} session aborted in round {s.round}: {culprits}: {s.error}"
        return None

    # -- events ------------------------------------------------------------------------------
    def apply_event(self, ev: dict[str, Any]) -> Changes:
        """One event from `GET /events` (docs/api.md, "Kinds"), read through its schema
        model (`schema.read_event`): a field that is missing or malformed is left out, and
        each handler falls back where one is (an event it cannot use changes nothing)."""
        kind, f = schema.read_event(ev)
        seq = f.get("seq")
        if seq is not None and seq > 0:
            self.last_seq = seq
        at = _get(f, "time", self.now())
        handler = _HANDLERS.get(kind)
        if handler is None:
            self.log.add(LogLine(at, "debug", "event", f"{kind or '?'} {_compact(ev)}"))
            return Changes({"log"})
        changes = handler(self, at, f)
        changes.areas.add("log")
        if self.followed and changes.areas & {"keys", "sessions"}:
            changes.merge(self._follow_up())
        return changes

    def _event_log(self, at: float, level: str, text: str) -> None:
        self.log.add(LogLine(at, level, "event", text))

    def _peer_up_down(self, at: float, f: dict[str, Any]) -> Changes:
        peer_id = _get(f, "peer_id", "?")
        up = f["kind"] == "peer.up"
        old = self.peers.get(peer_id)
        status = "connected" if up else "disconnected"
        if old is None:
            self.peers[peer_id] = Peer(peer_id, "", None, at if up else None, status, True)
            self._trim_peers()
        else:
            self.peers[peer_id] = replace(old, status=status, last_seen=at if up else old.last_seen)
        self._event_log(at, "info" if up else "warning", f"peer {self.party(peer_id)} {status}")
        changes = Changes({"peers", "header"}, fetch=[("peers", ""), ("validators", "")])
        if not up:
            changes.alerts.append(("warning", f"peer {self.party(peer_id)} disconnected"))
        return changes

    def _block_committed(self, at: float, f: dict[str, Any]) -> Changes:
        height = f.get("height")
        if height is None:
            return Changes()
        count = _get(f, "txs", 0)
        latency = f.get("latency_ms")
        if height not in self.blocks:
            summary = {
                "height": height,
                "hash": f.get("hash"),
                "time": f.get("time"),  # when the node committed it (not our clock)
                "commit_latency_ms": latency,
                "view": self.status.view if self.status else 0,
            }
            self.blocks[height] = Block.from_json(summary)
            self._trim_blocks()
        if self.status and height > self.status.height:
            self.status = replace(self.status, height=height)
        ms = f", {latency} ms" if latency is not None else ""
        self._event_log(at, "debug", f"block {height} committed: {count} tx{ms}")
        fetch: list[Fetch] = [("blocks", str(height))]
        if count:  # a request may have been settled (done, or failed: no event says so)
            fetch.append(("keys", ""))
            fetch += self._followed_signatures()
            fetch += self.bridge_fetches()  # a deposit final, an address recorded, a vote
        return Changes({"chain", "header"}, fetch=fetch)

    def _view_changed(self, at: float, view: int, primary: str) -> Changes:
        self.view_changes.appendleft(ViewChange(at, view, primary))
        if self.status:
            self.status = replace(
                self.status, view=view, primary=primary, is_primary=primary == self.status.peer_id
            )
        text = f"view change: view {view}, primary {self.party(primary)}"
        self._event_log(at, "warning", text)
        return Changes({"chain", "header"}, alerts=[("warning", text)])

    def _view_event(self, at: float, f: dict[str, Any]) -> Changes:
        view = f.get("view")
        if view is None:
            return Changes()
        return self._view_changed(at, view, _get(f, "primary", ""))

    def _session_event(self, at: float, f: dict[str, Any]) -> Changes:
        ssid = _get(f, "ssid", "?")
        kind = f["kind"]
        phase = _get(f, "phase", "?")
        old = self.sessions.get(ssid) or Session(
            ssid, phase, "", "running", 0, 0, (), at, None, (), None
        )
        changes = Changes({"sessions"})
        if kind == "session.started":
            s = replace(old, phase=phase, status="running", started=old.started or at)
            self._event_log(at, "info", f"{phase} session {short(ssid)} started")
            changes.fetch.append(("sessions", ""))
        elif kind == "session.round":
            rnd, of = f.get("round"), f.get("of")
            s = old
            if rnd is not None and rnd >= old.round and old.running:
                s = replace(
                    old,
                    round=rnd,
                    rounds=_get(f, "of", old.rounds),
                    waiting_for=_strs(f, "waiting_for"),
                )
            self._event_log(at, "debug", f"{phase} {short(ssid)} round {rnd}/{of}")
        elif kind == "session.done":
            s = replace(
                old,
                status="done",
                round=max(old.round, old.rounds),
                waiting_for=(),
                elapsed_s=_get(f, "seconds", old.elapsed_s),
            )
            self._event_log(at, "info", f"{phase} session {short(ssid)} done")
            changes.fetch.append(("keys", ""))
        else:  # session.failed
            check = _get(f, "check", "?")
            s = replace(
                old,
                status="failed",
                round=_get(f, "round", old.round),
                waiting_for=(),
                culprits=_strs(f, "culprits"),
                error=check,
                # `started` of a listed session may be the node's own clock: not used then
                elapsed_s=(
                    max(0.0, at - old.started)
                    if old.started is not None and old.started > 1e9
                    else old.elapsed_s
                ),
            )
            names = ", ".join(self.party(c) for c in s.culprits) or "nobody named"
            text = f"{phase} session {short(ssid)} aborted in round {s.round}: {names}: {check}"
            self._event_log(at, "error", text)
            changes.alerts.append(("error", text))
            changes.fetch += self._followed_signatures()
        self.sessions[ssid] = s
        if len(self.sessions) > self.max_sessions:
            self._trim_sessions()
        return changes

    def _proof_event(self, at: float, f: dict[str, Any]) -> Changes:
        ok = f["kind"] == "proof.verified"
        proof = _get(f, "proof", "?")
        party = str(_get(f, "party", "?"))
        reason = f.get("reason")
        self.proofs.record(at, proof, party, ok, f.get("seconds"), reason)
        if ok:
            self._event_log(at, "debug", f"proof {proof} from party {party} verified")
        else:
            self._event_log(at, "warning", f"proof {proof} from party {party} rejected: {reason}")
        return Changes({"proofs"})

    def _key_active(self, at: float, f: dict[str, Any]) -> Changes:
        key_id = _get(f, "key_id", "?")
        old = self.keys.get(key_id)
        if old is not None:
            public = f.get("public_key") or old.public_key
            self.keys[key_id] = replace(old, status="active", public_key=public)
        self._event_log(at, "info", f"key {short(key_id)} is active")
        changes = Changes({"keys"}, fetch=[("key", key_id)])
        if key_id not in self.followed:  # else the operator's own request says it
            changes.alerts.append(("information", f"key {short(key_id)} is active"))
        return changes

    def _signature_ready(self, at: float, f: dict[str, Any]) -> Changes:
        sig_id = _get(f, "signature_id", "?")
        self._event_log(at, "info", f"signature {short(sig_id)} ready")
        return Changes({"keys"}, fetch=[("signature", sig_id)])

    def _request_settled(self, at: float, f: dict[str, Any]) -> Changes:
        """A request's outcome is in the ledger: a signature is fetched (this node may not
        have signed it), a key is fetched again (a keygen's or refresh's new key)."""
        request, kind = _get(f, "request", "?"), _get(f, "request_kind", "?")
        status, key_id = _get(f, "status", "?"), _get(f, "key_id", "")
        level = "info" if status == "done" else "warning"
        self._event_log(at, level, f"{kind} request {short(request)} {status}")
        info = self.bridge.info
        if info is not None and info.key_id and key_id == info.key_id:
            # a mint signed, or an input of a release
            lists = ("bridge.deposits", "bridge.releases")
            fetch = [f for f in self.bridge_fetches() if f[0] in lists]
            return Changes({"keys"}, fetch=[("signature", request), *fetch])
        if kind == "sign":
            return Changes({"keys"}, fetch=[("signature", request)])
        return Changes({"keys"}, fetch=[("key", key_id)] if key_id else [("keys", "")])

    def _blame(self, at: float, f: dict[str, Any]) -> Changes:
        culprits = f.get("culprits")
        names = "?" if culprits is None else ", ".join(self.party(str(c)) for c in culprits)
        text = f"blame: {names}: {_get(f, 'check', '?')}"
        self._event_log(at, "error", text)
        return Changes({"sessions"}, fetch=self._followed_signatures(), alerts=[("error", text)])

    def _log_event(self, at: float, f: dict[str, Any]) -> Changes:
        level = _get(f, "level", "info").lower()
        if level == "warn":
            level = "warning"
        if f.get("dropped") is not None and f.get("message") is None:
            text = f"the console fell behind: {f['dropped']} events dropped; reloading"
            self.log.add(LogLine(at, "warning", "console", text))
            return Changes(
                {"log"}, fetch=[*((kind, "") for kind in SNAPSHOTS), *self.bridge_fetches()]
            )
        self.log.add(LogLine(at, level, "node", _get(f, "message", "")))
        return Changes({"log"})


_HANDLERS: dict[str, Callable[[ConsoleState, float, dict[str, Any]], Changes]] = {
    "peer.up": ConsoleState._peer_up_down,
    "peer.down": ConsoleState._peer_up_down,
    "block.committed": ConsoleState._block_committed,
    "view.changed": ConsoleState._view_event,
    "session.started": ConsoleState._session_event,
    "session.round": ConsoleState._session_event,
    "session.done": ConsoleState._session_event,
    "session.failed": ConsoleState._session_event,
    "proof.verified": ConsoleState._proof_event,
    "proof.rejected": ConsoleState._proof_event,
    "key.active": ConsoleState._key_active,
    "signature.ready": ConsoleState._signature_ready,
    "request.settled": ConsoleState._request_settled,
    "blame": ConsoleState._blame,
    "log": ConsoleState._log_event,
}
# every kind the schema names has a handler, and no handler is for a kind it does not name
assert set(_HANDLERS) == set(schema.event_models()), "tui.state and tssnode.schema disagree"


def _with_times_of(block: Block, old: Block | None) -> Block:
    """`block` as the node lists it, with the time and commit latency the stream told
    of if the listing has none (a node that does not list them yet)."""
    if old is None or (block.time is not None and block.commit_latency_ms is not None):
        return block
    latency = block.commit_latency_ms
    return replace(
        block,
        time=block.time if block.time is not None else old.time,
        commit_latency_ms=latency if latency is not None else old.commit_latency_ms,
    )


def duration(seconds: float) -> str:
    """'850ms', '4.2s', '3m05s', '2h07m'."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _dicts(data: Any) -> Iterable[dict[str, Any]]:
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _compact(ev: dict[str, Any]) -> str:
    rest = {k: v for k, v in ev.items() if k not in ("seq", "kind", "time")}
    return json.dumps(rest, separators=(",", ":"), default=str)[:200]
