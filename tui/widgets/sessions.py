"""Sessions: running and recent protocol sessions with their round as a bar (a finished
session full, whatever round the node last reported), the parties still awaited, elapsed
time and, on abort, the culprit and the check that failed."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tui.model import Session
from tui.state import ConsoleState, duration
from tui.widgets.base import AreaView, Table, bar, refill, status_text

ORDER = {"running": 0, "failed": 1, "done": 2}


def round_cell(s: Session, width: int = 6) -> Text:
    """'███░░░ 2/4' while running, '██████ 4/4' once done ('done' if the node gives no
    count), and the round it stopped in, in red, for a failed one."""
    done, total = s.progress
    style = {"failed": "red", "done": "green"}.get(s.status, "cyan")
    if s.status == "done" and total <= 0:
        out = Text("█" * width, style=style)
        out.append(" done")
        return out
    return bar(done, total, width, style)


def session_order(sessions: list[Session]) -> list[Session]:
    """Running first, then failed, then done; newest first within each."""
    return sorted(sessions, key=lambda s: (ORDER.get(s.status, 3), -(s.started or 0.0)))


class SessionsPane(AreaView, Vertical):
    AREA = "sessions"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state: ConsoleState | None = None

    def compose(self) -> ComposeResult:
        table = Table(id="sessions-table", cursor_type="row", zebra_stripes=True)
        for title in ("Phase", "Session", "Status", "Round", "Waiting for", "Elapsed", "Key"):
            table.add_column(title, key=title.lower())
        yield table
        yield Static("", id="session-detail", classes="detail")

    def draw(self, state: ConsoleState) -> None:
        self.state = state
        rows = []
        for s in session_order(list(state.sessions.values())):
            # names only here (the detail below has each with its peer id)
            waiting = ", ".join(state.party_short(p) for p in s.waiting_for) if s.running else ""
            elapsed = state.session_elapsed(s)
            cells: list[RenderableType] = [
                Text(s.phase, style="bold"),
                Text(s.session_id[:8]),
                status_text(s.status),
                round_cell(s),
                Text(waiting or "-", style="yellow" if waiting else "dim"),
                Text("-" if elapsed is None else duration(elapsed), justify="right"),
                Text(s.key_id[:8] or "-"),
            ]
            rows.append((s.session_id, cells))
        table = self.query_one("#sessions-table", DataTable)
        refill(table, rows)
        self._detail()

    @on(DataTable.RowHighlighted, "#sessions-table")
    def _highlighted(self) -> None:
        self._detail()

    def _detail(self) -> None:
        state = self.state
        detail = self.query_one("#session-detail", Static)
        table = self.query_one("#sessions-table", DataTable)
        if state is None or not table.row_count:
            detail.update("No protocol sessions yet.")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        s = state.sessions.get(key or "")
        if s is None:
            detail.update("")
            return
        detail.update(session_detail(s, state))


def session_detail(s: Session, state: ConsoleState) -> Text:
    out = Text()
    out.append(f"{s.phase} session ", style="bold")
    out.append(s.session_id)
    out.append("\n")
    if s.status == "failed":
        culprits = ", ".join(state.party(c) for c in s.culprits) or "nobody named"
        out.append(f"aborted in round {s.round} of {s.rounds or '?'}", style="bold red")
        out.append("  culprit: ", style="dim")
        out.append(culprits, style="bold red")
        out.append("\nfailed check: ", style="dim")
        out.append(s.error or "?", style="red")
    elif s.running:
        waiting = ", ".join(state.party(p) for p in s.waiting_for) or "nobody"
        out.append(f"round {s.round} of {s.rounds or '?'}", style="cyan")
        out.append("  waiting for: ", style="dim")
        out.append(waiting, style="yellow")
    else:
        elapsed = s.elapsed_s
        _, total = s.progress
        out.append(s.status, style="green" if s.status == "done" else "yellow")
        if s.status == "done" and total:
            out.append(f": all {total} rounds")
        if elapsed is not None:
            out.append(f" in {duration(elapsed)}")
        if s.error and s.status != "done":
            out.append(f" ({s.error})", style="dim")
    return out
