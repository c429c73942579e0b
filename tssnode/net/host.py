"""The libp2p host: Noise only, mplex only, our own dialling, and a start that fails loudly.

Choices, each checked against py-libp2p 0.8.1 (see `docs/` and the tests):

* Security: Noise is the only security transport offered, so a connection is never
  plaintext (py-libp2p's default set also offers TLS, SECIO and plaintext).
* Writes are atomic: each Noise message is written with cancellation shielded. Otherwise
  a timeout that cancels a write inside a socket `send_all` leaves half a ciphertext on
  the wire, the peer's decryption fails, and (next point) that used to kill its node. A
  write to a peer that stopped reading then waits until liveness closes the connection.
* Connection errors stay on the connection: py-libp2p's mplex reader lets any error it
  does not expect (a failed Noise decryption, a stream name that is not UTF-8) escape into
  the swarm service, which stops the whole host. Our mplex turns them into a closed
  connection (logged; the dialer reconnects).
* No lock held across a write: py-libp2p's `MplexStream.reset` sends its reset frame while
  holding the stream's close lock, which the connection's reader needs for every frame of
  that stream. Under load the reader waits for the lock, stops reading the socket, the
  peer's writes block, and two nodes deadlock each other. Our streams reset without
  holding the lock across the write. A write that is stalled anyway (a peer that stopped
  reading) is found by `stalled_peers` and its connection closed by liveness.
* Muxer: mplex only. Under concurrent large gossip and 1 MiB direct streams, yamux
  connections stalled for good (stream opens timing out, shielded stream resets never
  finishing), while mplex carried the same load intact. mplex writes every 4 KiB chunk as
  one whole frame under the noise layer, so two writers cannot interleave inside a frame.
  Its cost: a stream whose reader does not drain it for 5 s is reset, and the connection's
  reader waits for it meanwhile, so our handlers read their frames promptly.
* Dialling: the swarm's auto-connector and its 60 s negative dial cache are not used. The
  auto-connector is replaced by one that does nothing, the swarm's internal retries are
  off, and our `dialer` dials single addresses with `Swarm.dial_addr`, which bypasses the
  negative cache, with its own backoff.
* Listening: `BasicHost.run` ignores a failed listen. `running` calls `Swarm.listen`
  itself and raises `HostStartError` (with the OS error) when the port cannot be bound.
* Admission at the handshake: right after the Noise handshake of an inbound connection
  (the first moment the remote peer id is known and authenticated) the `gate` is asked;
  a peer it refuses has its connection closed before any muxer or stream exists
  (`admission.may_connect`, which counts and logs the refusal).
* Handshakes time out: an inbound connection that has not finished security and muxer
  negotiation within `handshake_timeout` is closed (py-libp2p's inbound upgrade timeout),
  and at most `MAX_PENDING_HANDSHAKES` (`MAX_PENDING_PER_IP` from one address) may be
  under way at once; more are closed at once. 200 idle TCP sockets used to stay open.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio
from libp2p import new_host
from libp2p.abc import IHost, IRawConnection, ISecureConn
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.auto_connector import AutoConnector
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.network.exceptions import SwarmException
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.security.exceptions import HandshakeFailure
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.security.secure_session import SecureSession
from libp2p.stream_muxer.exceptions import MuxedConnUnavailable
from libp2p.stream_muxer.mplex.constants import MPLEX_MESSAGE_CHANNEL_SIZE
from libp2p.stream_muxer.mplex.datastructures import StreamID
from libp2p.stream_muxer.mplex.exceptions import MplexUnavailable
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex
from libp2p.stream_muxer.mplex.mplex_stream import MplexStream
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from tssnode.net.errors import HostStartError
from tssnode.net.identity import NodeIdentity

log = logging.getLogger(__name__)

#: Connections to one peer the swarm keeps at most (simultaneous dials make two).
MAX_CONNECTIONS_PER_PEER = 3
#: Inbound connections still in their handshake, at most, in all and from one IP address.
MAX_PENDING_HANDSHAKES = 64
MAX_PENDING_PER_IP = 16

#: Asked with the binary peer id right after an inbound handshake: keep the connection?
Gate = Callable[[bytes], bool]


class _AtomicWrites:
    """A Noise read-writer whose `write_msg` cannot be cancelled half way; it notes since
    when a write is in progress, so a stalled one can be found."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.writing_since: float | None = None  # trio clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def write_msg(self, msg: bytes, prefix_encoded: bool = False) -> None:
        with trio.CancelScope(shield=True):
            self.writing_since = trio.current_time()
            try:
                await self._inner.write_msg(msg, prefix_encoded)
            finally:
                self.writing_since = None


