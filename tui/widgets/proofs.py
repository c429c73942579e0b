"""Proofs: zero-knowledge proofs verified and rejected, by proof type and by party, the
rate over the last minute as a sparkline, and each rejection with its party and reason."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Sparkline, Static

from tui.state import ConsoleState
from tui.stats import Counts
from tui.widgets.base import AreaView, Table, refill

WINDOW = 60  # seconds in the sparkline


def _counts_cells(name: str, c: Counts) -> list[RenderableType]:
    mean = "-" if c.mean_ms is None else f"{c.mean_ms:.1f}"
    return [
        Text(name, style="bold"),
        Text(str(c.verified), style="green", justify="right"),
        Text(str(c.rejected), style="bold red" if c.rejected else "dim", justify="right"),
        Text(mean, justify="right"),
    ]


class ProofsPane(AreaView, Vertical):
    AREA = "proofs"

    def compose(self) -> ComposeResult:
        with Horizontal(id="proof-rate-row"):
            yield Static("", id="proof-rate-label")
            yield Sparkline([0] * WINDOW, id="proof-rate")
        with Horizontal(id="proof-tables"):
            by_type = Table(id="proofs-by-type", cursor_type="row")
            by_party = Table(id="proofs-by-party", cursor_type="row")
            for table, first in ((by_type, "Proof"), (by_party, "Party")):
                for title in (first, "OK", "Rejected", "ms"):
                    table.add_column(title, key=title.lower())
                yield table
        rejections = Table(id="proof-rejections", cursor_type="row")
        for title in ("Time", "Party", "Proof", "Reason"):
            rejections.add_column(title, key=title.lower())
        yield rejections

    def draw(self, state: ConsoleState) -> None:
        stats = state.proofs
        rate = stats.rate(state.now(), WINDOW)
        total = stats.totals
        label = Text()
        label.append("proofs/s ", style="dim")
        label.append(f"{rate[-1]}", style="bold")
        label.append(f" (peak {max(rate)})\n", style="dim")
        label.append(f"{total.verified} ok", style="green")
        label.append(" · ")
        label.append(f"{total.rejected} rejected", style="bold red" if total.rejected else "dim")
        self.query_one("#proof-rate-label", Static).update(label)
        self.query_one("#proof-rate", Sparkline).data = [float(x) for x in rate]
        refill(
            self.query_one("#proofs-by-type", DataTable),
            ((name, _counts_cells(name, c)) for name, c in sorted(stats.by_type.items())),
        )
        by_party = sorted(stats.by_party.items(), key=lambda kv: (-kv[1].rejected, kv[0]))
        refill(
            self.query_one("#proofs-by-party", DataTable),
            ((party, _counts_cells(state.party(party), c)) for party, c in by_party),
        )
        rows = []
        for i, r in enumerate(stats.rejections):  # newest first; keyed by arrival
            key = f"r{total.rejected - i}"
            cells: list[RenderableType] = [
                Text(state.clock_text(r.time)),
                Text(state.party(r.party), style="bold red"),
                Text(r.proof),
                Text(r.reason),
            ]
            rows.append((key, cells))
        if not rows:
            rows.append(("none", [Text("-"), Text("-"), Text("-"), Text("no rejected proofs")]))
        refill(self.query_one("#proof-rejections", DataTable), rows)
