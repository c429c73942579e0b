"""Chain: the PBFT quorum meter, view-change alerts, the blocks table (with each block's
time and commit latency when the node gives them, "-" when not), and the selected block
with its transactions and commit certificate."""

from __future__ import annotations

import json
from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Container, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from tui.messages import BlockSelected
from tui.model import Block, short
from tui.state import ConsoleState, duration
from tui.widgets.base import AreaView, Table, bar, refill


def quorum_text(state: ConsoleState) -> Text:
    """'PBFT quorum ████████░░ 4/4 online, commit needs 3 · last cert 4 of 3 needed'."""
    out = Text()
    out.append("quorum ", style="bold")
    if not state.loaded:  # no quorum is judged from half the lists
        out.append("loading…", style="dim italic")
        return out
    online, n, needed = state.quorum()
    style = "green" if online >= needed else "red"
    out.append_text(bar(online, n, 10, style))
    out.append(f" online, commit needs {needed}", style="dim")
    latest = state.latest_block()
    if latest and latest.certificate.quorum:
        signed = len(latest.certificate.signers)
        out.append(" · last cert ", style="dim")
        out.append(
            f"{signed}/{latest.certificate.quorum}",
            style="green" if signed >= latest.certificate.quorum else "red",
        )
    return out


def view_alert_text(state: ConsoleState) -> Text:
    out = Text()
    for change in list(state.view_changes)[:2]:
        if out:
            out.append("\n")
        out.append("⚠ view change ", style="bold")
        out.append(f"{state.clock_text(change.time)}: view {change.view}, primary ")
        out.append(state.party(change.primary), style="bold")
    return out


def block_detail(block: Block, state: ConsoleState) -> Text:
    out = Text()
    out.append(f"block {block.height}", style="bold")
    out.append(f"  {block.hash}\n", style="dim")
    out.append("prev ", style="dim")
    out.append(f"{short(block.prev_hash, 12, 4)}  ")
    out.append("proposer ", style="dim")
    out.append(f"{state.party(block.proposer)}  view {block.view}  ")
    out.append("time ", style="dim")
    out.append(state.clock_text(block.time))
    out.append("  commit ", style="dim")
    out.append(latency_text(block))
    out.append("\n")
    cert = block.certificate
    signed = len(cert.signers)
    out.append("commit certificate ", style="bold")
    out.append(f"{signed} signers", style="green" if signed >= cert.quorum else "red")
    out.append(f", quorum {cert.quorum}: ")
    out.append(", ".join(state.party(s) for s in cert.signers) or "-")
    out.append("\n")
    out.append(f"transactions ({len(block.txs)})", style="bold")
    if not block.full and block.txs:
        out.append("  loading…", style="dim")
    for tx in block.txs:
        out.append("\n  ")
        out.append(f"{tx.kind:<15} ", style="cyan")  # (a space after the longest kinds too)
        out.append(short(tx.hash, 10, 4))
        if tx.submitter:
            out.append(f"  from {state.party(tx.submitter)}", style="dim")
        if tx.payload:
            out.append("\n    ")
            out.append(json.dumps(tx.payload, separators=(", ", ": "))[:300], style="dim")
    return out


def latency_text(block: Block) -> str:
    """The block's commit latency ('45ms', '1.2s'), or '-' if the node does not say."""
    ms = block.commit_latency_ms
    return "-" if ms is None else duration(ms / 1000)


class ChainPane(AreaView, Vertical):
    AREA = "chain"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state: ConsoleState | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="quorum-meter")
        yield Static("", id="view-alerts")
        with Container(id="chain-body"):
            table = Table(id="blocks-table", cursor_type="row", zebra_stripes=True)
            for title in ("Height", "Time", "Hash", "Proposer", "Txs", "Commit"):
                table.add_column(title, key=title.lower())
            yield table
            with VerticalScroll(id="block-detail-scroll"):
                yield Static("", id="block-detail", classes="detail")

    def draw(self, state: ConsoleState) -> None:
        self.state = state
        self.query_one("#quorum-meter", Static).update(quorum_text(state))
        alerts = self.query_one("#view-alerts", Static)
        alerts.update(view_alert_text(state))
        alerts.display = bool(state.view_changes)
        rows = []
        for height in sorted(state.blocks, reverse=True):
            b = state.blocks[height]
            cells: list[RenderableType] = [
                Text(str(height), justify="right", style="bold"),
                Text(state.clock_text(b.time), style="" if b.time is not None else "dim"),
                Text(b.hash[:8] or "-"),
                Text(state.party(b.proposer)),
                Text(str(len(b.txs)), justify="right"),
                Text(latency_text(b), justify="right"),
            ]
            rows.append((str(height), cells))
        refill(self.query_one("#blocks-table", DataTable), rows)
        self._detail()

    @on(DataTable.RowHighlighted, "#blocks-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.post_message(BlockSelected(int(event.row_key.value)))
        self._detail()

    def _detail(self) -> None:
        state = self.state
        out = self.query_one("#block-detail", Static)
        table = self.query_one("#blocks-table", DataTable)
        if state is None or not table.row_count:
            out.update("No blocks yet.")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        block = state.blocks.get(int(key)) if key else None
        out.update(block_detail(block, state) if block else "")
