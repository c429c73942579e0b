"""Byzantine validators: an equivocating primary, a double-voting replica, and what
breaks with f + 1 faulty validators."""

from __future__ import annotations

from tests.ledger.harness import assert_consistent, keygen_tx
from tssnode.crypto.encoding import decode_any
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.envelope import decode_cached, sign
from tssnode.ledger.messages import (
    KIND_VIEW_CHANGE,
    NULL_BATCH,
    Batch,
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    ProposeFrame,
    VoteFrame,
)
from tssnode.registry.app import KeyRegistry
from tssnode.testing.pbftsim import SimNetwork


def primary_id(net: SimNetwork) -> bytes:
    return sorted(net.ids)[0]


def honest(net: SimNetwork, *bad: bytes):
    return [net.replica(i) for i in net.ids if i not in bad]


def equivocating_primary(key: IdentityKey, chain_id: bytes, targets: list[list[bytes]]):
    """Sends each group of replicas a different batch for the same (view, seq)."""

    def hook(me: bytes, to: bytes | None, data: bytes):
        frame = decode_any(data)
        if to is not None or not isinstance(frame, ProposeFrame):
            return [(to, data)]
        pp = PrePrepare.from_bytes(frame.pre_prepare.body)
        out = []
        for i, group in enumerate(targets):
            batch = frame.batch if i == 0 else Batch((b"\x80" * i,))
            signed = sign(key, chain_id, PrePrepare(pp.view, pp.seq, batch.digest))
            out += [(t, ProposeFrame(signed, batch).to_bytes()) for t in group]
        return out

    return hook


def test_equivocating_primary_is_caught_and_replaced() -> None:
    net = SimNetwork.make("equivocating-primary", 4, apps=(KeyRegistry,))
    bad = primary_id(net)
    others = [i for i in sorted(net.ids) if i != bad]
    # three different batches for three backups: no digest can gather 2f prepares
    net.interceptors[bad] = equivocating_primary(
        net.nodes[bad].key, net.genesis.chain_id, [[o] for o in others]
    )
    for i, who in enumerate(others):
        net.submit(who, keygen_tx(b"r%d" % i))
    good = honest(net, bad)
    net.run(60, stop=lambda: all(r.height >= 3 and not r.pending for r in good))
    assert all(r.view >= 1 and r.active for r in good), "a view change replaced the primary"
    assert_consistent(good)
    assert all(not r.pending for r in good)
    for r in good:  # every honest replica kept evidence against the primary
        assert any(ev.culprit == bad for ev in r.evidence())
    # and the evidence reached the ledger
    state = good[0].chain.state
    assert any(m.culprit == bad for m in state.misbehaviour.values())


def double_voter(key: IdentityKey, chain_id: bytes, victims: set[bytes]):
    """Besides its real commits and prepares, sends `victims` conflicting ones."""

    def hook(me: bytes, to: bytes | None, data: bytes):
        frame = decode_cached(data)
        out: list[tuple[bytes | None, bytes]] = [(to, data)]
        if to is None and isinstance(frame, VoteFrame):
            body = decode_any(frame.message.body)
            if isinstance(body, Commit):
                fake = Commit(body.view, body.seq, b"\xee" * 32)
            elif isinstance(body, Prepare):
                fake = Prepare(body.view, body.seq, b"\xee" * 32, body.pp_signature)
            else:
                return out
            out += [(v, VoteFrame(sign(key, chain_id, fake)).to_bytes()) for v in victims]
        return out

    return hook


