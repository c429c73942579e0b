"""Helpers of the console tests: the app wired to the HTTP API test double
(`tssnode.testing.fakenode.FakeNode`) with a frozen clock, UTC times, no polling, fast
reconnects, no animations and the validators' names from the genesis; and waiting for the
app without sleeping blindly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Select, TextArea

from tssnode.testing.fakenode import URL, FakeNode, load
from tui.app import ConsoleApp
from tui.link import Target
from tui.names import read_genesis_names
from tui.retry import Backoff
from tui.screens.confirm import ConfirmModal
from tui.screens.help import HelpScreen
from tui.screens.keygen import KeygenModal
from tui.screens.sign import SignModal

#: the newest event of the frozen stream: once the console has it, it has everything
LAST_SEQ = load("events")[-1]["seq"]
#: the genesis the frozen data's validators come from (fixtures/make_fixtures.py): their
#: names, node1…node4, as the console reads them from a node's genesis
GENESIS = Path(__file__).resolve().parents[2] / "configs" / "genesis.example.toml"
NAMES = read_genesis_names(GENESIS)
FAST = Backoff(first=0.02, factor=2.0, cap=0.1)


def make_app(node: FakeNode, **options: Any) -> ConsoleApp:
    settings: dict[str, Any] = {
        "factory": node.client,
        "clock": lambda: node.clock,
        "tz": UTC,
        "poll_interval": None,
        "backoff": FAST,
        "animations": False,
        "names": NAMES,
    }
    settings.update(options)
    return ConsoleApp(Target(URL, lambda: node.token), **settings)


async def until(
    pilot: Pilot[Any],
    ok: Callable[[], object],
    what: str,
    within: float = 5.0,
    show: Callable[[], object] | None = None,
) -> None:
    """Let the app run until `ok()` holds (fail after `within` seconds, saying what
    `show()` returns then)."""
    for _ in range(int(within / 0.01)):
        if ok():
            return
        await pilot.pause(0.01)
    seen = "" if show is None else f" (at the end: {show()!r})"
    raise AssertionError(f"timed out waiting for {what}{seen}")


async def settled(pilot: Pilot[Any]) -> None:
    """Wait until the frozen data is all in and drawn, then drop the notices it raised."""
    app = pilot.app
    assert isinstance(app, ConsoleApp)
    await until(
        pilot,
        lambda: app.state.link.synced and app.state.last_seq == LAST_SEQ and app.idle,
        "the frozen data",
    )
    app.clear_notifications()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


# -- the dialogs, opened as an operator would (snapshots and docs) ---------------------
async def open_keygen(pilot: Any) -> None:
    await settled(pilot)
    await pilot.press("g")
    await until(pilot, lambda: isinstance(pilot.app.screen, KeygenModal), "the keygen dialog")


async def open_sign_confirmation(pilot: Any) -> None:
    await settled(pilot)
    await pilot.press("s")
    await until(pilot, lambda: isinstance(pilot.app.screen, SignModal), "the sign dialog")
    pilot.app.screen.query_one("#sign-hash", Select).value = "eip191"
    pilot.app.screen.query_one("#sign-message", TextArea).text = "pay 1 ETH to alice"
    await pilot.pause()
    await pilot.click("#review")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal), "the confirmation")


async def open_help(pilot: Any) -> None:
    await settled(pilot)
    await pilot.press("question_mark")
    await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help screen")


async def open_release(pilot: Any, burn_nonce: int = 1) -> None:
    """The Bridge screen (the app opened on it) with a release in its detail: the
    releases' list focused, burn `burn_nonce` under the cursor (burn 1 of the frozen data:
    a release bumped once, its first attempt replaced)."""
    await settled(pilot)
    app = pilot.app
    table = app.screen.query_one("#releases-table", DataTable)
    await until(pilot, lambda: table.row_count > 0, "the releases")
    table.focus()
    table.move_cursor(row=table.get_row_index(str(burn_nonce)), animate=False)
    await pilot.pause()
    await until(pilot, lambda: app.idle, "the release drawn")
    await pilot.pause()
