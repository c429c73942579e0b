"""What every area widget shares: the `AreaView` contract (draw yourself from the
state), refilling a table without losing the operator's place (and without touching
the rows that did not change), and small renderers (a progress bar, status colours)
used in several areas."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from tui.state import Area, ConsoleState

STATUS_STYLE = {
    "connected": "bold green",
    "online": "bold green",
    "active": "bold green",
    "done": "green",
    "running": "bold cyan",
    "pending": "yellow",
    "disconnected": "bold red",
    "offline": "bold red",
    "failed": "bold red",
    # the bridge's deposits, from the mempool to the mint, and its deposit addresses
    "seen": "yellow",
    "confirming": "bold cyan",
    "final": "cyan",
    "signed": "green",
    "minted": "bold green",
    "orphaned": "bold red",
    "recorded": "green",
    # its releases, from the burn to the bitcoin paid, and their attempts ("signed" above)
    "signing": "bold cyan",
    "broadcast": "green",
    "confirmed": "bold green",
    "unpayable": "bold red",
    "replaced": "dim",
}


class Table(DataTable[RenderableType]):
    """A DataTable that draws its lines again once it has measured what `refill` put
    in it. (DataTable measures new rows and cells when it is idle, and keeps the lines
    it drew before that, with the old column widths, until something else changes;
    when a redraw lands just before a repaint, a header or row would stay cut.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._remeasured = False

    def redraw_when_measured(self) -> None:
        self._remeasured = True

    def on_idle(self) -> None:
        # runs before DataTable's own idle handler (which measures): redraw after it
        if self._remeasured:
            self._remeasured = False
            self.call_later(self.notify_style_update)  # drops DataTable's line caches


class AreaView:
    """A widget that draws one area of the screen from the console's state."""

    AREA: ClassVar[Area]

    def draw(self, state: ConsoleState) -> None:
        raise NotImplementedError


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def bar(done: int, total: int, width: int = 10, style: str = "cyan") -> Text:
    """'███████░░░ 2/3': a round counter drawn as a bar."""
    if total <= 0:
        return Text("·" * width + " ?/?", style="dim")
    filled = round(width * min(done, total) / total)
    out = Text()
    out.append("█" * filled, style=style)
    out.append("░" * (width - filled), style="dim")
    out.append(f" {done}/{total}")
    return out


def refill(
    table: DataTable[RenderableType],
    rows: Iterable[tuple[str, Sequence[RenderableType]]],
) -> None:
    """Make `table` show `rows`, keeping the cursor on the same row key if it is still
    there (redraws must not move the operator's selection). If the rows are the ones
    shown, in the same order, only the cells that changed are updated (a tick that
    changes an age redraws one cell, not the table); otherwise the table is refilled."""
    wanted: list[tuple[str, Sequence[RenderableType]]] = []
    seen: set[str] = set()
    for key, cells in rows:
        unique, n = key, 1
        while unique in seen:  # a node that repeats an id must not break the table
            n += 1
            unique = f"{key}#{n}"
        seen.add(unique)
        wanted.append((unique, cells))
    if [key for key, _ in wanted] == [row.key.value for row in table.ordered_rows]:
        columns = table.ordered_columns
        changed = False
        for key, cells in wanted:
            for column, new, old in zip(columns, cells, table.get_row(key), strict=False):
                if not same_cell(new, old):
                    table.update_cell(key, column.key, new, update_width=True)
                    changed = True
        if changed and isinstance(table, Table):
            table.redraw_when_measured()
        return
    current: str | None = None
    if table.row_count:
        try:
            current = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            current = None
    table.clear()
    for key, cells in wanted:
        table.add_row(*cells, key=key)
    if current is not None:
        with contextlib.suppress(RowDoesNotExist):
            table.move_cursor(row=table.get_row_index(current), animate=False)
    if isinstance(table, Table):
        table.redraw_when_measured()


def same_cell(new: RenderableType, old: object) -> bool:
    """Whether a cell would look the same (text, styles and justification)."""
    if isinstance(new, Text) and isinstance(old, Text):
        return (
            new.plain == old.plain
            and new.style == old.style
            and new.justify == old.justify
            and new.spans == old.spans
        )
    return new is old
