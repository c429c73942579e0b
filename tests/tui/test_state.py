"""The console's state without a terminal: snapshots and events in, what it shows and
what the actions may do out."""

from __future__ import annotations

from datetime import UTC

import pytest

from tssnode.testing.fakenode import load
from tui.actions import ACTIONS, why_not
from tui.model import Key, Peer, Session, Signature, Status
from tui.paths import PathError, parse_path
from tui.retry import Backoff
from tui.state import (
    MAX_BLOCKS,
    MAX_PEERS,
    MAX_VIEW_CHANGES,
    SNAPSHOTS,
    ConsoleState,
    duration,
)
from tui.stats import MAX_LOG_LINES, MAX_PROOF_NAMES, OTHER

T0 = load("_double")["clock"]
STATUS = load("status")
VALIDATORS = load("validators")
N1, N2, N3, N4 = (v["peer_id"] for v in VALIDATORS)
KEYS = {k["key_id"]: k for k in load("keys")}
ALPHA, BETA, GAMMA, DELTA = list(KEYS)


def loaded() -> ConsoleState:
    state = ConsoleState(clock=lambda: T0, tz=UTC)
    state.link_up("http://node")
    for kind in SNAPSHOTS:
        state.apply_snapshot(kind, load(kind))
    state.link.synced = True
    return state


def event(kind: str, **fields: object) -> dict[str, object]:
    return {"seq": 500, "kind": kind, "time": T0 - 1, **fields}


def test_snapshots_fill_every_area():
    state = loaded()
    assert state.status == Status.from_json(STATUS)
    assert [v.index for v in state.validators] == [1, 2, 3, 4]
    assert state.peers[N4].status == "disconnected"
    assert state.keys[ALPHA].addresses.eth
    assert not state.keys[ALPHA].children  # (a node lists none: the console derives them)
    assert state.keys[GAMMA].public_key is None
    assert max(state.blocks) == 12 and state.blocks[12].certificate.quorum == 3
    assert state.quorum() == (3, 4, 3)
    assert state.health() == ("degraded", "#4 …cHMU disconnected")


def test_party_labels_are_the_same_for_indices_and_peer_ids():
    state = loaded()
    assert state.party("4") == state.party(N4) == state.party(4) == f"#4 …{N4[-4:]}"
    assert state.party("9") == "#9"
    assert state.party("12D3KooWxxxxxxxxxxxxxxxxxxxxAbCdEfGh") == "12D3…AbCdEfGh"


def test_peer_down_and_up():
    state = loaded()
    changes = state.apply_event(event("peer.down", peer_id=N3))
    assert state.peers[N3].status == "disconnected"
    assert {"peers", "header"} <= changes.areas
    assert ("peers", "") in changes.fetch
    assert changes.alerts == [("warning", f"peer {state.party(N3)} disconnected")]
    state.apply_event(event("peer.up", peer_id=N3))
    assert state.peers[N3].status == "connected" and state.peers[N3].last_seen == T0 - 1
    assert state.last_seq == 500


def test_below_quorum_is_red_and_blocks_ledger_actions():
    state = loaded()
    data = [{**v, "status": "offline" if v["index"] in (3, 4) else "online"} for v in VALIDATORS]
    state.apply_snapshot("validators", data)
    assert state.health() == ("down", "below quorum: 2 of 4 validators online, 3 needed")
    assert why_not("keygen", state) == (
        "only 2 of 4 validators online; the ledger needs 3 to commit"
    )
    assert why_not("derive", state) is None  # public derivation needs no quorum


def test_a_stalled_ledger_is_amber_never_green_and_logged_once():
    state = loaded()
    before = state.health()
    assert before[0] != "down" and "stalled" not in before[1]
    reason = "no block for 41 s with 3 requests waiting, a view change under way"
    stalled = {**STATUS, "stalled": True, "liveness": reason, "pending_requests": 3}
    changes = state.apply_snapshot("status", stalled)
    assert state.health() == ("degraded", f"stalled: {reason}")
    assert changes.alerts == [("warning", f"ledger stalled: {reason}")]
    again = state.apply_snapshot("status", {**stalled, "liveness": reason.replace("41", "42")})
    assert again.alerts == []  # the same stall is not announced twice
    state.apply_snapshot("status", {**STATUS, "stalled": False, "liveness": None})
    assert state.health() == before


