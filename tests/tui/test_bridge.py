"""The Bridge screen: the bridge's views read through the model (shapes of today's node and
of the one about to come), kept current by the state only while the screen is shown, and
drawn with Pilot against the HTTP API test double (its bridge routes, frozen data with
real hashes, a real mint signature and real release transactions)."""

from __future__ import annotations

import io
from datetime import UTC
from typing import Any

import pytest
from coincurve import PublicKey
from rich.console import Console
from textual.widgets import DataTable, Static, TabbedContent

from tests.tui.helpers import make_app, open_release, settled, until
from tssnode import schema
from tssnode.bridge.btctx import txid
from tssnode.crypto.addresses import eth_address
from tssnode.crypto.group import Point
from tssnode.testing.fakenode import FakeNode, load
from tui.app import ConsoleApp
from tui.model import BridgeInfo, Deposit, DepositAddress, MintSignature, Release, ReleaseInfo
from tui.screens.help import HelpScreen
from tui.state import MAX_DEPOSITS, MAX_RELEASES, SNAPSHOTS, ConsoleState
from tui.widgets.base import status_text
from tui.widgets.bridge import (
    attempts_text,
    confirmations_cell,
    deposit_cells,
    deposit_order,
    release_cells,
    release_confirmations_cell,
    release_detail,
    release_order,
    settings_text,
)

T0 = load("_double")["clock"]
INFO = load("bridge")
ADDRESSES = load("bridge_addresses")
DEPOSITS = load("bridge_deposits")
RELEASES = load("bridge_releases")
BY_STATUS = {d["status"]: d for d in DEPOSITS}
#: a burn of each status the frozen data has (two are broadcast: 1, the first, is kept)
BURN = {r["status"]: r for r in reversed(RELEASES)}
#: the same release as burn 1's a moment before: its bump built, its input not signed yet
SIGNING = {
    **BURN["broadcast"],
    "status": "signing",
    "attempts": [
        BURN["broadcast"]["attempts"][0],
        {**BURN["broadcast"]["attempts"][1], "status": "signing", "signed_inputs": 0,
         "raw": None},
    ],
}  # fmt: skip
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


def test_the_release_side_of_the_settings_is_read():
    release = BridgeInfo.from_json(INFO).release
    assert release == ReleaseInfo(
        evm_confirmations=3, bump_after=2, min_release_sats=10_000, max_fee_rate=50,
        sweep_at=5, height=6, fee_rate=10, holdings_sats=870_000, wrapped_supply=309_000,
        coins=3, main_address=INFO["release"]["main_address"],
    )  # fmt: skip
    # not set up yet (null), a node from before releases (no field), a malformed one
    assert BridgeInfo.from_json({**INFO, "release": None}).release is None
    assert BridgeInfo.from_json({k: v for k, v in INFO.items() if k != "release"}).release is None
    assert BridgeInfo.from_json({**INFO, "release": [1]}).release is None
    odd = ReleaseInfo.from_json({**INFO["release"], "fee_rate": None, "wrapped_supply": "lots"})
    assert odd is not None and odd.fee_rate is None and odd.wrapped_supply is None
    # whether the node watches the gateway: what a supply of null means
    assert BridgeInfo.from_json(INFO).evm_watch is True
    assert (
        BridgeInfo.from_json({**INFO, "watch": {**INFO["watch"], "evm": None}}).evm_watch is False
    )
    assert BridgeInfo.from_json({"set_up": True}).evm_watch is None


def test_a_release_of_each_status_is_read():
    releases = {r.status: r for r in (Release.from_json(d) for d in [*RELEASES, SIGNING])}
    assert set(releases) == {"seen", "final", "signing", "broadcast", "confirmed", "unpayable"}
    confirmed = releases["confirmed"]
    assert (confirmed.key, confirmed.release, confirmed.fee_rate) == ("0", 1, 6)
    assert confirmed.confirmations == 4 and confirmed.paid == BURN["confirmed"]["paid"]
    assert confirmed.txid == confirmed.attempts[0].txid and confirmed.replaced == 0
    broadcast = releases["broadcast"]  # bumped: its first attempt replaced
    assert [a.status for a in broadcast.attempts] == ["replaced", "signed"]
    assert broadcast.replaced == 1 and broadcast.txid == broadcast.attempts[1].txid
    assert broadcast.confirmations is None and broadcast.fee_rate == 10
    signing = releases["signing"]
    assert [(a.status, a.signed_inputs, a.inputs) for a in signing.attempts] == [
        ("replaced", 1, 1), ("signing", 0, 1)
    ]  # fmt: skip
    assert signing.attempts[1].raw is None
    for status in ("final", "unpayable", "seen"):  # no release (yet, or ever)
        rel = releases[status]
        assert rel.release is None and rel.txid is None and rel.attempts == ()
        assert rel.paid is None and rel.amount == BURN[status]["amount"]
    assert releases["final"].height == 12 and releases["seen"].height is None
    assert releases["unpayable"].to is not None and releases["unpayable"].to.startswith("bc1q")
    assert releases["seen"].evm_tx == BURN["seen"]["evm_tx"] and releases["seen"].evm_block == 31


