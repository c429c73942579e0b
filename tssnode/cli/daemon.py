"""`tssnode run`: the composition root. It wires one node of a data directory: the net
layer (`NetNode`), the ledger (`ReplicaService`) over its `LedgerLink`, the node's
sessions (`NodeCore`) over `ProtocolLink`s, the control API (`tssnode.api`) and the
metrics, both served by hypercorn. It sits above every layer it wires; nothing below
the CLI imports it.

One Ed25519 key (the libp2p identity in the data directory) is the node's peer id, its
validator key in the ledger and the key that signs its protocol envelopes, so the three
can never disagree. The net layer carries three kinds of traffic, told apart by their
session id: ledger frames (`LEDGER_SESSION`), protocol envelopes (session id = ssid) and
the original project's custom messages (`legacy:<round id>`).

Admission follows the ledger (`tssnode.net.admission`): the validators, current and next
scheduled, are the full tier; joiners (a `ValidatorJoin` with votes in the ledger) and the
config's `[net] followers` may only read the chain: `StatusRequest` and `FetchBlocks`
frames (`tssnode.node.links.chain_read`); everyone else is refused at the handshake,
except a few newcomers at a time (`[net] newcomer_slots`), who may read the chain too: a
node with no genesis learns it from its bootstrap peer and catches up that way. The
tiers are set before the net layer starts (from the genesis, or the bootstrap peers
while the genesis is not known) and again after every committed block.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve
from multiaddr import Multiaddr

from tssnode import schema
from tssnode.api.app import Limits, build_app
from tssnode.api.metrics import metrics_app
from tssnode.bridge.app import BridgeApp
from tssnode.bridge.records import BridgeConfig
from tssnode.bridge.watcher import RpcSource, rpc_url
from tssnode.cli import heap, memtrace
from tssnode.config import NodeConfig
from tssnode.crypto.encoding import decode_any
from tssnode.crypto.identity import IdentityKey
from tssnode.errors import EncodingError
from tssnode.ledger.blocks import Block
from tssnode.ledger.bootstrap import learn_genesis
from tssnode.ledger.genesis import Genesis, genesis_toml, load_genesis
from tssnode.ledger.replica import ReplicaOptions
from tssnode.ledger.service import ReplicaService
from tssnode.net import peerid
from tssnode.net.errors import NetError
from tssnode.net.node import NetNode
from tssnode.node.datadir import ensure_token
from tssnode.node.errors import CONFLICT, RequestRejected
from tssnode.node.events import EventBus
from tssnode.node.evmwatch import GatewayWatch, MintView
from tssnode.node.links import LEDGER_SESSION, LedgerLink, ProtocolLink, chain_read
from tssnode.node.metrics import NodeMetrics
from tssnode.node.node import NodeCore
from tssnode.node.primes import PrimeReserve
from tssnode.node.vaultkey import OpenVault, unlock
from tssnode.node.watch import BitcoinWatch
from tssnode.registry.app import KeyRegistry
from tssnode.registry.records import MEMBERSHIP
from tssnode.registry.transactions import ValidatorJoin

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger("tssnode.node")

LEGACY_PREFIX = b"legacy:"
#: The applications the node's ledger runs (routed by transaction type; see ledger.app).
APPS = (KeyRegistry, BridgeApp)


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
        self.net = NetNode(config.network_id, config.data_dir, config.net)
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
                    apps=APPS,
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
                    workers=cfg.node.workers,
                )
                self.core = core
                await nursery.start(service.run)
                service.replica.on_block.append(core.on_block)
                service.replica.on_block.append(self._follow_ledger)
                self._follow_ledger()
                await nursery.start(primes.run)
                await nursery.start(core.run)
                if cfg.bridge.bitcoin.enabled:
                    core.bitcoin_watch = self._bitcoin_watch(core)
                    await nursery.start(core.bitcoin_watch.run)
                if cfg.bridge.evm.enabled:
                    core.gateway_watch = self._gateway_watch(core)
                    await nursery.start(core.gateway_watch.run)
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
        for vote in state.app(KeyRegistry).votes.values():
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

    def _bitcoin_watch(self, core: NodeCore) -> BitcoinWatch:
        """The bridge's watch of this validator's Bitcoin node ([bridge.bitcoin])."""
        rpc = self.config.bridge.bitcoin
        url = rpc.url
        assert url is not None

        def connect() -> RpcSource:
            # The credentials are read at every (re)connection, not once: bitcoind (and
            # `tssnode regtest`) write a new cookie at every start, and may start after
            # this node. (A missing cookie is then a failed look, logged and retried.)
            with_auth = rpc_url(
                url, user=rpc.user, password=_password(rpc.password_file),
                cookie_file=rpc.cookie_file,
            )  # fmt: skip
            return RpcSource(with_auth, rpc.timeout)

        log.info("watching Bitcoin for deposits at %s", url)  # (not the credentials)
        return BitcoinWatch(
            lambda: core.bridge, core.submit, core.identity.public_bytes(), connect, rpc.poll
        )

    def _gateway_watch(self, core: NodeCore) -> GatewayWatch:
        """The bridge's watch of the gateway on this validator's EVM node ([bridge.evm])."""
        rpc = self.config.bridge.evm
        url = rpc.url
        assert url is not None

        def connect(cfg: BridgeConfig) -> MintView:
            from tssnode.bridge.gateway import Gateway  # (web3 loads only when asked for)

            return Gateway.connect(url, "0x" + cfg.gateway.hex(), cfg.chain_id, rpc.timeout)

        log.info("watching the gateway's mints at %s", url)
        return GatewayWatch(
            lambda: core.bridge, connect, rpc.poll,
            submit=core.submit, me=core.identity.public_bytes(),
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
            # (the metrics server counts no API refusals: those are the API's own)
            out = facade.status(api_refused={}).model_dump()
            out["view_changes"] = core.replica.stats.view_changes
            out["last_block_age_seconds"] = out.get("last_block_age_s")
            pools: dict[str, tuple[int, int]] = {}
            registry = core.registry
            for key_id in registry.keys:
                ready = registry.pool_size(key_id, ready_only=True)
                pools[key_id] = (ready, registry.pool_size(key_id) - ready)
            out["pools"] = pools
            out["vault_ops"] = dict(core.vault.ops)
            return out

        metrics = self.metrics = NodeMetrics(state)
        self.events.listeners.append(metrics.on_event)
        hc = HyperConfig()
        hc.bind = [self.config.metrics.address]
        hc.accesslog = None
        hc.errorlog = logging.getLogger("tssnode.metrics")
        await serve(metrics_app(metrics.render), hc, task_status=task_status)  # type: ignore[arg-type]


def _password(path: Path | None) -> str:
    return "" if path is None else path.read_text().strip()


class NodeFacadeAdapter:
    """NodeCore plus the parts of the facade that need the net layer."""

    def __init__(self, core: NodeCore, node: Node) -> None:
        self.core, self.node = core, node
        self.events = node.events
        # the reads and requests the core answers alone (the `NodeFacade` protocol, named
        # one by one: nothing else of the core is reachable through the API)
        self.health = core.health
        self.validators = core.validators
        self.keys = core.keys
        self.key = core.key
        self.signature = core.signature
        self.blocks = core.blocks
        self.block = core.block
        self.transaction = core.transaction
        self.request_keygen = core.request_keygen
        self.request_refresh = core.request_refresh
        self.vote_join = core.vote_join
        self.derive = core.derive
        self.request_sign = core.request_sign
        self.request_presign = core.request_presign
        self.bridge_info = core.bridge_info
        self.deposit_addresses = core.deposit_addresses
        self.deposits = core.deposits
        self.deposit = core.deposit
        self.request_bridge_setup = core.request_bridge_setup
        self.request_deposit_address = core.request_deposit_address
        self.request_release_setup = core.request_release_setup
        self.releases = core.releases
        self.release = core.release

    def sessions(self) -> list[schema.Session]:
        return self.core.sessions_view()

    def join_request(self) -> schema.JoinRequest:
        addrs = self.node.net.addrs  # with /p2p/<peer id>; the ledger keeps the bare address
        address = addrs[0].rsplit("/p2p/", 1)[0] if addrs else ""
        return self.core.join_request(address)

    def session(self, session_id: str) -> schema.Session | None:
        return next((s for s in self.core.sessions_view() if s.session_id == session_id), None)

    def status(self, api_refused: dict[str, int]) -> schema.Status:
        net = self.node.net
        link = self.node.link
        return self.core.status(
            network=net.network_id,
            peers_connected=len(net.peers.ready()),
            addrs=net.addrs,
            warnings=self.node.warnings,
            # who is let in, what was refused, and what is held for peers against its bounds
            admission=schema.Admission.model_validate(net.admission.status()),
            buffers={
                **net.buffers(),
                "early": self.core.early.snapshot(),
                "ledger": link.snapshot() if link is not None else {},
            },
            api_refused=api_refused,
        )

    def peers(self) -> list[schema.Peer]:
        validators = {peerid.from_public_key(v) for v in self.core.replica.config()}
        out = []
        for rec in self.node.net.peers.records():
            d = rec.as_dict()  # (the net layer's record: its fields as the schema names them)
            out.append(
                schema.Peer.model_validate(
                    {
                        **d,
                        "validator": rec.peer_id in validators,
                        "status": "connected" if rec.connected else "disconnected",
                        "address": d["addrs"][0] if d["addrs"] else None,
                    }
                )
            )
        return out

    async def legacy_broadcast(self, body: bytes) -> schema.LegacySent:
        env = await self.node.net.broadcast(LEGACY_PREFIX + b"broadcast", 0, body)
        return schema.LegacySent(sent=True, seq=env.seq)

    async def legacy_direct(self, peer_id: str, body: bytes) -> schema.LegacySent:
        try:
            env = await self.node.net.send(peer_id, LEGACY_PREFIX + b"direct", 0, body)
        except (NetError, ValueError) as exc:
            raise RequestRejected(CONFLICT, f"not delivered: {exc}") from None
        return schema.LegacySent(sent=True, seq=env.seq)

    def legacy_messages(self, round_id: str, direct: bool) -> list[schema.LegacyMessage]:
        session = LEGACY_PREFIX + (b"direct" if direct else b"broadcast")
        kind = "direct" if direct else "broadcast"
        del round_id  # the original project had one round per message kind
        return [
            schema.LegacyMessage.model_validate(  # ("from" is its field's name on the wire)
                {
                    "from": peerid.to_text(d.envelope.sender),
                    "seq": d.envelope.seq,
                    "body_hex": d.envelope.payload.hex(),
                    "time": d.received_at,
                }
            )
            for d in self.node.net.messages(session, 0, kind)
        ]


async def run_until_signal(config: NodeConfig, unlocked: OpenVault | None = None) -> None:
    trace_every = memtrace.interval()
    if trace_every is not None:
        memtrace.start()
    node = Node(config, unlocked=unlocked)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            nursery.start_soon(heap.keep_trimmed)
            if trace_every is not None:
                nursery.start_soon(memtrace.run, config.data_dir, trace_every)
            # (hypercorn's bind text: "http://host:port")
            print(f"tssnode: {node.net.peer_id} ready, API on {node.api_address}", flush=True)
            async for _ in signals:
                log.info("shutting down")
                nursery.cancel_scope.cancel()
                break


def data_dir_of(config: NodeConfig) -> Path:
    return config.data_dir