def test_session_rounds_and_abort_name_the_culprit():
    state = loaded()
    ssid = "ab" * 32
    state.apply_event(event("session.started", ssid=ssid, phase="presign", parties=[1, 2, 3]))
    state.apply_event(
        event("session.round", ssid=ssid, phase="presign", round=2, of=3, waiting_for=[3])
    )
    s = state.sessions[ssid]
    assert (s.status, s.round, s.rounds, s.waiting_for) == ("running", 2, 3, ("3",))
    # an older round arriving late does not move the session back
    state.apply_event(event("session.round", ssid=ssid, phase="presign", round=1, of=3))
    assert state.sessions[ssid].round == 2
    changes = state.apply_event(
        event(
            "session.failed",
            ssid=ssid,
            phase="presign",
            round=3,
            culprits=[3],
            check="Π^aff-g proof of party 3 does not verify",
        )
    )
    s = state.sessions[ssid]
    assert (s.status, s.round, s.culprits, s.waiting_for) == ("failed", 3, ("3",), ())
    assert s.error == "Π^aff-g proof of party 3 does not verify"
    severity, text = changes.alerts[0]
    assert severity == "error" and state.party(3) in text and "round 3" in text


def test_proof_counts_and_rate():
    state = loaded()
    for _ in range(5):
        state.apply_event(event("proof.verified", proof="enc", party=2, seconds=0.004))
    state.apply_event(
        event("proof.rejected", proof="mod", party=4, seconds=0.02, reason="bad range")
    )
    stats = state.proofs
    assert stats.by_type["enc"].verified == 5 and stats.by_type["mod"].rejected == 1
    assert stats.by_party["4"].rejected == 1
    assert stats.by_type["enc"].mean_ms == pytest.approx(4.0)
    assert stats.rejections[0].reason == "bad range" and stats.rejections[0].party == "4"
    rate = stats.rate(T0, 60)
    assert len(rate) == 60 and rate[-2] == 6 and sum(rate) == 6


def test_view_change_alerts_and_moves_the_primary():
    state = loaded()
    changes = state.apply_event(event("view.changed", view=2, primary=N3))
    assert state.status and (state.status.view, state.status.primary) == (2, N3)
    assert state.view_changes[0].view == 2
    assert changes.alerts[0][0] == "warning"
    # a view seen first in a polled status is an alert too, once
    state.apply_snapshot("status", {**STATUS, "view": 3, "primary": N4})
    assert [v.view for v in state.view_changes][:2] == [3, 2]


def test_key_active_and_signature_ready_fetch_the_item():
    state = loaded()
    changes = state.apply_event(event("key.active", key_id=GAMMA, public_key="02" + "11" * 32))
    assert state.keys[GAMMA].status == "active"
    assert changes.fetch == [("key", GAMMA)]
    changes = state.apply_event(event("signature.ready", signature_id="5151"))
    assert changes.fetch == [("signature", "5151")]


def test_a_settled_request_is_logged_and_its_signature_or_key_fetched():
    state = loaded()
    common = {"height": 9, "key_id": GAMMA}
    changes = state.apply_event(
        event("request.settled", request="5151", request_kind="sign", status="done", **common)
    )
    assert changes.fetch == [("signature", "5151")]
    changes = state.apply_event(
        event("request.settled", request="77", request_kind="refresh", status="failed", **common)
    )
    assert changes.fetch == [("key", GAMMA)]
    changes = state.apply_event(
        event(
            "request.settled", request="78", request_kind="keygen", status="failed",
            height=9, key_id="",
        )
    )  # fmt: skip
    assert changes.fetch == [("keys", "")]
    lines = [(line.level, line.text) for line in state.log.lines][-3:]
    assert lines == [
        ("info", "sign request 5151 done"),
        ("warning", "refresh request 77 failed"),
        ("warning", "keygen request 78 failed"),
    ]


