"""The command line's test double (`tssnode.testing.fakecli.SyncNode`): the blocking client
reaches the fake node through it, and a request goes pending → ordered with a running
session → settled as a node's does, with a signature that verifies."""

from __future__ import annotations

import httpx
import pytest
from ecdsa import SECP256k1, VerifyingKey

from tssnode.api.client import ApiClient, ApiUnavailable
from tssnode.testing.fakecli import ACTIVE_KEY, SyncNode
from tssnode.testing.fakenode import TOKEN, URL


def _client(fake: SyncNode, url: str = URL) -> ApiClient:
    return ApiClient(url, TOKEN, transport=httpx.MockTransport(fake.handle))


def test_a_signature_is_ordered_then_settled_and_verifies() -> None:
    fake = SyncNode(settle_after=3)
    with _client(fake) as c:
        accepted = c.sign(ACTIVE_KEY, "hello")
        sig_id = accepted.signature_id
        assert c.signature(sig_id).status == "pending"  # poll 1: not ordered yet
        ordered = c.signature(sig_id)  # poll 2: in the next block, its session running
        assert ordered.status == "pending" and ordered.height is not None
        (session,) = [s for s in c.sessions() if s.request == sig_id]
        assert session.status == "running" and session.phase == "sign"
        done = c.signature(sig_id)  # poll 3: settled
        assert done.status == "done" and done.r and done.s
        key = c.key(ACTIVE_KEY)
        pub = VerifyingKey.from_string(bytes.fromhex(key.public_key), curve=SECP256k1)
        assert pub.verify_digest(bytes.fromhex(done.r + done.s), bytes.fromhex(accepted.digest))


def test_a_failing_node_names_the_check_and_the_culprit() -> None:
    fake = SyncNode(settle_after=2, fail="affg")
    with _client(fake) as c:
        sig_id = c.sign(ACTIVE_KEY, "hello").signature_id
        c.signature(sig_id)
        failed = c.signature(sig_id)
        assert failed.status == "failed" and failed.blame is not None
        assert failed.blame.check == "affg" and failed.blame.culprits


def test_another_address_is_refused_like_a_closed_port() -> None:
    with _client(SyncNode(), "http://127.0.0.1:9") as c, pytest.raises(ApiUnavailable):
        c.status()
