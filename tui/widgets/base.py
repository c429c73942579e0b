"""What every area widget shares: the `AreaView` contract (draw yourself from the
state), refilling a table without losing the operator's place, and small renderers
(a progress bar, status colours) used in several areas."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import ClassVar

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
}


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
    """Replace the rows of `table`, keeping the cursor on the same row key if it is
    still there (redraws must not move the operator's selection)."""
    current: str | None = None
    if table.row_count:
        try:
            current = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            current = None
    table.clear()
    seen: set[str] = set()
    for key, cells in rows:
        unique, n = key, 1
        while unique in seen:  # a node that repeats an id must not break the table
            n += 1
            unique = f"{key}#{n}"
        seen.add(unique)
        table.add_row(*cells, key=unique)
    if current is not None:
        with contextlib.suppress(RowDoesNotExist):
            table.move_cursor(row=table.get_row_index(current), animate=False)
