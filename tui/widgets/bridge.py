"""Bridge: the Bitcoin→EVM bridge's settings (GET /bridge), its deposits with each one's
confirmations as a bar against the depth the bridge requires, its status and mint
signature, the selected deposit in full (m copies its mint signature, o its outpoint),
and the deposit addresses. A node that runs no bridge, or whose bridge is not set up,
is said so in plain words."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from tui.model import BridgeInfo, Deposit, short
from tui.state import ConsoleState
from tui.widgets.base import AreaView, Table, bar, refill, status_text

#: deposits under way first (what the operator watches), in the node's order (final ones
#: in the order they became final, then the payments it sees, deepest first); then those
#: signed or minted, then the orphaned, the newest first
ORDER = {"seen": 0, "confirming": 0, "final": 0, "signed": 1, "minted": 1, "orphaned": 2}
#: statuses that say the deposit's block was deep enough when the validators agreed on it
PAST_DEPTH = ("final", "signed", "minted")
LABEL = 10  # the width of the detail's labels: with a hash in full, 76 columns


def btc(sats: int | None) -> str:
    """'0.00049000': satoshis as BTC (and as the wrapped token, 8 decimals)."""
    if sats is None:
        return "-"
    return f"{sats // 100_000_000}.{sats % 100_000_000:08d}"


def sats(n: int | None) -> str:
    return "-" if n is None else f"{n:,} sats"


def short_outpoint(dep: Deposit) -> str:
    """'4a5e1e…da33:0'."""
    return f"{short(dep.txid)}:{dep.vout}"


def confirmations_cell(dep: Deposit, required: int | None, width: int = 6) -> Text:
    """'███░░░ 1/2': the depth of the deposit's block on the node's Bitcoin view against
    the depth the bridge requires (green once deep enough, red if orphaned). A deposit in
    the mempool is 0 deep; one the validators agreed on, from a node that does not say
    its depth, is at least as deep as required ('██████ ≥2')."""
    depth = dep.confirmations
    if depth is None and dep.status == "seen":
        depth = 0
    if required is None or required <= 0:
        return Text("-" if depth is None else str(depth), style="dim" if depth is None else "")
    if depth is None:
        if dep.status in PAST_DEPTH:
            out = Text("█" * width, style="green")
            out.append(f" ≥{required}")
            return out
        return Text("·" * width + f" ?/{required}", style="dim")
    style = "red" if dep.status == "orphaned" else "green" if depth >= required else "cyan"
    return bar(depth, required, width, style)


def deposit_order(deposits: Iterable[Deposit]) -> list[Deposit]:
    """As the table lists them (ORDER); the node lists them oldest first."""

    def key(pair: tuple[int, Deposit]) -> tuple[int, int]:
        i, dep = pair
        group = ORDER.get(dep.status, 3)
        return group, i if group == 0 else -i

    return [dep for _, dep in sorted(enumerate(deposits), key=key)]


def deposit_cells(dep: Deposit, required: int | None) -> list[RenderableType]:
    sig = dep.signature
    return [
        Text(short_outpoint(dep), style="bold"),
        status_text(dep.status),
        confirmations_cell(dep, required),
        Text(btc(dep.amount), justify="right"),
        Text(short(dep.to)),
        Text(short(sig.r) if sig else "-", style="" if sig else "dim"),
    ]


def settings_text(state: ConsoleState) -> Text:
    """The bridge's settings; or that the node runs none, that it is not set up, that
    it is not read yet; and the last failure to read it."""
    bridge = state.bridge
    out = Text()
    info = bridge.info
    if bridge.absent is not None:
        out.append("This node runs no bridge.", style="bold")
        out.append(f"\nGET /bridge answered {bridge.absent}", style="dim")
    elif info is None:
        connected = state.link.connected
        out.append("loading the bridge…" if connected else "not connected", style="dim italic")
    elif not info.set_up:
        out.append("The bridge is not set up.", style="bold yellow")
        n = info.proposals
        out.append(
            f"\n{n} proposal{'s' if n != 1 else ''} of settings, not yet voted by 2f+1 validators"
            if n
            else "\nNo validator has proposed settings yet."
        )
        out.append(
            "\nEach validator votes with POST /bridge/setup (tssnode bridge setup); the"
            " settings are in force once 2f+1 vote the same ones.",
            style="dim",
        )
    else:
        _settings(out, info)
    if bridge.error:
        out.append(f"\n⚠ {bridge.error}", style="bold red")
    return out


def _settings(out: Text, info: BridgeInfo) -> None:
    out.append("bridge ", style="bold")
    out.append(f"BTC ({info.network or '?'}) → {info.chain_name or '?'}", style="bold")
    out.append(f", chain id {'?' if info.chain_id is None else info.chain_id}")
    if info.height is not None:
        out.append(f" · in force since block {info.height}", style="dim")
    out.append(f"\nneeds {info.confirmations if info.confirmations is not None else '?'}")
    out.append(" confirmations · fee ")
    out.append(sats(info.fee_sats))
    out.append(" · minimum deposit ")
    out.append(sats(info.min_deposit_sats))
    out.append("\n" + "gateway".ljust(15), style="dim")
    out.append(info.gateway or "-")
    out.append("\n" + "mint authority".ljust(15), style="dim")
    out.append(info.mint_authority or "-")
    if info.key_id:
        out.append(f"  key {short(info.key_id, 8, 4)}", style="dim")


def deposit_detail(dep: Deposit, info: BridgeInfo | None) -> Text:
    """Everything of one deposit, hashes and signature in full (m and o copy)."""
    required = info.confirmations if info else None

    def line(label: str, value: str | Text, style: str = "") -> None:
        out.append("\n" + label.ljust(LABEL), style="dim")
        if isinstance(value, Text):
            out.append_text(value)
        else:
            out.append(value, style=style)

    out = Text()
    out.append("deposit ", style="bold")
    out.append(short_outpoint(dep), style="bold")
    out.append(f"  {dep.status}  ", style=status_text(dep.status).style)
    out.append_text(confirmations_cell(dep, required, 10))
    out.append(" confirmations", style="dim")
    line("outpoint", dep.outpoint)
    if dep.status == "seen":
        line("block", "none yet: in the mempool", "dim")
    else:
        line("block", "-" if dep.block_height is None else str(dep.block_height))
        line("blockhash", dep.block_hash or "-")
    value = Text(sats(dep.value_sats))
    value.append(f" → mints {sats(dep.amount)} ({btc(dep.amount)} BTC)")
    line("value", value)
    line("to", dep.to or "-")
    line("address", dep.address or "-")
    if dep.height is not None:
        line("ledger", f"final in block {dep.height}")
    else:
        line("ledger", "not final yet", "dim")
    for label, value_ in (
        ("gHash", dep.g_hash),
        ("pHash", dep.p_hash),
        ("nHash", dep.n_hash),
        ("sigHash", dep.sig_hash),
    ):
        line(label, value_ or "-")
    sig = dep.signature
    out.append("\nmint signature", style="bold")
    if sig is None:
        out.append("  none yet", style="dim")
    else:
        line("r", sig.r)
        line("s", sig.s)
        line("v", "-" if sig.v is None else str(sig.v))
    out.append("\nm copies the mint signature (r ‖ s ‖ v) · o the outpoint", style="dim")
    return out


class BridgePane(AreaView, Vertical):
    AREA = "bridge"
    BINDINGS: ClassVar[list[BindingType]] = [
        # shown in the detail and on the help screen; the footer is for the actions
        Binding("m", "copy_mint", "Copy mint signature", show=False),
        Binding("o", "copy_outpoint", "Copy outpoint", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state: ConsoleState | None = None

    def compose(self) -> ComposeResult:
        # the list above its detail at any width: both need about 76 columns
        yield Static("", id="bridge-settings", classes="detail")
        with Container(id="bridge-body"):
            deposits = Table(id="deposits-table", cursor_type="row", zebra_stripes=True)
            for title, key in (
                ("Deposit", "deposit"),
                ("Status", "status"),
                ("Confirmations", "confirmations"),
                ("BTC", "amount"),
                ("To", "to"),
                ("Signature", "signature"),
            ):
                deposits.add_column(title, key=key)
            yield deposits
            with VerticalScroll(id="deposit-detail-scroll"):
                yield Static("", id="deposit-detail", classes="detail")
                yield Static("deposit addresses", classes="subtitle")
                addresses = Table(id="addresses-table", cursor_type="row")
                for title in ("Address", "To", "Nonce", "Block", "Deposits"):
                    addresses.add_column(title, key=title.lower())
                yield addresses

    def draw(self, state: ConsoleState) -> None:
        self.state = state
        bridge = state.bridge
        self.query_one("#bridge-settings", Static).update(settings_text(state))
        # (shown, empty, until the settings are read: the screen gives its list the focus
        # when it opens, which a hidden list would not take)
        self.query_one("#bridge-body").display = bridge.set_up or (
            bridge.info is None and bridge.absent is None
        )
        required = bridge.info.confirmations if bridge.info else None
        refill(
            self.query_one("#deposits-table", DataTable),
            ((d.outpoint, deposit_cells(d, required)) for d in deposit_order(bridge.deposits)),
        )
        paid: dict[str, int] = {}
        for dep in bridge.deposits:
            if dep.address:
                paid[dep.address] = paid.get(dep.address, 0) + 1
        refill(
            self.query_one("#addresses-table", DataTable),
            (
                (
                    a.address,
                    [
                        Text(short(a.address, 14, 6), style="bold"),
                        Text(short(a.to)),
                        Text(short(a.nonce)),
                        Text("-" if a.height is None else str(a.height), justify="right"),
                        Text(str(paid.get(a.address, 0)), justify="right"),
                    ],
                )
                for a in reversed(bridge.addresses)
            ),
        )
        self._detail()

    @on(DataTable.RowHighlighted, "#deposits-table")
    def _highlighted(self) -> None:
        self._detail()

    def selected(self) -> Deposit | None:
        """The deposit under the cursor."""
        table = self.query_one("#deposits-table", DataTable)
        if self.state is None or not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((d for d in self.state.bridge.deposits if d.outpoint == key), None)

    def _detail(self) -> None:
        detail = self.query_one("#deposit-detail", Static)
        state = self.state
        dep = self.selected()
        if state is None or dep is None:
            detail.update("No deposits yet." if state and state.bridge.set_up else "")
            return
        detail.update(deposit_detail(dep, state.bridge.info))

    def action_copy_mint(self) -> None:
        dep = self.selected()
        title = "Copy mint signature"
        if dep is None:
            self.app.notify("no deposit selected", title=f"{title}: not now", severity="warning")
        elif dep.signature is None:
            self.app.notify(
                f"deposit {short_outpoint(dep)} is {dep.status}: no mint signature yet",
                title=f"{title}: not now",
                severity="warning",
            )
        else:
            self.app.copy_to_clipboard(dep.signature.compact())
            self.app.notify(
                f"mint signature of deposit {short_outpoint(dep)} copied (r ‖ s ‖ v, 65 bytes hex)"
            )

    def action_copy_outpoint(self) -> None:
        dep = self.selected()
        if dep is None:
            self.app.notify(
                "no deposit selected", title="Copy outpoint: not now", severity="warning"
            )
            return
        self.app.copy_to_clipboard(dep.outpoint)
        self.app.notify(f"outpoint {short_outpoint(dep)} copied (txid:vout)")
