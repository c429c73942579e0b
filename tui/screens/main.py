"""The main screen: the header, one tab per area, the footer with the actions."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, TabbedContent, TabPane
from textual.widgets._tabbed_content import ContentTabs

from tui.widgets.bridge import BridgePane
from tui.widgets.chain import ChainPane
from tui.widgets.header import NodeHeader
from tui.widgets.keys import KeysPane
from tui.widgets.log import LogPane
from tui.widgets.peers import PeersPane
from tui.widgets.proofs import ProofsPane
from tui.widgets.sessions import SessionsPane
from tui.widgets.validators import ValidatorsPane

#: (tab id, title, pane class), in the order of the number keys 1..8
TABS: tuple[tuple[str, str, type[Widget]], ...] = (
    ("peers", "Peers", PeersPane),
    ("validators", "Validators", ValidatorsPane),
    ("sessions", "Sessions", SessionsPane),
    ("proofs", "Proofs", ProofsPane),
    ("chain", "Chain", ChainPane),
    ("keys", "Keys", KeysPane),
    ("log", "Log", LogPane),
    ("bridge", "Bridge", BridgePane),
)


class ConsoleFooter(Footer):
    """Textual's Footer without its leak. It is composed again whenever the bindings
    change (the focus moves, an action becomes available), and each FooterKey it made
    stays registered as a watcher of the footer's `compact` (Textual prunes the watchers
    of a reactive only when its value changes), so a console used for hours kept every
    key it ever showed, and each recompose got slower. Changing `compact` and back lets
    the old keys go; it restyles every key, so it is done every PRUNE_EVERY recomposes
    (at most that many sets of old keys are kept)."""

    PRUNE_EVERY = 10

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._recomposed = 0

    async def recompose(self) -> None:
        await super().recompose()
        self._recomposed += 1
        if self._recomposed % self.PRUNE_EVERY == 0:
            compact = self.compact
            self.compact = not compact
            self.compact = compact


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(str(i), f"show_tab('{tab}')", title, show=False)
        for i, (tab, title, _) in enumerate(TABS, start=1)
    ]

    def __init__(self, initial: str = "peers") -> None:
        super().__init__(id="main")
        self.initial = initial
        # lists and details side by side from 120 columns; taller tables from 40 rows,
        # less of the Bridge's settings below 30
        self.HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
        self.VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-medium"), (40, "-tall")]

    def compose(self) -> ComposeResult:
        yield NodeHeader(id="header")
        with TabbedContent(id="tabs", initial=self.initial):
            for tab, title, pane in TABS:
                with TabPane(title, id=tab):
                    yield pane(id=f"{tab}-pane")
        yield ConsoleFooter(compact=True)

    def on_mount(self) -> None:
        self.call_after_refresh(self._focus_pane)

    @on(TabbedContent.TabActivated, "#tabs")
    def _tab_activated(self) -> None:
        if not isinstance(self.focused, ContentTabs):  # leave the tab bar to the arrows
            self._focus_pane()

    def _focus_pane(self) -> None:
        """Put the focus in the visible area, so its own keys (o, /, f, …) work."""
        active = self.query_one("#tabs", TabbedContent).active
        target = next(iter(self.query_one(f"#{active}-pane").query("DataTable, RichLog")), None)
        if target is not None:
            target.focus()

    def on_resize(self) -> None:
        # the palette hint (ctrl+p) takes room the actions need below 120 columns
        self.query_one(Footer).show_command_palette = self.size.width >= 120

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab
