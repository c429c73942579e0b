"""A deposit's life on both chains as every node shows it, on real processes: four
`tssnode run` nodes watching the regtest service (Bitcoin Core's engine behind Bitcoin
Core's RPC) and the gateway on anvil.

seen (in the mempool) → confirming (1 of 2) → final → signed → minted (the gateway used
the authorisation); then a reorg deeper than the confirmations takes the deposit's block
away with the payment back in the mempool: every node records it orphaned (2f+1 votes).
Mined again, it is moved to its new block: minted again as every node shows it, never
signed a second time, and the gateway refuses a second mint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from tssnode.bridge.gateway import GatewayError
from tssnode.testing.bridgecluster import FEE, RELAYER_KEY, app_sign_requests, bridge_network, pay
from tssnode.testing.cluster import wait_for


def _everywhere(api: list[Any], where: str, want: dict[str, Any], what: str) -> list[Any]:
    """Wait until every node shows the deposit at `where` with the fields of `want`."""

    def shown() -> list[Any] | None:
        views = [c.get(where) for c in api]
        ok = all(len(v) == 1 and all(v[0].get(k) == x for k, x in want.items()) for v in views)
        return [v[0] for v in views] if ok else None

    return wait_for(shown, what, 120, 0.2)


def test_seen_confirming_signed_minted_orphaned_and_moved_on_every_node(tmp_path: Path) -> None:
    with bridge_network(tmp_path) as net:
        api, rpc, where = net.api, net.rpc, "/bridge/deposits"
        txid = pay(net, mine=0)
        seen = _everywhere(api, where, {"txid": txid, "status": "seen"}, "seen")
        assert seen[0]["confirmations"] == 0 and seen[0]["block_hash"] is None
        assert seen[0]["amount"] == 50_000_000 - FEE and seen[0]["signature"] is None
        rpc.generatetoaddress(1, rpc.getnewaddress())
        confirming = _everywhere(
            api, where, {"status": "confirming", "confirmations": 1}, "confirming"
        )
        rpc.generatetoaddress(1, rpc.getnewaddress())
        (signed, *_) = _everywhere(api, where, {"status": "signed"}, "signed")
        # the digest a node showed before anything was agreed is the one signed
        assert signed["sigHash"] == confirming[0]["sigHash"] == seen[0]["sigHash"]
        assert signed["minted"] is False and signed["confirmations"] >= 2

        gateway = net.gateway()
        relayer = Account.from_key(RELAYER_KEY)
        gateway.mint(signed, relayer)
        _everywhere(api, where, {"status": "minted", "minted": True}, "minted")
        supply = gateway.token.functions.totalSupply().call()
        assert supply == 50_000_000 - FEE
        assert all(c.get("/bridge")["watch"]["evm"]["minted"] == 1 for c in api)

        # a reorg past the confirmations: the block is gone, the payment in the mempool
        depth = rpc.getblockcount() - signed["block_height"] + 1
        rpc.tssnode_reorg(depth, depth + 1)
        assert txid in rpc.getrawmempool()
        orphaned = _everywhere(api, where, {"status": "orphaned", "confirmations": 0}, "orphaned")
        assert orphaned[0]["signature"] == signed["signature"]  # it may be out already

        # mined again: 2f+1 see it in its new block, which the ledger records
        rpc.generatetoaddress(2, rpc.getnewaddress())
        moved = _everywhere(api, where, {"status": "minted"}, "moved and minted again")
        assert moved[0]["block_hash"] != signed["block_hash"]
        assert moved[0]["nHash"] == signed["nHash"] and moved[0]["sigHash"] == signed["sigHash"]
        assert len(app_sign_requests(api[0])) == 1  # never signed twice
        with pytest.raises(GatewayError, match="refuses"):
            gateway.mint(moved[0], relayer)
        assert gateway.token.functions.totalSupply().call() == supply