def test_release_attempts_are_read_and_fields_a_node_may_not_send_yet():
    first, bump = Release.from_json(BURN["broadcast"]).attempts
    sent = BURN["broadcast"]["attempts"]
    assert (first.attempt, first.fee_rate, first.fee, first.inputs) == (0, 8, sent[0]["fee"], 1)
    assert (bump.attempt, bump.fee_rate, bump.fee, bump.signed_inputs) == (1, 10, sent[1]["fee"], 1)
    assert bump.raw == sent[1]["raw"] and bump.txid == sent[1]["txid"]
    newer = Release.from_json(
        {"burn_nonce": 9, "status": "refunded", "amount": "lots", "attempts": [
            {"attempt": 0, "status": "queued", "fee": None}, "not an attempt"]}
    )  # fmt: skip
    assert newer.status == "refunded" and newer.amount is None and newer.key == "9"
    assert [(a.status, a.fee) for a in newer.attempts] == [("queued", None)]
    assert Release.from_json({}).key == "?" and Release.from_json(None).status == "unknown"


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


def test_a_release_s_confirmations_are_a_bar_against_the_bridge_s_depth():
    broadcast = Release.from_json(BURN["broadcast"])  # in the mempool: no block here
    assert release_confirmations_cell(broadcast, 2).plain == "░░░░░░ 0/2"
    mined = Release.from_json({**BURN["broadcast"], "confirmations": 1})
    half = release_confirmations_cell(mined, 2)
    assert half.plain == "███░░░ 1/2" and "cyan" in str(half.spans[0].style)
    assert release_confirmations_cell(mined, 2, width=10).plain == "█████░░░░░ 1/2"
    deep = release_confirmations_cell(Release.from_json(BURN["confirmed"]), 2)
    assert deep.plain == "██████ 4/2" and "green" in str(deep.spans[0].style)
    # settled by 2f+1, from a node that does not say the depth: at least required
    agreed = Release.from_json({**BURN["confirmed"], "confirmations": None})
    assert release_confirmations_cell(agreed, 2).plain == "██████ ≥2"
    for status in ("final", "unpayable", "seen"):  # no transaction out
        assert release_confirmations_cell(Release.from_json(BURN[status]), 2).plain == "-"
    assert release_confirmations_cell(Release.from_json(SIGNING), 2).plain == "-"
    assert release_confirmations_cell(Release.from_json(BURN["confirmed"]), None).plain == "4"


def test_release_statuses_are_coloured_like_deposits():
    """From the burn to the bitcoin paid as from the payment to the mint: yellow only
    seen, cyan on its way, green done, red never."""
    style = {
        status: str(
            release_cells(Release.from_json({**BURN["final"], "status": status}), 2)[1].style
        )
        for status in ("seen", "final", "signing", "broadcast", "confirmed", "unpayable")
    }
    assert style == {"seen": "yellow", "final": "cyan", "signing": "bold cyan",
                     "broadcast": "green", "confirmed": "bold green",
                     "unpayable": "bold red"}  # fmt: skip
    assert style["seen"] == str(deposit_cells(Deposit.from_json(BY_STATUS["seen"]), 2)[1].style)
    assert str(status_text("replaced").style) == "dim"


def test_releases_under_way_come_first_and_a_bump_shows_in_the_attempts():
    releases = [Release.from_json(d) for d in RELEASES]
    assert [r.key for r in release_order(releases)] == ["1", "2", "3", "5", "0", "4"]
    by_key = {r.key: r for r in releases}
    assert attempts_text(by_key["1"]).plain == "2 (1 replaced)"
    assert attempts_text(by_key["0"]).plain == "1"
    assert attempts_text(by_key["3"]).plain == "-"