def test_block_committed_adds_a_summary_and_fetches_it():
    state = loaded()
    changes = state.apply_event(
        event("block.committed", height=13, hash="cd" * 32, txs=2, latency_ms=41.0)
    )
    assert state.blocks[13].commit_latency_ms == 41.0
    assert state.status and state.status.height == 13
    assert ("blocks", "13") in changes.fetch and ("keys", "") in changes.fetch


def test_dropped_events_reload_everything():
    state = loaded()
    changes = state.apply_event(
        {"seq": 0, "kind": "log", "time": T0, "level": "warning", "dropped": 17}
    )
    assert {kind for kind, _ in changes.fetch} == set(SNAPSHOTS)
    assert state.last_seq is None  # seq 0 is not a position in the stream
    assert "17 events dropped" in state.log.lines[-1].text


def test_unknown_event_kinds_are_logged_not_fatal():
    state = loaded()
    changes = state.apply_event(event("ledger.checkpoint", height=16))
    assert changes.areas == {"log"}
    assert state.log.lines[-1].text.startswith("ledger.checkpoint")


def test_log_filter_by_level_and_search():
    state = loaded()
    for level, text in (
        ("debug", "gossip mesh"),
        ("info", "listening"),
        ("warning", "slow peer"),
        ("error", "stream reset"),
        ("info", "SLOW start"),
    ):
        state.apply_event(event("log", level=level, message=text))
    assert [l.text for l in state.log.view("warning")] == ["slow peer", "stream reset"]
    assert [l.text for l in state.log.view("debug", "slow")] == ["slow peer", "SLOW start"]
    assert state.log.total == 6  # the five and the console's own "connected to" note


def test_link_down_then_up():
    state = loaded()
    changes = state.link_down("cannot reach http://node", 2.0)
    assert not state.link.connected and state.link.retry_at == T0 + 2.0
    assert state.health() == ("down", "cannot reach http://node")
    assert changes.alerts == [("error", "disconnected: cannot reach http://node")]
    assert why_not("sign", state) == "not connected to the node"
    assert why_not("copy_public_key", state) is None  # works from what is on screen
    changes = state.link_up("http://node")
    assert changes.alerts == [("information", "reconnected")]
    assert why_not("sign", state) == "still loading the node's state"


def test_node_warnings_are_logged_and_alerted_once():
    state = loaded()
    assert state.status and state.status.warnings == ()  # the fixture node has none
    warning = "vault key stored in the data directory (insecure_local_key)"
    changes = state.apply_snapshot("status", {**STATUS, "warnings": [warning]})
    assert state.status.warnings == (warning,)
    assert changes.alerts == [("warning", f"node: {warning}")]
    assert {"header", "log"} <= changes.areas
    assert [(line.level, line.source, line.text) for line in state.log.lines][-1] == (
        "warning",
        "node",
        warning,
    )
    again = state.apply_snapshot("status", {**STATUS, "warnings": [warning]})
    assert again.alerts == []  # polled again: not news
    assert Status.from_json({**STATUS, "warnings": "not a list"}).warnings == ()


def test_restart_is_recognised_by_uptime():
    state = loaded()
    assert not state.restarted(Status.from_json({**STATUS, "uptime_s": 900.0}))
    assert state.restarted(Status.from_json({**STATUS, "uptime_s": 3.0}))


def test_action_reasons_follow_the_selected_key():
    state = loaded()
    assert state.current_key() and state.current_key().key_id == ALPHA  # first active key
    assert all(why_not(a.name, state) is None for a in ACTIONS if a.name != "copy_signature")
    state.selected_key = GAMMA
    assert why_not("sign", state) == f"key {GAMMA[:6]}…{GAMMA[-4:]} is pending"
    assert (
        why_not("copy_public_key", state) == f"key {GAMMA[:6]}…{GAMMA[-4:]} has no public key yet"
    )
    state.selected_key = DELTA
    assert why_not("refresh_key", state) == f"key {DELTA[:6]}…{DELTA[-4:]} is failed"
    state.selected_key = BETA  # parties #1 #2 #3, threshold 1: two must sign
    state.apply_snapshot(
        "validators",
        [{**v, "status": "online" if v["index"] in (1, 4) else "offline"} for v in VALIDATORS]
        + [{"peer_id": "x", "index": 5, "status": "online", "keys": []}],
    )
    assert why_not("derive", state) is None
    state.in_flight.add("keygen")
    assert why_not("keygen", state) == "a keygen request is already on its way"


