"""`tssnode run`: the node over libp2p, with the control API.

One Ed25519 key (the libp2p identity in the data directory) is the node's peer id, its
validator key in the ledger and the key that signs its protocol envelopes, so the three
can never disagree. The net layer carries three kinds of traffic, told apart by their
session id: ledger frames (`LEDGER_SESSION`), protocol envelopes (session id = ssid) and
the original project's custom messages (`legacy:<round id>`).

Admission follows the ledger (`tssnode.net.admission`): the validators, current and next
scheduled, are the full tier; joiners (a `ValidatorJoin` with votes in the ledger) and the
config's `[net] followers` may only read the chain: `StatusRequest` and `FetchBlocks`
frames (`chain_read`); everyone else is refused at the handshake, except a few newcomers
at a time (`[net] newcomer_slots`), who may read the chain too: a node with no genesis
learns it from its bootstrap peer and catches up that way. The tiers are set before the
net layer starts (from the genesis, or the bootstrap peers while the genesis is not
known) and again after every committed block.
"""

from __future__ import annotations

import hashlib
import logging
import signal
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve
from multiaddr import Multiaddr

from tssnode.api.app import Limits, build_app
from tssnode.config import NodeConfig
from tssnode.crypto.encoding import decode_any
from tssnode.crypto.identity import IdentityKey
from tssnode.errors import EncodingError
from tssnode.ledger.blocks import Block
from tssnode.ledger.bootstrap import learn_genesis
from tssnode.ledger.genesis import Genesis, genesis_toml, load_genesis
from tssnode.ledger.messages import FetchBlocks, StatusRequest
from tssnode.ledger.replica import ReplicaOptions
from tssnode.ledger.service import ReplicaService
from tssnode.ledger.state import MEMBERSHIP
from tssnode.ledger.transactions import ValidatorJoin
from tssnode.net import peerid
from tssnode.net.errors import NetError
from tssnode.net.node import NetNode
from tssnode.node.events import EventBus
from tssnode.node.metrics import NodeMetrics
from tssnode.node.node import NodeCore, ensure_token
from tssnode.node.primes import PrimeReserve
from tssnode.node.sessions import DeliveryFailed
from tssnode.node.vaultkey import OpenVault, unlock
from tssnode.protocol.base import BROADCAST, Message, SessionConfig

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger("tssnode.node")

LEDGER_SESSION = b"tssnode/ledger/1"
LEGACY_PREFIX = b"legacy:"
#: Ledger frames are best effort (the replica retransmits): a send gives up after this.
#: (3 s was too short on a loaded machine, where a stream's open and ack took longer: the
#: view changes of a loaded n = 7 network never gathered a quorum.)
LEDGER_SEND_DEADLINE = 8.0
#: Gossip publishes of ledger frames under way at once, at most (each relays a frame to
#: the validators this node has no connection to; more wait for the replica's re-send).
LEDGER_RELAYS = 4
#: A protocol message not acknowledged by then fails its session (which is retried).
SEND_DEADLINE = 15.0
#: Ledger frames received and not yet taken by the replica, at most: in all, in bytes in
#: all and in bytes from one sender (beyond: dropped and counted; the sender retransmits).
LEDGER_INBOX_FRAMES = 10_000
LEDGER_INBOX_BYTES = 64 * 1024 * 1024
LEDGER_INBOX_PEER_BYTES = 16 * 1024 * 1024
#: Ledger frames being sent at once, at most (each send is its own task): in all, in
#: bytes in all and in bytes to one recipient (a follower asking for blocks again and
#: again must not make this node hold answers without bound).
LEDGER_SENDS = 2048
LEDGER_SEND_BYTES = 64 * 1024 * 1024
LEDGER_SEND_PEER_BYTES = 16 * 1024 * 1024
#: The largest chain read a follower, joiner or newcomer may send (a status or block
#: request is a few dozen bytes).
CHAIN_READ_MAX = 1024