def test_a_bumped_release_shows_both_attempts_the_replaced_one_marked():
    info = BridgeInfo.from_json(INFO)
    releases = [Release.from_json(d) for d in RELEASES]
    first, bump = BURN["broadcast"]["attempts"]
    detail = plain(release_detail(releases[1], info, releases))
    assert "burn 1  broadcast  ░░░░░░░░░░ 0/2 confirmations" in detail
    assert f"#0        {first['txid']}\n" in detail
    assert (f"          replaced by #1 · 8 sat/vB · fee {first['fee']:,} sats · "
            "inputs signed 1/1") in detail  # fmt: skip
    assert f"#1        {bump['txid']}\n" in detail
    assert f"          signed · 10 sat/vB · fee {bump['fee']:,} sats · inputs signed 1/1" in detail
    assert "release   #2 · 10 sat/vB · also pays burn 2" in detail
    assert f"txid      {bump['txid']}" in detail
    assert f"burn tx   {BURN['broadcast']['evm_tx']}" in detail and "EVM block 24" in detail
    assert "150,000 sats burnt (0.00150000 BTC) → pays 149,140 sats" in detail
    signing = plain(release_detail(Release.from_json(SIGNING), info))
    assert "signing · 10 sat/vB" in signing and "inputs signed 0/1" in signing
    unpayable = plain(release_detail(Release.from_json(BURN["unpayable"]), info))
    assert "no standard output on regtest: nothing is sent" in unpayable
    assert "release   none yet" in unpayable and "attempts  none yet" in unpayable
    seen = plain(release_detail(Release.from_json(BURN["seen"]), info))
    assert "not final yet: seen by this node, not yet by 2f+1" in seen


def bridge_state(info: dict[str, Any] = INFO, deposits: list[Any] = DEPOSITS,
                 releases: list[Any] = RELEASES) -> ConsoleState:  # fmt: skip
    state = ConsoleState(clock=lambda: T0, tz=UTC)
    state.link_up("http://node")
    state.apply_snapshot("bridge", info)
    state.apply_snapshot("bridge.deposits", deposits)
    state.apply_snapshot("bridge.releases", releases)
    return state


def test_the_group_s_bitcoin_against_the_wrapped_supply():
    text = settings_text(bridge_state()).plain
    # 870,000 held, 309,000 tokens out: 561,000 kept, of which 170,000 for the deposits
    # not minted yet and 390,000 for the burns not paid out (1,000: the minted deposit's fee)
    assert (
        "holdings 0.00870000 BTC · wrapped supply 0.00309000 BTC · kept as fees 0.00561000" in text
    )
    assert "of which 0.00560000 under way: 2 deposits to mint, 5 burns not paid out" in text
    # at rest (everything minted and paid): holdings less supply is the fees kept
    rest = {**INFO, "release": {**INFO["release"], "holdings_sats": 20_000_000,
                                "wrapped_supply": 19_990_000}}  # fmt: skip
    text = settings_text(bridge_state(rest, [], [])).plain
    assert (
        "holdings 0.20000000 BTC · wrapped supply 0.19990000 BTC · kept as fees 0.00010000" in text
    )
    assert "under way" not in text
    only_burns = settings_text(bridge_state(rest, [], RELEASES[3:4])).plain
    assert "of which 0.00080000 under way: 1 burn not paid out" in only_burns
    # fewer bitcoin than tokens out: said in red
    short = {**INFO, "release": {**INFO["release"], "holdings_sats": 300_000}}
    out = settings_text(bridge_state(short))
    assert "holdings 0.00300000 BTC · wrapped supply 0.00309000 BTC · ⚠ short by 0.00009000" in (
        out.plain
    )
    assert "kept as fees" not in out.plain
    i = out.plain.index("⚠ short by")
    assert any(span.start <= i < span.end and "red" in str(span.style) for span in out.spans)