def test_signature_selection_and_copy_reason():
    state = loaded()
    assert why_not("copy_signature", state) == "the selected key has no signature yet"
    for s in load("signatures"):
        state.apply_snapshot("signature", s)
    done = [s for s in load("signatures") if s["key_id"] == ALPHA and s["status"] == "done"]
    current = state.current_signature()
    assert current and current.signature_id == done[-1]["signature_id"]
    failed = next(s for s in load("signatures") if s["status"] == "failed")
    state.selected_signature = failed["signature_id"]
    assert why_not("copy_signature", state) == (
        f"signature {failed['signature_id'][:6]}…{failed['signature_id'][-4:]} is failed"
    )


def test_accepted_actions_show_pending_items():
    state = loaded()
    state.accepted(
        "keygen", {"key_id": "ee" * 20, "tx": "ab" * 32}, {"threshold": 1, "parties": None}
    )
    pending = state.keys["ee" * 20]
    assert (pending.status, pending.threshold, len(pending.parties)) == ("pending", 1, 4)
    assert state.selected_key == "ee" * 20
    # the node's list does not have it yet: the placeholder stays
    state.apply_snapshot("keys", load("keys"))
    assert "ee" * 20 in state.keys
    state.accepted(
        "sign",
        {"signature_id": "51", "tx": "ab", "digest": "d1"},
        {"key_id": ALPHA, "digest": "d1"},
    )
    assert state.signatures["51"] == Signature.pending("51", ALPHA, "d1", None)
    assert state.selected_key == ALPHA and state.current_signature() == state.signatures["51"]


def test_models_tolerate_missing_and_extra_fields():
    assert Key.from_json({"key_id": "k"}).status == "pending"
    peer = Peer.from_json({"peer_id": "p", "latency_ms": "fast", "new_field": 1})
    assert peer.latency_ms is None and peer.status == "disconnected"
    state = loaded()
    state.apply_snapshot("peers", "not a list")
    assert state.peers == {}
    assert state.apply_snapshot("no-such-route", []).areas == set()


def test_paths():
    assert parse_path("m") == ()
    assert parse_path("m/0/17") == (0, 17)
    for bad, why in (
        ("0/1", "starts with 'm'"),
        ("m/1'", "hardened"),
        ("m/01", "not an index"),
        ("m/2147483648", r"below 2\^31"),
    ):
        with pytest.raises(PathError, match=why):
            parse_path(bad)


