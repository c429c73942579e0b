"""Log: the node's log events and the console's own notes, with a minimum level (l),
follow/pause (f) and search (/)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, RichLog, Select

from tui.state import ConsoleState
from tui.stats import LEVELS, MAX_LOG_LINES, LogLine
from tui.widgets.base import AreaView

LEVEL_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}


def log_text(line: LogLine, state: ConsoleState, search: str) -> Text:
    out = Text(no_wrap=False)
    out.append(state.clock_text(line.time), style="dim")
    out.append(f" {line.level.upper():<7} ", style=LEVEL_STYLE.get(line.level, ""))
    out.append(line.text, style=LEVEL_STYLE.get(line.level, "") if line.level != "info" else "")
    if search:
        out.highlight_words([search], style="reverse", case_sensitive=False)
    return out


class LogPane(AreaView, Vertical):
    AREA = "log"
    BINDINGS: ClassVar[list[BindingType]] = [
        # shown in the toolbar and on the help screen; the footer is for the actions
        Binding("f", "toggle_follow", "Follow/pause", show=False),
        Binding("l", "next_level", "Level", show=False),
        Binding("slash", "search", "Search", show=False),
        Binding("escape", "clear_search", "Clear search", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state: ConsoleState | None = None
        self.level = "info"
        self.search = ""
        self.follow = True
        self.seen = 0  # LogBook.total when last drawn
        self.unseen = 0  # lines that arrived while paused

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Select(
                [(f"≥ {lvl}", lvl) for lvl in LEVELS],
                value=self.level,
                allow_blank=False,
                id="log-level",
                compact=True,
            )
            yield Input(placeholder="/ search · l level", id="log-search", compact=True)
            yield Label("", id="log-follow")
        # screen lines (a long log line wraps over several): room for every kept line
        yield RichLog(id="log-lines", wrap=True, max_lines=2 * MAX_LOG_LINES, auto_scroll=True)

    # -- drawing -----------------------------------------------------------------------------
    def draw(self, state: ConsoleState) -> None:
        self.state = state
        book = state.log
        new = min(book.total - self.seen, len(book.lines))
        self.seen = book.total
        if new <= 0:
            return
        out = self.query_one("#log-lines", RichLog)
        for line in list(book.lines)[-new:]:
            if line.matches(self.level, self.search):
                out.write(log_text(line, state, self.search), scroll_end=self.follow)
                if not self.follow:
                    self.unseen += 1
        self._label()

    def redraw(self) -> None:
        """Draw every kept line again (after the level or the search changed)."""
        out = self.query_one("#log-lines", RichLog)
        out.clear()
        if self.state is None:
            return
        for line in self.state.log.view(self.level, self.search):
            out.write(log_text(line, self.state, self.search), scroll_end=self.follow)
        self.seen = self.state.log.total
        self._label()

    def visible_lines(self) -> list[LogLine]:
        """The lines the pane shows now (for tests and the screenshot docs)."""
        return self.state.log.view(self.level, self.search) if self.state else []

    def _label(self) -> None:
        text = "following" if self.follow else f"paused · {self.unseen} new"
        self.query_one("#log-follow", Label).update(f"{text} (f)")

    # -- controls ----------------------------------------------------------------------------
    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        out = self.query_one("#log-lines", RichLog)
        out.auto_scroll = self.follow
        if self.follow:
            self.unseen = 0
            out.scroll_end(animate=False)
        self._label()

    def action_next_level(self) -> None:
        select: Select[str] = self.query_one("#log-level", Select)
        select.value = LEVELS[(LEVELS.index(self.level) + 1) % len(LEVELS)]

    def action_search(self) -> None:
        self.query_one("#log-search", Input).focus()

    def action_clear_search(self) -> None:
        self.query_one("#log-search", Input).value = ""
        self.query_one("#log-lines", RichLog).focus()

    @on(Select.Changed, "#log-level")
    def _level_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.level:
            self.level = event.value
            self.redraw()

    @on(Input.Changed, "#log-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.search = event.value
        self.redraw()
