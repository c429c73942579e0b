"""Issue 18's round trip on real processes: four `tssnode run` nodes, the regtest service
(Bitcoin Core's engine behind Bitcoin Core's RPC) and the gateway on anvil.

A deposit of 0.5 BTC is minted; 0.3 of it is burnt on the gateway to a regtest address.
The nodes see the burn at depth, report fee rates, build the release byte for byte alike,
sign its input with the deposit's derived key, check it with Bitcoin Core's engine and
broadcast it; mined to depth, it is confirmed in the ledger. The address receives the
burnt amount less the fee, and the group's bitcoin equals the token supply plus the mint
fees it kept: the peg is exact."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from tests.bridge.test_bridge_cluster import _cli
from tssnode.api.client import get_or_none
from tssnode.bridge.btctx import address_script
from tssnode.cli.bridgenet import ReleaseSettings
from tssnode.testing.bridgecluster import (
    FEE,
    RELAYER_KEY,
    TO,
    bridge_network,
    pay,
    signed_everywhere,
)
from tssnode.testing.cluster import wait_for

#: anvil's second dev account (its default mnemonic): TO, the minted tokens' holder
HOLDER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def test_deposit_mint_burn_release_and_the_peg_holds(tmp_path: Path) -> None:
    with bridge_network(tmp_path) as net:
        api, rpc = net.api, net.rpc
        release = api[0].get("/bridge")["release"]  # (voted at every node by the bring-up)
        assert release["evm_confirmations"] == 1 and release["holdings_sats"] == 0

        txid = pay(net)
        (signed, *_) = signed_everywhere(api, txid, "the mint signed")
        gateway = net.gateway()
        gateway.mint(signed, Account.from_key(RELAYER_KEY))
        holder = Account.from_key(HOLDER_KEY)
        assert holder.address == TO and gateway.balance(TO) == 50_000_000 - FEE

        payee = rpc.getnewaddress()
        key_file = tmp_path / "holder.key"
        key_file.write_text(HOLDER_KEY)
        config = ("--config", str(net.nodes[2].config))
        burnt = _cli(
            "burn", "--to", payee, "--amount", "30000000", "--evm-rpc", net.anvil_url,
            "--key-file", str(key_file), *config,
        )  # fmt: skip
        assert burnt["burnt"] and gateway.balance(TO) == 20_000_000 - FEE
        where = f"/bridge/releases/{burnt['burn_nonce']}"

        def broadcast() -> dict | None:
            views = [get_or_none(c, where) or {} for c in api]
            ok = all(v.get("status") == "broadcast" for v in views)
            return views[0] if ok and len({v["txid"] for v in views}) == 1 else None

        release = wait_for(broadcast, "the release signed and broadcast everywhere", 180, 0.2)
        (attempt,) = release["attempts"]
        wait_for(lambda: release["txid"] in rpc.getrawmempool(), "the nodes' broadcast", 30)
        rpc.generatetoaddress(2, rpc.getnewaddress())

        def confirmed() -> dict | None:
            views = [c.get(where) for c in api]
            ok = all(v["status"] == "confirmed" and v["confirmations"] for v in views)
            return views[0] if ok else None

        done = wait_for(confirmed, "the release confirmed in the ledger", 120, 0.2)
        assert done["paid"] == 30_000_000 - attempt["fee"] and done["confirmations"] >= 2
        out = rpc.gettxout(done["txid"], 0)
        assert out is not None and round(float(out["value"]) * 1e8) == done["paid"]
        assert bytes.fromhex(out["scriptPubKey"]["hex"]) == address_script(payee, "regtest")
        shown = _cli("releases", str(burnt["burn_nonce"]), *config)
        assert (shown["status"], shown["txid"], shown["paid"]) == (
            "confirmed",
            done["txid"],
            done["paid"],
        )
        info = api[0].get("/bridge")["release"]
        supply = gateway.token.functions.totalSupply().call()
        assert info["holdings_sats"] == 50_000_000 - 30_000_000 == supply + FEE
        wait_for(
            lambda: api[0].get("/bridge")["release"]["wrapped_supply"] == supply,
            "node 1 showing the supply",
        )


def _mint_and_burn(net: Any, tmp_path: Path, amount: int) -> tuple[str, int]:
    """0.5 BTC deposited and minted to TO, `amount` of it burnt to a new regtest address:
    (that address, the burn nonce)."""
    txid = pay(net)
    (signed, *_) = signed_everywhere(net.api, txid, "the mint signed")
    gateway = net.gateway()
    gateway.mint(signed, Account.from_key(RELAYER_KEY))
    payee = net.rpc.getnewaddress()
    return payee, gateway.burn(payee, amount, Account.from_key(HOLDER_KEY)).burn_nonce


@pytest.mark.slow
def test_a_release_stuck_unmined_is_bumped_and_the_replacement_confirms(tmp_path: Path) -> None:
    """Blocks that leave the release out (generateblock with no transactions): after
    bump_after of them the nodes agree on a higher fee rate and sign a replacement over the
    same input; it replaces the first in the mempool (BIP 125), is mined, and the ledger
    records it as the one that confirmed, the first as replaced."""
    with bridge_network(tmp_path) as net:
        api, rpc = net.api, net.rpc
        bump_after = api[0].get("/bridge")["release"]["bump_after"]
        _, nonce = _mint_and_burn(net, tmp_path, 20_000_000)
        where = f"/bridge/releases/{nonce}"

        def attempts(n: int) -> Any:
            views = [get_or_none(c, where) or {} for c in api]
            ok = all(v.get("status") == "broadcast" and len(v["attempts"]) == n for v in views)
            return views[0] if ok and len({v["txid"] for v in views}) == 1 else None

        first = wait_for(lambda: attempts(1), "the release signed", 180, 0.2)
        wait_for(lambda: first["txid"] in rpc.getrawmempool(), "the broadcast", 30)
        burner = rpc.getnewaddress()
        for _ in range(bump_after):
            rpc.generateblock(burner, [])  # (blocks without it: it stays unmined)
        second = wait_for(lambda: attempts(2), "the bump signed", 180, 0.2)
        old, new = second["attempts"]
        assert old["status"] == "replaced" and new["status"] == "signed"
        assert new["fee_rate"] > old["fee_rate"] and new["fee"] > old["fee"]
        wait_for(lambda: new["txid"] in rpc.getrawmempool(), "the replacement broadcast", 30)
        assert old["txid"] not in rpc.getrawmempool()  # replaced, not beside it
        rpc.generatetoaddress(2, burner)

        def confirmed() -> Any:
            views = [c.get(where) for c in api]
            return views[0] if all(v["status"] == "confirmed" for v in views) else None

        done = wait_for(confirmed, "the replacement confirmed", 120, 0.2)
        assert done["txid"] == new["txid"] and done["paid"] == 20_000_000 - new["fee"]
        statuses = [a["status"] for a in done["attempts"]]
        assert statuses == ["replaced", "confirmed"]
        assert rpc.gettxout(old["txid"], 0) is None  # the first never paid anything


@pytest.mark.slow
def test_a_reorg_of_the_releases_block_before_depth_leaves_exactly_one_release(
    tmp_path: Path,
) -> None:
    """The release mined one block deep, then that block reorged away (a longer branch
    of empty blocks): the release is back in the mempool, is not confirmed on the old
    block, no second transaction or attempt is made, and mined again it is confirmed in
    its new block."""
    with bridge_network(tmp_path) as net:
        api, rpc = net.api, net.rpc
        _, nonce = _mint_and_burn(net, tmp_path, 20_000_000)
        where = f"/bridge/releases/{nonce}"

        def everywhere(status: str) -> Any:
            views = [get_or_none(c, where) or {} for c in api]
            return views[0] if all(v.get("status") == status for v in views) else None

        rel = wait_for(lambda: everywhere("broadcast"), "the release broadcast", 180, 0.2)
        wait_for(lambda: rel["txid"] in rpc.getrawmempool(), "the broadcast", 30)
        (old_block,) = rpc.generatetoaddress(1, rpc.getnewaddress())
        assert rel["txid"] not in rpc.getrawmempool()
        reorg = rpc.tssnode_reorg(1, 2)  # two empty blocks from below it
        assert old_block in reorg["disconnected"] and rel["txid"] in rpc.getrawmempool()
        time.sleep(3)  # (the nodes look every 0.5 s: time to see the new branch)
        views = [c.get(where) for c in api]
        assert all(v["status"] == "broadcast" and len(v["attempts"]) == 1 for v in views)
        assert rpc.getrawmempool() == [rel["txid"]]
        rpc.generatetoaddress(2, rpc.getnewaddress())
        done = wait_for(lambda: everywhere("confirmed"), "confirmed in its new block", 120, 0.2)
        assert done["txid"] == rel["txid"] and len(done["attempts"]) == 1
        info = api[0].get("/bridge")["release"]
        assert info["coins"] == 1 and info["holdings_sats"] == 50_000_000 - 20_000_000


@pytest.mark.slow
def test_a_burn_reorged_away_before_depth_is_never_released(tmp_path: Path) -> None:
    """With burns counted 3 EVM blocks deep: a burn one block deep is reorged away
    (evm_revert to before it; the holder has the tokens back). No node observes it and
    nothing is released; burnt again, the same nonce is released once."""
    with bridge_network(tmp_path, release=ReleaseSettings(evm_confirmations=3)) as net:
        api, rpc = net.api, net.rpc
        txid = pay(net)
        (signed, *_) = signed_everywhere(api, txid, "the mint signed")
        gateway = net.gateway()
        gateway.mint(signed, Account.from_key(RELAYER_KEY))
        w3 = gateway.w3
        snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
        holder = Account.from_key(HOLDER_KEY)
        payee = rpc.getnewaddress()
        first = gateway.burn(payee, 20_000_000, holder)
        time.sleep(2)  # (the nodes look every 0.5 s: one block deep is not enough)
        assert all(c.get("/bridge/releases") == [] for c in api)
        assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
        for _ in range(3):
            w3.provider.make_request("evm_mine", [])
        time.sleep(2)
        assert all(c.get("/bridge/releases") == [] for c in api)  # never seen at depth
        assert gateway.balance(TO) == 50_000_000 - FEE  # the burn is undone
        again = gateway.burn(payee, 20_000_000, holder)
        assert again.burn_nonce == first.burn_nonce  # the same nonce, on the new branch
        for _ in range(2):
            w3.provider.make_request("evm_mine", [])
        where = f"/bridge/releases/{again.burn_nonce}"
        wait_for(
            lambda: all((get_or_none(c, where) or {}).get("status") == "broadcast" for c in api),
            "the release of the burn on the new branch", 180, 0.2,
        )  # fmt: skip
        views = [c.get("/bridge/releases") for c in api]
        assert all(len(v) == 1 and v[0]["evm_tx"] == again.tx_hash for v in views)