def test_backoff_and_durations():
    delays = Backoff(first=0.5, factor=2, cap=3).delays()
    assert [next(delays) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [duration(x) for x in (0.25, 4.2, 185, 7300)] == ["250ms", "4.2s", "3m05s", "2h01m"]


def test_a_request_id_that_becomes_another_key_id_is_followed():
    state = loaded()
    state.accepted("keygen", {"key_id": "77" * 32, "tx": "77" * 32}, {"threshold": 1})
    pending = {**load("keys")[2], "key_id": "77" * 32}
    changes = state.apply_snapshot("keys", [*load("keys"), pending])  # listed, pending
    assert changes.fetch == [] and state.keys["77" * 32].status == "pending"
    changes = state.apply_snapshot("keys", load("keys"))  # the node lists it no more
    assert ("key", "77" * 32) in changes.fetch
    active = {**load("keys")[0], "key_id": "ab" * 16}
    state.apply_snapshot("key", active, "77" * 32)  # GET /keys/<request> → the key
    assert "77" * 32 not in state.keys and state.keys["ab" * 16].active
    assert state.selected_key == "ab" * 16 and state.resolve("77" * 32) == "ab" * 16
    assert state.apply_snapshot("keys", [*load("keys"), active]).fetch == []
    state.accepted("sign", {"signature_id": "51", "digest": "d1"}, {"key_id": "ab" * 16})
    done = {**load("signatures")[0], "signature_id": "52", "key_id": "ab" * 16}
    state.apply_snapshot("signature", done, "51")  # retried under a new id
    assert "51" not in state.signatures and state.resolve("51") == "52"
    assert state.selected_signature == "52"


def test_elapsed_uses_unix_times_only():
    state = loaded()
    running = next(s for s in state.sessions.values() if s.running)
    assert state.session_elapsed(running) == T0 - running.started
    odd = Session.from_json(
        {"session_id": "x", "status": "running", "started": 157136.2, "elapsed_s": 3.5}
    )
    assert state.session_elapsed(odd) == 3.5  # a monotonic clock's time is not a date


def test_bounds_evict_the_oldest_first():
    state = ConsoleState(clock=lambda: T0, tz=UTC, max_sessions=5, max_signatures=3)
    state.apply_snapshot("status", STATUS)
    # sessions: the finished ones go first, then the oldest running ones
    for n in range(8):
        ssid = f"{n:064x}"
        state.apply_event({**event("session.started", ssid=ssid, phase="sign"), "time": T0 + n})
        if n < 2:
            state.apply_event(event("session.done", ssid=ssid, phase="sign"))
    assert sorted(int(s, 16) for s in state.sessions) == [3, 4, 5, 6, 7]
    # signatures: the oldest requested first
    for n in range(5):
        state.accepted("sign", {"signature_id": f"s{n}", "digest": "ab"}, {"key_id": ALPHA})
    assert list(state.signatures) == ["s2", "s3", "s4"]
    # blocks: the lowest heights first
    for height in range(13, 13 + MAX_BLOCKS + 10):
        state.apply_event(event("block.committed", height=height, txs=0))
    assert len(state.blocks) == MAX_BLOCKS and min(state.blocks) == 23
    # peers: unknown peers coming and going; the disconnected ones go first
    for n in range(MAX_PEERS + 50):
        state.apply_event(event("peer.up", peer_id=f"peer{n}"))
        if n % 2:
            state.apply_event(event("peer.down", peer_id=f"peer{n}"))
    assert len(state.peers) == MAX_PEERS
    assert "peer1" not in state.peers and "peer0" in state.peers
    # view changes, proofs by name, the log
    for view in range(2, 2 + MAX_VIEW_CHANGES + 5):
        state.apply_event(event("view.changed", view=view, primary=N2))
    assert len(state.view_changes) == MAX_VIEW_CHANGES and state.view_changes[0].view == view
    for n in range(MAX_PROOF_NAMES + 10):
        state.apply_event(event("proof.verified", proof=f"proof{n}", party=n, seconds=0.001))
    assert len(state.proofs.by_type) == MAX_PROOF_NAMES + 1
    assert state.proofs.by_type[OTHER].verified == 10
    assert len(state.log.lines) == MAX_LOG_LINES and state.log.total > MAX_LOG_LINES


def test_a_derived_child_stays_when_the_key_is_read_again():
    """The node lists no children (derivation is public: anyone computes any path), so the
    console keeps the ones derived through it: a refetch of the keys, as every new block
    brings, must not drop them (it did: the double used to send them back)."""
    state = loaded()
    state.selected_key = ALPHA
    child = {"path": "m/5", "public_key": "02" + "11" * 32, "addresses": {"eth": "0xabc"}}
    state.accepted("derive", child, {"key_id": ALPHA, "path": "m/5"})
    assert [c.path for c in state.keys[ALPHA].children] == ["m/5"]
    state.apply_snapshot("keys", load("keys"))  # (no children in a node's answer)
    state.apply_snapshot("key", KEYS[ALPHA], ALPHA)
    assert [c.path for c in state.keys[ALPHA].children] == ["m/5"]