class _Noise(NoiseTransport):
    """Noise with atomic writes on every connection it secures, and the admission gate
    on every inbound one."""

    gate: Gate | None = None

    @staticmethod
    def _atomic(session: ISecureConn) -> ISecureConn:
        if isinstance(session, SecureSession) and not isinstance(session.conn, _AtomicWrites):
            session.conn = _AtomicWrites(session.conn)  # type: ignore[assignment]
        return session

    async def secure_inbound(self, conn: IRawConnection) -> ISecureConn:
        session = await super().secure_inbound(conn)
        gate = self.gate
        if gate is not None and not gate(session.get_remote_peer().to_bytes()):
            with (
                trio.CancelScope(shield=True),
                trio.move_on_after(2),
                contextlib.suppress(Exception),
            ):
                await session.close()
            raise HandshakeFailure("peer not admitted")
        return self._atomic(session)

    async def secure_outbound(self, conn: IRawConnection, peer_id: ID) -> ISecureConn:
        return self._atomic(await super().secure_outbound(conn, peer_id))


class _MplexStream(MplexStream):
    """An mplex stream whose reset does not hold the close lock while writing, and tells a
    half-closed remote about the reset, and whose reads cost what they return."""

    async def _do_read(self, n: int | None = None) -> bytes:
        # py-libp2p's read returns `buf[:n]` and keeps `buf = buf[n:]`, a copy of everything
        # still buffered, on every read. Pubsub reads each length prefix one byte at a time,
        # so a reader that fell behind by B bytes of small RPCs spent O(B) per byte of
        # prefix: quadratic in its backlog. With seven nodes on two cores that was a
        # fifth of each node's CPU, pings took 3 s, and the ledger's view changes never
        # finished (issue 12). When the buffer already holds more than asked, hand out
        # the front and drop it in place (a bytearray deletes its front in O(1)).
        if n is not None and 0 < n < len(self._buf):
            async with self.rw_lock.read_lock():
                if 0 < n < len(self._buf):
                    payload = bytes(self._buf[:n])
                    del self._buf[:n]
                    return payload
        return await super()._do_read(n)

    async def reset(self) -> None:
        async with self.close_lock:
            if self.event_reset.is_set() or (
                self.event_remote_closed.is_set() and self.event_local_closed.is_set()
            ):
                return
            self.event_reset.set()
            # py-libp2p skips the reset frame when the remote closed its side; but a
            # remote that half-closed is still reading and would wait for its timeout
            tell_remote = not self.event_local_closed.is_set()
            self.event_local_closed.set()
            self.event_remote_closed.set()
            await self.incoming_data_channel.aclose()
        if tell_remote:
            with contextlib.suppress(MuxedConnUnavailable):
                await self.muxed_conn.send_message(
                    self._get_header_flag("reset"), None, self.stream_id
                )
        async with self.muxed_conn.streams_lock:
            self.muxed_conn.streams.pop(self.stream_id, None)
            self.muxed_conn.streams_msg_channels.pop(self.stream_id, None)

    async def close(self) -> None:
        await super().close()
        if self.event_remote_closed.is_set():  # both sides closed: py-libp2p forgot the
            await _forget(self.muxed_conn, self.stream_id)  # stream but not its channel


async def _forget(conn: Mplex, stream_id: StreamID) -> None:
    """Drop a finished stream's incoming-message channel. py-libp2p (0.4) removes it only
    on a reset or with the whole connection: every stream closed the ordinary way left its
    channel, and the frames queued in it, in `streams_msg_channels` for as long as the
    connection lived. One direct message is one stream, so a node leaked a channel per
    message it sent or received: ~10 000 of them on a node after 600 requests, a
    contributor to the RSS growth of issue 12."""
    async with conn.streams_lock:
        if stream_id not in conn.streams:
            conn.streams_msg_channels.pop(stream_id, None)