def test_a_supply_of_null_is_unknown():
    no_evm = {**INFO, "watch": {**INFO["watch"], "evm": None},
              "release": {**INFO["release"], "wrapped_supply": None}}  # fmt: skip
    text = settings_text(bridge_state(no_evm)).plain
    assert "holdings 0.00870000 BTC · supply unknown (no [bridge.evm])" in text
    assert "kept as fees" not in text and "under way" not in text
    not_read = {**INFO, "release": {**INFO["release"], "wrapped_supply": None}}
    assert (
        "holdings 0.00870000 BTC · wrapped supply not read yet"
        in settings_text(bridge_state(not_read)).plain
    )


def test_the_release_settings_and_the_agreed_fee_rate():
    text = settings_text(bridge_state()).plain
    assert "release fee rate 10 sat/vB agreed · 3 coins · change to bcrt1qyuq9…el20ws" in text
    assert "releases after 3 EVM confirmations · minimum 10,000 sats · since block 6" in text
    assert "bump after 2 blocks · max fee rate 50 sat/vB · sweep at 5 deposits" in text
    none = {**INFO, "release": {**INFO["release"], "fee_rate": None, "sweep_at": 0}}
    text = settings_text(bridge_state(none)).plain
    assert "release fee rate none: no agreed rate yet: fewer than 2f+1 reports" in text
    assert "max fee rate 50 sat/vB · no sweeps" in text
    older = {k: v for k, v in INFO.items() if k != "release"}  # a node from before them
    text = settings_text(bridge_state(older)).plain
    assert "holdings" not in text and "release" not in text
    assert f"mint authority {INFO['mint_authority']}" in text


def test_deposits_under_way_come_first():
    order = [d.status for d in deposit_order(Deposit.from_json(d) for d in DEPOSITS)]
    assert order == ["final", "confirming", "seen", "signed", "minted"]


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
    assert changes.fetch == [("bridge.addresses", ""), ("bridge.deposits", ""),
                             ("bridge.releases", "")]  # fmt: skip
    state.apply_snapshot("bridge.addresses", ADDRESSES)
    state.apply_snapshot("bridge.deposits", DEPOSITS)
    assert [d.status for d in state.bridge.deposits] == [d["status"] for d in DEPOSITS]
    # a block with transactions may have made a deposit final or recorded an address
    fetch = state.apply_event(block(2)).fetch
    assert {("bridge", ""), ("bridge.addresses", ""), ("bridge.deposits", ""),
            ("bridge.releases", "")} <= set(fetch)  # fmt: skip
    assert not any(f[0].startswith("bridge") for f in state.apply_event(block(0)).fetch)
    settled = {"seq": 901, "kind": "request.settled", "time": T0, "request": "cd",
               "request_kind": "sign", "status": "done", "key_id": INFO["key_id"],
               "height": 13}  # fmt: skip
    # a mint signed, or an input of a release
    assert {("bridge.deposits", ""), ("bridge.releases", "")} <= set(
        state.apply_event(settled).fetch
    )
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


def test_releases_are_read_with_the_other_lists_and_a_404_says_a_node_from_before_them():
    state = loaded()
    state.show_bridge(True)
    state.apply_snapshot("bridge", INFO)
    state.apply_snapshot("bridge.releases", RELEASES)
    assert [r.key for r in state.bridge.releases] == ["0", "1", "2", "3", "4", "5"]
    for _ in range(2):
        changes = state.fetch_failed("bridge.releases", "HTTP 404: Not Found", 404)
    assert "bridge" in changes.areas and state.bridge.releases == []
    assert state.bridge.releases_absent == "HTTP 404: Not Found"
    assert state.bridge.error is None  # the rest of the bridge reads as before
    said = [line for line in state.log.lines if "shows no releases" in line.text]
    assert [line.level for line in said] == ["info"]  # once, and no warning
    # not asked again: neither polled nor fetched on blocks; the other lists are
    assert state.bridge_fetches() == [("bridge", ""), ("bridge.addresses", ""),
                                      ("bridge.deposits", "")]  # fmt: skip
    fetch = state.apply_event(block(2)).fetch
    assert ("bridge.deposits", "") in fetch and ("bridge.releases", "") not in fetch
    state.show_bridge(False)  # asked again when the screen opens again (a newer node?)
    assert ("bridge.releases", "") in state.show_bridge(True).fetch
    # any other failure is one like the other lists'
    state.fetch_failed("bridge.releases", "HTTP 500: boom", 500)
    assert state.bridge.error == "GET bridge.releases: HTTP 500: boom"
    assert state.bridge.releases_absent is None