def test_double_voter_changes_nothing_but_is_recorded() -> None:
    net = SimNetwork.make("double-voter", 4, apps=(KeyRegistry,))
    bad = sorted(net.ids)[2]
    victims = {i for i in net.ids if i != bad}
    net.interceptors[bad] = double_voter(net.nodes[bad].key, net.genesis.chain_id, victims)
    for i in range(3):
        net.submit(sorted(net.ids)[0], keygen_tx(b"d%d" % i))
    good = honest(net, bad)
    net.run(30, stop=lambda: all(not r.pending for r in net.alive_replicas()))
    assert assert_consistent(net.alive_replicas()) >= 1  # the double voter's chain too
    assert all(r.view == 0 for r in good)  # no view change was needed
    for r in good:
        assert any(ev.culprit == bad for ev in r.evidence())
    net.run(
        net.now + 10,
        stop=lambda: any(m.culprit == bad for m in good[0].chain.state.misbehaviour.values()),
    )
    records = [m for m in good[0].chain.state.misbehaviour.values() if m.culprit == bad]
    assert 1 <= len(records) <= len(good)  # one report per honest replica at most
    # and the reports did not feed themselves: the double voter's votes on the blocks
    # that carry them raised no further reports, so the chain went idle
    height = good[0].height
    net.run(net.now + 30)
    assert good[0].height == height


