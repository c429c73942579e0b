"""The node's watches over a real ledger state with the bridge: what the Bitcoin watch saw
is submitted, sent again until the ledger holds this validator's vote; a final deposit
whose block left the chain is voted orphaned; the gateway watch marks used
authorisations; a Bitcoin or EVM node that fails is logged and asked again while the
watch keeps running."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.bridge.test_app import NONCE, TO, bridge, ready  # noqa: F401 (`ready` is a fixture)
from tests.bridge.test_watcher import FakeChain
from tests.ledger.conftest import Tx, run_block
from tssnode.bridge.hashes import g_hash, p_hash, s_hash
from tssnode.bridge.records import ORPHANED, outpoint
from tssnode.bridge.transactions import DepositAddressRequest, DepositObserved, DepositOrphaned
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.state import LedgerState
from tssnode.node import watch
from tssnode.node.evmwatch import GatewayWatch
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


def test_a_final_deposit_whose_block_left_the_chain_is_voted_orphaned(
    funded: tuple[LedgerState, FakeChain], keys: list[IdentityKey], tx: Tx
) -> None:
    st_, chain = funded
    watches = [
        BitcoinWatch(lambda: bridge(st_), lambda _: b"", k.public_bytes(), lambda: chain)
        for k in keys
    ]
    trio.run(watches[0].look, chain)
    ((_, (obs, _)),) = watches[0].pending.items()
    assert run_block(st_, *(tx(k, obs) for k in keys[:3])) == ()
    op = outpoint(obs.txid, obs.vout)
    trio.run(watches[0].look, chain)
    assert watches[0].depths[op] == 6 and watches[0].pending == {}
    # a longer branch from below the deposit's block, without the payment
    chain.fork(1)
    for _ in range(7):
        chain.mine(branch="b")
    votes: list[tuple[IdentityKey, Any]] = []
    for k, w in zip(keys, watches, strict=True):
        w.submit = lambda p, k=k: votes.append((k, p)) or b""  # type: ignore[method-assign]
        trio.run(w.look, chain)
    assert {type(p) for _, p in votes} == {DepositOrphaned}
    assert len(votes) == 4 and watches[0].depths[op] == 0
    assert run_block(st_, *(tx(k, p) for k, p in votes[:3])) == ()
    assert bridge(st_).deposits[op].status == ORPHANED
    trio.run(watches[0].look, chain)
    assert watches[0].pending == {}  # held: nothing is sent again


def test_the_gateway_watch_marks_used_authorisations_and_survives_a_failing_node(
    funded: tuple[LedgerState, FakeChain], keys: list[IdentityKey], tx: Tx, caplog
) -> None:
    from tests.ledger.conftest import real_signature
    from tssnode.bridge.transactions import MintSigned

    st_, chain = funded
    w = BitcoinWatch(lambda: bridge(st_), lambda _: b"", keys[0].public_bytes(), lambda: chain)
    trio.run(w.look, chain)
    ((_, (obs, _)),) = w.pending.items()
    run_block(st_, *(tx(k, obs) for k in keys[:3]))
    dep = bridge(st_).deposits[outpoint(obs.txid, obs.vout)]
    asked: list[bytes] = []
    used: set[bytes] = set()

    class View:
        def minted(self, n: bytes) -> bool:
            asked.append(n)
            return n in used

        def supply(self) -> int:
            return 49_990_000 if used else 0

    connects = 0

    def connect(cfg: Any) -> View:
        nonlocal connects
        connects += 1
        if connects == 1:
            raise ConnectionRefusedError(111, "Connection refused")
        return View()

    g = GatewayWatch(lambda: bridge(st_), connect, poll=0.01)
    trio.run(g.look, View())
    assert asked == []  # nothing signed: nothing to ask
    sig = real_signature(dep.sig_hash, seed=7)
    assert run_block(st_, tx(keys[0], MintSigned(obs.txid, obs.vout, sig))) == ()
    trio.run(g.look, View())
    assert asked == [dep.n_hash] and g.minted == set()
    used.add(dep.n_hash)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(g.run)
            with trio.fail_after(30):
                while not g.minted:  # noqa: ASYNC110 (the state it sets is what is tested)
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert g.minted == {dep.n_hash} and g.errors == 1 and connects == 2
    assert g.supply == 49_990_000
    assert "gateway watch: ConnectionRefusedError" in caplog.text
    n_asked = len(asked)
    trio.run(g.look, View())
    assert len(asked) == n_asked  # once used, not asked again


def test_no_bitcoin_node_is_asked_before_the_bridge_is_set_up(
    genesis: Any, keys: list[IdentityKey]
) -> None:
    from tests.bridge.test_app import APPS

    st_ = LedgerState.from_genesis(genesis, APPS)
    made = 0

    def source() -> Any:
        nonlocal made
        made += 1
        raise AssertionError("asked")

    w = BitcoinWatch(lambda: bridge(st_), lambda _: b"", keys[0].public_bytes(), source, poll=0.01)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(w.run)
            await trio.sleep(0.1)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert made == 0 and w.errors == 0


def test_a_release_with_a_bad_signature_never_reaches_the_bitcoin_node(
    ready: LedgerState,  # noqa: F811
    keys: list[IdentityKey],
    tx: Tx,
    caplog,
) -> None:
    """The ledger takes only signatures that verify, but the broadcast does not trust that
    alone: Bitcoin Core's engine checks every input first. A release whose signed bytes
    carry a corrupted signature (as a faulty signer or a damaged store would give) is
    logged and never handed to testmempoolaccept or sendrawtransaction; the intact one is."""
    from dataclasses import replace

    from tests.bridge.test_releases import _burn, _deposit, _fees, _setup, _sign_all
    from tssnode.bridge.records import R_SIGNED
    from tssnode.bridge.watcher import Scanner

    b = bridge(ready)
    _deposit(ready, keys, tx, b"\x01" * 32, b"\xa1" * 32, 40_000_000)
    _setup(ready, keys, tx)
    _fees(ready, keys, tx, 10, 10, 10)
    run_block(ready, *(tx(k, _burn(7, 20_000_000)) for k in keys[:3]))
    _sign_all(ready, keys, tx, 1, 0)
    ((key, rel),) = b.releases.items()
    assert rel.status == R_SIGNED

    calls: list[str] = []

    class Node:
        def testmempoolaccept(self, raw: list[str]) -> list[dict[str, Any]]:
            calls.append("testmempoolaccept")
            return [{"allowed": True}]

        def sendrawtransaction(self, raw: str) -> str:
            calls.append("sendrawtransaction")
            return "txid"

    w = BitcoinWatch(lambda: b, lambda _: b"", keys[0].public_bytes(), lambda: FakeChain())
    scanner = Scanner(6)
    sig = rel.signatures[0]
    assert sig is not None
    at = rel.signed_tx.index(sig.r.to_bytes(32, "big"))  # (r, inside the DER signature)
    bad = bytearray(rel.signed_tx)
    bad[at + 10] ^= 0x01
    b.releases[key] = replace(rel, signed_tx=bytes(bad))
    trio.run(w._broadcast, Node(), b, [b.releases[key]], scanner, 0.0)
    assert calls == [] and "is not broadcast" in caplog.text
    b.releases[key] = rel
    w.broadcast_at.clear()
    trio.run(w._broadcast, Node(), b, [rel], scanner, 0.0)
    assert calls == ["testmempoolaccept", "sendrawtransaction"]
