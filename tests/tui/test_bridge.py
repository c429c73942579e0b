"""The Bridge screen: the bridge's views read through the model (shapes of today's node and
of the one about to come), kept current by the state only while the screen is shown, and
drawn with Pilot against the HTTP API test double (its bridge routes, frozen data with
real hashes and a real mint signature)."""

from __future__ import annotations

import io
from datetime import UTC
from typing import Any

import pytest
from coincurve import PublicKey
from rich.console import Console
from textual.widgets import DataTable, Static, TabbedContent

from tests.tui.fake_node import FakeNode, load
from tests.tui.helpers import make_app, settled, until
from tssnode.crypto.addresses import eth_address
from tssnode.crypto.group import Point
from tui.app import ConsoleApp
from tui.model import BridgeInfo, Deposit, DepositAddress, MintSignature
from tui.screens.help import HelpScreen
from tui.state import MAX_DEPOSITS, SNAPSHOTS, ConsoleState
from tui.widgets.bridge import confirmations_cell, deposit_order

T0 = load("_double")["clock"]
INFO = load("bridge")
ADDRESSES = load("bridge_addresses")
DEPOSITS = load("bridge_deposits")
BY_STATUS = {d["status"]: d for d in DEPOSITS}
SIGNED, FINAL, CONFIRMING, SEEN = (
    f"{BY_STATUS[s]['txid']}:{BY_STATUS[s]['vout']}"
    for s in ("signed", "final", "confirming", "seen")
)


def recovers_authority(sig: MintSignature, sig_hash: str) -> bool:
    """Whether `sig` (r ‖ s ‖ v, as the gateway takes it) recovers the bridge's mint
    authority from the deposit's sigHash, as the gateway's ecrecover does."""
    raw = bytes.fromhex(sig.compact().removeprefix("0x"))
    recoverable = raw[:64] + bytes([raw[64] - 27])
    public = PublicKey.from_signature_and_message(
        recoverable, bytes.fromhex(sig_hash.removeprefix("0x")), hasher=None
    )
    return bool(eth_address(Point(public)) == INFO["mint_authority"])


# -- the model: the shapes ----------------------------------------------------------------


def test_bridge_settings_are_read():
    info = BridgeInfo.from_json(INFO)
    assert info.set_up and info.chain_id == 31337 and info.confirmations == 2
    assert info.gateway == INFO["gateway"] and info.mint_authority == INFO["mint_authority"]
    assert (info.network, info.fee_sats, info.min_deposit_sats) == ("regtest", 1000, 10_000)
    waiting = BridgeInfo.from_json({"set_up": False, "proposals": 2})
    assert not waiting.set_up and waiting.proposals == 2 and waiting.gateway is None
    # a malformed answer is no bridge set up, not a crash
    assert not BridgeInfo.from_json({"set_up": [True]}).set_up
    assert not BridgeInfo.from_json(None).set_up


def test_a_deposit_of_each_stage_is_read():
    deposits = {d.status: d for d in (Deposit.from_json(d) for d in DEPOSITS)}
    confirming = deposits["confirming"]
    assert confirming.confirmations == 1 and confirming.block_height == 105
    assert confirming.height is None and confirming.signature is None
    assert confirming.outpoint == CONFIRMING
    seen = deposits["seen"]
    assert seen.confirmations is None and seen.block_hash is None and seen.block_height is None
    assert seen.amount == BY_STATUS["seen"]["value_sats"] - INFO["fee_sats"]
    signed = deposits["signed"]
    assert signed.signature is not None and signed.signature.v in (27, 28)
    assert signed.sig_hash == BY_STATUS["signed"]["sigHash"]
    compact = signed.signature.compact()
    assert len(compact) == 2 + 130  # 65 bytes: r ‖ s ‖ v
    assert recovers_authority(signed.signature, BY_STATUS["signed"]["sigHash"])


def test_deposit_fields_a_node_may_not_send_or_not_name_yet():
    """Today's schema names "final" and "signed" only and no `confirmations`: a node about
    to send more is read as it is; a malformed field is left at its default."""
    orphaned = Deposit.from_json(
        {**BY_STATUS["final"], "status": "orphaned", "confirmations": 0, "height": None}
    )
    assert orphaned.status == "orphaned" and orphaned.confirmations == 0
    assert orphaned.height is None
    odd = Deposit.from_json(
        {
            "txid": "ab" * 32,
            "vout": 1,
            "confirmations": "three",
            "value_sats": "lots",
            "signature": {"r": "0x01"},  # no s: no signature
            "brand_new_field": [1, 2],
        }
    )
    assert odd.status == "unknown" and odd.confirmations is None and odd.value_sats is None
    assert odd.signature is None and odd.outpoint == f"{'ab' * 32}:1"


