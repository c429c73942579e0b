"""Peer exchange: `/tssnode/pex/1.0.0`, so that bootstrapping from one peer is enough.

Each side of a new connection sends a `PexHello` (its network id, the addresses it listens
on, and the peers it has verified: connected, same network, admitted); the other answers
with its own. A hello from another network, or from a peer outside the allow-list, is
answered `refused:<reason>`, counted, and teaches nothing; a peer on another network is
also disconnected. Whatever is learnt goes into the peer book, where the dialer picks it
up. When a hello teaches something new, the node re-exchanges with its other peers at
once, so news crosses the network in a few round trips instead of waiting for the
periodic refresh (`pex_interval`).

An address that a peer announces as listen-anywhere (0.0.0.0 or ::) is rewritten with the
IP address that peer's connection comes from.

A follower, joiner or newcomer may exchange hellos (it learns the validators' addresses,
which the genesis lists anyway), but nothing is learnt from it except its own addresses:
an outsider cannot fill the peer book with peers for the dialer to chase.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from multiaddr import Multiaddr

from tssnode.net import admission as reasons
from tssnode.net import peerid, streams
from tssnode.net.admission import Admission
from tssnode.net.errors import FrameError, InvalidPeerId, MalformedFrame
from tssnode.net.peerbook import PeerBook
from tssnode.net.wire import PexHello, PexPeer, read_message, write_frame

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio's own TaskStatus is hidden by trio-typing

log = logging.getLogger(__name__)

PROTOCOL = TProtocol("/tssnode/pex/1.0.0")
MAX_HELLO_BYTES = 256 * 1024
MAX_PEERS = 256
MAX_ADDRS = 8
MAX_ADDR_LEN = 200
#: Re-exchange with everyone this soon after learning something new.
PUSH_DELAY = 0.05


def _valid_addr(addr: str) -> bool:
    if not isinstance(addr, str) or len(addr) > MAX_ADDR_LEN:
        return False
    try:
        names = [p.name for p in Multiaddr(addr).protocols()]
    except Exception:
        return False
    return names in (["ip4", "tcp"], ["ip6", "tcp"])


def _with_observed_ip(addr: str, observed: str | None) -> str | None:
    maddr = Multiaddr(addr)
    family = next(iter(maddr.protocols())).name
    ip = ipaddress.ip_address(str(maddr.value_for_protocol(family)))
    if not ip.is_unspecified:
        return addr
    if observed is None:
        return None
    seen = ipaddress.ip_address(observed)
    return f"/{'ip4' if seen.version == 4 else 'ip6'}/{seen}/tcp/{maddr.value_for_protocol('tcp')}"


class PeerExchange:
    """Both ends of peer exchange, and the refresh loop."""

    def __init__(
        self,
        host: IHost,
        network_id: str,
        admission: Admission,
        peers: PeerBook,
        own_addrs: Callable[[], list[str]],
        *,
        op_timeout: float,
        interval: float,
        on_verified: Callable[[bytes], None],
        on_wrong_network: Callable[[bytes], None],
    ) -> None:
        self.host = host
        self.network_id = network_id
        self.admission = admission
        self.peers = peers
        self.own_addrs = own_addrs
        self.op_timeout = op_timeout
        self.interval = interval
        self._on_verified = on_verified
        self._on_wrong_network = on_wrong_network
        self._push = trio.Event()
        self.exchanges = 0

    def install(self) -> None:
        self.host.set_stream_handler(PROTOCOL, streams.serve("pex", self.admission, self._serve))

    # -- messages ----------------------------------------------------------------------------

    def hello(self, status: str = "ok") -> PexHello:
        shared = []
        for record in self.peers.records():
            if record.ready and record.addrs and self.admission.is_allowed(record.peer_id):
                shared.append(PexPeer(record.peer_id, record.addrs[:MAX_ADDRS]))
        return PexHello(
            self.network_id,
            tuple(self.own_addrs()[:MAX_ADDRS]),
            tuple(shared[:MAX_PEERS]),
            status,
        )

    def _verdict(self, hello: PexHello, remote: bytes) -> str:
        if hello.network_id != self.network_id:
            return f"refused:{reasons.WRONG_NETWORK}"
        if not self.admission.may_send_to(remote):
            return f"refused:{reasons.UNKNOWN_PEER}"
        return "ok"

    def _learn(self, hello: PexHello, remote: bytes, observed: str | None) -> None:
        """Take in a verified hello; refuses (MalformedFrame) one out of bounds."""
        if len(hello.addrs) > MAX_ADDRS or len(hello.peers) > MAX_PEERS:
            raise MalformedFrame("hello out of bounds")
        entries = [(remote, hello.addrs)]
        if self.admission.is_allowed(remote):  # only a validator tells us about others
            entries += [(p.peer_id, p.addrs) for p in hello.peers]
        new = False
        for peer, addrs in entries:
            try:
                peerid.check_peer_id(peer)
            except InvalidPeerId:
                raise MalformedFrame("bad peer id in hello") from None
            if len(addrs) > MAX_ADDRS or not all(_valid_addr(a) for a in addrs):
                raise MalformedFrame("bad address in hello")
            if peer != remote and not self.admission.is_allowed(peer):
                continue
            usable = [a for a in (_with_observed_ip(a, observed) for a in addrs) if a]
            source = "inbound" if peer == remote else "pex"
            new |= self.peers.learn(peer, usable, source)
        self.peers.seen(remote)
        self._on_verified(remote)
        if new:
            self._push.set()

    # -- serving and asking ------------------------------------------------------------------

    async def _serve(self, stream: INetStream, remote: bytes) -> None:
        budget = (self.admission.guard, remote)
        hello = await read_message(stream, PexHello, MAX_HELLO_BYTES, self.op_timeout, budget)
        verdict = self._verdict(hello, remote)
        if verdict != "ok":
            self.admission.drop(verdict.split(":", 1)[1], remote, "pex hello")
            await write_frame(stream, self.hello(verdict).to_bytes(), self.op_timeout)
            if verdict.endswith(reasons.WRONG_NETWORK):
                self._on_wrong_network(remote)
            return
        observed = stream.get_remote_address()
        self._learn(hello, remote, observed[0] if observed else None)
        await write_frame(stream, self.hello().to_bytes(), self.op_timeout)

    async def exchange(self, peer: bytes) -> bool:
        """Swap hellos with a connected peer; True when it accepted us and we it."""
        try:
            async with streams.opened(self.host, peer, PROTOCOL, self.op_timeout) as stream:
                await write_frame(stream, self.hello().to_bytes(), self.op_timeout)
                answer = await read_message(stream, PexHello, MAX_HELLO_BYTES, self.op_timeout)
                observed = stream.get_remote_address()
        except FrameError as exc:
            log.debug("peer exchange with %s failed: %s", peerid.short(peer), exc)
            return False
        self.exchanges += 1
        verdict = self._verdict(answer, peer)
        if verdict != "ok":  # we do not accept them
            reason = verdict.split(":", 1)[1]
            self.admission.drop(reason, peer, "pex answer")
            if reason == reasons.WRONG_NETWORK:
                self._on_wrong_network(peer)
            return False
        if answer.status != "ok":  # they do not accept us
            log.info("peer exchange with %s refused: %s", peerid.short(peer), answer.status)
            if answer.status.endswith(reasons.WRONG_NETWORK):
                self._on_wrong_network(peer)
            return False
        try:
            self._learn(answer, peer, observed[0] if observed else None)
        except MalformedFrame as exc:
            self.admission.drop(reasons.MALFORMED, peer, f"pex answer: {exc}")
            return False
        return True

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Re-exchange with every ready peer periodically, and soon after news."""
        task_status.started()
        while True:
            with trio.move_on_after(self.interval):
                await self._push.wait()
                await trio.sleep(PUSH_DELAY)  # let a burst of news settle
            self._push = trio.Event()
            async with trio.open_nursery() as nursery:
                for peer in self.peers.ready():
                    nursery.start_soon(self.exchange, peer)
