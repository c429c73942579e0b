"""Keys: the group keys with threshold and parties, and for the selected key its public
key, Ethereum and Bitcoin addresses, derived children and signatures (digest, r, s, v).
The selection here is what refresh, derive, sign, presign and copy act on."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Container, Vertical, VerticalScroll
from textual.widgets import DataTable, Static
from textual.widgets.data_table import RowDoesNotExist

from tui.messages import KeySelected, SignatureSelected
from tui.model import Key, Signature, short
from tui.state import ConsoleState
from tui.widgets.base import AreaView, Table, refill, status_text


def key_detail(key: Key, state: ConsoleState) -> Text:
    out = Text()
    out.append("key ", style="bold")
    out.append(key.key_id, style="bold")
    out.append(f"\n{key.status}", style=status_text(key.status).style)
    out.append(f" · threshold {key.threshold}: any {key.quorum} sign · epoch {key.epoch}")
    out.append(f" · {key.presignatures} presignatures")
    if key.height is not None:
        out.append(f" · since block {key.height}")
    if key.error:
        out.append("\nerror: ", style="bold red")
        out.append(key.error, style="red")
    out.append("\npublic key ", style="dim")
    out.append(key.public_key or "(not yet)")
    out.append("\nEthereum   ", style="dim")
    out.append(key.addresses.eth or "-", style="bold")
    out.append("\nBitcoin    ", style="dim")
    out.append(key.addresses.btc_p2wpkh or "-", style="bold")
    offline = {v.peer_id for v in state.validators if v.status == "offline"}
    out.append("\nparties    ", style="dim")
    for i, party in enumerate(key.parties):
        if i:
            out.append(", ")
        up = party not in offline
        out.append(state.party(party), style="" if up else "red")
    return out


class KeysPane(AreaView, Vertical):
    AREA = "keys"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state: ConsoleState | None = None
        # the key and signature the cursors were put on when last drawn: a cursor follows
        # the selection when the selection changes, and is otherwise left where the
        # operator moved it (their choice may still be on its way to the state)
        self._put_key: str | None = None
        self._put_signature: str | None = None

    def compose(self) -> ComposeResult:
        with Container(id="keys-body"):
            table = Table(id="keys-table", cursor_type="row", zebra_stripes=True)
            for title in ("Key", "Status", "Signers", "Epoch", "Presigs", "Ethereum"):
                table.add_column(title, key=title.lower())
            yield table
            with VerticalScroll(id="key-detail-scroll"):
                yield Static("", id="key-detail", classes="detail")
                yield Static("derived children", classes="subtitle")
                children = Table(id="children-table", cursor_type="row")
                for title in ("Path", "Public key", "Ethereum", "Bitcoin"):
                    children.add_column(title, key=title.lower())
                yield children
                yield Static("signatures", classes="subtitle")
                sigs = Table(id="signatures-table", cursor_type="row")
                for title in ("Signature", "Status", "Digest", "r", "s", "v", "Path"):
                    sigs.add_column(title, key=title.lower())
                yield sigs
                yield Static("", id="signature-detail", classes="detail")

    def draw(self, state: ConsoleState) -> None:
        self.state = state
        rows = []
        for k in state.keys.values():
            cells: list[RenderableType] = [
                Text(k.key_id[:10], style="bold"),
                status_text(k.status),
                Text(k.quorum),
                Text(str(k.epoch), justify="right"),
                Text(str(k.presignatures), justify="right"),
                Text(short(k.addresses.eth, 8, 6) if k.addresses.eth else "-"),
            ]
            rows.append((k.key_id, cells))
        table = self.query_one("#keys-table", DataTable)
        refill(table, rows)
        current = state.current_key()
        key_id = current.key_id if current else None
        if key_id != self._put_key and _put_cursor(table, key_id):
            self._put_key = key_id
        self._detail()

    def _detail(self) -> None:
        state = self.state
        if state is None:
            return
        key = state.current_key()
        detail = self.query_one("#key-detail", Static)
        children = self.query_one("#children-table", DataTable)
        sigs = self.query_one("#signatures-table", DataTable)
        if key is None:
            detail.update("No keys yet. Press g to start keygen.")
            refill(children, [])
            refill(sigs, [])
            self.query_one("#signature-detail", Static).update("")
            return
        detail.update(key_detail(key, state))
        refill(
            children,
            (
                (
                    c.path,
                    [
                        Text(c.path, style="bold"),
                        Text(short(c.public_key, 10, 4)),
                        Text(c.addresses.eth or "-"),
                        Text(short(c.addresses.btc_p2wpkh, 10, 6)),
                    ],
                )
                for c in key.children
            ),
        )
        sig_rows = []
        for s in state.signatures_of(key.key_id):
            cells: list[RenderableType] = [
                Text(s.signature_id[:10]),
                status_text(s.status),
                Text(short(s.digest, 8, 4)),
                Text(short(s.r, 8, 4) if s.r else "-"),
                Text(short(s.s, 8, 4) if s.s else "-"),
                Text("-" if s.v is None else str(s.v)),
                Text(s.path or "m"),
            ]
            sig_rows.append((s.signature_id, cells))
        refill(sigs, sig_rows)
        mine = state.current_signature()
        sig_id = mine.signature_id if mine else None
        if sig_id != self._put_signature and _put_cursor(sigs, sig_id):
            self._put_signature = sig_id
        self.query_one("#signature-detail", Static).update(
            signature_detail(mine, state) if mine else "no signature selected"
        )

    @on(DataTable.RowHighlighted, "#keys-table")
    def _key_highlighted(self) -> None:
        # the cursor, not the event: events of programmatic moves arrive late
        key_id = _cursor_key(self.query_one("#keys-table", DataTable))
        state = self.state
        if state is None or not key_id:
            return
        current = state.current_key()
        if current is None or current.key_id != key_id:
            # The selection is recorded here, at once, not when the app handles the
            # message: a message still on its way when the operator has moved on would
            # bring back an old choice, and the redraw it causes the cursor with it. The
            # cursor is where this selection is: a redraw must not move it.
            state.selected_key = key_id
            self._put_key = key_id
            self.post_message(KeySelected(key_id))

    @on(DataTable.RowHighlighted, "#signatures-table")
    def _signature_highlighted(self) -> None:
        sig_id = _cursor_key(self.query_one("#signatures-table", DataTable))
        state = self.state
        if state is None or not sig_id:
            return
        current = state.current_signature()
        if current is None or current.signature_id != sig_id:
            state.selected_signature = sig_id  # (as for the keys)
            self._put_signature = sig_id
            self.post_message(SignatureSelected(sig_id))


def _cursor_key(table: DataTable[RenderableType]) -> str | None:
    if not table.row_count:
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


def _put_cursor(table: DataTable[RenderableType], key: str | None) -> bool:
    """Put the cursor on row `key`; whether it is there (None: nothing to put, done)."""
    if key is None:
        return True
    try:
        index = table.get_row_index(key)
    except RowDoesNotExist:
        return False
    if table.cursor_row != index:
        table.move_cursor(row=index, animate=False)
    return True


def signature_detail(sig: Signature, state: ConsoleState) -> Text:
    out = Text()
    out.append("signature ", style="bold")
    out.append(sig.signature_id)
    out.append(f"  {sig.status}", style=status_text(sig.status).style)
    out.append("\ndigest ", style="dim")
    out.append(sig.digest or "-")
    out.append("\nr      ", style="dim")
    out.append(sig.r or "-")
    out.append("\ns      ", style="dim")
    out.append(sig.s or "-")
    out.append("\nv      ", style="dim")
    out.append("-" if sig.v is None else str(sig.v))
    if sig.signers:
        out.append("  signers ", style="dim")
        out.append(", ".join(state.party(p) for p in sig.signers))
    if sig.blame:
        culprits = ", ".join(state.party(c) for c in sig.blame.culprits)
        out.append("\nblame ", style="bold red")
        out.append(f"{culprits}: {sig.blame.check}", style="red")
        if sig.blame.round is not None:
            out.append(f" (round {sig.blame.round})", style="red")
    return out
