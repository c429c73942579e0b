"""`NetNode`: one node's whole net layer, wired and run as a single service.

The node's identity is loaded when the object is made (and created there on first start,
in the data directory). A `NetNode` runs once; a restart is a new `NetNode` with the same
data directory. Start-up order (each step finished before the next, see `run`):

1. logging bridge;
2. the host (Noise, mplex) and our protocol handlers (direct, fetch, pex);
3. pubsub and gossipsub running, the network topic validated and subscribed;
4. the swarm listening (`HostStartError` if the port cannot be bound);
5. dialer (bootstrap peers first), liveness pings, peer-exchange refresh; then
   `task_status.started()`.

Admission (see `admission`): an inbound connection from a peer in no tier is closed right
after its Noise handshake (`host`); the tiers are re-checked whenever they change and every
`ENFORCE_EVERY` seconds, and a peer that left its tier (a removed validator, a newcomer whose
lease ran out) is disconnected. A peer that moved between the validator tier and the others
(a joiner voted in, or this node itself) is reconnected, so that gossip is set up afresh.

A new connection (either direction) is followed by a peer exchange and, between two
validators, a wait for the peer's gossip subscription; only then is the peer *ready*. A
link to or from a follower, joiner or newcomer carries chain reads only: it never waits
for gossip and its peer never becomes ready. Stopping (cancel the task
that runs `run`) closes the host and its connections, stops pubsub and joins its sweeper
thread, and closes the inbox and the peer-event channels.

The API works with peer ids as text (`12D3KooW…`) or binary; envelopes carry binary ids.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from tssnode.net import admission as tiers
from tssnode.net import host as host_mod
from tssnode.net import identity as identity_mod
from tssnode.net import logbridge, peerid
from tssnode.net.admission import Admission
from tssnode.net.dialer import Dialer
from tssnode.net.direct import Direct
from tssnode.net.errors import NetError, NotRunning
from tssnode.net.fetch import Fetch
from tssnode.net.gossip import Gossip
from tssnode.net.identity import NodeIdentity
from tssnode.net.liveness import Liveness
from tssnode.net.peerbook import PeerBook
from tssnode.net.pex import PeerExchange
from tssnode.net.posts import Posts
from tssnode.net.reliable import Inbox, Reliable
from tssnode.net.store import Delivery, MessageStore
from tssnode.net.wire import Envelope

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio's own TaskStatus is hidden by trio-typing

log = logging.getLogger(__name__)

PeerRef = str | bytes
E = TypeVar("E", bound=BaseException)


class NetSettings(Protocol):
    """What a `NetNode` reads of its settings (read only). The `[net]` section of a node
    config, `tssnode.config.NetConfig`, is one; net does not import it (the config layer
    sits above net), it states here what it needs."""

    @property
    def listen(self) -> str: ...

    @property
    def bootstrap(self) -> tuple[str, ...]: ...

    @property
    def allowed_peers(self) -> tuple[str, ...] | None: ...

    @property
    def followers(self) -> tuple[str, ...]: ...

    @property
    def newcomer_slots(self) -> int: ...

    @property
    def newcomer_seconds(self) -> float: ...

    @property
    def handshake_timeout(self) -> float: ...

    @property
    def announce(self) -> tuple[str, ...]: ...

    @property
    def max_frame_bytes(self) -> int: ...

    @property
    def op_timeout(self) -> float: ...

    @property
    def send_deadline(self) -> float: ...

    @property
    def ping_interval(self) -> float: ...

    @property
    def ping_timeout(self) -> float: ...

    @property
    def ping_failures(self) -> int: ...

    @property
    def redial_min(self) -> float: ...

    @property
    def redial_max(self) -> float: ...

    @property
    def pex_interval(self) -> float: ...

    @property
    def ready_timeout(self) -> float: ...

    @property
    def fetch_grace(self) -> float: ...

    @property
    def libp2p_log_level(self) -> str: ...


#: Attempts at the peer exchange of a new connection before giving up on it.
HELLO_ATTEMPTS = 3
#: Closing a connection (even to a frozen peer) is given this long.
CLOSE_TIMEOUT = 5.0
#: How often the tiers of connected peers are re-checked without a change being signalled
#: (a newcomer lease runs out on its own).
ENFORCE_EVERY = 2.0


def _first_leaf(group: BaseExceptionGroup[BaseException], kind: type[E]) -> E | None:
    for exc in group.exceptions:
        if isinstance(exc, kind):
            return exc
        if isinstance(exc, BaseExceptionGroup) and (leaf := _first_leaf(exc, kind)):
            return leaf
    return None


def as_peer(peer: PeerRef) -> bytes:
    """Binary peer id from its text or binary form."""
    return peerid.check_peer_id(peer) if isinstance(peer, bytes) else peerid.from_text(peer)


class _Notifee(INotifee):
    """Connection events from the swarm, turned into peer-book updates at once."""

    def __init__(self, node: NetNode) -> None:
        self.node = node

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self.node._on_connection(conn.muxed_conn.peer_id.to_bytes())

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self.node._on_closed(conn.muxed_conn.peer_id.to_bytes(), conn.muxed_conn)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None


class NetNode:
    """The net layer of one validator node."""

    def __init__(
        self,
        network_id: str,
        data_dir: Path,
        config: NetSettings,
        *,
        identity: NodeIdentity | None = None,
    ) -> None:
        self.network_id = network_id
        self.data_dir = Path(data_dir)
        self.config = config
        self.identity_created = False
        if identity is None:
            identity, self.identity_created = identity_mod.load_or_create(self.data_dir)
        self.identity = identity
        self.peer_id_bytes = identity.peer_id
        self.peer_id = identity.peer_id_text
        allowed = config.allowed_peers
        self.admission = Admission(
            None if allowed is None else map(peerid.from_text, allowed),
            followers=map(peerid.from_text, config.followers),
            newcomer_slots=config.newcomer_slots,
            newcomer_seconds=config.newcomer_seconds,
        )
        self.peers = PeerBook(self.peer_id_bytes)
        self.store = MessageStore()
        self.reliable = Reliable(
            identity,
            network_id,
            self.admission,
            self.peers,
            self.store,
            send_deadline=config.send_deadline,
            fetch_grace=config.fetch_grace,
        )
        self.admission.on_change(self.peers.touch)  # the dialer re-reads who is wanted
        self.admission.on_change(self._admission_changed)
        self._tiers: dict[bytes, str] = {}  # connected peer → its tier when last checked
        self._self_full: bool | None = None  # this node a validator, when last checked
        self._recheck = trio.Event()
        self.listen_addrs: list[str] = []
        self._running = False
        self._started = False
        self._nursery: trio.Nursery | None = None
        self._welcoming: set[bytes] = set()
        self.host: Any = None
        self.gossip: Gossip | None = None
        self.dialer: Dialer | None = None
        self.liveness: Liveness | None = None
        self.pex: PeerExchange | None = None
        self.posts: Posts | None = None

    # -- running -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def addrs(self) -> list[str]:
        """Where peers can reach this node (with `/p2p/<peer id>`)."""
        return [f"{a}/p2p/{self.peer_id}" for a in self._announced()]

    def _announced(self) -> list[str]:
        if self.config.announce:
            return list(self.config.announce)
        return self.listen_addrs

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start everything (see the module docstring), run until cancelled, stop."""
        cfg = self.config
        logbridge.install(cfg.libp2p_log_level)
        self.host = host_mod.build(
            self.identity,
            cfg.listen,
            dial_timeout=cfg.op_timeout,
            handshake_timeout=cfg.handshake_timeout,
            gate=self.admission.may_connect,
        )
        self.gossip = Gossip(
            self.host,
            self.network_id,
            self.admission,
            self.reliable.accept_gossip,
            ready_timeout=cfg.ready_timeout,
        )
        direct = Direct(
            self.host,
            self.admission,
            self.reliable.accept_direct,
            max_frame_bytes=cfg.max_frame_bytes,
            op_timeout=cfg.op_timeout,
            on_broken=self._drop_soon,
        )
        self.posts = Posts(direct, is_connected=self.peers.is_connected)
        fetch = Fetch(
            self.host,
            self.network_id,
            self.admission,
            self.store,
            max_frame_bytes=cfg.max_frame_bytes,
            op_timeout=cfg.op_timeout,
        )
        self.pex = PeerExchange(
            self.host,
            self.network_id,
            self.admission,
            self.peers,
            self._announced,
            op_timeout=cfg.op_timeout,
            interval=cfg.pex_interval,
            on_verified=self._verified,
            on_wrong_network=self._wrong_network,
        )
        self.dialer = Dialer(
            self.host,
            self.peers,
            self.admission,
            dial_timeout=cfg.op_timeout,
            redial_min=cfg.redial_min,
            redial_max=cfg.redial_max,
            on_connected=self._refresh,
        )
        self.liveness = Liveness(
            self.host,
            self.peers,
            interval=cfg.ping_interval,
            timeout=cfg.ping_timeout,
            failures=cfg.ping_failures,
            stall_timeout=cfg.op_timeout,
            disconnect=self.disconnect,
        )
        self.reliable.direct, self.reliable.fetcher, self.reliable.gossip = (
            direct,
            fetch,
            self.gossip,
        )
        self.reliable.posts = self.posts
        for end in (direct, self.posts, fetch, self.pex):
            end.install()
        host_mod.swarm_of(self.host).register_notifee(_Notifee(self))
        for addr in cfg.bootstrap:
            maddr = Multiaddr(addr)
            target = peerid.from_text(str(maddr.value_for_protocol("p2p")))
            dialable = str(maddr.decapsulate(Multiaddr(f"/p2p/{peerid.to_text(target)}")))
            self.peers.learn(target, [dialable], "bootstrap")
        try:
            await self._serve(task_status)
        except BaseExceptionGroup as group:
            # Before start-up completed, report why it failed as itself, not wrapped in
            # the exception groups of the nurseries it passed through.
            if not self._started and (failure := _first_leaf(group, NetError)) is not None:
                raise failure from group
            raise
        finally:
            self._running = False
            self._nursery = None
            self.peers.close()
            self.reliable.close_inbox()

    async def _serve(self, task_status: TaskStatus[None]) -> None:
        assert self.gossip is not None and self.dialer is not None
        assert self.liveness is not None and self.pex is not None
        cfg = self.config
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            assert self.posts is not None
            self.posts.bind(nursery)
            await nursery.start(self.gossip.run)  # before listening: see `gossip`
            async with host_mod.running(self.host, cfg.listen) as bound:
                self.listen_addrs = bound
                await nursery.start(self.dialer.run)
                await nursery.start(self.liveness.run)
                await nursery.start(self.pex.run)
                nursery.start_soon(self._enforce_loop)
                self._running = self._started = True
                log.info("node %s up on %s", self.peer_id, ", ".join(self.addrs))
                task_status.started()
                await trio.sleep_forever()

    def _require_running(self) -> None:
        if not self._running:
            raise NotRunning("the node is not running")

    # -- connections -------------------------------------------------------------------------

    def _refresh(self, peer: bytes) -> None:
        """Make the peer book's `connected` match the swarm's connections."""
        if self.host is None or peer == self.peer_id_bytes:
            return
        self.peers.set_connected(peer, host_mod.connection_count(self.host, ID(peer)) > 0)

    def _on_connection(self, peer: bytes) -> None:
        self._refresh(peer)
        self._tiers.setdefault(peer, self.admission.tier(peer))
        if peer in self._welcoming or self._nursery is None:
            return
        self._welcoming.add(peer)
        try:
            self._nursery.start_soon(self._welcome, peer)
        except RuntimeError:  # the nursery is closing: the node is stopping
            self._welcoming.discard(peer)

    def _on_closed(self, peer: bytes, muxed_conn: object) -> None:
        stale = self.gossip is not None and self.gossip.stream_died_with(peer, muxed_conn)
        self._refresh(peer)
        if stale and self.gossip is not None and self.peers.is_connected(peer):
            self.gossip.renew_stream(peer)  # pubsub would keep the dead stream (see `gossip`)
        if not self.peers.is_connected(peer):
            self._tiers.pop(peer, None)
            self.admission.forget(peer)
            if self.admission.tier(peer) in (tiers.NEWCOMER, tiers.NONE):
                self.peers.forget(peer)  # (a follower's or joiner's address is kept)

    async def _welcome(self, peer: bytes) -> None:
        """Peer exchange, then (between validators) wait for gossip readiness. A validator
        that does not get there is disconnected, so the dialer starts over with a fresh
        connection; a chain-sync link (see the module docstring) stays unready."""
        assert self.pex is not None and self.gossip is not None
        try:
            for attempt in range(HELLO_ATTEMPTS):
                record = self.peers.get(peer)
                if record is None or not record.connected or record.hello:
                    break
                if await self.pex.exchange(peer):
                    break
                await trio.sleep(0.2 * (attempt + 1))
            record = self.peers.get(peer)
            if record is None or not record.connected or not self._full_link(peer):
                return
            if record.hello and await self.gossip.await_ready(peer):
                self.peers.set_gossip(peer)
            elif self.peers.is_connected(peer) and self.admission.is_allowed(peer):
                log.info("peer %s did not become ready; reconnecting", peerid.short(peer))
                await self.disconnect(peer)
        finally:
            self._welcoming.discard(peer)

    def _full_link(self, peer: bytes) -> bool:
        """Both ends are validators: the link carries gossip."""
        return self.admission.is_allowed(peer) and self.admission.is_allowed(self.peer_id_bytes)

    # -- admission enforcement ---------------------------------------------------------------

    def _admission_changed(self) -> None:
        self._recheck.set()

    async def _enforce_loop(self) -> None:
        while True:
            with trio.move_on_after(ENFORCE_EVERY):
                await self._recheck.wait()
            self._recheck = trio.Event()
            await self.enforce()

    async def enforce(self) -> None:
        """Disconnect every connected peer that left its tier; reconnect those whose link
        changed between validator and chain-sync (a joiner voted in, or this node)."""
        if self.host is None:
            return
        adm = self.admission
        self_full = adm.is_allowed(self.peer_id_bytes)
        self_changed = self._self_full is not None and self_full != self._self_full
        self._self_full = self_full
        drop: list[bytes] = []
        for pid in list(host_mod.swarm_of(self.host).get_connections_map()):
            peer = pid.to_bytes()
            now, before = adm.tier(peer), self._tiers.get(peer)
            self._tiers[peer] = now
            if now == tiers.NONE:
                adm.refuse(peer, tiers.UNKNOWN_PEER, "no longer admitted; disconnecting")
                drop.append(peer)
            elif (before is not None and (before == tiers.FULL) != (now == tiers.FULL)) or (
                self_changed and now == tiers.FULL
            ):
                log.info(
                    "peer %s is now %s (this node: %s); reconnecting",
                    peerid.short(peer),
                    now,
                    "validator" if self_full else "not a validator",
                )
                drop.append(peer)
        for peer in drop:
            await self.disconnect(peer)

    def _verified(self, peer: bytes) -> None:
        self._refresh(peer)
        self.peers.set_hello(peer)

    def _wrong_network(self, peer: bytes) -> None:
        if self.dialer is not None:
            self.dialer.refused.add(peer)
        self._drop_soon(peer)

    def _drop_soon(self, peer: bytes) -> None:
        if self._nursery is not None:
            with contextlib.suppress(RuntimeError):  # the nursery is closing
                self._nursery.start_soon(self.disconnect, peer)

    async def disconnect(self, peer: PeerRef) -> None:
        """Close every connection to a peer (the dialer will try to reconnect it)."""
        raw = as_peer(peer)
        if self.host is None:
            return
        swarm = host_mod.swarm_of(self.host)
        with trio.move_on_after(CLOSE_TIMEOUT) as scope:
            # Each connection by itself: `Swarm.close_peer` ends by dropping the peer's
            # whole entry from the swarm's table, so a connection that was added while
            # it closed the others stayed up, unseen by the swarm and by us (found when
            # admission disconnected a peer that was redialling at that moment).
            for conn in list(swarm.get_connections(ID(raw))):
                try:
                    await conn.close()
                except Exception as exc:
                    log.debug("closing %s: %s", peerid.short(raw), exc)
        if scope.cancelled_caught:
            log.warning("closing the connection to %s timed out", peerid.short(raw))
        self._refresh(raw)

    # -- admission ---------------------------------------------------------------------------

    def set_allowed(self, peers: Iterable[PeerRef] | None) -> None:
        """Admit exactly these peers (the validator set); None admits any peer."""
        self.admission.set_allowed(None if peers is None else [as_peer(p) for p in peers])

    def set_policy(self, policy: Callable[[bytes], bool]) -> None:
        """Admit the peers for which `policy(binary peer id)` is true."""
        self.admission.set_policy(policy)

    # -- messaging ---------------------------------------------------------------------------

    async def broadcast(self, session_id: bytes, rnd: int, payload: bytes) -> Envelope:
        """Send `payload` to every peer by gossip (`BroadcastTooLarge` over ~1 MiB)."""
        self._require_running()
        return await self.reliable.broadcast(session_id, rnd, payload)

    async def send(
        self,
        peer: PeerRef,
        session_id: bytes,
        rnd: int,
        payload: bytes,
        *,
        deadline: float | None = None,
    ) -> Envelope:
        """Deliver `payload` to one peer, acknowledged, or raise a `DeliveryError` once
        `deadline` seconds have passed (default: the config's `send_deadline`)."""
        self._require_running()
        return await self.reliable.send(as_peer(peer), session_id, rnd, payload, deadline=deadline)

    def post(self, peer: PeerRef, session_id: bytes, rnd: int, payload: bytes) -> bool:
        """Queue `payload` for one peer on the stream kept open to it (`posts`): in
        order, unacknowledged, not retried; for senders that retransmit by themselves
        (the ledger). False when it was dropped at once (no connection, too much queued)."""
        self._require_running()
        return self.reliable.post(as_peer(peer), session_id, rnd, payload)

    @property
    def inbox(self) -> Inbox:
        """Every envelope received, once each, in arrival order (one consumer; bounded)."""
        return self.reliable.inbox

    def messages(self, session_id: bytes, rnd: int, kind: str | None = None) -> list[Delivery]:
        """What arrived for a round: kind "broadcast", "direct" or None for both."""
        return self.store.deliveries(session_id, rnd, kind)

    async def collect_broadcasts(
        self, session_id: bytes, rnd: int, senders: Iterable[PeerRef], *, within: float
    ) -> dict[str, Envelope]:
        """One broadcast of the round from each sender, fetched if gossip missed it;
        `MissingBroadcasts` after `within` seconds."""
        self._require_running()
        found = await self.reliable.collect_broadcasts(
            session_id, rnd, [as_peer(s) for s in senders], within=within
        )
        return {peerid.to_text(k): v for k, v in found.items()}

    def forget_session(self, session_id: bytes) -> None:
        self.store.forget_session(session_id)

    # -- readiness and status ----------------------------------------------------------------

    async def wait_ready(self, peers: Iterable[PeerRef], *, within: float) -> None:
        """Wait until every listed peer is connected and ready; `trio.TooSlowError` after
        `within` seconds."""
        await self.peers.wait_ready([as_peer(p) for p in peers], within)

    def status(self) -> dict[str, Any]:
        gossip = self.gossip
        return {
            "peer_id": self.peer_id,
            "network_id": self.network_id,
            "running": self._running,
            "addrs": self.addrs,
            "peers": [r.as_dict() for r in self.peers.records()],
            "ready": sorted(peerid.to_text(p) for p in self.peers.ready()),
            "drops": self.admission.snapshot(),
            "duplicates": self.store.duplicates,
            "stats": dict(self.reliable.stats),
            "posts": self.posts.snapshot() if self.posts else {},
            "gossip": {
                "published": gossip.published if gossip else 0,
                "stalled_publishes": gossip.stalled_publishes if gossip else 0,
            },
            "dialer": {
                "attempts": self.dialer.attempts if self.dialer else 0,
                "failures": self.dialer.failures if self.dialer else 0,
            },
            "admission": self.admission.status(),
            "buffers": self.buffers(),
        }

    def buffers(self) -> dict[str, Any]:
        """What this node holds for its peers, against the bounds (see `limits`)."""
        return {
            "store": self.store.snapshot(),
            "inbox": self.reliable.inbox.snapshot(),
            "streams": self.admission.guard.snapshot(),
            "handshakes": host_mod.pending_handshakes(self.host) if self.host else {},
        }