def test_f_plus_one_crashed_stops_progress_but_never_forks() -> None:
    """n = 4 tolerates f = 1. With 2 replicas down no quorum (3) can form: liveness is lost
    (the survivors time out, ask for view 1, and wait there: a NEW-VIEW needs 2f+1 view
    changes), nothing is committed that the others could contradict, and once one replica
    is back the view change completes and the chain moves on."""
    net = SimNetwork.make("f-plus-one-crash", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    net.submit(ids[0], keygen_tx(b"before"))
    net.run(5)
    assert {r.height for r in net.alive_replicas()} == {1}
    net.crash(ids[2])
    net.crash(ids[3])
    net.submit(ids[1], keygen_tx(b"stuck"))
    net.run(net.now + 120)
    survivors = net.alive_replicas()
    assert {r.height for r in survivors} == {1}, "no block without 2f+1"
    assert all(r.view == 1 and not r.active for r in survivors)
    net.restart(ids[2])
    net.run(net.now + 600, stop=lambda: all(r.height >= 2 for r in net.alive_replicas()))
    assert {r.height for r in net.alive_replicas()} == {2}
    assert all(r.view == 1 and r.active for r in net.alive_replicas())
    assert_consistent(net.alive_replicas())


def test_view_change_timeouts_back_off_exponentially() -> None:
    """n = 7 with the primaries of views 0 and 1 down: the first view change times out
    waiting for view 1's NEW-VIEW, and the wait for view 2 is twice as long (virtual
    clock of the simulation)."""
    net = SimNetwork.make("backoff", 7, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    net.crash(ids[0])
    net.crash(ids[1])
    delays: list[tuple[str, int, float]] = []
    watched = net.replica(ids[4])
    real = watched._set_timer

    def record(name: str, delay: float) -> None:
        delays.append((name, watched.view, delay))
        real(name, delay)

    watched._set_timer = record  # type: ignore[method-assign]
    net.submit(ids[3], keygen_tx(b"x"))
    net.run(200, stop=lambda: watched.height >= 1)
    assert watched.height == 1 and watched.view == 2
    T = net.options.view_timeout
    waits = [(view, d) for name, view, d in delays if name == "view-change"]
    assert waits == [(1, T), (2, 2 * T)]  # the wait for view 2's NEW-VIEW doubled
    assert watched.vc_attempts == 0  # progress resets the backoff
    assert watched._timeout() == T


def test_f_plus_one_byzantine_fork_is_detected_never_silent() -> None:
    """Two colluding byzantine validators out of 4 (the primary A and B) can make honest C
    commit batch X and honest D batch Y at the same height: PBFT's bound is f, and this is
    what breaks beyond it. It does not go unnoticed: C and D each hold the primary's two
    signed pre-prepares as evidence (their honest prepares cite them), and D, seeing 2f+1
    validators certify a checkpoint of a state other than its own, halts with
    ForkDetected instead of building on it."""
    net = SimNetwork.make("f-plus-one-byzantine", 4, apps=(KeyRegistry,))
    a, b, c, d = sorted(net.ids)
    chain_id = net.genesis.chain_id
    alt_pp: dict[tuple[int, int], bytes] = {}
    key_a, key_b = net.nodes[a].key, net.nodes[b].key

    def hook_a(me: bytes, to: bytes | None, data: bytes):
        frame = decode_cached(data)
        if to is None and isinstance(frame, ProposeFrame):
            pp = PrePrepare.from_bytes(frame.pre_prepare.body)
            y = sign(key_a, chain_id, PrePrepare(pp.view, pp.seq, NULL_BATCH.digest))
            alt_pp[(pp.view, pp.seq)] = y.signature
            return [(b, data), (c, data), (d, ProposeFrame(y, NULL_BATCH).to_bytes())]
        return fork_votes(key_a, to, data)

    def fork_votes(key: IdentityKey, to: bytes | None, data: bytes):
        frame = decode_cached(data)
        if to is None and isinstance(frame, VoteFrame):
            body = decode_any(frame.message.body)
            if isinstance(body, Prepare | Commit) and (body.view, body.seq) in alt_pp:
                if isinstance(body, Prepare):
                    y = Prepare(
                        body.view, body.seq, NULL_BATCH.digest, alt_pp[(body.view, body.seq)]
                    )
                else:
                    y = Commit(body.view, body.seq, NULL_BATCH.digest)
                fake = VoteFrame(sign(key, chain_id, y)).to_bytes()
                return [(a if key is key_b else b, data), (c, data), (d, fake)]
        return [(to, data)]

    net.interceptors[a] = hook_a
    net.interceptors[b] = lambda me, to, data: fork_votes(key_b, to, data)
    for i in range(8):
        net.at(i * 0.5, lambda i=i: net.submit(c, keygen_tx(b"f%d" % i)))
    net.run(40)
    rc, rd = net.replica(c), net.replica(d)
    forked = [
        h
        for h in range(1, min(rc.height, rd.height) + 1)
        if rc.chain.record(h).block.hash != rd.chain.record(h).block.hash  # type: ignore[union-attr]
    ]
    assert forked, "the attack beyond f succeeded in splitting the honest replicas"
    for r in (rc, rd):
        assert any(ev.culprit == a for ev in r.evidence()), "evidence against the primary"
    assert rd.halted and "certified another state" in str(rd.fork)


def test_a_primary_answers_repeated_view_changes_with_one_new_view_per_period() -> None:
    """A validator that keeps re-sending its VIEW-CHANGE for the view the primary already
    started gets the NEW-VIEW again at most once per `revote_every` ticks. Before, every
    re-sent view change (and gossip duplicates of it) got a 30-50 KB NEW-VIEW back: 9 MB
    per 10 s from one primary under load, which kept the view changes of n = 7 from ever
    converging (issue 12)."""
    net = SimNetwork.make("new-view-resend", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    net.crash(ids[0])  # the primary of view 0
    net.submit(ids[1], keygen_tx(b"x"))
    net.run(60, stop=lambda: all(r.view == 1 and r.active for r in net.alive_replicas()))
    primary = next(r for r in net.alive_replicas() if r.is_primary)
    backup = next(r for r in net.alive_replicas() if not r.is_primary)
    own = backup.journal.vote(KIND_VIEW_CHANGE, 1, 0)
    assert own is not None and primary.view == 1 and primary.active
    sent: list[bytes] = []

    def record(me: bytes, to: bytes | None, data: bytes) -> list[tuple[bytes | None, bytes]]:
        if to == backup.me:
            sent.append(data)
        return [(to, data)]

    net.interceptors[primary.me] = record
    for _ in range(primary.opt.revote_every):  # (it may have answered one just now)
        primary._tick()
    for _ in range(50):  # no tick passes in between
        primary.receive(backup.me, VoteFrame(own.message).to_bytes())
    new_views = [d for d in sent if _is_new_view(d)]
    assert len(new_views) == 1
    for _ in range(primary.opt.revote_every):
        primary._tick()
    primary.receive(backup.me, VoteFrame(own.message).to_bytes())
    assert len([d for d in sent if _is_new_view(d)]) == 2  # a period later: once more


def _is_new_view(data: bytes) -> bool:
    frame = decode_any(data)
    return isinstance(frame, VoteFrame) and isinstance(decode_any(frame.message.body), NewView)
