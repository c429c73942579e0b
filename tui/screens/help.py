"""The help screen (?): every key, and for each action whether it can run now and why
not."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.actions import ACTIONS, why_not
from tui.screens.main import TABS
from tui.state import ConsoleState

TABS_HELP = "  ".join(f"{i} {title}" for i, (_, title, _) in enumerate(TABS, start=1))
GENERAL = (
    ("?", "this help"),
    ("ctrl+p", "command palette: every action, with the reason when it cannot run"),
    ("ctrl+s", "save a screenshot (SVG) in screenshots/ (a notice gives the path)"),
    ("t", "choose a theme"),
    ("tab / shift+tab", "move between tables and fields"),
    ("q", "quit (the node keeps running)"),
)
PANES = (
    ("Peers", "o next sort column · O reverse · / filter · esc clear"),
    ("Log", "l minimum level · f follow/pause · / search · esc clear"),
    ("Keys", "↑↓ choose the key (and signature) the actions use"),
    ("Chain", "↑↓ choose a block: its transactions and commit certificate"),
    (
        "Bridge",
        "↑↓ choose a deposit · m copy its mint signature · o copy its outpoint · tab to the "
        "releases (the detail follows the list focused) · x copy the selected release's txid",
    ),
)


def help_table(state: ConsoleState) -> Table:
    table = Table(box=None, expand=True, padding=(0, 1), show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(ratio=1)
    table.add_row(Text("Actions", style="bold underline"), "")
    for action in ACTIONS:
        reason = why_not(action.name, state)
        line = Text(action.help)
        line.append("\n")
        if reason:
            line.append(f"unavailable now: {reason}", style="yellow")
        else:
            line.append("available", style="green")
        if action.writes_ledger:
            line.append(" · asks for confirmation", style="dim")
        table.add_row(action.key, line)
    table.add_row("", "")
    table.add_row(Text("Screens", style="bold underline"), TABS_HELP)
    for name, keys in PANES:
        table.add_row(name, keys)
    table.add_row("", "")
    table.add_row(Text("General", style="bold underline"), "")
    for key, what in GENERAL:
        table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close"),
    ]

    def __init__(self, state: ConsoleState) -> None:
        super().__init__(classes="dialog-screen")
        self.table = help_table(state)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="help-dialog"):
            yield Static("tssnode console · keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(self.table, id="help-body")
            yield Static("esc or ? closes", classes="hint")