class _Mplex(Mplex):
    """mplex whose reader closes the connection on any error instead of raising it into
    the swarm (which would stop the host), and notes when the peer last sent a frame."""

    last_frame: float | None = None  # trio clock

    async def _initialize_stream(self, stream_id: StreamID, name: str) -> MplexStream:
        send, receive = trio.open_memory_channel[bytes](MPLEX_MESSAGE_CHANNEL_SIZE)
        stream = _MplexStream(name, stream_id, self, receive)
        async with self.streams_lock:
            self.streams[stream_id] = stream
            self.streams_msg_channels[stream_id] = send
        return stream

    async def _handle_close(self, stream_id: StreamID) -> None:
        await super()._handle_close(stream_id)
        await _forget(self, stream_id)  # (if our side had closed too: see `_forget`)

    async def _handle_incoming_message(self) -> None:
        try:
            await super()._handle_incoming_message()
            self.last_frame = trio.current_time()
        except MplexUnavailable:
            raise
        except Exception as exc:
            log.warning(
                "closing the connection to %s: %s: %s", self.peer_id, type(exc).__name__, exc
            )
            raise MplexUnavailable(f"unusable connection: {type(exc).__name__}") from exc


class _NoAutoConnect(AutoConnector):
    """The swarm's auto-connector, switched off: our dialer decides whom to dial."""

    async def run_background_task(self, nursery: trio.Nursery) -> None:
        return None

    async def maybe_connect(self) -> None:
        return None


class _PendingHandshakes:
    """Counts inbound connections still in their handshake, by remote IP address, and
    closes those beyond the bounds before any work is spent on them."""

    def __init__(self, upgrade: Any) -> None:
        self._upgrade = upgrade
        self.by_ip: Counter[str] = Counter()
        self.total = 0
        self.refused = 0

    async def __call__(self, raw_conn: IRawConnection, maddr: Multiaddr) -> Any:
        remote = getattr(raw_conn, "get_remote_address", lambda: None)()
        ip = str(remote[0]) if remote else "?"
        if self.total >= MAX_PENDING_HANDSHAKES or self.by_ip[ip] >= MAX_PENDING_PER_IP:
            self.refused += 1
            with contextlib.suppress(Exception):
                await raw_conn.close()
            raise SwarmException(f"too many handshakes under way (from {ip})")
        self.total += 1
        self.by_ip[ip] += 1
        try:
            return await self._upgrade(raw_conn, maddr)
        finally:
            self.total -= 1
            self.by_ip[ip] -= 1
            if self.by_ip[ip] <= 0:
                del self.by_ip[ip]