def test_the_releases_kept_are_bounded_the_newest_kept():
    state = loaded()
    many = [{**RELEASES[0], "burn_nonce": i} for i in range(MAX_RELEASES + 100)]
    state.apply_snapshot("bridge.releases", many)
    assert len(state.bridge.releases) == MAX_RELEASES
    assert state.bridge.releases[0].burn_nonce == 100
    assert state.bridge.releases[-1].burn_nonce == MAX_RELEASES + 99


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


def releases_table(app: ConsoleApp) -> DataTable[Any]:
    return app.screen.query_one("#releases-table", DataTable)


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
        assert bridge_gets(node) == [
            "/bridge", "/bridge/addresses", "/bridge/deposits", "/bridge/releases"
        ]  # fmt: skip
        settings = text_of(app, "#bridge-settings")
        assert "BTC (regtest) → Ethereum, chain id 31337" in settings
        assert "needs 2 confirmations · fee 1,000 sats · minimum deposit 10,000 sats" in settings
        assert f"gateway        {INFO['gateway']}" in settings
        assert f"mint authority {INFO['mint_authority']}" in settings
        addresses = app.screen.query_one("#addresses-table", DataTable)
        assert addresses.row_count == 2
        assert str(addresses.get_cell(ADDRESSES[0]["address"], "deposits")) == "3"


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
        assert text_of(app, "#releases-title") == (
            "releases: none; the release side is not set up (POST /bridge/release-setup)"
        )
        assert not releases_table(app).display


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
        assert "x copy the selected release's txid" in body


@pytest.mark.anyio
async def test_the_releases_are_listed_and_a_bumped_one_shows_both_attempts(node):
    app = make_app(node, initial_tab="bridge")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_release(pilot)
        table = releases_table(app)
        assert [table.coordinate_to_cell_key((i, 0)).row_key.value
                for i in range(table.row_count)] == ["1", "2", "3", "5", "0", "4"]  # fmt: skip
        cell = lambda key, column: str(table.get_cell(key, column))  # noqa: E731
        assert (cell("1", "status"), cell("1", "attempts")) == ("broadcast", "2 (1 replaced)")
        assert (cell("1", "amount"), cell("1", "paid"), cell("1", "fee_rate")) == (
            "0.00150000", "0.00149140", "10"
        )  # fmt: skip
        assert cell("1", "confirmations") == "░░░░░░ 0/2"  # in the mempool
        assert (cell("0", "status"), cell("0", "confirmations")) == ("confirmed", "██████ 4/2")
        assert (cell("3", "status"), cell("3", "paid"), cell("3", "attempts")) == (
            "final", "-", "-"
        )  # fmt: skip
        assert cell("4", "status") == "unpayable" and cell("5", "status") == "seen"
        assert cell("1", "to") == f"{BURN['broadcast']['to'][:10]}…{BURN['broadcast']['to'][-4:]}"
        assert text_of(app, "#releases-title") == "releases · 6 burns, 4 under way"
        # the focused list's selection is the detail: burn 1, both attempts
        assert not app.screen.query_one("#deposit-detail").display
        detail = text_of(app, "#release-detail")
        first, bump = BURN["broadcast"]["attempts"]
        assert f"#0        {first['txid']}\n          replaced by #1 · 8 sat/vB" in detail
        assert f"#1        {bump['txid']}\n          signed · 10 sat/vB" in detail
        # back to the deposits: theirs again
        deposits_table(app).focus()
        await until(pilot, lambda: app.screen.query_one("#deposit-detail").display, "deposits")
        assert not app.screen.query_one("#release-detail").display
        assert text_of(app, "#deposit-detail").startswith("deposit ")


@pytest.mark.anyio
async def test_x_copies_the_selected_release_s_txid(node):
    app = make_app(node, initial_tab="bridge")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_release(pilot)
        await pilot.press("x")
        bump = BURN["broadcast"]["attempts"][1]["txid"]
        await until(pilot, lambda: app.clipboard == bump, "the txid copied")
        table = releases_table(app)
        table.move_cursor(row=table.get_row_index("3"), animate=False)  # final: no tx yet
        await pilot.pause()
        assert text_of(app, "#release-detail").startswith("burn 3  final")
        await pilot.press("x")
        await pilot.pause()
        assert app.clipboard == bump
        assert any("burn 3 is final: no release transaction yet" in n.message
                   for n in app._notifications)  # fmt: skip


