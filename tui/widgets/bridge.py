"""Bridge: the Bitcoin↔EVM bridge's settings (GET /bridge) with those of its release side,
the agreed fee rate and the group's bitcoin against the wrapped supply; its deposits with
each one's confirmations as a bar against the depth the bridge requires, its status and
mint signature; its releases (burns paid back in bitcoin) with their confirmations, fee
rate and attempts; the selected deposit or release in full, whichever list has the focus
(m copies the deposit's mint signature, o its outpoint, x the release's txid); and the
deposit addresses. A node that runs no bridge, whose bridge is not set up, or that shows
no releases, is said so in plain words."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from tui.model import BridgeInfo, Deposit, Release, ReleaseInfo, short
from tui.state import BridgeView, ConsoleState
from tui.widgets.base import AreaView, Table, bar, refill, status_text

#: deposits under way first (what the operator watches), in the node's order (final ones
#: in the order they became final, then the payments it sees, deepest first); then those
#: signed or minted, then the orphaned, the newest first
ORDER = {"seen": 0, "confirming": 0, "final": 0, "signed": 1, "minted": 1, "orphaned": 2}
#: statuses that say the deposit's block was deep enough when the validators agreed on it
PAST_DEPTH = ("final", "signed", "minted")
#: releases likewise: burns under way first, in the node's order (by burn nonce, then those
#: only this node's EVM watch saw); then those paid, then the unpayable, the newest first
RELEASE_ORDER = {"seen": 0, "final": 0, "signing": 0, "broadcast": 0, "confirmed": 1,
                 "unpayable": 2}  # fmt: skip
#: the deposits whose bitcoin the group holds and whose tokens are not minted yet, and the
#: burns whose tokens are gone and whose bitcoin the group still holds (`holdings_text`)
UNMINTED = ("final", "signed")
UNPAID = ("seen", "final", "signing", "broadcast", "unpayable")
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


def depth_bar(
    depth: int | None, required: int | None, width: int, *, agreed: bool, red: bool = False
) -> Text:
    """'███░░░ 1/2': a transaction's depth on the node's Bitcoin view against the depth the
    bridge requires (green once deep enough, red if `red`). Of unknown depth, one the
    validators agreed on (`agreed`) is at least as deep as required ('██████ ≥2')."""
    if required is None or required <= 0:
        return Text("-" if depth is None else str(depth), style="dim" if depth is None else "")
    if depth is None:
        if agreed:
            out = Text("█" * width, style="green")
            out.append(f" ≥{required}")
            return out
        return Text("·" * width + f" ?/{required}", style="dim")
    style = "red" if red else "green" if depth >= required else "cyan"
    return bar(depth, required, width, style)


def confirmations_cell(dep: Deposit, required: int | None, width: int = 6) -> Text:
    """The depth of the deposit's block (`depth_bar`; red if orphaned). A deposit in the
    mempool is 0 deep; one the validators agreed on, from a node that does not say its
    depth, is at least as deep as required."""
    depth = dep.confirmations
    if depth is None and dep.status == "seen":
        depth = 0
    return depth_bar(
        depth, required, width, agreed=dep.status in PAST_DEPTH, red=dep.status == "orphaned"
    )


def release_confirmations_cell(rel: Release, required: int | None, width: int = 6) -> Text:
    """The depth of the release's transaction (the attempt that confirmed, else the
    newest) against the same depth as deposits', which the validators wait for before
    they settle it: 0 while broadcast and in no block here; at least as deep as required
    once confirmed, from a node that does not say; '-' while there is no transaction out
    (seen, final, signing, unpayable)."""
    depth = rel.confirmations
    if depth is None:
        if rel.status == "broadcast":
            depth = 0
        elif rel.status != "confirmed":
            return Text("-", style="dim")
    return depth_bar(depth, required, width, agreed=rel.status == "confirmed")


def release_order(releases: Iterable[Release]) -> list[Release]:
    """As the table lists them (RELEASE_ORDER); the node lists them by burn nonce."""

    def key(pair: tuple[int, Release]) -> tuple[int, int]:
        i, rel = pair
        group = RELEASE_ORDER.get(rel.status, 3)
        return group, i if group == 0 else -i

    return [rel for _, rel in sorted(enumerate(releases), key=key)]


def attempts_text(rel: Release) -> Text:
    """'2 (1 replaced)': the release's transactions, each bump one more."""
    if not rel.attempts:
        return Text("-", style="dim")
    out = Text(str(len(rel.attempts)))
    if rel.replaced:
        out.append(f" ({rel.replaced} replaced)", style="yellow")
    return out


