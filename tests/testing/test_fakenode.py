"""The console's test double of a node's API (`tssnode.testing.fakenode`) answers in the
node's own shapes, through the real client: if it drifted from the schema, the console
tests would pass against answers no node gives."""

from __future__ import annotations

import pytest
from ecdsa import SECP256k1, VerifyingKey

from tssnode import schema
from tssnode.api.client import ApiError, ApiUnavailable, Calls
from tssnode.testing.fakenode import TOKEN, URL, FakeNode

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_every_answer_validates_as_the_node_s_model() -> None:
    node = FakeNode()
    c = node.client(URL, TOKEN)
    status = await c.call(Calls.status())
    assert status.height == node.status["height"]
    assert await c.call(Calls.validators()) and await c.call(Calls.peers())
    keys = await c.call(Calls.keys())
    assert {k.key_id for k in keys} == set(node.keys)
    for session in await c.call(Calls.sessions()):
        await c.call(Calls.session(session.session_id))
    blocks = await c.call(Calls.blocks(0, 1000))
    assert [b.height for b in blocks] == sorted(b["height"] for b in node.blocks)
    for height in node.blocks_full:
        await c.call(Calls.block(int(height)))
    for sig_id in node.signatures:
        await c.call(Calls.signature(sig_id))
    for event in node.script:  # the frozen event stream, as the node validates its own
        schema.parse_event(event)
    await c.aclose()


async def test_a_signature_it_completes_verifies_under_the_key() -> None:
    node = FakeNode()
    c = node.client(URL, TOKEN)
    key = next(k for k in node.keys.values() if k["status"] == "active")
    accepted = await c.call(Calls.sign(key["key_id"], message="hello", hash="sha256"))
    assert (await c.call(Calls.signature(accepted.signature_id))).status == "pending"
    node.complete_signature(accepted.signature_id)
    sig = await c.call(Calls.signature(accepted.signature_id))
    assert sig.status == "done" and sig.r and sig.s
    pub = VerifyingKey.from_string(bytes.fromhex(key["public_key"]), curve=SECP256k1)
    assert pub.verify_digest(bytes.fromhex(sig.r + sig.s), bytes.fromhex(accepted.digest))
    await c.aclose()


async def test_it_refuses_as_the_node_does_and_goes_down_when_told() -> None:
    node = FakeNode()
    c = node.client(URL, TOKEN)
    with pytest.raises(ApiError) as refused:
        await c.call(Calls.key("no-such-key"))
    assert refused.value.status == 400  # (not an id: 32 or 64 hex characters)
    with pytest.raises(ApiError) as refused:
        await c.call(Calls.key("ab" * 16))
    assert refused.value.status == 404
    node.go_down()
    with pytest.raises(ApiUnavailable):
        await c.call(Calls.status())
    node.come_back()
    assert (await c.call(Calls.status())).peer_id == node.status["peer_id"]
    await c.aclose()
