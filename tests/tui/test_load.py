"""The console under a fast event stream (issue 12): whatever the node sends, every
collection stays at its bound with the newest items kept, the tables show no more than
that, a burst is drawn a few times rather than once an event, and keys are handled
while the events pour in. Driven with Pilot against the HTTP API test double."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import pytest
from textual import events
from textual.widgets import DataTable, RichLog, TabbedContent

from tests.tui.helpers import make_app, settled, until
from tssnode.testing.fakenode import FakeNode, load
from tui.app import DRAIN_BATCH, MAX_NOTICES, REDRAW_INTERVAL_S, ConsoleApp
from tui.link import MAX_BACKLOG
from tui.screens.main import MainScreen
from tui.state import MAX_BLOCKS, MAX_SESSIONS, MAX_VIEW_CHANGES
from tui.stats import MAX_LOG_LINES, MAX_PROOF_NAMES, MAX_REJECTIONS, OTHER
from tui.widgets.chain import ChainPane
from tui.widgets.log import LogPane
from tui.widgets.sessions import SessionsPane

pytestmark = pytest.mark.anyio

EVENTS = 20_000
CHUNK = 500  # events published at once; the stream is read between chunks
N3 = load("validators")[2]["peer_id"]


def ssid(n: int) -> str:
    return f"{n:064x}"


class Busy:
    """A busy network's events, published through the test double, with what the
    console must keep of them."""

    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.height = node.status["height"]
        self.view = node.status["view"]
        self.sessions = 0
        self.log_lines = 0
        self.rejected = 0

    def event(self, i: int) -> tuple[str, dict[str, Any]]:
        """The i-th event: its kind and fields."""
        k = i % 10
        ss = ssid(self.sessions)
        if k == 0:
            self.height += 1
            block = {"height": self.height, "hash": f"{self.height:064x}", "txs": 1}
            return "block.committed", {**block, "latency_ms": 40}
        if k == 1:
            self.sessions += 1
            ss = ssid(self.sessions)
            return "session.started", {"ssid": ss, "phase": "sign", "parties": [1, 2]}
        if k == 2:
            round_ = {"round": 1, "of": 2, "waiting_for": [2]}
            return "session.round", {"ssid": ss, "phase": "sign", **round_}
        if k == 3:
            return "session.done", {"ssid": ss, "phase": "sign", "seconds": 0.5}
        if k == 4:
            self.log_lines += 1
            return "log", {"level": "info", "message": f"busy line {self.log_lines}"}
        proof = {"ssid": ss, "phase": "sign", "proof": "enc"}
        if k == 5:
            self.rejected += 1  # a new party each time: the counts by party must not grow
            rejected = {"party": 100 + i, "seconds": 0.002, "reason": f"r{i}"}
            return "proof.rejected", {**proof, **rejected}
        if k == 6:
            up = i % 20 != 6
            detail = "ready" if up else "disconnected"
            return ("peer.up" if up else "peer.down"), {"peer_id": N3, "detail": detail}
        if k == 7 and i % 1000 == 7:
            self.view += 1
            return "view.changed", {"view": self.view, "primary": N3}
        verified = {"party": 1 + i % 4, "seconds": 0.002, "reason": None}
        return "proof.verified", {**proof, **verified}

    def publish(self, i: int) -> None:
        kind, fields = self.event(i)
        self.node.publish(kind, **fields)

    async def run(self, n: int, chunk: int = CHUNK) -> None:
        for start in range(0, n, chunk):
            for i in range(start, min(n, start + chunk)):
                self.publish(i)
            await asyncio.sleep(0)  # as a socket would: the console reads between chunks


class Backlog(deque[dict[str, Any]]):
    """The link's backlog, remembering how long it got."""

    most = 0

    def append(self, event: dict[str, Any]) -> None:
        super().append(event)
        self.most = max(self.most, len(self))


async def caught_up(pilot: Any, app: ConsoleApp, node: FakeNode, within: float = 20.0) -> None:
    await until(pilot, lambda: app.state.last_seq == node.seq and app.idle, "the events", within)


