"""The live-network scenarios of `live_scenarios.py`, run against the HTTP API test double
(which finishes keygen and signing by itself) so that the scenarios are known to work
before the node daemon exists. The multi-node tests run them against real nodes."""

from __future__ import annotations

import pytest

from tests.tui import live_scenarios
from tssnode.testing.fakenode import TOKEN, URL, FakeNode, load
from tui.model import Signature

pytestmark = pytest.mark.anyio
N3 = load("validators")[2]["peer_id"]


@pytest.mark.parametrize("new_key_ids", [False, True], ids=["same-id", "request-id"])
async def test_keygen_then_sign_and_verify(new_key_ids):
    node = FakeNode(auto=True, new_key_ids=new_key_ids)
    key = await live_scenarios.keygen_becomes_active(
        URL, TOKEN, threshold=2, within=10, factory=node.client
    )
    assert node.keys[key.key_id]["status"] == "active"
    sig = await live_scenarios.sign_and_verify(
        URL, TOKEN, key_id=key.key_id, hash_name="keccak256", within=10, factory=node.client
    )
    assert node.signatures[sig.signature_id]["r"] == sig.r


async def test_a_killed_peer_goes_red():
    node = FakeNode()
    await live_scenarios.peer_goes_red(
        URL,
        TOKEN,
        peer_id=N3,
        kill=lambda: node.set_peer(N3, False),
        within=5,
        factory=node.client,
    )


def test_verify_checks_r_s_and_v():
    first = load("signatures")[0]  # "hello", sha256, the group key itself (no path)
    key = next(k for k in load("keys") if k["key_id"] == first["key_id"])
    assert first["path"] is None
    live_scenarios.verify(key["public_key"], Signature.from_json(first))
    for wrong, why in (
        ({"digest": "00" * 32}, "does not verify"),
        ({"v": 27 + 28 - first["v"]}, "does not recover"),
    ):
        with pytest.raises(live_scenarios.ScenarioFailed, match=why):
            live_scenarios.verify(key["public_key"], Signature.from_json({**first, **wrong}))