def build(
    identity: NodeIdentity,
    listen: str,
    *,
    dial_timeout: float,
    handshake_timeout: float | None = None,
    gate: Gate | None = None,
) -> IHost:
    """A host with the node's key, Noise, mplex, and no automatic dialling; inbound
    handshakes end within `handshake_timeout` (default `dial_timeout`) and pass `gate`."""
    key_pair = identity.key_pair()
    noise = _Noise(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    noise.gate = gate
    security = {NOISE_PROTOCOL_ID: noise}
    muxers = {TProtocol(MPLEX_PROTOCOL_ID): _Mplex}
    config = ConnectionConfig(
        min_connections=0,
        low_watermark=0,
        high_watermark=10_000,  # never prune: a validator network is small and all-to-all
        max_connections=10_000,
        max_connections_per_peer=MAX_CONNECTIONS_PER_PEER,
        dial_timeout=dial_timeout,
        outbound_upgrade_timeout=dial_timeout,
        inbound_upgrade_timeout=handshake_timeout or dial_timeout,
        outbound_stream_protocol_negotiation_timeout=dial_timeout,
        inbound_stream_protocol_negotiation_timeout=dial_timeout,
    )
    host: IHost = new_host(
        key_pair=key_pair,
        sec_opt=security,
        muxer_opt=muxers,
        connection_config=config,
        listen_addrs=[Multiaddr(listen)],
        negotiate_timeout=max(1, round(dial_timeout)),
    )
    swarm = swarm_of(host)
    swarm.retry_config = RetryConfig(max_retries=0)
    swarm.auto_connector = _NoAutoConnect(swarm)
    # (an instance attribute: the swarm's inbound handler looks the method up on itself)
    swarm.upgrade_inbound_raw_conn = _PendingHandshakes(  # type: ignore[method-assign]
        swarm.upgrade_inbound_raw_conn
    )
    return host


def pending_handshakes(host: IHost) -> dict[str, int]:
    """Inbound handshakes under way now, and how many were refused for the bounds."""
    pending = swarm_of(host).upgrade_inbound_raw_conn
    if not isinstance(pending, _PendingHandshakes):
        return {"pending": 0, "refused": 0}
    return {"pending": pending.total, "refused": pending.refused}


def swarm_of(host: IHost) -> Swarm:
    network = host.get_network()
    if not isinstance(network, Swarm):
        raise TypeError("expected a libp2p Swarm")
    return network


def _bind_error(listen: Multiaddr) -> str:
    """Why `listen` cannot be bound, found by trying (libp2p only logs it at debug)."""
    names = [p.name for p in listen.protocols()]
    host = listen.value_for_protocol(names[0])
    port = int(listen.value_for_protocol("tcp") or 0)
    family = socket.AF_INET6 if names[0] == "ip6" else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((str(host), port))
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, "?")
            return f"{exc.strerror or exc} (errno {exc.errno}: {name})"
    return "the transport refused to listen (see the libp2p log)"


@contextlib.asynccontextmanager
async def running(host: IHost, listen: str) -> AsyncIterator[list[str]]:
    """Run the swarm and listen on `listen`; yields the bound addresses (port resolved).

    Raises `HostStartError` when the address cannot be bound. On exit the host is closed:
    connections, listeners, and the identify tasks it spawns as trio system tasks.
    """
    swarm = swarm_of(host)
    addr = Multiaddr(listen)
    async with background_trio_service(swarm):
        try:
            if not await swarm.listen(addr):
                raise HostStartError(f"cannot listen on {listen}: {_bind_error(addr)}")
            bound = [str(a) for a in host.get_transport_addrs()]
            log.info("listening on %s", ", ".join(bound))
            yield bound
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(10) as scope:
                await host.close()
            if scope.cancelled_caught:
                log.warning("closing the libp2p host took more than 10 s; abandoned")


def is_unspecified(addr: str) -> bool:
    """True for /ip4/0.0.0.0/… and /ip6/::/… (listen-anywhere addresses)."""
    try:
        maddr = Multiaddr(addr)
        name = next(iter(maddr.protocols())).name
        value = maddr.value_for_protocol(name)
        return name in ("ip4", "ip6") and ipaddress.ip_address(str(value)).is_unspecified
    except Exception:
        return False


def stalled_peers(host: IHost, seconds: float) -> list[bytes]:
    """Peers with a connection on which one write has been blocked for `seconds`."""
    now = trio.current_time()
    stalled = []
    for peer, conns in swarm_of(host).get_connections_map().items():
        for conn in conns:
            secured = getattr(getattr(conn, "muxed_conn", None), "secured_conn", None)
            writer = getattr(secured, "conn", None)
            since = getattr(writer, "writing_since", None)
            if since is not None and now - since >= seconds:
                stalled.append(peer.to_bytes())
                break
    return stalled


def last_frame(host: IHost, peer: Any) -> float | None:
    """When (trio clock) a libp2p peer `ID` last sent us a frame on any connection."""
    times = [
        t
        for c in swarm_of(host).get_connections(peer)
        if (t := getattr(getattr(c, "muxed_conn", None), "last_frame", None)) is not None
    ]
    return max(times) if times else None


def connection_count(host: IHost, peer: Any) -> int:
    """Open connections to a libp2p peer `ID`."""
    return len([c for c in swarm_of(host).get_connections(peer) if not c.is_closed])
