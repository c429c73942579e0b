"""The console driven with Pilot against the HTTP API test double (frozen data):
what the operator sees and what reaches the node when they act."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import Button, DataTable, Input, Select, SelectionList, Static, TextArea

from tests.tui.helpers import LAST_SEQ, make_app, settled, until
from tssnode.protocol.hashing import message_digest as node_digest
from tssnode.testing.fakenode import FakeNode, load
from tui.app import ConsoleApp
from tui.messages import KeySelected
from tui.screens.confirm import ConfirmModal
from tui.screens.forms import DeriveModal, PresignModal
from tui.screens.help import HelpScreen
from tui.screens.keygen import KeygenModal
from tui.screens.sign import SignModal
from tui.state import Changes
from tui.widgets.keys import KeysPane
from tui.widgets.log import LogPane
from tui.widgets.peers import PeersPane

pytestmark = pytest.mark.anyio

KEYS = [k["key_id"] for k in load("keys")]
ALPHA, BETA, GAMMA, DELTA = KEYS
N1, N2, N3, N4 = (v["peer_id"] for v in load("validators"))


def posts(node: FakeNode) -> list[tuple[str, Any]]:
    return [(path, body) for method, path, body in node.requests if method == "POST"]


def plain(renderable: Any, width: int = 120) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def text_of(app: ConsoleApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def row_keys(table: DataTable[Any]) -> list[str | None]:
    return [row.key.value for row in table.ordered_rows]


async def footer_keys(pilot: Any) -> dict[str, bool]:
    """key → greyed out, as the footer shows them once it has redrawn."""
    await pilot.pause()
    await until(pilot, lambda: pilot.app.screen.query("FooterKey"), "the footer")
    await pilot.pause()
    return {k.key: k._disabled for k in pilot.app.screen.query("FooterKey")}


def notices(app: ConsoleApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def test_frozen_data_is_shown(node):
    app = make_app(node)
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        state = app.state
        assert state.link.connected and state.status and state.status.height == 12
        assert len(state.keys) == 4 and len(state.signatures) == 4
        assert state.health() == ("degraded", f"{state.party(N4)} disconnected")
        assert app.main.query_one("#header").has_class("-degraded")
        peers = app.main.query_one("#peers-table", DataTable)
        assert peers.row_count == 4
        assert str(peers.get_cell(N4, "status")) == "disconnected"
        assert peers.get_cell(N4, "status").style == "bold red"


async def test_actions_are_greyed_with_a_reason_until_the_node_answers(node):
    node.go_down()
    app = make_app(node)
    async with app.run_test() as pilot:
        await until(pilot, lambda: app.state.link.attempts >= 2, "failed attempts")
        assert app.check_action("sign", ()) is None  # greyed out in the footer
        assert app.check_action("help", ()) is True
        footer = await footer_keys(pilot)
        assert footer["s"] and footer["g"] and not footer["question_mark"]
        await pilot.press("s")  # the key says why
        await pilot.pause()
        assert "Sign a message: not now: not connected to the node" in notices(app)
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert commands["Start keygen"].endswith("· unavailable: not connected to the node")
        # never reached yet: the header says so, neutral (no health to show yet)
        header = app.main.query_one("#header")
        assert "connecting… · attempt" in str(header.render())
        assert "cannot reach" in str(header.tooltip)
        assert header.has_class("-connecting") and not header.has_class("-down")
        node.come_back()
        await settled(pilot)
        assert header.has_class("-degraded")  # node4 is down
        assert app.check_action("sign", ()) is True
        footer = await footer_keys(pilot)
        assert not footer["s"]


async def test_disconnect_and_reconnect_resume_the_event_stream(node):
    app = make_app(node)
    async with app.run_test() as pilot:
        await settled(pilot)
        node.go_down()
        await until(pilot, lambda: not app.state.link.connected, "the disconnection")
        assert app.state.health()[0] == "down"
        assert any("disconnected:" in n for n in notices(app))
        assert app.check_action("keygen", ()) is None
        node.come_back()
        await until(pilot, lambda: app.state.link.synced, "the reconnection")
        assert node.since == [None, LAST_SEQ]  # resumed where it stopped
        node.set_peer(N3, connected=False)
        await until(pilot, lambda: not app.state.peers[N3].connected, "the new event")
        assert any(n.endswith("reconnected") for n in notices(app))


async def test_a_restarted_node_is_read_from_its_first_event(node):
    app = make_app(node)
    async with app.run_test() as pilot:
        await settled(pilot)
        node.go_down()
        await until(pilot, lambda: not app.state.link.connected, "the disconnection")
        node.status["uptime_s"] = 2.0  # a new process: its events start at 1 again
        node.come_back()
        await until(pilot, lambda: app.state.link.synced, "the reconnection")
        assert node.since == [None, None]


async def test_keygen_dialog_confirmation_and_the_key_becoming_active(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, KeygenModal), "the keygen dialog")
        threshold = app.screen.query_one("#threshold", Input)
        assert threshold.value == "2"
        threshold.value = "4"
        await pilot.pause()
        assert app.screen.query_one("#continue", Button).disabled
        assert "from 0 to 3" in text_of(app, "#keygen-meaning")
        threshold.value = "1"
        parties = app.screen.query_one("#parties", SelectionList)
        parties.deselect(N4)
        await pilot.pause()
        assert text_of(app, "#keygen-meaning") == "any 2 of the 3 parties will sign"
        await pilot.click("#continue")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        body = text_of(app, "#confirm-body")
        assert "3 parties" in body and "any 2 of 3 will sign" in body
        assert posts(node) == []  # nothing is sent before the confirmation
        await pilot.click("#confirm")
        await until(pilot, lambda: posts(node), "the request")
        assert posts(node) == [("/keygen", {"threshold": 1, "parties": [N1, N2, N3]})]
        key_id = next(k for k in node.keys if k not in KEYS)
        await until(pilot, lambda: key_id in app.state.keys, "the pending key")
        assert app.state.keys[key_id].status == "pending"
        assert app.state.selected_key == key_id
        assert app.check_action("sign", ()) is None
        node.complete_keygen(key_id)
        await until(pilot, lambda: app.state.keys[key_id].status == "active", "key.active")
        await until(pilot, lambda: app.state.keys[key_id].addresses.eth, "the key's addresses")
        assert app.check_action("sign", ()) is True


async def test_keygen_sends_null_parties_for_every_validator(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, KeygenModal), "the keygen dialog")
        await pilot.press("enter")  # the threshold field submits
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        await pilot.press("escape")  # cancel: nothing is sent
        await pilot.pause()
        assert posts(node) == []
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, KeygenModal), "the keygen dialog")
        await pilot.click("#continue")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        await pilot.click("#confirm")
        await until(pilot, lambda: posts(node), "the request")
        assert posts(node) == [("/keygen", {"threshold": 2, "parties": None})]


async def open_sign(pilot: Any, app: ConsoleApp, message: str, hash_name: str) -> None:
    await pilot.press("s")
    await until(pilot, lambda: isinstance(app.screen, SignModal), "the sign dialog")
    app.screen.query_one("#sign-hash", Select).value = hash_name
    app.screen.query_one("#sign-message", TextArea).text = message
    await pilot.pause()


async def test_sign_shows_the_digest_before_sending_and_gets_the_signature(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        await open_sign(pilot, app, "pay 1 ETH to alice", "eip191")
        expected = node_digest(b"pay 1 ETH to alice", "eip191").hex()
        assert expected in text_of(app, "#sign-digest")
        await pilot.click("#review")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        body = text_of(app, "#confirm-body")
        assert "The node will sign this digest:" in body and expected in body
        assert f"key      {ALPHA[:16]}" in body and "eip191" in body
        assert posts(node) == []
        await pilot.click("#confirm")
        await until(pilot, lambda: posts(node), "the request")
        assert posts(node) == [
            ("/sign", {"key_id": ALPHA, "hash": "eip191", "message": "pay 1 ETH to alice"})
        ]
        sig_id = next(s for s in node.signatures if node.signatures[s]["digest"] == expected)
        await until(pilot, lambda: sig_id in app.state.signatures, "the pending signature")
        assert app.state.signatures[sig_id].status == "pending"
        assert app.check_action("copy_signature", ()) is None
        node.complete_signature(sig_id)
        await until(pilot, lambda: app.state.signatures[sig_id].done, "signature.ready")
        sig = app.state.signatures[sig_id]
        assert sig.digest == expected and sig.v in (27, 28)
        await pilot.press("y")
        assert app.clipboard == sig.r.rjust(64, "0") + sig.s.rjust(64, "0") + f"{sig.v:02x}"


async def test_sign_hex_with_a_path_and_bad_input(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        await open_sign(pilot, app, "0xdeadbee", "sha256")
        app.screen.query_one("#sign-encoding", Select).value = "hex"
        await pilot.pause()
        assert "not hexadecimal" in text_of(app, "#sign-digest")
        assert app.screen.query_one("#review", Button).disabled
        app.screen.query_one("#sign-message", TextArea).text = "0xdeadbeef"
        app.screen.query_one("#sign-path", Input).value = "m/0'"
        await pilot.pause()
        assert "path: hardened" in text_of(app, "#sign-digest")
        app.screen.query_one("#sign-path", Input).value = "m/0"
        await pilot.pause()
        digest = node_digest(bytes.fromhex("deadbeef"), "sha256").hex()
        assert digest in text_of(app, "#sign-digest")
        await pilot.click("#review")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        assert "path     m/0" in text_of(app, "#confirm-body")
        await pilot.click("#confirm")
        await until(pilot, lambda: posts(node), "the request")
        assert posts(node) == [
            (
                "/sign",
                {"key_id": ALPHA, "hash": "sha256", "message_hex": "deadbeef", "path": "m/0"},
            )
        ]


async def test_refresh_refused_by_the_node_is_shown_not_fatal(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        node.keys[ALPHA]["status"] = "failed"  # the node knows better than the console
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        assert "epoch 1 → 2" in text_of(app, "#confirm-body")
        await pilot.click("#confirm")
        await until(pilot, lambda: posts(node), "the request")
        await until(pilot, lambda: any("refused" in n for n in notices(app)), "the refusal")
        assert posts(node) == [(f"/keys/{ALPHA}/refresh", None)]
        assert notices(app)[-1] == f"Refresh not sent: the node refused: key {ALPHA} is failed"
        assert app.state.log.lines[-1].level == "error"
        assert app.is_running


async def test_presign_and_derive(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PresignModal), "the presign dialog")
        field = app.screen.query_one("#field", Input)
        field.value = "500"
        await pilot.pause()
        assert app.screen.query_one("#ok", Button).disabled
        field.value = "3"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        assert "3 presignatures" in text_of(app, "#confirm-body")
        await pilot.click("#confirm")
        await until(pilot, lambda: posts(node), "the request")
        assert posts(node) == [(f"/keys/{ALPHA}/presign", {"count": 3})]

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DeriveModal), "the derive dialog")
        field = app.screen.query_one("#field", Input)
        assert field.value == "m/0"  # (this console has derived no child of it yet)
        field.value = "m/2h"
        await pilot.pause()
        assert "hardened" in text_of(app, "#field-problem")
        field.value = "m/5/9"
        await pilot.press("enter")  # derivation is not irreversible: no confirmation
        await until(pilot, lambda: len(posts(node)) == 2, "the request")
        assert posts(node)[-1] == (f"/keys/{ALPHA}/derive", {"path": "m/5/9"})
        child = node.derived[ALPHA][-1]
        await until(
            pilot, lambda: any(c.path == "m/5/9" for c in app.state.keys[ALPHA].children), "child"
        )
        assert f"derived m/5/9: {child['addresses']['eth']}" in notices(app)[-1]


async def test_key_selection_drives_the_actions(node):
    app = make_app(node, initial_tab="keys")
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        table = app.main.query_one("#keys-table", DataTable)
        table.focus()
        await pilot.press("down", "down")  # alpha → beta → gamma (pending)
        await until(pilot, lambda: app.state.selected_key == GAMMA, "the selection")
        assert app.check_action("sign", ()) is None
        assert app.check_action("copy_public_key", ()) is None
        await pilot.press("up")
        await until(pilot, lambda: app.state.selected_key == BETA, "the selection")
        await pilot.press("c")
        public = app.state.keys[BETA].public_key
        await until(pilot, lambda: app.clipboard == public, "the copy")  # (a moment, under load)
        assert app.clipboard == public
        # (the detail panel redraws after the selection: under load, a moment later)
        await until(pilot, lambda: BETA in text_of(app, "#key-detail"), "beta's detail")
        assert BETA in text_of(app, "#key-detail")


@pytest.mark.parametrize("first_handled", ["before the second move's event", "after it"])
async def test_a_late_selection_does_not_pull_the_cursor_back(node, first_handled):
    # The table and the app run on their own message queues. The operator presses down
    # twice; the app handles the first move's selection (beta) after the cursor has
    # already reached gamma, before or after the table's event of the second move. Its
    # redraw must leave the cursor where the operator put it, and the selection must end
    # on gamma (CI once lost the second move, and once ended with the cursor pulled back).
    app = make_app(node, initial_tab="keys")
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        pane = app.main.query_one(KeysPane)
        table = app.main.query_one("#keys-table", DataTable)
        assert app.state.current_key().key_id == ALPHA and table.cursor_row == 0
        # no awaits below until the end: this is one interleaving, played out by hand
        table.move_cursor(row=1, animate=False)
        pane._key_highlighted()  # the first move's event: beta
        table.move_cursor(row=2, animate=False)  # the second press
        if first_handled == "after it":
            pane._key_highlighted()  # the second move's event: gamma
        app.on_key_selected(KeySelected(BETA))  # the app handles the first selection
        pane.draw(app.state)  # and redraws
        assert table.cursor_row == 2  # the redraw did not pull the cursor back to beta
        pane._key_highlighted()  # the second move's event (again: handled late)
        assert app.state.selected_key == GAMMA
        # the messages both moves queued are handled, each followed by a redraw
        await until(
            pilot,
            lambda: app.idle and app.state.selected_key == GAMMA and table.cursor_row == 2,
            "the second selection, drawn",
            show=lambda: (app.idle, app.state.selected_key, table.cursor_row),
        )


async def test_help_screen_lists_every_action_with_its_state(node):
    app = make_app(node)
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        assert isinstance(app.screen, HelpScreen)
        text = plain(app.screen.table)
        assert "unavailable now: the selected key has no signature yet" not in text
        assert text.count("available") >= 7 and "ctrl+p" in text
        assert app.check_action("sign", ()) is False  # no actions behind a dialog
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, "the main screen")


async def test_log_level_search_and_follow(node):
    app = make_app(node, initial_tab="log")
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        pane = app.main.query_one(LogPane)
        assert all(line.level != "debug" for line in pane.visible_lines())
        await pilot.press("l")  # info → warning
        await pilot.pause()
        assert pane.level == "warning"
        assert {line.level for line in pane.visible_lines()} == {"warning", "error"}
        await pilot.press("slash")
        await pilot.press(*"rejected")
        await pilot.pause()
        lines = pane.visible_lines()
        assert len(lines) == 2 and all("rejected" in line.text for line in lines)
        await pilot.press("escape")
        await pilot.press("f")
        assert not pane.follow
        node.publish("log", level="error", message="rejected: a late line")
        node.publish("log", level="info", message="rejected but only info")
        await until(pilot, lambda: pane.unseen == 1, "the paused count")
        assert "paused · 1 new" in str(pane.query_one("#log-follow").render())
        await pilot.press("f")
        assert pane.follow and pane.unseen == 0


async def test_peers_filter_and_sort(node):
    app = make_app(node)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        pane = app.main.query_one(PeersPane)
        table = pane.query_one(DataTable)

        def rows() -> list[str | None]:
            return [
                table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)
            ]

        assert rows()[0] == N4  # disconnected first
        table.focus()
        await pilot.press("o")  # by name: node2…node4, then the light client (no name)
        assert rows()[:3] == [N2, N3, N4] and rows()[3] not in (N2, N3, N4)
        await pilot.press("o")  # by peer id
        assert rows() == sorted(rows())
        await pilot.press("O")
        assert rows() == sorted(rows(), reverse=True)
        await pilot.press("slash", *"9003")
        await pilot.pause()
        assert rows() == [N3]
        await pilot.press("escape")
        await pilot.pause()
        assert len(rows()) == 4


async def test_events_update_sessions_chain_and_peers(node):
    app = make_app(node, initial_tab="sessions")
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        failed = next(s for s in load("sessions") if s["status"] == "failed")
        # the node names a session's culprits by party index, as text; shown as node4
        assert app.state.sessions[failed["session_id"]].culprits == ("4",)
        assert app.state.party("4") == app.state.party(N4) and "node4" in app.state.party("4")
        ssid = "77" * 32
        node.publish("session.started", ssid=ssid, phase="sign", parties=[1, 2, 3])
        node.publish(
            "session.failed",
            ssid=ssid,
            phase="sign",
            round=1,
            culprits=[3],
            check="the signature share of party 3 does not verify",
        )
        await until(pilot, lambda: app.state.sessions.get(ssid), "the new session")
        await until(pilot, lambda: app.state.sessions[ssid].status == "failed", "the abort")
        table = app.main.query_one("#sessions-table", DataTable)
        await until(pilot, lambda: ssid in row_keys(table), "the session's row")
        table.move_cursor(row=table.get_row_index(ssid))
        await pilot.pause()
        detail = text_of(app, "#session-detail")
        assert f"culprit: {app.state.party(3)}" in detail
        assert "failed check: the signature share of party 3 does not verify" in detail
        node.publish("view.changed", view=2, primary=N3)
        await until(pilot, lambda: app.state.status and app.state.status.view == 2, "the view")
        await pilot.press("5")  # a hidden screen is drawn when it is shown
        await until(pilot, lambda: "view 2, primary" in text_of(app, "#view-alerts"), "alert")


async def test_garbage_from_the_node_never_crashes_the_console(node):
    node.broken_routes["/peers"] = (200, "not a list of peers")
    node.broken_routes["/sessions"] = (500, {"error": "sessions are not built yet"})
    app = make_app(node)
    async with app.run_test() as pilot:
        await settled(pilot)
        assert app.state.peers == {}
        assert any("GET sessions: HTTP 500" in line.text for line in app.state.log.lines)
        node.publish(
            "session.round", malformed=True, ssid=None, round="two", of=None, waiting_for="x"
        )
        node.publish("block.committed", malformed=True, height="tall")
        node.publish("mystery.kind", anything=[1, 2])
        node.publish("key.active", malformed=True, key_id={"not": "an id"}, public_key=7)
        await until(pilot, lambda: app.state.last_seq == node.seq, "the events")
        assert app.is_running


async def test_screenshot_key_saves_an_svg(node, tmp_path):
    app = make_app(node, screenshot_dir=tmp_path)
    async with app.run_test() as pilot:
        await settled(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        shots = list(tmp_path.glob("*.svg"))
        assert len(shots) == 1 and "<svg" in shots[0].read_text()


async def test_palette_runs_actions_and_explains_refusals(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        app.state.selected_key = GAMMA
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {"Start keygen", "Sign a message", "Show Chain", "Help"} <= set(commands)
        reason = f"key {GAMMA[:6]}…{GAMMA[-4:]} is pending"
        assert commands["Sign a message"].help.endswith(f"[s] · unavailable: {reason}")
        commands["Sign a message"].callback()
        await pilot.pause()
        assert notices(app)[-1] == f"Sign a message: not now: {reason}"
        assert not isinstance(app.screen, SignModal)
        app.state.selected_key = ALPHA
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        commands["Sign a message"].callback()
        await until(pilot, lambda: isinstance(app.screen, SignModal), "the sign dialog")


async def test_without_an_event_stream_the_console_polls_and_says_so(node):
    node.broken_routes["/events"] = (500, {"error": "event stream broken"})
    app = make_app(node, poll_interval=0.05)
    async with app.run_test() as pilot:
        await until(pilot, lambda: app.state.link.stream_error, "the stream failure")
        await until(pilot, lambda: app.state.link.synced, "the snapshots")
        assert app.state.health() == (
            "degraded",
            "no event stream (HTTP 500: event stream broken); polling",
        )
        assert app.check_action("sign", ()) is True  # the node answers: actions work
        node.set_peer(N3, connected=False)  # seen by polling alone
        await until(pilot, lambda: not app.state.peers[N3].connected, "the poll")
        del node.broken_routes["/events"]
        await until(pilot, lambda: app.state.link.stream_error is None, "the stream again")


async def test_nothing_is_drawn_while_the_console_shuts_down(node, monkeypatch):
    """Textual tears the panes down child first, so a redraw that lands then (a tick, a
    link event) would find a pane without its table; it must draw nothing at all."""
    app = make_app(node)
    late: list[bool] = []
    real_draw = PeersPane.draw

    def draw(self: PeersPane, state: Any) -> None:
        late.append(not app.is_running)
        real_draw(self, state)

    monkeypatch.setattr(PeersPane, "draw", draw)
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        real_prune = app._prune

        def prune_then_change(*nodes: Any, parent: Any = None) -> Any:
            done = real_prune(*nodes, parent=parent)
            app.apply(Changes({"peers"}))  # a change arriving as the screen goes away
            return done

        monkeypatch.setattr(app, "_prune", prune_then_change)
    assert late and not any(late)  # drawn while running, never after


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_a_node_warning_is_shown_in_the_header_log_and_a_notice(node, size):
    warning = "vault key stored in the data directory (insecure_local_key)"
    node.status["warnings"] = [warning]  # a node with insecure_local_key
    app = make_app(node)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.state.status is not None, "the status")
        await until(pilot, lambda: any(warning in n for n in notices(app)), "the notice")
        await settled(pilot)
        header = app.main.query_one("#header", Static)
        assert "⚠ insecure vault key" in str(header.render())
        assert warning in str(header.tooltip)
        assert any(
            (line.level, line.source, line.text) == ("warning", "node", warning)
            for line in app.state.log.lines
        )
        node.status["warnings"] = []  # the operator moved the key out and restarted it
        app.state.apply_snapshot("status", node.status)
        app.apply(Changes({"header"}))  # redrawn within REDRAW_INTERVAL_S
        await until(pilot, lambda: "⚠" not in str(header.render()), "the header redrawn")