def release_cells(rel: Release, required: int | None) -> list[RenderableType]:
    return [
        Text(rel.key, style="bold", justify="right"),
        status_text(rel.status),
        release_confirmations_cell(rel, required),
        Text(btc(rel.amount), justify="right"),
        Text(btc(rel.paid), justify="right", style="" if rel.paid is not None else "dim"),
        Text("-" if rel.fee_rate is None else str(rel.fee_rate), justify="right"),
        attempts_text(rel),
        Text(short(rel.to, 10, 4)),
    ]


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
    """The bridge's settings, the release side's state and settings, then the gateway and
    the mint authority (what the operator looks at first comes first: a short screen
    shows the first lines only); or that the node runs none, that it is not set up, that
    it is not read yet. The last failure to read it comes before all."""
    bridge = state.bridge
    out = Text()
    if bridge.error:
        out.append(f"⚠ {bridge.error}\n", style="bold red")
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
        if info.release is not None:
            _release_settings(out, info.release, bridge)
        _authorities(out, info)
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


def _authorities(out: Text, info: BridgeInfo) -> None:
    out.append("\n" + "gateway".ljust(15), style="dim")
    out.append(info.gateway or "-")
    out.append("\n" + "mint authority".ljust(15), style="dim")
    out.append(info.mint_authority or "-")
    if info.key_id:
        out.append(f"  key {short(info.key_id, 8, 4)}", style="dim")


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _release_settings(out: Text, rel: ReleaseInfo, bridge: BridgeView) -> None:
    """The holdings, the agreed fee rate, and the release side's settings."""
    out.append("\n")
    out.append_text(holdings_text(rel, bridge))
    out.append("\nrelease fee rate ")
    if rel.fee_rate is None:
        out.append("none: no agreed rate yet: fewer than 2f+1 reports", style="yellow")
    else:
        out.append(f"{rel.fee_rate} sat/vB", style="bold")
        out.append(" agreed")
    if rel.coins is not None:
        out.append(f" · {rel.coins} coin{'s' if rel.coins != 1 else ''}")
    if rel.main_address:
        out.append(" · change to ")
        out.append(short(rel.main_address, 10, 6))
    out.append("\nreleases", style="bold")
    out.append(f" after {_n(rel.evm_confirmations)} EVM confirmations · minimum ")
    out.append(sats(rel.min_release_sats))
    if rel.height is not None:
        out.append(f" · since block {rel.height}", style="dim")
    out.append(f"\nbump after {_n(rel.bump_after)} blocks · max fee rate ")
    out.append(f"{_n(rel.max_fee_rate)} sat/vB · ")
    out.append(f"sweep at {rel.sweep_at} deposits" if rel.sweep_at else "no sweeps")


def holdings_text(rel: ReleaseInfo, bridge: BridgeView) -> Text:
    """'holdings 0.00870000 BTC · wrapped supply 0.00309000 BTC · kept as fees 0.00561000':
    the group's bitcoin against the wrapped token's supply, from GET /bridge alone; the
    group holding less than the supply is said in red. What it holds beyond the supply
    is what it kept of each deposit, and what is under way, said on a line of its own
    (from the lists shown, read a moment apart: a guide, not an audit): deposits final
    and not minted yet (their bitcoin is in, their tokens not out) and burns not paid out
    (their tokens are gone, their bitcoin not)."""
    out = Text("holdings ")
    out.append(f"{btc(rel.holdings_sats)} BTC", style="bold")
    supply = rel.wrapped_supply
    if supply is None:
        watched = bridge.info is not None and bridge.info.evm_watch
        out.append(
            " · wrapped supply not read yet" if watched else " · supply unknown (no [bridge.evm])",
            style="dim",
        )
        return out
    out.append(" · wrapped supply ")
    out.append(f"{btc(supply)} BTC", style="bold")
    if rel.holdings_sats is None:
        return out
    kept = rel.holdings_sats - supply
    if kept < 0:
        out.append(f" · ⚠ short by {btc(-kept)}", style="bold red")
        return out
    out.append(f" · kept as fees {btc(kept)}")
    minting = [d for d in bridge.deposits if d.status in UNMINTED]
    paying = [r for r in bridge.releases if r.status in UNPAID]
    under_way = sum(d.value_sats or 0 for d in minting) + sum(r.amount or 0 for r in paying)
    if under_way:
        parts = []
        if minting:
            parts.append(f"{len(minting)} deposit{'s' if len(minting) != 1 else ''} to mint")
        if paying:
            parts.append(f"{len(paying)} burn{'s' if len(paying) != 1 else ''} not paid out")
        out.append(f"\nof which {btc(under_way)} under way: {', '.join(parts)}", style="dim")
    return out


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


