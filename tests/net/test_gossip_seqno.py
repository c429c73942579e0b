"""A restarted node's gossip sequence numbers go on from where its last run's stopped.

py-libp2p seeds a pubsub's message seqno from the time in seconds and adds one per
message. A node publishes many messages a second, so a node restarted within its last
run's lead reused seqnos: its peers took the new messages for ones already seen (message
id = sender + seqno) or logged "Equivocation detected" about it (issue 12). `Gossip`
seeds the counter from the time in nanoseconds."""

from __future__ import annotations

import time

from tssnode.net import host as host_mod
from tssnode.net.admission import Admission
from tssnode.net.gossip import Gossip
from tssnode.net.identity import NodeIdentity


def _gossip(identity: NodeIdentity) -> Gossip:
    host = host_mod.build(identity, "/ip4/127.0.0.1/tcp/0", dial_timeout=5.0)
    return Gossip(host, "seqno-test", Admission(), lambda *_: True, ready_timeout=5.0)


def test_a_restarted_node_never_reuses_a_gossip_seqno() -> None:
    identity = NodeIdentity.generate()
    first = _gossip(identity)
    # the first run publishes 100 000 messages over half a second (a busy validator's
    # round messages, votes and blocks), then the node is killed and starts again at once
    started = first.pubsub.counter
    first.pubsub.counter += 100_000
    time.sleep(0.5)
    again = _gossip(identity)
    assert again.pubsub.counter > first.pubsub.counter > started