def test_deposit_addresses_and_mint_signatures_are_read():
    address = DepositAddress.from_json(ADDRESSES[0])
    assert address.address.startswith("bcrt1q") and address.height == 7
    assert address.to == ADDRESSES[0]["to"] and address.status == "recorded"
    # r and s are 32 bytes each in the gateway's `sig`, whatever their leading zeros
    sig = MintSignature.from_json({"r": "0x1", "s": "0x2", "v": 28})
    assert sig is not None
    assert sig.compact() == "0x" + "0" * 63 + "1" + "0" * 63 + "2" + "1c"


def test_confirmations_are_a_bar_against_the_required_depth():
    confirming = Deposit.from_json(BY_STATUS["confirming"])
    assert confirmations_cell(confirming, 2).plain == "███░░░ 1/2"  # half of it
    assert confirmations_cell(confirming, 2, width=10).plain == "█████░░░░░ 1/2"
    assert confirmations_cell(Deposit.from_json(BY_STATUS["seen"]), 2).plain == "░░░░░░ 0/2"
    deep = confirmations_cell(Deposit.from_json(BY_STATUS["final"]), 2)
    assert deep.plain == "██████ 3/2" and "green" in str(deep.spans[0].style)
    # agreed on by the ledger, from a node that does not say the depth: at least required
    agreed = Deposit.from_json({**BY_STATUS["signed"], "confirmations": None})
    assert confirmations_cell(agreed, 2).plain == "██████ ≥2"
    # a confirming deposit of unknown depth is not drawn as any depth
    unknown = Deposit.from_json({**BY_STATUS["confirming"], "confirmations": None})
    assert confirmations_cell(unknown, 2).plain == "······ ?/2"
    assert confirmations_cell(confirming, None).plain == "1"  # settings not read


def test_deposits_under_way_come_first():
    order = [d.status for d in deposit_order(Deposit.from_json(d) for d in DEPOSITS)]
    assert order == ["final", "confirming", "seen", "signed"]


# -- the state: read while shown ----------------------------------------------------------


def loaded() -> ConsoleState:
    state = ConsoleState(clock=lambda: T0, tz=UTC)
    state.link_up("http://node")
    for kind in SNAPSHOTS:
        state.apply_snapshot(kind, load(kind))
    state.synced()
    return state


def block(txs: int) -> dict[str, Any]:
    return {"seq": 900, "kind": "block.committed", "time": T0, "height": 13, "hash": "ab",
            "txs": txs, "latency_ms": 40}  # fmt: skip


def test_the_bridge_is_read_only_while_its_screen_is_shown():
    state = loaded()
    assert state.bridge_fetches() == []
    assert not any(f[0].startswith("bridge") for f in state.apply_event(block(2)).fetch)
    assert state.show_bridge(True).fetch == [("bridge", "")]
    changes = state.apply_snapshot("bridge", INFO)
    assert changes.fetch == [("bridge.addresses", ""), ("bridge.deposits", "")]
    state.apply_snapshot("bridge.addresses", ADDRESSES)
    state.apply_snapshot("bridge.deposits", DEPOSITS)
    assert [d.status for d in state.bridge.deposits] == [d["status"] for d in DEPOSITS]
    # a block with transactions may have made a deposit final or recorded an address
    fetch = state.apply_event(block(2)).fetch
    assert {("bridge", ""), ("bridge.addresses", ""), ("bridge.deposits", "")} <= set(fetch)
    assert not any(f[0].startswith("bridge") for f in state.apply_event(block(0)).fetch)
    settled = {"seq": 901, "kind": "request.settled", "time": T0, "request": "cd",
               "request_kind": "sign", "status": "done", "key_id": INFO["key_id"],
               "height": 13}  # fmt: skip
    assert ("bridge.deposits", "") in state.apply_event(settled).fetch  # a mint signed
    state.show_bridge(False)
    assert state.bridge_fetches() == []
    assert not any(f[0].startswith("bridge") for f in state.apply_event(block(2)).fetch)


def test_a_node_without_a_bridge_is_not_asked_again_until_the_screen_opens_again():
    state = loaded()
    state.show_bridge(True)
    for _ in range(2):
        changes = state.fetch_failed("bridge", "HTTP 404: this node's ledger runs no bridge", 404)
    assert "bridge" in changes.areas
    assert state.bridge.absent == "HTTP 404: this node's ledger runs no bridge"
    assert state.bridge_fetches() == []  # neither polled nor fetched on blocks
    said = [line for line in state.log.lines if "runs no bridge" in line.text]
    assert [line.level for line in said] == ["info"]  # once, and no warning
    state.show_bridge(False)
    assert state.show_bridge(True).fetch == [("bridge", "")]  # it may run one now