def release_detail(rel: Release, info: BridgeInfo | None, releases: Iterable[Release] = ()) -> Text:
    """Everything of one burn and its release: what it burnt and pays, the other burns
    its release pays (of `releases`), and every attempt with its fee (the whole
    transaction's, shared by the burns it pays) and its inputs signed (x copies the
    txid)."""
    required = info.confirmations if info else None

    def line(label: str, value: str | Text, style: str = "") -> None:
        out.append("\n" + label.ljust(LABEL), style="dim")
        if isinstance(value, Text):
            out.append_text(value)
        else:
            out.append(value, style=style)

    out = Text()
    out.append(f"burn {rel.key}", style="bold")
    out.append(f"  {rel.status}  ", style=status_text(rel.status).style)
    depth = release_confirmations_cell(rel, required, 10)
    if depth.plain != "-":
        out.append_text(depth)
        out.append(" confirmations", style="dim")
    line("to", rel.to or "-")
    amount = Text(f"{sats(rel.amount)} burnt ({btc(rel.amount)} BTC)")
    if rel.paid is not None:
        amount.append(f" → pays {sats(rel.paid)}")
    line("amount", amount)
    if rel.status == "unpayable":
        network = info.network if info and info.network else "the bridge's network"
        line("", f"no standard output on {network}: nothing is sent", "bold red")
    line("burn tx", rel.evm_tx or "-")
    line("EVM block", "-" if rel.evm_block is None else str(rel.evm_block))
    if rel.height is not None:
        line("ledger", f"final in block {rel.height}")
    else:
        line("ledger", "not final yet: seen by this node, not yet by 2f+1", "dim")
    if rel.release is None:
        line("release", "none yet", "dim")
    else:
        release = Text(f"#{rel.release}")
        if rel.fee_rate is not None:
            release.append(f" · {rel.fee_rate} sat/vB")
        others = [r.key for r in releases if r.release == rel.release and r.key != rel.key]
        if others:
            release.append(f" · also pays burn{'s' if len(others) > 1 else ''} {', '.join(others)}")
        line("release", release)
        line("txid", rel.txid or "-")
    out.append("\nattempts", style="bold")
    if not rel.attempts:
        out.append("  none yet", style="dim")
    numbers = {a.attempt for a in rel.attempts}
    for a in rel.attempts:
        replaced = a.status == "replaced"
        line(f"#{a.attempt}", a.txid or "-", "dim" if replaced else "")
        out.append("\n" + " " * LABEL)
        if replaced and a.attempt + 1 in numbers:
            out.append(f"replaced by #{a.attempt + 1}", style="yellow")
        else:
            out.append_text(status_text(a.status))
        out.append(f" · {_n(a.fee_rate)} sat/vB · fee {sats(a.fee)} · inputs signed ")
        done = a.inputs is not None and a.signed_inputs == a.inputs
        signed = f"{_n(a.signed_inputs)}/{_n(a.inputs)}"
        out.append(signed, style="" if replaced else "green" if done else "cyan")
    out.append("\nx copies the release's txid", style="dim")
    return out


