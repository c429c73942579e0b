"""Peers: every peer the node knows, with its name (from the genesis) next to its peer id,
live, sortable (o: next column, O: reverse) and filterable (/: type part of a name, id,
address or status)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label

from tui.model import Peer, short_peer
from tui.state import ConsoleState
from tui.widgets.base import AreaView, Table, refill, status_text


@dataclass(frozen=True)
class SortKey:
    title: str
    key: Any  # Callable[[Peer, name], Any]


SORTS = (
    SortKey("status", lambda p, name: (p.connected, name is None, name or "", p.peer_id)),
    SortKey("name", lambda p, name: (name is None, name or "", p.peer_id)),
    SortKey("peer", lambda p, name: p.peer_id),
    SortKey("address", lambda p, name: p.address),
    SortKey("latency", lambda p, name: (p.latency_ms is None, p.latency_ms or 0.0)),
    SortKey("last seen", lambda p, name: -(p.last_seen or 0.0)),
)


def peer_rows(
    peers: Iterable[Peer],
    sort: int,
    reverse: bool,
    query: str,
    name_of: Callable[[str], str | None] = lambda peer_id: None,
) -> list[Peer]:
    """The peers to show: those matching `query` (any part of name, id, address or
    status), ordered by SORTS[sort]."""
    q = query.strip().casefold()
    named = [(p, name_of(p.peer_id)) for p in peers]
    chosen = [
        (p, name)
        for p, name in named
        if not q or any(q in f.casefold() for f in (name or "", p.peer_id, p.address, p.status))
    ]
    key = SORTS[sort % len(SORTS)].key
    return [p for p, _ in sorted(chosen, key=lambda pn: key(*pn), reverse=reverse)]


class PeersPane(AreaView, Vertical):
    AREA = "peers"
    BINDINGS: ClassVar[list[BindingType]] = [
        # shown in the toolbar and on the help screen; the footer is for the actions
        Binding("o", "sort_next", "Sort", show=False),
        Binding("O", "sort_reverse", "Reverse", show=False),
        Binding("slash", "filter", "Filter", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sort = 0
        self.reverse = False
        self.state: ConsoleState | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Input(
                placeholder="/ filter: name, id, address or status",
                id="peer-filter",
                compact=True,
            )
            yield Label("", id="peer-sort")
        table = Table(id="peers-table", cursor_type="row", zebra_stripes=True)
        for title in ("Name", "Peer", "Address", "Latency", "Last seen", "Status"):
            table.add_column(title, key=title.lower())
        yield table

    def draw(self, state: ConsoleState) -> None:
        self.state = state
        query = self.query_one("#peer-filter", Input).value
        rows = peer_rows(state.peers.values(), self.sort, self.reverse, query, state.name_of)
        refill(self.query_one("#peers-table", DataTable), (self._row(p, state) for p in rows))
        arrow = "↑" if self.reverse else "↓"
        shown = f"{len(rows)}/{len(state.peers)}"
        self.query_one("#peer-sort", Label).update(
            f"{shown} · sort {SORTS[self.sort].title} {arrow} (o)"
        )

    @staticmethod
    def _row(p: Peer, state: ConsoleState) -> tuple[str, list[RenderableType]]:
        latency = "-" if p.latency_ms is None else f"{p.latency_ms:.1f} ms"
        name = state.name_of(p.peer_id)
        style = "" if p.validator else "dim italic"  # peers that are not validators: dimmed
        return p.peer_id, [
            Text(name or "-", style=f"bold {style}" if name else "dim"),
            Text(short_peer(p.peer_id), style=style),
            Text(p.address or "-"),
            Text(latency, justify="right"),
            Text(state.ago(p.last_seen)),
            status_text(p.status),
        ]

    def _redraw(self) -> None:
        if self.state is not None:
            self.draw(self.state)

    def action_sort_next(self) -> None:
        self.sort = (self.sort + 1) % len(SORTS)
        self._redraw()

    def action_sort_reverse(self) -> None:
        self.reverse = not self.reverse
        self._redraw()

    def action_filter(self) -> None:
        self.query_one("#peer-filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#peer-filter", Input).value = ""
        self.query_one("#peers-table", DataTable).focus()

    @on(Input.Changed, "#peer-filter")
    def _filter_changed(self) -> None:
        self._redraw()

    @on(DataTable.HeaderSelected, "#peers-table")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        titles = [s.title for s in SORTS]
        title = str(event.label).lower()
        if title in titles:
            index = titles.index(title)
            self.reverse = not self.reverse if index == self.sort else False
            self.sort = index
            self._redraw()
