"""Issue 14 (item 5, and the console side of item 4), driven with Pilot against the HTTP
API test double: Enter confirms a confirmation and every request is answered with
notices (sent with its id, done, failed, cancelled); the header is neutral until the
node's state is loaded; ctrl+s saves under screenshots/, never in the working directory;
the validators' names are shown next to their peer ids; blocks show their time and
commit latency, or "-"; a finished session shows complete whatever round the node
reports."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DataTable, Input, SelectionList, Static

from tests.tui.helpers import GENESIS, make_app, settled, until
from tssnode.config import key_peer_id
from tssnode.net import peerid
from tssnode.testing.fakenode import FakeNode, load
from tui import cli
from tui.app import REDRAW_INTERVAL_S, ConsoleApp
from tui.daemon import NodeConfig, read_config
from tui.model import Session
from tui.names import names_from_genesis, read_genesis_names
from tui.screens.confirm import ConfirmModal
from tui.screens.keygen import KeygenModal
from tui.state import ConsoleState
from tui.widgets.sessions import round_cell

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
KEYS = [k["key_id"] for k in load("keys")]
ALPHA = KEYS[0]
N1, N2, N3, N4 = (v["peer_id"] for v in load("validators"))


def posts(node: FakeNode) -> list[tuple[str, Any]]:
    return [(path, body) for method, path, body in node.requests if method == "POST"]


def toasts(app: ConsoleApp) -> list[tuple[str, str, str]]:
    """(severity, title, message) of every notice raised and not yet gone."""
    return [(n.severity, n.title, n.message) for n in app._notifications]


def toast(app: ConsoleApp, title: str) -> tuple[str, str] | None:
    """(severity, message) of the newest notice titled `title`."""
    found = [(sev, msg) for sev, t, msg in toasts(app) if t == title]
    return found[-1] if found else None


def cell(app: ConsoleApp, table: str, row: str, column: str) -> str:
    return str(app.main.query_one(f"#{table}", DataTable).get_cell(row, column))


async def confirm_keygen(pilot: Any, app: ConsoleApp) -> ConfirmModal:
    await pilot.press("g")
    await until(pilot, lambda: isinstance(app.screen, KeygenModal), "the keygen dialog")
    await pilot.press("enter")  # the threshold field: on to the confirmation
    await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
    await pilot.pause()
    assert isinstance(app.screen, ConfirmModal)
    return app.screen


# -- 1. confirmations: Enter confirms, and every request is answered ------------------------
async def test_enter_confirms_the_marked_default_and_the_request_is_followed(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        modal = await confirm_keygen(pilot, app)
        confirm = modal.query_one("#confirm", Button)
        assert modal.focused is confirm  # the default has the focus …
        assert confirm.has_class("default") and "⏎" in str(confirm.label)  # … and shows it
        assert "enter start" in str(modal.query_one("#confirm-hint", Static).render())
        await pilot.press("enter")
        await until(pilot, lambda: posts(node), "the request")
        assert posts(node) == [("/keygen", {"threshold": 2, "parties": None})]
        key_id = next(k for k in node.keys if k not in KEYS)
        await until(pilot, lambda: toast(app, "Keygen submitted"), "the notice of the request")
        severity, message = toast(app, "Keygen submitted") or ("", "")
        assert severity == "information" and key_id in message  # the request's id, in full
        assert toast(app, "Keygen done") is None
        node.complete_keygen(key_id)
        await until(pilot, lambda: toast(app, "Keygen done"), "the notice of the result")
        assert key_id in toast(app, "Keygen done")[1]
        assert app.state.keys[key_id].active and key_id not in app.state.followed


async def test_enter_on_the_focused_cancel_button_cancels(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        await confirm_keygen(pilot, app)
        await pilot.press("shift+tab")  # onto Cancel: Enter presses what has the focus
        assert app.screen.focused is app.screen.query_one("#cancel", Button)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is app.main, "the main screen")
        await pilot.pause()
        assert posts(node) == []
        assert toast(app, "Keygen cancelled") == ("warning", "nothing was sent")


async def test_escape_cancels_and_says_that_nothing_was_sent(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        await confirm_keygen(pilot, app)
        await pilot.press("escape")
        await until(pilot, lambda: toast(app, "Keygen cancelled"), "the notice")
        assert posts(node) == [] and app.screen is app.main
        assert any("cancelled" in line.text for line in app.state.log.lines)


async def test_a_failed_keygen_is_noticed_with_its_reason(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        await confirm_keygen(pilot, app)
        await pilot.press("enter")
        await until(pilot, lambda: len(node.keys) > len(KEYS), "the request")
        key_id = next(k for k in node.keys if k not in KEYS)
        await until(pilot, lambda: key_id in app.state.followed, "the request followed")
        node.fail_keygen(key_id, "Π^mod proof of party 4 does not verify")
        await until(pilot, lambda: toast(app, "Keygen failed"), "the notice of the failure")
        severity, message = toast(app, "Keygen failed") or ("", "")
        assert severity == "error" and key_id in message and "Π^mod proof" in message


async def test_signing_is_noticed_when_sent_and_when_ready_or_failed(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        for n, outcome in enumerate(("ready", "failed")):
            await pilot.press("s")
            await until(pilot, lambda: app.screen is not app.main, "the sign dialog")
            app.screen.query_one("#sign-message").text = f"message {n}"
            await pilot.pause()
            await pilot.click("#review")
            await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
            await pilot.press("enter")
            await until(pilot, lambda n=n: len(posts(node)) == n + 1, "the request")
            sig_id = list(node.signatures)[-1]
            await until(
                pilot,
                lambda sig_id=sig_id: sig_id in (toast(app, "Signing submitted") or ("", ""))[1],
                "the notice with the signature's id",
            )
            if outcome == "ready":
                node.complete_signature(sig_id)
                await until(pilot, lambda: toast(app, "Signing done"), "the signature")
                assert sig_id in (toast(app, "Signing done") or ("", ""))[1]
            else:
                node.fail_signature(sig_id, "the signature share of party 4 does not verify")
                await until(pilot, lambda: toast(app, "Signing failed"), "the failure")
                severity, message = toast(app, "Signing failed") or ("", "")
                assert severity == "error" and sig_id in message
                assert "node4" in message and "does not verify" in message


async def test_refresh_and_presign_are_noticed_when_the_key_has_them(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        await pilot.press("enter")
        await until(pilot, lambda: toast(app, "Refresh submitted"), "the notice")
        assert "epoch 1 → 2" in (toast(app, "Refresh submitted") or ("", ""))[1]
        node._commit(1)  # the ledger has the refresh: the key's epoch moves on
        await until(pilot, lambda: toast(app, "Refresh done"), "the refresh")
        assert "epoch 2" in (toast(app, "Refresh done") or ("", ""))[1]

        await pilot.press("p")
        await until(pilot, lambda: app.screen is not app.main, "the presign dialog")
        app.screen.query_one("#field", Input).value = "3"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        await pilot.press("enter")
        await until(pilot, lambda: toast(app, "Presigning submitted"), "the notice")
        node._commit(1)
        await until(pilot, lambda: toast(app, "Presigning done"), "the presignatures")


async def test_a_refused_request_is_noticed_at_once(node):
    node.broken_routes["/keygen"] = (503, {"error": "not accepted: below quorum"})
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        await confirm_keygen(pilot, app)
        await pilot.press("enter")
        await until(pilot, lambda: toast(app, "Keygen not sent"), "the refusal")
        assert toast(app, "Keygen not sent") == (
            "error",
            "the node refused: not accepted: below quorum",
        )


# -- 2. the header before the node's state is in ------------------------------------------
async def test_the_header_is_neutral_until_the_first_status(node):
    node.held["/status"] = gate = asyncio.Event()
    app = make_app(node)
    async with app.run_test(size=(120, 30)) as pilot:
        header = app.main.query_one("#header", Static)
        await until(pilot, lambda: node.requests, "the first request")
        await pilot.pause(3 * REDRAW_INTERVAL_S)
        assert app.state.status is None
        assert header.has_class("-connecting")
        assert not header.has_class("-down") and not header.has_class("-ok")
        assert str(header.render()).startswith("◌ connecting…")
        gate.set()
        await settled(pilot)
        assert header.has_class("-degraded")  # node4 is down: the health once it is known


async def test_no_below_quorum_before_the_validators_and_peers_are_in(node):
    """The status says 4 validators; with no peers and validators loaded yet the quorum
    would be 1 of 4: the red 'below quorum' flash of the report."""
    node.held["/validators"] = gate = asyncio.Event()
    app = make_app(node)
    async with app.run_test(size=(120, 30)) as pilot:
        header = app.main.query_one("#header", Static)
        await until(pilot, lambda: app.state.status is not None, "the status")
        await pilot.pause(3 * REDRAW_INTERVAL_S)
        assert header.has_class("-connecting") and not header.has_class("-down")
        text = str(header.render())
        assert "below quorum" not in text and "loading" in text
        assert "node1 12D3…p3dJd4bQ" in text  # whose state is loading
        gate.set()
        await settled(pilot)
        assert header.has_class("-degraded")


async def test_a_node_lost_after_loading_is_red_not_neutral(node):
    app = make_app(node)
    async with app.run_test(size=(120, 30)) as pilot:
        await settled(pilot)
        node.go_down()
        await until(pilot, lambda: not app.state.link.connected, "the disconnection")
        header = app.main.query_one("#header", Static)
        await until(pilot, lambda: header.has_class("-down"), "the header red")
        assert "disconnected" in str(header.render())


def test_health_is_connecting_until_everything_is_loaded_once():
    state = ConsoleState(clock=lambda: 0.0)
    assert state.health() == ("connecting", "connecting…")
    state.link_down("cannot reach http://x: refused", 1.0)
    assert state.health() == ("connecting", "connecting… (cannot reach http://x: refused)")
    state.link_up("http://x")
    state.apply_snapshot("status", load("status"))
    assert state.health()[0] == "connecting"  # 1 of 4 online by the status alone
    for kind in ("validators", "peers"):
        state.apply_snapshot(kind, load(kind))
    state.synced()
    assert state.health()[0] == "degraded"
    state.link_down("refused", 1.0)
    assert state.health() == ("down", "refused")  # known before: a lost node is red
    state.link_up("http://x")  # reconnected, reloading: judged from what it knew
    assert state.health() == ("degraded", "loading")


# -- 3. screenshots ------------------------------------------------------------------------
async def test_a_screenshot_goes_to_the_data_directory(node, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data" / "node1"
    app = make_app(node, data_dir=data)
    async with app.run_test() as pilot:
        await settled(pilot)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: toast(app, "Screenshot saved"), "the notice")
        shots = list((data / "screenshots").glob("*.svg"))
        assert len(shots) == 1 and "<svg" in shots[0].read_text()
        assert not list(tmp_path.glob("*.svg"))  # never the working directory itself
        assert toast(app, "Screenshot saved") == ("information", str(shots[0]))


async def test_without_a_data_directory_a_screenshot_goes_to_screenshots(
    node, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    app = make_app(node)
    async with app.run_test() as pilot:
        await settled(pilot)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: toast(app, "Screenshot saved"), "the notice")
        shots = list((tmp_path / "screenshots").glob("*.svg"))
        assert len(shots) == 1 and not list(tmp_path.glob("*.svg"))
        assert toast(app, "Screenshot saved") == ("information", str(shots[0]))


async def test_a_screenshot_that_cannot_be_written_is_an_error_notice(node, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    app = make_app(node, screenshot_dir=blocker / "screenshots")
    async with app.run_test() as pilot:
        await settled(pilot)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: toast(app, "Screenshot not saved"), "the notice")
        assert app.is_running


def test_screenshots_are_git_ignored():
    lines = (ROOT / ".gitignore").read_text().splitlines()
    assert "screenshots/" in lines
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["screenshots/x.svg", "configs/screenshots/x.svg", ".local/node1/screenshots/x.svg"]
    out = subprocess.run(
        ["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.stdout.split() == paths


def test_the_cli_passes_the_data_directory_names_and_node_name(tmp_path, monkeypatch):
    config = tmp_path / "configs" / "node1.toml"
    config.parent.mkdir()
    config.write_text(
        '[node]\nnetwork_id = "test"\ndata_dir = "../data/node1"\n'
        '[net]\nlisten = "/ip4/127.0.0.1/tcp/4101"\n[api]\nlisten = "127.0.0.1:9"\n'
        f'[ledger]\ngenesis = "{GENESIS}"\n'
    )
    started: list[ConsoleApp] = []
    monkeypatch.setattr("tui.daemon.ensure_running", lambda path, start: read_config(path))
    monkeypatch.setattr(ConsoleApp, "run", lambda self: started.append(self))
    assert cli.main(["--config", str(config)]) == 0
    (app,) = started
    assert app.screenshots_dir() == tmp_path / "configs" / "../data/node1" / "screenshots"
    assert app.state.names[N1] == "node1" and app.state.own_name == "node1"
    started.clear()
    token = tmp_path / "api.token"
    token.write_text("t")
    assert cli.main(["--attach", "http://x", "--token-file", str(token)]) == 0
    assert started[0].screenshots_dir() == Path("screenshots") and not started[0].state.names
    assert cli.main(["--attach", "http://x", "--token-file", str(token), "--genesis", "no"]) == 2


def test_the_config_gives_the_genesis_and_its_default(tmp_path):
    path = tmp_path / "n.toml"
    node = '[node]\nnetwork_id = "test"\ndata_dir = "d"\n[net]\nlisten = "/ip4/127.0.0.1/tcp/1"\n'
    path.write_text(node + '[ledger]\ngenesis = "g/genesis.toml"')
    assert read_config(path).genesis_file == tmp_path / "g" / "genesis.toml"
    path.write_text(node)
    config = read_config(path)
    assert config.genesis_file == tmp_path / "d" / "genesis.toml"
    assert config.screenshot_dir == tmp_path / "d" / "screenshots"
    assert NodeConfig(ROOT / "configs/local/node3.toml", "", Path()).name == "node3"


# -- 4. the nodes' names ---------------------------------------------------------------------
def test_peer_ids_and_names_come_from_the_genesis():
    names = read_genesis_names(GENESIS)
    for key, name in names.items():
        if len(key) == 64:  # a validator key: its peer id is the node's own
            assert peerid.to_text(peerid.from_public_key(bytes.fromhex(key))) == key_peer_id(key)
            assert names[key_peer_id(key) or ""] == name
    assert {names[p] for p in (N1, N2, N3, N4)} == {"node1", "node2", "node3", "node4"}
    assert names_from_genesis({"validators": [{"name": "x", "public_key": "zz"}, 7]}) == {}
    assert read_genesis_names(Path("/nonexistent/genesis.toml")) == {}


async def test_names_are_shown_next_to_the_peer_ids(node):
    app = make_app(node, initial_tab="validators")
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        assert cell(app, "validators-table", N2, "name") == "node2"
        assert cell(app, "validators-table", N2, "validator") == "12D3…W7YnEwJ5"
        await pilot.press("1")
        await pilot.pause()
        assert cell(app, "peers-table", N4, "name") == "node4"
        assert cell(app, "peers-table", N4, "peer") == "12D3…NMEicHMU"
        light = next(p["peer_id"] for p in node.peers if not p["validator"])
        assert cell(app, "peers-table", light, "name") == "-"  # not a validator: no name
        header = str(app.main.query_one("#header", Static).render())
        assert "node1 12D3…p3dJd4bQ" in header and "primary node2 #2 …EwJ5" in header
        await pilot.press("5")
        await pilot.pause()
        assert cell(app, "blocks-table", "12", "proposer") == "node2 #2 …EwJ5"
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, KeygenModal), "the keygen dialog")
        parties = app.screen.query_one("#parties", SelectionList)
        labels = [str(parties.get_option_at_index(i).prompt) for i in range(4)]
        assert labels[0].startswith("#1  node1  12D3…p3dJd4bQ") and "(me)" in labels[0]
        assert labels[3].startswith("#4  node4  12D3…NMEicHMU")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        body = str(app.screen.query_one("#confirm-body", Static).render())
        assert "node1 #1 …d4bQ, node2 #2 …EwJ5" in body


async def test_without_a_genesis_peers_are_shown_by_id(node):
    app = make_app(node, names={})
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        assert cell(app, "peers-table", N4, "name") == "-"
        assert app.state.party(N4) == f"#4 …{N4[-4:]}"


async def test_this_node_is_named_by_its_config_if_the_genesis_does_not(node):
    app = make_app(node, names={}, node_name="node1")
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        assert app.state.party(N1) == f"node1 #1 …{N1[-4:]}"
        assert app.state.name_of(N2) is None


# -- 5. blocks: time and commit latency; finished sessions ---------------------------------
@pytest.mark.parametrize("times", [True, False], ids=["with-times", "without-times"])
async def test_blocks_show_their_time_and_commit_latency_or_a_dash(times):
    node = FakeNode(block_times=times)
    app = make_app(node, initial_tab="chain")
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        time_cell = cell(app, "blocks-table", "12", "time")
        commit_cell = cell(app, "blocks-table", "12", "commit")
        assert (time_cell, commit_cell) == (("19:46:30", "38ms") if times else ("-", "-"))
        detail = str(app.main.query_one("#block-detail", Static).render())
        assert ("time 19:46:30  commit 38ms" if times else "time -  commit -") in detail
        node._commit(1)  # block 13, told of by a block.committed event
        await until(pilot, lambda: 13 in app.state.blocks, "block 13")
        await pilot.pause(2 * REDRAW_INTERVAL_S)
        if times:
            assert cell(app, "blocks-table", "13", "commit") == "40ms"
            assert cell(app, "blocks-table", "13", "time") == "19:46:40"
        else:  # the event has a time (when the node committed it), and no latency
            assert cell(app, "blocks-table", "13", "commit") == "-"
            assert cell(app, "blocks-table", "13", "time") == "19:46:40"


async def test_finished_sessions_show_complete_whatever_round_the_node_reports(node):
    done = [s for s in load("sessions") if s["status"] == "done"]
    assert [(s["round"], s["rounds"]) for s in done] == [(2, 2), (4, 4)]  # (their last round)
    app = make_app(node, initial_tab="sessions")
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        sign, presign = (s["session_id"] for s in done)
        assert cell(app, "sessions-table", sign, "round").endswith(" 2/2")
        assert cell(app, "sessions-table", presign, "round").endswith(" 4/4")
        # a session seen through the stream, then listed by the node as round 1 of 4
        ssid = "66" * 32
        node.publish("session.started", ssid=ssid, phase="keygen", parties=[1, 2, 3])
        node.publish("session.round", ssid=ssid, phase="keygen", round=4, of=4, waiting_for=[])
        node.publish("session.done", ssid=ssid, phase="keygen", seconds=3.5)
        await until(pilot, lambda: app.state.sessions.get(ssid), "the session")
        node.sessions.append(
            {**done[1], "session_id": ssid, "phase": "keygen", "round": 1, "rounds": 4}
        )
        app.request_fetch("sessions")
        await until(pilot, lambda: app.idle, "the listing")
        await pilot.pause(2 * REDRAW_INTERVAL_S)
        assert cell(app, "sessions-table", ssid, "round").endswith(" 4/4")
        table = app.main.query_one("#sessions-table", DataTable)
        table.move_cursor(row=table.get_row_index(ssid))
        await pilot.pause()
        assert "done: all 4 rounds" in str(app.main.query_one("#session-detail").render())


def test_a_failed_session_keeps_the_round_it_failed_in():
    state = ConsoleState(clock=lambda: 0.0)
    ssid = "55" * 32
    for kind, fields in (
        ("session.started", {}),
        ("session.round", {"round": 3, "of": 4}),
        ("session.failed", {"round": 3, "culprits": [4], "check": "bad proof"}),
    ):
        state.apply_event({"kind": kind, "ssid": ssid, "phase": "aux", **fields})
    listed = {"session_id": ssid, "phase": "aux", "status": "failed", "round": 1, "rounds": 4}
    state.apply_snapshot("sessions", [listed])
    assert (state.sessions[ssid].round, state.sessions[ssid].culprits) == (3, ("4",))
    # a listing older than the stream does not run a finished session again
    state.apply_snapshot("sessions", [{**listed, "status": "running"}])
    assert state.sessions[ssid].status == "failed"


def test_a_failed_session_keeps_its_time_on_the_nodes_clock():
    """tssnode lists `started` on its own (trio) clock and keeps counting `elapsed_s` of
    a failed session: the console keeps the time it failed after."""
    state = ConsoleState(clock=lambda: 1_764_100_000.0)
    ssid = "44" * 32
    running = {"session_id": ssid, "phase": "sign", "status": "running", "round": 1}
    state.apply_snapshot("sessions", [{**running, "started": 151_000.5, "elapsed_s": 2.0}])
    state.apply_event({"kind": "session.failed", "time": 1_764_100_000.0, "ssid": ssid, "round": 1})
    assert state.sessions[ssid].elapsed_s == 2.0  # not 1.76e9 s
    state.apply_snapshot("sessions", [{**running, "status": "failed", "elapsed_s": 50.0}])
    assert state.sessions[ssid].elapsed_s == 2.0


def test_round_cells():
    def session(status: str, rnd: int, rounds: int) -> Session:
        return Session.from_json(
            {"session_id": "s", "status": status, "round": rnd, "rounds": rounds}
        )

    assert round_cell(session("done", 1, 4)).plain.endswith(" 4/4")
    assert round_cell(session("done", 0, 0)).plain.endswith(" done")
    assert round_cell(session("running", 1, 4)).plain.endswith(" 1/4")
    assert round_cell(session("failed", 2, 4)).plain.endswith(" 2/4")


# -- 6. memory -------------------------------------------------------------------------------
def test_every_buffer_is_bounded():
    state = ConsoleState(clock=lambda: 0.0, max_blocks=10, max_log_lines=50)
    for height in range(1, 100):  # blocks fetched one by one (the operator's selection)
        state.apply_snapshot("block", {"height": height, "hash": f"{height:064x}"})
    for seq in range(1, 500):
        state.apply_event({"seq": seq, "kind": "log", "level": "info", "message": f"{seq}"})
    assert len(state.blocks) == 10 and min(state.blocks) == 90
    assert len(state.log.lines) == 50 and state.log.lines[-1].text == "499"
    for n in range(200):
        state.accepted("sign", {"signature_id": f"{n:064x}"}, {"key_id": ALPHA})
    assert len(state.followed) <= 50 and len(state.signatures) <= state.max_signatures