def test_a_bridge_view_that_fails_is_said_until_it_is_read():
    state = loaded()
    state.show_bridge(True)
    state.apply_snapshot("bridge", INFO)
    changes = state.fetch_failed("bridge.deposits", "HTTP 500: boom", 500)
    assert "bridge" in changes.areas
    assert state.bridge.error == "GET bridge.deposits: HTTP 500: boom"
    assert state.log.lines[-1].level == "warning"
    state.apply_snapshot("bridge.deposits", DEPOSITS)
    assert state.bridge.error is None


def test_the_bridge_settings_not_agreed_clear_the_lists_and_ask_for_none():
    state = loaded()
    state.show_bridge(True)
    state.apply_snapshot("bridge", INFO)
    state.apply_snapshot("bridge.deposits", DEPOSITS)
    changes = state.apply_snapshot("bridge", {"set_up": False, "proposals": 1})
    assert changes.fetch == [] and state.bridge.deposits == []
    assert state.bridge_fetches() == [("bridge", "")]  # its lists would be refused (409)


def test_the_deposits_kept_are_bounded_the_newest_kept():
    state = loaded()
    many = [{**DEPOSITS[0], "vout": i} for i in range(MAX_DEPOSITS + 100)]
    state.apply_snapshot("bridge.deposits", many)
    assert len(state.bridge.deposits) == MAX_DEPOSITS
    assert state.bridge.deposits[0].vout == 100 and state.bridge.deposits[-1].vout == 599


# -- the screen ---------------------------------------------------------------------------


def bridge_gets(node: FakeNode) -> list[str]:
    return [path for method, path, _ in node.requests if path.startswith("/bridge")]


def bridge_warnings(app: ConsoleApp) -> list[str]:
    return [
        line.text
        for line in app.state.log.lines
        if line.level in ("warning", "error") and "bridge" in line.text
    ]


