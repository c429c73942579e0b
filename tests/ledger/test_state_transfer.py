"""Catching up: a replica down for longer than the checkpoint window, a brand-new node that
knows only its bootstrap peers (then joins the validator set), and a peer that serves
tampered blocks."""

from __future__ import annotations

import hashlib

from tests.ledger.harness import assert_consistent, keygen_tx
from tssnode.crypto.encoding import decode_any
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.blocks import Block, BlockRecord
from tssnode.ledger.messages import Batch, BlocksFrame
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import join_payload
from tssnode.testing.pbftsim import SimNetwork


def commit_blocks(net: SimNetwork, via: bytes, count: int, tag: bytes) -> None:
    target = net.replica(via).height + count
    for i in range(count):
        net.at(net.now + 0.05 * i, lambda i=i: net.submit(via, keygen_tx(tag + b"%d" % i)))
    net.run(net.now + 600, stop=lambda: net.replica(via).height >= target)
    assert net.replica(via).height >= target


def test_replica_down_beyond_the_window_catches_up_by_state_transfer() -> None:
    net = SimNetwork.make("late", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    late = ids[3]
    net.partition({late}, set(ids[:3]))
    window = net.genesis.window
    commit_blocks(net, ids[1], 3 * window + 3, b"w")
    others = [net.replica(i) for i in ids[:3]]
    assert all(r.low >= 2 * window for r in others)  # checkpoints moved the window on
    assert net.replica(late).height == 0
    net.heal()
    net.run(net.now + 60, stop=lambda: net.replica(late).height >= others[0].height)
    r = net.replica(late)
    assert r.height == others[0].height
    assert r.stats.transferred >= 3 * window  # by fetching certified blocks, not by PBFT
    assert r.low == others[0].low  # and the stable checkpoint it verified against
    assert r.chain.state.digest() == others[0].chain.state.digest()
    # it takes part again: with another replica down, progress needs its votes
    net.crash(ids[2])
    commit_blocks(net, ids[0], 2, b"after")
    assert_consistent([net.replica(i) for i in ids if i != ids[2]])


def test_message_log_is_garbage_collected_at_stable_checkpoints() -> None:
    net = SimNetwork.make("gc", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    commit_blocks(net, ids[0], 21, b"g")
    net.run(net.now + 5)
    for i in ids:
        r = net.replica(i)
        assert r.low == 20
        assert all(seq > r.low for seq in r.slots)
        assert all(seq >= r.low for seq in r.checkpoints)
        assert all(key[2] > r.low or key[0] in (5, 6) for key in r.journal.votes)
        assert all(seq > r.low for seq in r.journal.prepared)
        assert r.stable_cert is not None and r.stable_cert.seq == 20


def test_new_node_learns_genesis_and_chain_then_joins() -> None:
    net = SimNetwork.make("join", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    commit_blocks(net, ids[0], 10, b"pre")
    newcomer = IdentityKey.from_seed(hashlib.sha256(b"newcomer").digest())
    node = net.join(newcomer, bootstrap=ids[:2])  # no genesis, no chain id: TOFU on 2 peers
    net.run(
        net.now + 10,
        stop=lambda: node.replica is not None and node.replica.height >= net.replica(ids[0]).height,
    )
    obs = node.replica
    assert obs is not None and obs.genesis == net.genesis
    assert obs.height == net.replica(ids[0]).height and not obs.is_validator
    assert obs.chain.state.digest() == net.replica(ids[0]).chain.state.digest()
    # 2f+1 validators vote it in; it becomes a validator at the next window boundary
    payload = join_payload(newcomer, net.genesis.chain_id, "v4")
    for i in ids[:3]:
        net.submit(i, lambda r, p=payload: r.submit_payload(p, nonce=r.me[:8]))
    net.run(net.now + 30, stop=lambda: net.replica(ids[0]).chain.state.header.activation > 0)
    activation = net.replica(ids[0]).chain.state.header.activation
    assert activation > 0
    commit_blocks(net, ids[0], activation - net.replica(ids[0]).height + 1, b"fill")
    net.run(net.now + 5)
    assert obs.is_validator and len(obs.config()) == 5
    # with one of the old validators down, n = 5 needs 4: the newcomer's votes count
    net.crash(ids[3])
    before = obs.height
    commit_blocks(net, ids[0], 3, b"five")
    net.run(net.now + 5, stop=lambda: obs.height >= before + 3)
    assert obs.height >= before + 3
    live = [net.replica(i) for i in net.ids if net.nodes[i].alive]
    assert_consistent(live)
    last = obs.chain.record(obs.height)
    assert last is not None
    signers = {s for s, _ in last.certificate.votes}
    assert len(signers) == 4 and newcomer.public_bytes() in signers


def test_observer_rejects_a_genesis_it_did_not_ask_for() -> None:
    net = SimNetwork.make("join-chain-id", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    node = net.join(IdentityKey.from_seed(b"\x01" * 32), bootstrap=ids, chain_id=b"\x00" * 32)
    net.run(5)
    assert node.replica is None  # no peer has that chain


def test_tampered_blocks_from_a_peer_are_refused() -> None:
    net = SimNetwork.make("tamper", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    late, liar = ids[3], ids[2]
    net.partition({late}, set(ids[:3]))
    commit_blocks(net, ids[0], 20, b"t")

    def tamper(me: bytes, to: bytes | None, data: bytes):
        frame = decode_any(data)
        if isinstance(frame, BlocksFrame) and frame.records:
            recs = [BlockRecord.from_bytes(r) for r in frame.records]
            b = recs[0].block
            forged = Block(b.chain_id, b.height, b.prev_hash, Batch(()), (), b.state_digest)
            recs[0] = BlockRecord(forged, recs[0].certificate, recs[0].proposer)
            return [(to, BlocksFrame(tuple(r.to_bytes() for r in recs)).to_bytes())]
        return [(to, data)]

    r = net.replica(late)
    refused: list[str] = []

    def withhold(me: bytes, to: bytes | None, data: bytes):
        # the honest peers serve blocks only once the liar's have been refused, so the
        # late replica certainly meets the forged ones first
        if not refused and f"state transfer from {liar.hex()[:8]}" in r.stats.last_drop:
            refused.append(r.stats.last_drop)
        if not refused and isinstance(decode_any(data), BlocksFrame):
            return []
        return [(to, data)]

    net.interceptors[liar] = tamper
    for honest in ids[:2]:
        net.interceptors[honest] = withhold
    net.heal()
    net.run(net.now + 60, stop=lambda: r.height >= net.replica(ids[0]).height)
    assert r.height == net.replica(ids[0]).height
    assert refused  # (and the honest peers' blocks were only sent after that)
    assert_consistent([net.replica(i) for i in ids])


def test_a_decided_join_takes_effect_on_an_idle_chain() -> None:
    net = SimNetwork.make("idle-join", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    commit_blocks(net, ids[0], 2, b"pre")
    newcomer = IdentityKey.from_seed(hashlib.sha256(b"idle newcomer").digest())
    node = net.join(newcomer, bootstrap=ids[:2])
    payload = join_payload(newcomer, net.genesis.chain_id, "v4")
    for i in ids[:3]:
        net.submit(i, lambda r, p=payload: r.submit_payload(p, nonce=r.me[:8]))
    # no other transaction: the primary orders empty blocks up to the activation
    net.run(net.now + 60, stop=lambda: node.replica is not None and node.replica.is_validator)
    obs = node.replica
    assert obs is not None and obs.is_validator and len(obs.config()) == 5
    net.run(net.now + 10)
    assert obs.chain.state.header.activation == 0  # the new set is in force ...
    assert newcomer.public_bytes() in obs.chain.state.validators
    records = [obs.chain.record(h) for h in range(1, obs.height + 1)]
    sizes = [len(r.block.batch.txs) for r in records if r is not None]
    last_votes = max(h for h, n in enumerate(sizes, start=1) if n)
    assert last_votes < obs.height and not any(sizes[last_votes:])  # empty blocks after
    height = obs.height
    net.run(net.now + 10)
    assert obs.height == height  # ... and no empty block after it: the chain is idle
    assert_consistent([net.replica(i) for i in ids] + [obs])


def test_catch_up_in_frames_bounded_by_bytes(monkeypatch) -> None:
    """A BlocksFrame holds at most MAX_BLOCKS_FRAME_BYTES of records (64 blocks of up to
    768 KiB would pass the net layer's 4 MiB frame limit, and a replica behind by large
    blocks could never catch up): here the bound is a few blocks' worth, and a replica
    behind by many blocks still catches up, frame by frame."""
    from tssnode.ledger.messages import BlocksFrame
    from tssnode.ledger.replica import catchup

    sent: list[int] = []
    original = BlocksFrame.to_bytes

    def record_size(self) -> bytes:
        sent.append(sum(len(r) for r in self.records))
        return original(self)

    monkeypatch.setattr(catchup, "MAX_BLOCKS_FRAME_BYTES", 6000)
    monkeypatch.setattr(BlocksFrame, "to_bytes", record_size)
    net = SimNetwork.make("bounded-frames", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    late = ids[3]
    net.partition({late}, set(ids[:3]))
    commit_blocks(net, ids[1], 24, b"big")
    net.heal()
    others = [net.replica(i) for i in ids[:3]]
    net.run(net.now + 120, stop=lambda: net.replica(late).height >= others[0].height)
    assert net.replica(late).height == others[0].height
    assert len(sent) > 1 and max(sent) <= 6000 + 3000  # (one record may pass the bound alone)
    assert_consistent([net.replica(i) for i in ids])


def test_each_node_notes_when_it_committed_a_block_and_how_long_that_took() -> None:
    """A block this node ordered is noted with its commit time and the time from the first
    message about its sequence number to the commit (virtual clock here); a block fetched
    by state transfer with its arrival time and no latency. Notes are no part of the
    block: every replica has the same hashes, whatever it noted."""
    net = SimNetwork.make("notes", 4, apps=(KeyRegistry,))
    net.faults.min_delay, net.faults.max_delay = 0.05, 0.05  # every hop takes 50 ms
    ids = sorted(net.ids)
    late = ids[3]
    net.partition({late}, set(ids[:3]))
    start = net.now
    commit_blocks(net, ids[1], 3 * net.genesis.window, b"n")
    ordered = net.replica(ids[1])
    notes = [ordered.chain.note(h) for h in range(1, ordered.height + 1)]
    assert all(n is not None for n in notes)
    for n in notes:
        assert n is not None and n.latency_ms is not None
        assert start * 1000 <= n.committed_ms <= net.now * 1000
        assert 100 <= n.latency_ms < 10_000  # at least prepare + commit: two 50 ms hops
    net.heal()
    r = net.replica(late)
    healed = net.now
    net.run(net.now + 60, stop=lambda: r.height >= ordered.height)
    fetched = [r.chain.note(h) for h in range(1, ordered.height - net.genesis.window)]
    assert fetched and all(n is not None and n.latency_ms is None for n in fetched)
    assert all(n is not None and n.committed_ms >= healed * 1000 for n in fetched)
    assert_consistent([net.replica(i) for i in ids])
