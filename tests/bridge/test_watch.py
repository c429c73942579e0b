"""The node's Bitcoin watch over a real ledger state with the bridge: what it saw is
submitted, sent again until the ledger holds this validator's vote, and a Bitcoin node
that fails is logged and asked again while the watch keeps running."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.bridge.test_app import NONCE, TO, bridge, ready  # noqa: F401 (`ready` is a fixture)
from tests.bridge.test_watcher import FakeChain
from tests.ledger.conftest import Tx, run_block
from tssnode.bridge.hashes import g_hash, p_hash, s_hash
from tssnode.bridge.records import outpoint
from tssnode.bridge.transactions import DepositAddressRequest, DepositObserved
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.state import LedgerState
from tssnode.node import watch
from tssnode.node.watch import BitcoinWatch


@pytest.fixture
def funded(ready: LedgerState, keys: list[IdentityKey], tx: Tx) -> tuple[LedgerState, FakeChain]:  # noqa: F811
    """The bridge set up with one address, paid 0.6 BTC in a block 6 deep (confirmations 6)."""
    assert run_block(ready, tx(keys[0], DepositAddressRequest(TO, NONCE))) == ()
    g = g_hash(p_hash(b""), s_hash("Ethereum"), TO, NONCE)
    key_hash = bridge(ready).addresses[g].key_hash
    chain = FakeChain()
    chain.mine(("aa" * 32, [(60_000_000, key_hash)]))
    for _ in range(5):
        chain.mine()
    return ready, chain


def test_an_observation_is_sent_again_until_the_ledger_holds_the_vote(
    funded: tuple[LedgerState, FakeChain], keys: list[IdentityKey], tx: Tx, monkeypatch
) -> None:
    st_, chain = funded
    sent: list[Any] = []
    w = BitcoinWatch(lambda: bridge(st_), sent.append, keys[0].public_bytes(), lambda: chain)
    trio.run(w.look, chain)
    (obs,) = sent
    assert isinstance(obs, DepositObserved) and obs.value == 60_000_000
    trio.run(w.look, chain)
    assert len(sent) == 1  # not yet due again
    monkeypatch.setattr(watch, "RESEND", 0.0)
    trio.run(w.look, chain)
    assert sent == [obs, obs]  # lost before it was ordered? sent again
    assert run_block(st_, tx(keys[0], obs)) == ()  # now the ledger holds it
    trio.run(w.look, chain)
    assert len(sent) == 2 and w.pending == {}
    assert bridge(st_).observations[outpoint(obs.txid, obs.vout)].voters(obs.to_bytes()) == (
        keys[0].public_bytes(),
    )


def test_a_failing_bitcoin_node_is_logged_and_asked_again(
    funded: tuple[LedgerState, FakeChain], keys: list[IdentityKey], caplog
) -> None:
    st_, chain = funded
    sent: list[Any] = []
    seen = trio.Event()
    made = 0

    def submit(payload: Any) -> bytes:
        sent.append(payload)
        seen.set()
        return b""

    class Down:
        def getblockcount(self) -> int:
            raise ConnectionRefusedError(111, "Connection refused")

    def source() -> Any:
        nonlocal made
        made += 1
        return Down() if made == 1 else chain

    w = BitcoinWatch(lambda: bridge(st_), submit, keys[0].public_bytes(), source, poll=0.05)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(w.run)
            with trio.fail_after(30):  # (the look runs in a thread: real time, no MockClock)
                await seen.wait()
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert w.errors == 1 and "ConnectionRefusedError" in (w.last_error or "")
    assert "bitcoin watch: ConnectionRefusedError" in caplog.text
    assert made == 2 and len(sent) == 1  # a fresh connection, and the deposit seen
