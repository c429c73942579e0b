"""Validators: the ledger's validator set with each one's name (from the genesis) next to
its peer id, who is online, and which keys each holds a share of."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tui.model import short_peer
from tui.state import ConsoleState
from tui.widgets.base import AreaView, Table, refill, status_text


class ValidatorsPane(AreaView, Vertical):
    AREA = "validators"

    def compose(self) -> ComposeResult:
        yield Static("", id="validators-summary", classes="summary")
        table = Table(id="validators-table", cursor_type="row", zebra_stripes=True)
        for title in ("#", "Name", "Validator", "Status", "Role", "Key shares"):
            table.add_column(title, key=title.lower())
        yield table

    def draw(self, state: ConsoleState) -> None:
        online, n, needed = state.quorum()
        f = (n - 1) // 3 if n else 0
        self.query_one("#validators-summary", Static).update(
            f"{n} validators, {online} online · a commit needs {needed} votes"
            f" (tolerates f = {f} faulty)"
        )
        primary = state.status.primary if state.status else None
        rows = []
        for v in state.validators:
            roles = []
            if v.peer_id == state.me:
                roles.append("me")
            if v.peer_id == primary:
                roles.append("primary")
            keys = ", ".join(k[:8] for k in v.keys[:4])
            if len(v.keys) > 4:
                keys += f" +{len(v.keys) - 4}"
            shares = f"{len(v.keys)}: {keys}" if v.keys else "none"
            name = state.validator_name(v)
            cells: list[RenderableType] = [
                Text(str(v.index), justify="right"),
                Text(name or "-", style="bold" if name else "dim"),
                Text(short_peer(v.peer_id)),
                status_text(v.status),
                Text(" ".join(roles), style="bold"),
                Text(shares),
            ]
            rows.append((v.peer_id, cells))
        refill(self.query_one("#validators-table", DataTable), rows)