async def test_a_fast_stream_keeps_every_collection_at_its_bound(node):
    app = make_app(node, initial_tab="chain")
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        rejected = app.state.proofs.totals.rejected
        backlog = app.link.events = Backlog(app.link.events)
        busy = Busy(node)
        await busy.run(EVENTS)
        await caught_up(pilot, app, node)
        state = app.state
        # state: at the bound, the newest kept
        assert len(state.blocks) == MAX_BLOCKS
        assert max(state.blocks) == busy.height  # the newest, and the MAX_BLOCKS before it
        assert min(state.blocks) == busy.height - MAX_BLOCKS + 1
        assert len(state.sessions) == MAX_SESSIONS and ssid(busy.sessions) in state.sessions
        assert ssid(busy.sessions - MAX_SESSIONS) not in state.sessions  # the oldest went
        assert len(state.log.lines) == MAX_LOG_LINES
        assert state.log.total > EVENTS  # every event is logged; only the newest are kept
        assert any(f"busy line {busy.log_lines}" == line.text for line in state.log.lines)
        assert len(state.view_changes) == MAX_VIEW_CHANGES
        assert state.view_changes[0].view == busy.view  # newest first
        proofs = state.proofs
        assert len(proofs.rejections) == MAX_REJECTIONS
        assert proofs.rejections[0].party == str(100 + EVENTS - 5)  # newest first
        assert len(proofs.by_party) == MAX_PROOF_NAMES + 1 and OTHER in proofs.by_party
        assert proofs.totals.rejected == rejected + busy.rejected  # all counted
        assert not app.link.events and backlog.most <= MAX_BACKLOG
        assert len(app._notifications) <= MAX_NOTICES  # thousands of alerts, few notices
        # tables: no more rows than the state keeps
        blocks = app.main.query_one("#blocks-table", DataTable)
        assert blocks.row_count == MAX_BLOCKS
        assert blocks.coordinate_to_cell_key((0, 0)).row_key.value == str(busy.height)
        for key, tab, table_id, most in (
            ("3", "sessions", "#sessions-table", MAX_SESSIONS),
            ("4", "proofs", "#proof-rejections", MAX_REJECTIONS),
            ("4", "proofs", "#proofs-by-party", MAX_PROOF_NAMES + 1),
        ):
            await pilot.press(key)
            await until(pilot, lambda tab=tab: app.main.query_one(TabbedContent).active == tab, tab)
            table = app.main.query_one(table_id, DataTable)
            await until(pilot, lambda t=table, m=most: t.row_count == m, f"{table_id} drawn")
        await pilot.press("7")
        await until(pilot, lambda: app.main.query_one(LogPane).seen == state.log.total, "log")
        log = app.main.query_one("#log-lines", RichLog)
        assert 0 < len(log.lines) <= 2 * MAX_LOG_LINES


async def test_a_burst_is_drawn_a_few_times_not_once_an_event(node, monkeypatch):
    drawn: dict[str, int] = {"chain": 0, "sessions": 0, "log": 0}
    for name, pane in (("chain", ChainPane), ("sessions", SessionsPane), ("log", LogPane)):
        real = pane.draw

        def draw(self: Any, state: Any, real: Any = real, name: str = name) -> None:
            drawn[name] += 1
            real(self, state)

        monkeypatch.setattr(pane, "draw", draw)
    app = make_app(node, initial_tab="chain")
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        before = dict(drawn)
        t0 = time.monotonic()
        await Busy(node).run(EVENTS)
        await caught_up(pilot, app, node)
        elapsed = time.monotonic() - t0
        chain = drawn["chain"] - before["chain"]
        # at most one redraw per REDRAW_INTERVAL_S (and the one that ends the burst)
        assert 1 <= chain <= elapsed / REDRAW_INTERVAL_S + 2, (chain, elapsed)
        assert chain < EVENTS / 100
        assert app.draws["chain"] >= chain  # the app's own count agrees
        # the panes not shown are not drawn at all until they are shown, then once
        assert drawn["sessions"] == before["sessions"] and drawn["log"] == before["log"]
        await pilot.press("3")
        await until(pilot, lambda: drawn["sessions"] == before["sessions"] + 1, "sessions")
        table = app.main.query_one("#sessions-table", DataTable)
        assert table.row_count == len(app.state.sessions) == MAX_SESSIONS
        assert drawn["log"] == before["log"]


async def test_a_key_is_handled_between_batches_of_events_not_after_them(node, monkeypatch):
    app = make_app(node, initial_tab="peers")
    seen_at: list[int | None] = []
    real = MainScreen.action_show_tab

    def show_tab(self: MainScreen, tab: str) -> None:
        seen_at.append(app.state.last_seq)  # how far the events were when the key came
        real(self, tab)

    monkeypatch.setattr(MainScreen, "action_show_tab", show_tab)
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        first = app.state.last_seq or 0
        busy = Busy(node)
        for i in range(EVENTS):  # as if the link had just read a long backlog
            kind, fields = busy.event(i)
            app.link.events.append({"seq": first + 1 + i, "kind": kind, **fields})
        app.link.ring()
        app.post_message(events.Key("5", "5"))  # as the terminal sends it
        await until(pilot, lambda: app.state.last_seq == first + EVENTS and app.idle, "events")
        assert app.main.query_one(TabbedContent).active == "chain"
        # after a few batches (the key goes from the app to the focused widget and on,
        # a turn of the event loop each), not after the 20,000 events
        assert len(seen_at) == 1 and (seen_at[0] or 0) <= first + 10 * DRAIN_BATCH, seen_at
