"""A deposit's way through four nodes (in one process, over the in-memory network):
a bridge key, the settings agreed, a deposit address, a deposit three validators saw;
then, with nobody asking, a validator asks the registry for the mint authorisation, the
signers presign and sign the digest the ledger computed, and every node's bridge holds
a signature that Ethereum's ecrecover (eth-keys) attributes to the mint authority."""

from __future__ import annotations

import pytest
import trio
from eth_keys import keys as eth

from tssnode.bridge.records import p2wpkh_script
from tssnode.bridge.transactions import DepositObserved
from tssnode.crypto.encoding import decode_any
from tssnode.registry.transactions import AppSignRequest
from tssnode.schema import sent

from .test_core import _start, _wait, keys  # noqa: F401 (`keys` is a fixture)

pytestmark = pytest.mark.trio


async def test_a_final_deposit_is_signed_without_anyone_asking(tmp_path, keys):  # noqa: F811
    async with trio.open_nursery() as nursery:
        cores = await _start(nursery, tmp_path, keys)
        req = await cores[0].request_keygen(1, None, "bridge")
        await _wait(
            lambda: all(getattr(c.key(req.key_id), "status", None) == "active" for c in cores)
        )
        key_id = cores[0].key(req.key_id).key_id
        settings = {
            "key_id": key_id, "chain_name": "Ethereum", "chain_id": 31337,
            "gateway": "0x" + "5f" * 20, "network": "regtest", "confirmations": 6,
            "fee_sats": 1000, "min_deposit_sats": 10_000,
        }  # fmt: skip
        for c in cores[:3]:
            await c.request_bridge_setup(settings)
        await _wait(lambda: all(sent(c.bridge_info())["set_up"] for c in cores))
        made, new = await cores[1].request_deposit_address("0x" + "70" * 20, None, None)
        view = sent(made)
        assert new
        await _wait(lambda: all(sent(c.deposit_addresses()) for c in cores))
        g = bytes.fromhex(view["gHash"][2:])
        script = p2wpkh_script(cores[0].bridge.addresses[g].key_hash)
        seen = DepositObserved(b"\x5a" * 32, 0, 50_000_000, script, b"\xbb" * 32, 120, g)
        for c in cores[:3]:
            c.submit(seen)
        txid = (b"\x5a" * 32)[::-1].hex()
        await _wait(
            lambda: all((sent(c.deposit(txid, 0)) or {}).get("status") == "signed" for c in cores)
        )
        dep = sent(cores[3].deposit(txid, 0))
        assert dep is not None and all(sent(c.deposit(txid, 0)) == dep for c in cores)
        sig = dep["signature"]
        vrs = (sig["v"] - 27, int(sig["r"], 16), int(sig["s"], 16))
        signer = eth.Signature(vrs=vrs).recover_public_key_from_msg_hash(
            bytes.fromhex(dep["sigHash"][2:])
        )
        assert signer.to_checksum_address() == sent(cores[2].bridge_info())["mint_authority"]
        assert dep["amount"] == 50_000_000 - 1000
        # one validator asked, once
        asks = [
            (h, r)
            for h, r in cores[0].registry.requests.items()
            if r.kind == "sign" and isinstance(decode_any(r.payload), AppSignRequest)
        ]
        assert len(asks) == 1 and asks[0][1].status == "done"
        # and `GET /signatures/{id}` shows it as any signature (it answered 500 once)
        found = cores[2].signature(asks[0][0].hex())
        assert found is not None
        view = found.to_json()
        assert view["status"] == "done"
        assert "0x" + view["digest"] == dep["sigHash"] and len(view["signers"]) == 2
        nursery.cancel_scope.cancel()