class BridgePane(AreaView, Vertical):
    AREA = "bridge"
    BINDINGS: ClassVar[list[BindingType]] = [
        # shown in the detail and on the help screen; the footer is for the actions
        Binding("m", "copy_mint", "Copy mint signature", show=False),
        Binding("o", "copy_outpoint", "Copy outpoint", show=False),
        Binding("x", "copy_txid", "Copy release txid", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state: ConsoleState | None = None
        #: the list whose selection the detail shows: the last of the two focused
        self.showing: str = "deposits"

    def compose(self) -> ComposeResult:
        # the lists above the detail at any width: each needs about 76 columns
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
            yield Static("releases", id="releases-title")
            releases = Table(id="releases-table", cursor_type="row", zebra_stripes=True)
            for title, key in (
                ("Burn", "burn"),
                ("Status", "status"),
                ("Confirmations", "confirmations"),
                ("BTC", "amount"),
                ("Paid", "paid"),
                ("sat/vB", "fee_rate"),
                ("Attempts", "attempts"),
                ("To", "to"),
            ):
                releases.add_column(title, key=key)
            yield releases
            with VerticalScroll(id="deposit-detail-scroll"):
                yield Static("", id="deposit-detail", classes="detail")
                yield Static("", id="release-detail", classes="detail")
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
        self.query_one("#releases-title", Static).update(releases_title(bridge))
        releases = self.query_one("#releases-table", DataTable)
        releases.display = bool(bridge.releases)
        refill(
            releases,
            ((r.key, release_cells(r, required)) for r in release_order(bridge.releases)),
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

    @on(DataTable.RowHighlighted, "#deposits-table, #releases-table")
    def _highlighted(self) -> None:
        self._detail()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """The detail shows the selection of the list that has the focus (of the two, the
        last one focused)."""
        lists = {"deposits-table": "deposits", "releases-table": "releases"}
        showing = lists.get(event.widget.id or "")
        if showing is not None and showing != self.showing:
            self.showing = showing
            self._detail()

    def selected(self) -> Deposit | None:
        """The deposit under the cursor."""
        table = self.query_one("#deposits-table", DataTable)
        if self.state is None or not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((d for d in self.state.bridge.deposits if d.outpoint == key), None)

    def selected_release(self) -> Release | None:
        """The release under the cursor of its list."""
        table = self.query_one("#releases-table", DataTable)
        if self.state is None or not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((r for r in self.state.bridge.releases if r.key == key), None)

    def _detail(self) -> None:
        deposit = self.query_one("#deposit-detail", Static)
        release = self.query_one("#release-detail", Static)
        state = self.state
        rel = self.selected_release()
        showing_release = self.showing == "releases" and rel is not None
        deposit.display, release.display = not showing_release, showing_release
        if state is not None and rel is not None and showing_release:
            release.update(release_detail(rel, state.bridge.info, state.bridge.releases))
            return
        dep = self.selected()
        if state is None or dep is None:
            deposit.update("No deposits yet." if state and state.bridge.set_up else "")
            return
        deposit.update(deposit_detail(dep, state.bridge.info))

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

    def action_copy_txid(self) -> None:
        rel = self.selected_release()
        title = "Copy release txid: not now"
        if rel is None:
            self.app.notify("no release selected", title=title, severity="warning")
        elif rel.txid is None:
            self.app.notify(
                f"burn {rel.key} is {rel.status}: no release transaction yet",
                title=title,
                severity="warning",
            )
        else:
            self.app.copy_to_clipboard(rel.txid)
            self.app.notify(f"txid of the release paying burn {rel.key} copied ({short(rel.txid)})")


def releases_title(bridge: BridgeView) -> Text:
    """The line above the releases: how many, or why there are none to show."""
    out = Text("releases", style="bold")
    info = bridge.info
    if bridge.releases_absent is not None:
        out.append(
            f": this node shows no releases (GET /bridge/releases: {bridge.releases_absent})",
            style="dim",
        )
    elif bridge.releases:
        n = len(bridge.releases)
        under_way = sum(RELEASE_ORDER.get(r.status) == 0 for r in bridge.releases)
        out.append(f" · {n} burn{'s' if n != 1 else ''}, {under_way} under way", style="dim")
    elif info is not None and info.set_up and info.release is None:
        out.append(
            ": none; the release side is not set up (POST /bridge/release-setup)", style="dim"
        )
    else:
        out.append(": none yet", style="dim")
    return out
