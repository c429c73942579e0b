"""Peers: every peer the node knows, live, sortable (o: next column, O: reverse) and
filterable (/: type part of an id, address or status)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label

from tui.model import Peer
from tui.state import ConsoleState
from tui.widgets.base import AreaView, Table, refill, status_text


@dataclass(frozen=True)
class SortKey:
    title: str
    key: Any  # Callable[[Peer], Any]


SORTS = (
    SortKey("status", lambda p: (p.connected, p.peer_id)),
    SortKey("peer", lambda p: p.peer_id),
    SortKey("address", lambda p: p.address),
    SortKey("latency", lambda p: (p.latency_ms is None, p.latency_ms or 0.0)),
    SortKey("last seen", lambda p: -(p.last_seen or 0.0)),
)


def peer_rows(peers: Iterable[Peer], sort: int, reverse: bool, query: str) -> list[Peer]:
    """The peers to show: those matching `query` (any part of id, address or status),
    ordered by SORTS[sort]."""
    q = query.strip().casefold()
    chosen = [
        p
        for p in peers
        if not q or any(q in f.casefold() for f in (p.peer_id, p.address, p.status))
    ]
    return sorted(chosen, key=SORTS[sort % len(SORTS)].key, reverse=reverse)


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
                placeholder="/ filter: id, address or status", id="peer-filter", compact=True
            )
            yield Label("", id="peer-sort")
        table = Table(id="peers-table", cursor_type="row", zebra_stripes=True)
        for title in ("Peer", "Address", "Latency", "Last seen", "Status"):
            table.add_column(title, key=title.lower())
        yield table

    def draw(self, state: ConsoleState) -> None:
        self.state = state
        query = self.query_one("#peer-filter", Input).value
        rows = peer_rows(state.peers.values(), self.sort, self.reverse, query)
        refill(self.query_one("#peers-table", DataTable), (self._row(p, state) for p in rows))
        arrow = "↑" if self.reverse else "↓"
        shown = f"{len(rows)}/{len(state.peers)}"
        self.query_one("#peer-sort", Label).update(
            f"{shown} · sort {SORTS[self.sort].title} {arrow} (o)"
        )

    @staticmethod
    def _row(p: Peer, state: ConsoleState) -> tuple[str, list[RenderableType]]:
        latency = "-" if p.latency_ms is None else f"{p.latency_ms:.1f} ms"
        return p.peer_id, [
            # validators show as '#index …id'; other peers (not validators) dimmed
            Text(state.party(p.peer_id), style="" if p.validator else "dim italic"),
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
