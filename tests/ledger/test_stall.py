"""The stall under a burst (issue 12), at the replica and service level: the causes found
on a real four-node network, each pinned by a test that fails on the code that stalled.

1. Every tick, every replica re-sent up to 64 waiting requests (to the primary, or to
   everyone during a view change): a burst made more frames than the transport could send.
2. One first-in-first-out send queue held votes and those requests alike, without bound:
   the view-change messages waited behind thousands of stale requests.
3. A replica that joined view v+1 kept its timer for view v's NEW-VIEW, which then pushed
   it on to v+2 before v+1's NEW-VIEW could arrive.
"""

from __future__ import annotations

import trio

from tests.ledger.harness import keygen_tx
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.messages import RequestFrame, StatusRequest
from tssnode.ledger.replica import Replica
from tssnode.ledger.service import MAX_QUEUED_REQUESTS, _Lanes
from tssnode.ledger.transactions import make_tx
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import KeygenRequest
from tssnode.testing.memstore import MemoryStore
from tssnode.testing.pbftsim import SimNetwork


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []
        self.timers: dict[str, float] = {}

    def send(self, to: bytes, data: bytes) -> None:
        self.sent.append((to, data))

    def broadcast(self, data: bytes) -> None:
        self.sent.append((None, data))

    def set_timer(self, name: str, delay: float) -> None:
        self.timers[name] = delay

    def cancel_timer(self, name: str) -> None:
        self.timers.pop(name, None)


def _requests(sent) -> int:
    return sum(1 for _, d in sent if b"tssnode.pbft.frame.request/" in d[:40])


def _backup_with_pending(keys: list[IdentityKey], genesis: Genesis, count: int):
    out = Recorder()
    backup = next(
        k
        for k in keys
        if Replica(k, genesis, MemoryStore(), Recorder(), apps=(KeyRegistry,)).primary()
        != k.public_bytes()
    )
    r = Replica(backup, genesis, MemoryStore(), out, apps=(KeyRegistry,))
    parties = tuple(sorted(r.chain.state.validators))
    for i in range(count):
        tx = make_tx(keys[i % 4], r.chain_id, KeygenRequest(1, parties, "insecure-test"),
                     expiry=r.height + 5, nonce=b"burst%04d" % i)  # fmt: skip
        r.receive(keys[i % 4].public_bytes(), RequestFrame(tx.to_bytes()).to_bytes())
    out.sent.clear()
    return r, out


def test_the_repair_of_waiting_requests_is_a_trickle(keys, genesis):
    """500 requests waiting at a backup: over 8 ticks it re-sends at most 16 every 2 ticks,
    all to the primary (the old code sent 64 a tick: 512)."""
    r, out = _backup_with_pending(keys, genesis, 500)
    assert len(r.pending) == 500
    for _ in range(8):
        r.on_timer("tick")
    sent = [(to, d) for to, d in out.sent if b"tssnode.pbft.frame.request/" in d[:40]]
    assert len(sent) == 4 * r.opt.resend_count == 64
    assert {to for to, _ in sent} == {r.primary()}
    assert len({d for _, d in sent}) == 64  # in turn, not the same 16 again and again


def test_during_a_view_change_the_trickle_goes_to_everyone(keys, genesis):
    r, out = _backup_with_pending(keys, genesis, 100)
    r.on_timer("request")  # the primary ordered nothing: change view
    assert not r.active
    out.sent.clear()
    for _ in range(4):
        r.on_timer("tick")
    relays = [(to, d) for to, d in out.sent if b"tssnode.pbft.frame.request/" in d[:40]]
    assert len(relays) == 2 * r.opt.resend_count and {to for to, _ in relays} == {None}


def test_a_replica_that_moves_on_forgets_the_older_views_timer(keys, genesis):
    """2f+1 view changes for view 1 arm the NEW-VIEW timer; f+1 for view 2 make the replica
    join view 2: the view-1 timer must go with it."""
    net = SimNetwork.make("stall-timer", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    r = net.nodes[ids[1]].replica
    assert r is not None
    r._set_timer("view-change", 4.0)
    r._start_view_change(2)
    assert r.view == 2 and "view-change" not in r._timers


def test_consensus_frames_go_out_before_queued_requests():
    lanes = _Lanes()
    req = [RequestFrame(b"r%d" % i).to_bytes() for i in range(3)]
    status = StatusRequest(5).to_bytes()
    for d in req:
        lanes.put(b"p", d)
    lanes.put(b"p", req[0])  # already waiting: not queued twice
    lanes.put(None, status)
    assert len(lanes) == 4

    async def drain():
        return [await lanes.get() for _ in range(4)]

    out = trio.run(drain)
    assert out[0] == (None, status)
    assert [d for _, d in out[1:]] == req
    lanes.put(b"p", req[0])  # sent already: may be queued again
    assert len(lanes) == 1


def test_queued_requests_are_bounded():
    lanes = _Lanes()
    for i in range(MAX_QUEUED_REQUESTS + 10):
        lanes.put(b"p", RequestFrame(b"%d" % i).to_bytes())
    assert len(lanes) == MAX_QUEUED_REQUESTS and lanes.dropped == 10


def test_a_burst_in_a_slow_network_is_ordered_without_a_view_change_storm():
    """300 requests at once, in a network with delays: every one is ordered and the views
    change at most a few times (the simulated replicas run the code above)."""
    net = SimNetwork.make("burst", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)
    for i in range(300):
        net.at(0.01 * (i % 10), lambda i=i: net.submit(ids[i % 4], keygen_tx(b"b%03d" % i)))
    net.run(
        120,
        stop=lambda: all(not r.pending for r in net.alive_replicas()) and net.now > 1,
    )
    rs = net.alive_replicas()
    assert all(not r.pending for r in rs)
    assert len({r.height for r in rs}) == 1
    assert max(r.view for r in rs) <= 2
