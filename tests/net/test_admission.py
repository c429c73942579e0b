"""Admission: garbage, oversized and truncated frames on the direct protocol, and envelopes
from a peer that is not a validator (direct, gossip, peer exchange), are dropped and
counted; the stream is closed and the node keeps working. The rogue here is a follower
(admitted to read the chain, nothing else); a peer in no tier never gets past the
handshake (tests/net/test_hostile_peers.py)."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.net.conftest import eventually
from tssnode.net import direct as direct_mod
from tssnode.net import streams
from tssnode.net.errors import FrameError
from tssnode.net.identity import NodeIdentity
from tssnode.net.node import NetNode
from tssnode.net.wire import Ack, Envelope, SignedEnvelope, frame, read_message
from tssnode.testing.netcluster import TEST_NET, LocalCluster, listen_addr
from tssnode.testing.ports import free_port

SESSION = b"admission"


@pytest.fixture
async def rogue(net_cluster: LocalCluster, tmp_path: Path) -> AsyncIterator[NetNode]:
    """A node outside the cluster's allow-list but a follower of node 0 (so it may connect
    and read the chain), bootstrapped to node 0 and connected."""
    from tssnode.config import NetConfig

    target = net_cluster[0]
    identity = NodeIdentity.generate()
    target.admission.set_followers([identity.peer_id])
    config = NetConfig(
        listen=listen_addr(free_port()),
        bootstrap=(target.addrs[0],),
        **{**TEST_NET, "allowed_peers": tuple(net_cluster.peer_ids)},
    )
    node = NetNode(net_cluster.network_id, tmp_path / "rogue", config, identity=identity)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        with trio.fail_after(20):
            while not (node.peers.is_connected(target.peer_id_bytes)):
                await node.peers.wait_changed()
        yield node
        nursery.cancel_scope.cancel()


async def exchange(rogue: NetNode, target: NetNode, data: bytes, *, eof: bool = False) -> bytes:
    """Write raw bytes on a direct stream; the answer (an ack frame) or b"" if the stream
    was closed or reset without one."""
    async with streams.opened(rogue.host, target.peer_id_bytes, direct_mod.PROTOCOL, 5) as s:
        await s.write(data)
        if eof:
            await s.close()
        try:
            ack = await read_message(s, Ack, 1024, 5)
        except FrameError:
            return b""
        return ack.status.encode()


def sealed(by: NodeIdentity, env: Envelope, *, signature: bytes | None = None) -> bytes:
    sig = signature if signature is not None else by.sign(SignedEnvelope.signing_bytes(env))
    return frame(SignedEnvelope(env, sig).to_bytes())


@pytest.mark.trio
async def test_bad_frames_are_dropped_and_counted(
    net_cluster: LocalCluster, rogue: NetNode
) -> None:
    target = net_cluster[0]
    assert await exchange(rogue, target, frame(b"\xff\xfe garbage, not CBOR")) == b""
    assert await exchange(rogue, target, frame(Ack(1, "ok").to_bytes())) == b""  # wrong type
    assert await exchange(rogue, target, struct.pack(">I", 100 << 20) + b"big") == b""
    assert await exchange(rogue, target, struct.pack(">I", 1000) + b"short", eof=True) == b""
    assert await exchange(rogue, target, b"\x00\x00", eof=True) == b""
    from_rogue = target.admission.from_peer(rogue.peer_id_bytes)
    assert (from_rogue["malformed"], from_rogue["oversized"], from_rogue["truncated"]) == (2, 1, 2)

    # the node carries on: direct and broadcast traffic inside the cluster still flows
    await net_cluster[1].send(target.peer_id, SESSION, 1, b"still here")
    await target.broadcast(SESSION, 2, b"and talking")
    got = await net_cluster[2].collect_broadcasts(SESSION, 2, [target.peer_id], within=10)
    assert got[target.peer_id].payload == b"and talking"


@pytest.mark.trio
async def test_envelopes_from_outside_are_refused(
    net_cluster: LocalCluster, rogue: NetNode
) -> None:
    target, other = net_cluster[0], net_cluster[1]
    drops = target.admission.drops
    me = rogue.identity
    env = Envelope(net_cluster.network_id, SESSION, 1, me.peer_id, target.peer_id_bytes, 1, b"hi")
    assert await exchange(rogue, target, sealed(me, env)) == b"refused:sync_only"

    wrong_net = Envelope("other-net", SESSION, 1, me.peer_id, target.peer_id_bytes, 2, b"hi")
    assert await exchange(rogue, target, sealed(me, wrong_net)) == b"refused:wrong_network"

    # claiming to be node 1 does not work: the sender must be the authenticated peer
    forged = Envelope(
        net_cluster.network_id, SESSION, 1, other.peer_id_bytes, target.peer_id_bytes, 3, b"hi"
    )
    assert await exchange(rogue, target, sealed(me, forged)) == b"refused:sender_mismatch"

    # admitted as a validator (which reconnects it, for gossip), but with a signature that
    # does not verify
    target.set_allowed([*net_cluster.peer_ids, rogue.peer_id])
    await reconnected(rogue, target)
    bad = Envelope(net_cluster.network_id, SESSION, 1, me.peer_id, target.peer_id_bytes, 4, b"x")
    assert await exchange(rogue, target, sealed(me, bad, signature=bytes(64))) == (
        b"refused:bad_signature"
    )
    assert await exchange(rogue, target, sealed(me, bad)) == b"ok"  # now genuinely admitted
    target.set_allowed(net_cluster.peer_ids)

    from_rogue = target.admission.from_peer(me.peer_id)
    assert from_rogue["sync_only"] == 1  # the protocol envelope it may not send
    assert (from_rogue["wrong_network"], from_rogue["sender_mismatch"]) == (1, 1)
    assert from_rogue["bad_signature"] == 1
    assert drops["bad_signature"] == 1
    assert [d.envelope.payload for d in target.messages(SESSION, 1)] == [b"x"]


@pytest.mark.trio
async def test_gossip_and_hello_from_outside_are_dropped(
    net_cluster: LocalCluster, rogue: NetNode
) -> None:
    target = net_cluster[0]
    # the follower's peer exchange is answered (it learns the validators), but it never
    # becomes ready: no gossip with a peer that is not a validator, either way
    await eventually(lambda: rogue.peers.is_connected(target.peer_id_bytes), within=20)
    await eventually(
        lambda: (r := target.peers.get(rogue.peer_id_bytes)) is not None and r.hello, within=20
    )
    from libp2p.peer.id import ID

    for _ in range(10):
        await rogue.broadcast(SESSION, 9, b"let me in")
        await trio.sleep(0.2)
    assert not target.peers.is_ready(rogue.peer_id_bytes)
    assert ID(rogue.peer_id_bytes) not in target.gossip.pubsub.peers  # type: ignore[union-attr]
    for node in net_cluster.nodes:
        assert node.messages(SESSION, 9) == []
    # and nothing it says about other peers is learnt
    assert set(target.peers.known()) <= {*net_cluster_ids(net_cluster), rogue.peer_id_bytes}


def net_cluster_ids(cluster: LocalCluster) -> list[bytes]:
    return [n.peer_id_bytes for n in cluster.nodes]


async def reconnected(peer: NetNode, target: NetNode) -> None:
    """Wait until `target` has dropped `peer` for its tier change and it is back."""
    await target.enforce()
    await eventually(
        lambda: (
            peer.peers.is_connected(target.peer_id_bytes)
            and target.peers.is_connected(peer.peer_id_bytes)
        ),
        within=20,
    )


def test_allow_list_as_a_set_or_a_callback() -> None:
    from tssnode.net.admission import Admission

    a, b = NodeIdentity.generate().peer_id, NodeIdentity.generate().peer_id
    admission = Admission()
    assert admission.is_open and admission.is_allowed(a)
    changes: list[int] = []
    admission.on_change(lambda: changes.append(1))
    admission.set_allowed([a])
    assert admission.is_allowed(a) and not admission.is_allowed(b)
    validators = {b}
    admission.set_policy(lambda peer: peer in validators)  # e.g. the ledger's validator set
    assert admission.is_allowed(b) and not admission.is_allowed(a)
    validators.add(a)  # the set changes: the next check sees it
    assert admission.is_allowed(a)

    def broken(peer: bytes) -> bool:
        raise RuntimeError("ledger unavailable")

    admission.set_policy(broken)
    assert not admission.is_allowed(a)  # a failing policy refuses
    admission.set_allowed(None)
    assert admission.is_open and len(changes) == 4
    admission.drop("malformed", a)
    admission.drop("truncated", a)
    assert admission.snapshot() == {"malformed": 1, "truncated": 1}
    assert admission.refused() == {"malformed": 1}