@pytest.mark.anyio
async def test_a_release_mined_shows_its_bar_grow_at_each_poll(node):
    app = make_app(node, poll_interval=0.5)  # a release's depth is polled: no event says it
    async with app.run_test(size=(120, 40)) as pilot:
        await open_bridge(pilot)
        table = releases_table(app)
        assert str(table.get_cell("1", "confirmations")) == "░░░░░░ 0/2"
        node.mine_release(1, 1)
        for key in ("1", "2"):  # both burns it pays
            await until(
                pilot,
                lambda key=key: str(table.get_cell(key, "confirmations")) == "███░░░ 1/2",
                "the next poll",
            )
        node.mine_release(1, 2)
        await until(
            pilot, lambda: str(table.get_cell("1", "confirmations")) == "██████ 2/2", "deeper"
        )


@pytest.mark.anyio
async def test_a_release_settled_while_the_screen_is_shown_appears_without_polling(node):
    app = make_app(node)  # no polling: the block that settles it says it
    async with app.run_test(size=(120, 40)) as pilot:
        await open_bridge(pilot)
        table = releases_table(app)
        node.settle_release(1)
        await until(pilot, lambda: str(table.get_cell("2", "status")) == "confirmed", "it")
        await until(pilot, lambda: app.idle, "drawn")
        settings = text_of(app, "#bridge-settings")
        # the two burns paid: 250,000 sats fewer held, and as many fewer under way
        assert (
            "holdings 0.00620000 BTC · wrapped supply 0.00309000 BTC · kept as fees 0.00311000"
            in settings
        )
        assert "of which 0.00310000 under way: 2 deposits to mint, 3 burns not paid out" in settings


@pytest.mark.anyio
async def test_a_node_from_before_releases_shows_none_and_the_rest_as_before(node):
    node.before_releases()
    app = make_app(node)
    async with app.run_test(size=(100, 32)) as pilot:
        await open_bridge(pilot)
        await until(pilot, lambda: app.state.bridge.releases_absent is not None, "the 404")
        await until(pilot, lambda: app.idle, "drawn")
        assert text_of(app, "#releases-title") == (
            "releases: this node shows no releases (GET /bridge/releases: HTTP 404: Not Found)"
        )
        assert not releases_table(app).display
        assert deposits_table(app).row_count == len(DEPOSITS)  # the rest as before
        settings = text_of(app, "#bridge-settings")
        assert settings.startswith("bridge BTC (regtest)") and "holdings" not in settings
        assert not bridge_warnings(app) and app.state.bridge.error is None
        # not asked again at the next block with transactions (the other lists are)
        node.sign_deposit(FINAL)
        await until(
            pilot, lambda: str(deposits_table(app).get_cell(FINAL, "status")) == "signed", "mint"
        )
        assert bridge_gets(node).count("/bridge/releases") == 1
        assert bridge_gets(node).count("/bridge/deposits") == 2


# -- the test double's bridge ---------------------------------------------------------------


def test_the_double_answers_the_bridge_in_the_node_s_shapes():
    """Each bridge answer of the frozen data validates as the node's own response models
    (a node validates every answer on the way out), and each release attempt is a real
    transaction: its txid is its raw transaction's."""
    schema.BridgeInfo.model_validate(INFO)
    for model, listed in (
        (schema.DepositAddress, ADDRESSES),
        (schema.Deposit, DEPOSITS),
        (schema.Release, RELEASES),
    ):
        for item in listed:
            model.model_validate(item)
    attempts = [a for r in RELEASES for a in r["attempts"]]
    assert len(attempts) == 5
    for a in attempts:
        assert txid(bytes.fromhex(a["raw"]))[::-1].hex() == a["txid"]
    # what the group holds less the supply: the minted deposit's fee, the deposits not
    # minted yet, the burns not paid out (the story make_fixtures tells)
    release = INFO["release"]
    unminted = sum(d["value_sats"] for d in DEPOSITS if d["status"] in ("final", "signed"))
    unpaid = sum(r["amount"] for r in RELEASES if r["status"] != "confirmed")
    assert release["holdings_sats"] - release["wrapped_supply"] - unminted - unpaid == 1_000