def chain_read(session_id: bytes, payload: bytes) -> bool:
    """True for the frames a peer that is not a validator may send: a ledger status
    request or block request (`admission.sync_filter`)."""
    if session_id != LEDGER_SESSION or len(payload) > CHAIN_READ_MAX:
        return False
    try:
        frame = decode_any(payload)
    except EncodingError:
        return False
    return isinstance(frame, StatusRequest | FetchBlocks)


class LedgerLink:
    """The ledger's `Transport` over the net layer.

    A ledger broadcast is a direct send to each validator (`recipients`), not gossip.
    Gossip carried the protocol's bulky round messages too, on one pubsub stream per
    peer: a vote queued behind them, and the replica's one send loop waited on a full
    gossip queue for up to 5 s, so under load NEW-VIEW messages arrived 10-35 s late,
    the view changes of n = 7 never converged, and full-mesh forwarding made every vote
    cross the wire about n times per receiver (issue 12). A direct send is its own mplex
    stream, interleaved with the gossip stream instead of queued behind it, and sent in
    a task of its own; a frame already on its way to a peer is not sent to it again.
    When some validator has no connection to this node (restarting, or reachable only
    through others), the frame is also published by gossip, in a task of its own, so
    that the peers connected to it relay it. Before the validator set is known (a node
    learning its genesis) a broadcast goes by gossip only."""

    def __init__(self, net: NetNode, me: bytes) -> None:
        self.net = net
        self._me = me
        #: The validators' keys a broadcast goes to (set once the replica runs).
        self.recipients: Callable[[], Iterable[bytes]] | None = None
        self.inbox_send, self.inbox = trio.open_memory_channel[tuple[bytes, bytes]](
            LEDGER_INBOX_FRAMES
        )
        self._nursery: trio.Nursery | None = None
        self._seq = 0
        self._in: Counter[bytes] = Counter()  # bytes waiting for the replica, by sender
        self._out: Counter[bytes] = Counter()  # bytes being sent, by recipient
        self.in_bytes = self.out_bytes = self.sending = 0
        self.dropped: Counter[str] = Counter()  # "inbox" | "send" | "relay"
        self.undelivered: Counter[str] = Counter()  # sends that failed, by error
        self._inflight: set[bytes] = set()  # hash(recipient, frame) of sends under way
        self.coalesced = 0  # sends skipped: the same frame was on its way to that peer
        self.relays = 0  # gossip publishes under way

    @property
    def self_id(self) -> bytes:
        return self._me

    def bind(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def deliver(self, sender_key: bytes, data: bytes) -> None:
        n = len(data)
        if (
            self.in_bytes + n > LEDGER_INBOX_BYTES
            or self._in[sender_key] + n > LEDGER_INBOX_PEER_BYTES
        ):
            self._drop("inbox")
            return
        try:
            self.inbox_send.send_nowait((sender_key, data))
        except trio.WouldBlock:
            self._drop("inbox")
            return
        self._in[sender_key] += n
        self.in_bytes += n

    def _drop(self, where: str) -> None:
        """Count a frame dropped at a bound; warn on the first and every 1000th."""
        self.dropped[where] += 1
        if self.dropped[where] % 1000 == 1:
            log.warning(
                "ledger %s full: frame dropped (%d so far; the sender retransmits)",
                where,
                self.dropped[where],
            )

    async def send(self, to: bytes, data: bytes) -> None:
        # never hold the replica's send loop on one slow peer
        assert self._nursery is not None
        key = hashlib.sha256(to + data).digest()
        if key in self._inflight:  # a re-send of a frame still under way (the transport
            self.coalesced += 1  # retries it until acknowledged or its deadline)
            return
        n = len(data)
        if (
            self.sending >= LEDGER_SENDS
            or self.out_bytes + n > LEDGER_SEND_BYTES
            or self._out[to] + n > LEDGER_SEND_PEER_BYTES
        ):
            self._drop("send")
            return
        self.sending += 1
        self.out_bytes += n
        self._out[to] += n
        self._inflight.add(key)
        self._nursery.start_soon(self._send_one, to, data, key)

    async def _send_one(self, to: bytes, data: bytes, key: bytes) -> None:
        self._seq += 1
        try:
            await self.net.send(
                peerid.from_public_key(to), LEDGER_SESSION, self._seq, data,
                deadline=LEDGER_SEND_DEADLINE,
            )  # fmt: skip
        except NetError as exc:
            self.undelivered[type(exc).__name__] += 1
            log.debug("ledger frame to %s not delivered: %s", to.hex()[:12], exc)
        finally:
            self._inflight.discard(key)
            self.sending -= 1
            self.out_bytes -= len(data)
            self._out[to] -= len(data)
            if self._out[to] <= 0:
                del self._out[to]

    async def broadcast(self, data: bytes) -> None:
        if self.recipients is not None:
            unreachable = False
            for to in self.recipients():
                if to != self._me:
                    await self.send(to, data)
                    unreachable |= not self.net.peers.is_connected(peerid.from_public_key(to))
            if unreachable:
                self._relay(data)
            return
        await self._publish(data)

    def _relay(self, data: bytes) -> None:
        assert self._nursery is not None
        if self.relays >= LEDGER_RELAYS:
            self._drop("relay")
            return
        self.relays += 1

        async def publish() -> None:
            try:
                await self._publish(data)
            finally:
                self.relays -= 1

        self._nursery.start_soon(publish)

    async def _publish(self, data: bytes) -> None:
        self._seq += 1
        try:
            await self.net.broadcast(LEDGER_SESSION, self._seq, data)
        except NetError as exc:
            log.warning("ledger broadcast failed: %s", exc)

    async def receive(self) -> tuple[bytes, bytes]:
        sender, data = await self.inbox.receive()
        self.in_bytes -= len(data)
        self._in[sender] -= len(data)
        if self._in[sender] <= 0:
            del self._in[sender]
        return sender, data

    def snapshot(self) -> dict[str, Any]:
        return {
            "inbox_frames": self.inbox.statistics().current_buffer_used,
            "inbox_bytes": self.in_bytes,
            "sending": self.sending,
            "sending_bytes": self.out_bytes,
            "dropped": dict(self.dropped),
            "undelivered": dict(self.undelivered),
            "coalesced": self.coalesced,
            "relays": self.relays,
            "limits": {
                "inbox_frames": LEDGER_INBOX_FRAMES,
                "inbox_bytes": LEDGER_INBOX_BYTES,
                "inbox_peer_bytes": LEDGER_INBOX_PEER_BYTES,
                "sends": LEDGER_SENDS,
                "send_bytes": LEDGER_SEND_BYTES,
                "send_peer_bytes": LEDGER_SEND_PEER_BYTES,
            },
        }


class ProtocolLink:
    """A session's transport over the net layer: parties are addressed by validator key."""

    def __init__(self, net: NetNode, cfg: SessionConfig) -> None:
        self.net, self.cfg = net, cfg

    async def send(self, party: int, msg: Message) -> None:
        peer = peerid.from_public_key(self.cfg.identities[party])
        try:
            await self.net.send(peer, msg.ssid, msg.round, msg.to_bytes(), deadline=SEND_DEADLINE)
        except NetError as exc:
            raise DeliveryFailed(party, str(exc)) from None

    async def broadcast(self, msg: Message) -> None:
        assert msg.recipient == BROADCAST
        try:
            await self.net.broadcast(msg.ssid, msg.round, msg.to_bytes())
        except NetError as exc:
            raise DeliveryFailed(msg.sender, f"broadcast failed: {exc}") from None


class Node:
    """The whole node of one data directory.

    `unlocked` is its store and vault opened beforehand (`tssnode run` does that before
    it starts anything, so a missing or wrong passphrase stops it before it joins the
    network); without it `run` opens them first, still before the net layer starts.
    """

    def __init__(
        self,
        config: NodeConfig,
        genesis: Genesis | None = None,
        *,
        unlocked: OpenVault | None = None,
    ) -> None:
        self.config = config
        self.unlocked = unlocked
        self.events = EventBus()
        self.net = NetNode.from_config(config)
        self.identity: IdentityKey = self.net.identity.key
        path = config.genesis_path
        #: None until learnt from the bootstrap peers (a new node with no genesis file)
        self.genesis: Genesis | None = genesis or (load_genesis(path) if path.exists() else None)
        self.token = ensure_token(config.data_dir)
        self.api_address: str | None = None
        self.metrics_address: str | None = None
        self.metrics: NodeMetrics | None = None
        self.core: NodeCore | None = None
        self.link: LedgerLink | None = None
        self.net.admission.sync_filter = lambda _sender, session, payload: chain_read(
            session, payload
        )
        if self.genesis is not None:
            self._admit_keys(v.public_key for v in self.genesis.validators)
        else:  # only the peers we ask for the genesis, until we know it
            self._admit({self._bootstrap_peer(a) for a in config.net.bootstrap})

    @property
    def warnings(self) -> list[str]:
        """What the operator should know is unsafe (`/status` "warnings")."""
        return list(self.unlocked.warnings) if self.unlocked else []

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        if self.unlocked is None:
            self.unlocked = unlock(cfg)
        store, vault = self.unlocked.store, self.unlocked.vault
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.net.run)
                link = self.link = LedgerLink(self.net, self.identity.public_bytes())
                link.bind(nursery)
                nursery.start_soon(self._route, link)
                genesis = self.genesis = self.genesis or await self._learn_genesis(link)
                self._admit_keys(v.public_key for v in genesis.validators)
                self._learn_genesis_peers(genesis)
                service = ReplicaService(
                    self.identity,
                    genesis,
                    store,
                    link,
                    ReplicaOptions(view_timeout=cfg.ledger.view_timeout),
                )
                link.recipients = lambda: service.replica.config()
                primes = PrimeReserve((cfg.keys.prime_bits,), target=cfg.keys.prime_reserve)
                core = NodeCore(
                    identity=self.identity,
                    service=service,
                    vault=vault,
                    events=self.events,
                    primes=primes,
                    peer_name=self.net.peer_id,
                    transport_for=lambda c: ProtocolLink(self.net, c),
                    offline=self._offline_validators,
                    btc_network=cfg.keys.btc_network,
                    default_tier=cfg.keys.tier,
                    presign_pool=cfg.keys.presign_pool,
                    round_timeout=cfg.keys.round_timeout,
                    stall_after=cfg.ledger.stall_after,
                    forget_session=self.net.forget_session,
                )
                self.core = core
                await nursery.start(service.run)
                service.replica.on_block.append(core.on_block)
                service.replica.on_block.append(self._follow_ledger)
                self._follow_ledger()
                await nursery.start(primes.run)
                await nursery.start(core.run)
                nursery.start_soon(self._forward_peer_events)
                binds = await nursery.start(self._serve_api, core)
                self.api_address = binds[0] if binds else None
                if cfg.metrics.enabled:
                    binds = await nursery.start(self._serve_metrics, core)
                    self.metrics_address = binds[0] if binds else None
                    log.info("Prometheus metrics on %s/metrics", self.metrics_address)
                log.info("node %s ready; API on %s", self.net.peer_id, self.api_address)
                task_status.started()
        finally:
            store.close()

    # -- admission ---------------------------------------------------------------------------

    @staticmethod
    def _bootstrap_peer(addr: str) -> bytes:
        return peerid.from_text(str(Multiaddr(addr).value_for_protocol("p2p")))

    def _admit(self, full: set[bytes], sync: Iterable[bytes] = ()) -> None:
        """Set the tiers; `[net] allowed_peers`, if set, narrows the full tier."""
        allowed = self.config.net.allowed_peers
        if allowed is not None:
            full &= {peerid.from_text(p) for p in allowed}
        self.net.admission.set_tiers(full, sync)

    def _admit_keys(self, validators: Iterable[bytes], joiners: Iterable[bytes] = ()) -> None:
        self._admit(
            {peerid.from_public_key(k) for k in validators},
            {peerid.from_public_key(k) for k in joiners},
        )

    def _follow_ledger(self, block: Block | None = None) -> None:
        """After every block: the validators (current, and the next set once scheduled)
        are full, joiners with votes may read the chain; every validator's address goes
        into the peer book so the dialer reaches one that joined later."""
        assert self.core is not None
        replica = self.core.replica
        state = replica.chain.state
        validators = [*state.validators.values(), *state.header.next_validators]
        keys = {v.public_key for v in validators} | set(replica.config())
        joiners = []
        for vote in state.votes.values():
            if vote.subject != MEMBERSHIP:
                continue
            try:
                change = decode_any(vote.value)
            except EncodingError:
                continue
            if isinstance(change, ValidatorJoin):
                joiners.append(change.public_key)
        self._admit_keys(keys, joiners)
        me = self.identity.public_bytes()
        for v in validators:
            if v.public_key != me and v.address:
                self.net.peers.learn(peerid.from_public_key(v.public_key), [v.address], "ledger")

    def _offline_validators(self) -> set[bytes]:
        """Validators (by key) whose peer is not connected and ready right now (for a node
        that is not a validator itself: not connected with its peer exchange done, as its
        links carry no gossip)."""
        assert self.core is not None
        me = self.identity.public_bytes()
        if self.core.replica.is_validator:
            up = set(self.net.peers.ready())
        else:
            up = {r.peer_id for r in self.net.peers.records() if r.connected and r.hello}
        return {
            v for v in self.core.replica.config() if v != me and peerid.from_public_key(v) not in up
        }

    async def _learn_genesis(self, link: LedgerLink) -> Genesis:
        """No genesis file: take the genesis a majority of the bootstrap peers agree on
        (`ledger.bootstrap`), and keep it in the data directory for the next start."""
        peers = [peerid.public_key(self._bootstrap_peer(a)) for a in self.config.net.bootstrap]
        if not peers:
            raise SystemExit(
                f"no genesis file at {self.config.genesis_path} and no bootstrap peer to ask"
            )
        log.info("no genesis file: asking %d bootstrap peer(s) for it", len(peers))
        genesis = await learn_genesis(link, peers, chain_id=self.config.ledger.chain_id)
        self.config.genesis_path.write_text(genesis_toml(genesis))
        log.info("genesis of chain %s learnt and saved", genesis.chain_id.hex()[:16])
        return genesis

    def _learn_genesis_peers(self, genesis: Genesis) -> None:
        """Dial the validators the genesis lists (their address plus the peer id of their key)."""
        me = self.identity.public_bytes()
        for v in genesis.validators:
            if v.public_key != me and v.address:
                self.net.peers.learn(peerid.from_public_key(v.public_key), [v.address], "genesis")

    async def _route(self, link: LedgerLink) -> None:
        async for delivery in self.net.inbox:
            env = delivery.envelope
            if env.session_id == LEDGER_SESSION:
                link.deliver(peerid.public_key(env.sender), env.payload)
            elif env.session_id.startswith(LEGACY_PREFIX):
                continue  # kept by the net layer's message store for /get-message
            elif self.core is not None:  # (none before the genesis is known)
                self.core.route(env.session_id, env.payload, env.sender)

    async def _forward_peer_events(self) -> None:
        async for event in self.net.peers.subscribe():
            if event.kind in ("ready", "disconnected", "unresponsive"):
                kind = "peer.up" if event.up else "peer.down"
                self.events.publish(kind, peer_id=event.peer_text, detail=event.kind)
                log.info(
                    "peer %s %s (%s)", event.peer_text, "up" if event.up else "down",
                    event.kind, extra={"peer": event.peer_text},
                )  # fmt: skip

    async def _serve_api(
        self, core: NodeCore, *, task_status: TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        hc = HyperConfig()
        hc.bind = [self.config.api.address]
        hc.accesslog = None
        hc.errorlog = logging.getLogger("tssnode.api")
        api = self.config.api
        limits = Limits(
            max_concurrent=api.max_concurrent,
            queue_wait=api.queue_wait,
            rate=float(api.rate),
            burst=api.burst,
            max_streams=api.max_streams,
        )
        app = build_app(NodeFacadeAdapter(core, self), self.token, limits)
        await serve(app, hc, task_status=task_status)  # type: ignore[arg-type]

    async def _serve_metrics(
        self, core: NodeCore, *, task_status: TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        facade = NodeFacadeAdapter(core, self)

        def state() -> dict[str, Any]:
            out = facade.status()
            out["view_changes"] = core.replica.stats.view_changes
            out["last_block_age_seconds"] = out.get("last_block_age_s")
            pools: dict[str, tuple[int, int]] = {}
            for key_id in core.state.keys:
                ready = core.state.pool_size(key_id, ready_only=True)
                pools[key_id] = (ready, core.state.pool_size(key_id) - ready)
            out["pools"] = pools
            out["vault_ops"] = dict(core.vault.ops)
            return out

        metrics = self.metrics = NodeMetrics(state)
        self.events.listeners.append(metrics.on_event)
        hc = HyperConfig()
        hc.bind = [self.config.metrics.address]
        hc.accesslog = None
        hc.errorlog = logging.getLogger("tssnode.metrics")
        await serve(metrics.app(), hc, task_status=task_status)  # type: ignore[arg-type]


class NodeFacadeAdapter:
    """NodeCore plus the parts of the facade that need the net layer."""

    def __init__(self, core: NodeCore, node: Node) -> None:
        self.core, self.node = core, node
        self.events = node.events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.core, name)

    def sessions(self) -> list[dict[str, Any]]:
        return self.core.sessions_view()

    def join_request(self) -> dict[str, Any]:
        addrs = self.node.net.addrs  # with /p2p/<peer id>; the ledger keeps the bare address
        address = addrs[0].rsplit("/p2p/", 1)[0] if addrs else ""
        return self.core.join_request(address)

    def session(self, session_id: str) -> dict[str, Any] | None:
        return next((s for s in self.core.sessions_view() if s["session_id"] == session_id), None)

    def status(self) -> dict[str, Any]:
        out = self.core.status()
        net = self.node.net
        out["network"] = net.network_id
        out["peers_connected"] = len(net.peers.ready())
        out["addrs"] = net.addrs
        out["warnings"] = self.node.warnings
        # who is let in, what was refused, and what is held for peers against its bounds
        out["admission"] = net.admission.status()
        link = self.node.link
        out["buffers"] = {
            **net.buffers(),
            "early": self.core.early.snapshot(),
            "ledger": link.snapshot() if link is not None else {},
        }
        return out

    def peers(self) -> list[dict[str, Any]]:
        validators = {peerid.from_public_key(v) for v in self.core.replica.config()}
        out = []
        for rec in self.node.net.peers.records():
            d = rec.as_dict()
            d["validator"] = rec.peer_id in validators
            d["status"] = "connected" if rec.connected else "disconnected"
            d["address"] = d["addrs"][0] if d["addrs"] else None
            out.append(d)
        return out

    async def legacy_broadcast(self, body: bytes) -> dict[str, Any]:
        env = await self.node.net.broadcast(LEGACY_PREFIX + b"broadcast", 0, body)
        return {"sent": True, "seq": env.seq}

    async def legacy_direct(self, peer_id: str, body: bytes) -> dict[str, Any]:
        try:
            env = await self.node.net.send(peer_id, LEGACY_PREFIX + b"direct", 0, body)
        except (NetError, ValueError) as exc:
            from tssnode.api.facade import RequestRejected

            raise RequestRejected(409, f"not delivered: {exc}") from None
        return {"sent": True, "seq": env.seq}

    def legacy_messages(self, round_id: str, direct: bool) -> list[dict[str, Any]]:
        session = LEGACY_PREFIX + (b"direct" if direct else b"broadcast")
        kind = "direct" if direct else "broadcast"
        del round_id  # the original project had one round per message kind
        return [
            {
                "from": peerid.to_text(d.envelope.sender),
                "seq": d.envelope.seq,
                "body_hex": d.envelope.payload.hex(),
                "time": d.received_at,
            }
            for d in self.node.net.messages(session, 0, kind)
        ]


async def run_until_signal(config: NodeConfig, unlocked: OpenVault | None = None) -> None:
    node = Node(config, unlocked=unlocked)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            # (hypercorn's bind text: "http://host:port")
            print(f"tssnode: {node.net.peer_id} ready, API on {node.api_address}", flush=True)
            async for _ in signals:
                log.info("shutting down")
                nursery.cancel_scope.cancel()
                break


def data_dir_of(config: NodeConfig) -> Path:
    return config.data_dir