def plain(renderable: Any, width: int = 120) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def text_of(app: ConsoleApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def deposits_table(app: ConsoleApp) -> DataTable[Any]:
    return app.screen.query_one("#deposits-table", DataTable)


async def open_bridge(pilot: Any) -> None:
    await settled(pilot)
    await pilot.press("8")
    app = pilot.app
    await until(pilot, lambda: deposits_table(app).row_count == len(DEPOSITS), "the deposits")
    await until(pilot, lambda: app.idle, "the bridge's views")
    await pilot.pause()


async def select(pilot: Any, outpoint: str) -> None:
    table = deposits_table(pilot.app)
    table.move_cursor(row=table.get_row_index(outpoint), animate=False)
    await pilot.pause()


@pytest.mark.anyio
async def test_the_bridge_screen_opens_by_its_key_and_shows_the_settings(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await settled(pilot)
        assert bridge_gets(node) == []  # nothing asked while the screen is not shown
        await open_bridge(pilot)
        assert app.main.query_one("#tabs", TabbedContent).active == "bridge"
        assert bridge_gets(node) == ["/bridge", "/bridge/addresses", "/bridge/deposits"]
        settings = text_of(app, "#bridge-settings")
        assert "BTC (regtest) → Ethereum, chain id 31337" in settings
        assert "needs 2 confirmations · fee 1,000 sats · minimum deposit 10,000 sats" in settings
        assert f"gateway        {INFO['gateway']}" in settings
        assert f"mint authority {INFO['mint_authority']}" in settings
        addresses = app.screen.query_one("#addresses-table", DataTable)
        assert addresses.row_count == 2
        assert str(addresses.get_cell(ADDRESSES[0]["address"], "deposits")) == "2"


@pytest.mark.anyio
async def test_a_deposit_1_of_2_confirmations_deep_shows_half_a_bar_then_grows(node):
    app = make_app(node, poll_interval=0.5)  # a deposit's depth is polled: no event says it
    async with app.run_test(size=(100, 32)) as pilot:
        await open_bridge(pilot)
        table = deposits_table(app)
        assert str(table.get_cell(CONFIRMING, "status")) == "confirming"
        assert str(table.get_cell(CONFIRMING, "confirmations")) == "███░░░ 1/2"
        await select(pilot, CONFIRMING)
        detail = text_of(app, "#deposit-detail")
        assert "confirming  █████░░░░░ 1/2 confirmations" in detail
        assert "not final yet" in detail and "mint signature  none yet" in detail
        node.confirm_deposit(CONFIRMING, 2)
        await until(
            pilot,
            lambda: str(table.get_cell(CONFIRMING, "confirmations")) == "██████ 2/2",
            "the next poll",
        )


@pytest.mark.anyio
async def test_a_signed_deposit_shows_its_signature_and_m_copies_it(node):
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await open_bridge(pilot)
        table = deposits_table(app)
        sig = BY_STATUS["signed"]["signature"]
        assert str(table.get_cell(SIGNED, "signature")) == f"{sig['r'][:6]}…{sig['r'][-4:]}"
        assert str(table.get_cell(FINAL, "signature")) == "-"
        await select(pilot, SIGNED)
        detail = text_of(app, "#deposit-detail")
        for label, value in (("r", sig["r"]), ("s", sig["s"]), ("v", str(sig["v"]))):
            assert f"\n{label.ljust(10)}{value}" in detail  # in full
        await pilot.press("m")
        await until(pilot, lambda: app.clipboard.startswith("0x"), "the copy")
        mint = MintSignature(sig["r"], sig["s"], sig["v"])
        assert app.clipboard == mint.compact()
        assert recovers_authority(mint, BY_STATUS["signed"]["sigHash"])
        await pilot.press("o")
        await until(pilot, lambda: app.clipboard == SIGNED, "the outpoint copied")
        await select(pilot, FINAL)  # nothing to copy: said, and the clipboard is left
        await pilot.press("m")
        await pilot.pause()
        assert app.clipboard == SIGNED
        assert any("no mint signature yet" in n.message for n in app._notifications)


@pytest.mark.anyio
async def test_a_mint_signed_while_the_screen_is_shown_appears_without_polling(node):
    app = make_app(node)  # no polling: the settled request and its block say it
    async with app.run_test(size=(100, 32)) as pilot:
        await open_bridge(pilot)
        table = deposits_table(app)
        signature = node.sign_deposit(FINAL)
        await until(pilot, lambda: str(table.get_cell(FINAL, "status")) == "signed", "the mint")
        assert (
            str(table.get_cell(FINAL, "signature")) == f"{signature['r'][:6]}…{signature['r'][-4:]}"
        )
        deposit = next(d for d in app.state.bridge.deposits if d.outpoint == FINAL)
        assert deposit.signature is not None
        assert recovers_authority(deposit.signature, BY_STATUS["final"]["sigHash"])


@pytest.mark.anyio
async def test_a_node_that_runs_no_bridge_is_said_so(node):
    node.bridge = None  # GET /bridge: 404
    app = make_app(node, initial_tab="bridge")
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        await until(pilot, lambda: app.state.bridge.absent is not None, "the 404")
        await pilot.pause()
        settings = text_of(app, "#bridge-settings")
        assert settings.startswith("This node runs no bridge.")
        assert "HTTP 404: this node's ledger runs no bridge" in settings
        assert not app.screen.query_one("#bridge-body").display
        assert bridge_gets(node) == ["/bridge"]  # its lists are not asked for
        assert not bridge_warnings(app)


@pytest.mark.anyio
async def test_a_bridge_not_set_up_is_said_so(node):
    node.bridge_not_set_up(proposals=2)
    app = make_app(node, initial_tab="bridge")
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        await until(pilot, lambda: app.state.bridge.info is not None, "GET /bridge")
        await pilot.pause()
        settings = text_of(app, "#bridge-settings")
        assert settings.startswith("The bridge is not set up.")
        assert "2 proposals of settings, not yet voted by 2f+1 validators" in settings
        assert not app.screen.query_one("#bridge-body").display
        assert bridge_gets(node) == ["/bridge"]  # its lists would be refused (409)
        assert not bridge_warnings(app)
        # once agreed, the block that says so brings the settings, then their lists
        node.bridge_set_up()
        await until(pilot, lambda: "/bridge/deposits" in bridge_gets(node), "the lists")
        await until(pilot, lambda: app.idle, "the lists read")
        await pilot.pause()
        assert app.screen.query_one("#bridge-body").display
        assert "chain id 31337 · in force since block 13" in text_of(app, "#bridge-settings")
        assert "No deposits yet." in text_of(app, "#deposit-detail")


@pytest.mark.anyio
async def test_the_bridge_is_listed_with_the_other_screens(node):
    app = make_app(node)
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert commands["Show Bridge"] == "the Bridge screen [8]"
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        body = plain(app.screen.table)
        assert "7 Log  8 Bridge" in body
        assert "m copy its mint signature · o copy its outpoint" in body
