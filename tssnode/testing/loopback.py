"""A minimal TCP loopback transport and a node process for the multi-process test.

Test-only: frames are length-prefixed and carry the sender's id in clear (the node's real
transport is libp2p with Noise, tssnode/net). Each node gets its listening socket from the
parent (`pass_fds`), so no port is guessed or raced for.

Run as `python -m tssnode.testing.loopback GENESIS_TOML SEED_HEX FD PORTS_JSON DATA_DIR
TARGET`: serve a replica, submit three requests, print `TIP <height> <hash>` once the
ledger holds TARGET requests (from all nodes), and keep serving until stdin closes.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from pathlib import Path

import trio

from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.genesis import load_genesis
from tssnode.ledger.replica import ReplicaOptions
from tssnode.ledger.service import ReplicaService
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import KeygenRequest
from tssnode.store import LevelStore

_LEN = struct.Struct(">I")


class LoopbackTransport:
    def __init__(self, me: bytes, listener: socket.socket, ports: dict[bytes, int]) -> None:
        self._me = me
        self._listener = trio.socket.from_stdlib_socket(listener)
        self._ports = ports
        self._streams: dict[bytes, trio.SocketStream] = {}
        self._send, self._recv = trio.open_memory_channel[tuple[bytes, bytes]](10_000)

    @property
    def self_id(self) -> bytes:
        return self._me

    async def serve(self, nursery: trio.Nursery) -> None:
        self._listening = trio.SocketListener(self._listener)
        nursery.start_soon(trio.serve_listeners, self._handle, [self._listening])

    async def aclose(self) -> None:
        """Close the listener and every stream this side opened, once `serve`'s nursery is
        done (the streams it accepted close as their handlers end)."""
        for stream in self._streams.values():
            await stream.aclose()
        self._streams.clear()
        await self._listening.aclose()

    async def _handle(self, stream: trio.SocketStream) -> None:
        buf = b""
        async with stream:
            try:
                async for chunk in stream:
                    buf += chunk
                    while len(buf) >= 4 and len(buf) >= 4 + _LEN.unpack_from(buf)[0]:
                        n = _LEN.unpack_from(buf)[0]
                        frame, buf = buf[4 : 4 + n], buf[4 + n :]
                        await self._send.send((frame[:32], frame[32:]))
            except trio.BrokenResourceError:
                return

    async def send(self, to: bytes, data: bytes) -> None:
        frame = self._me + data
        try:
            stream = self._streams.get(to)
            if stream is None:
                stream = await trio.open_tcp_stream("127.0.0.1", self._ports[to])
                self._streams[to] = stream
            await stream.send_all(_LEN.pack(len(frame)) + frame)
        except (OSError, trio.BrokenResourceError):
            self._streams.pop(to, None)  # best effort: the replica retransmits

    async def broadcast(self, data: bytes) -> None:
        for peer in self._ports:
            if peer != self._me:
                await self.send(peer, data)

    async def receive(self) -> tuple[bytes, bytes]:
        return await self._recv.receive()


async def node_main(argv: list[str]) -> None:
    genesis = load_genesis(argv[0])
    key = IdentityKey.from_seed(bytes.fromhex(argv[1]))
    listener = socket.socket(fileno=int(argv[2]))
    ports = {bytes.fromhex(k): v for k, v in json.loads(argv[3]).items()}
    target = int(argv[5])
    store = LevelStore(Path(argv[4]))
    transport = LoopbackTransport(key.public_bytes(), listener, ports)
    service = ReplicaService(
        key, genesis, store, transport, ReplicaOptions(view_timeout=5.0), apps=(KeyRegistry,)
    )
    parties = tuple(sorted(ports))
    try:
        async with trio.open_nursery() as nursery:
            await transport.serve(nursery)
            await nursery.start(service.run)
            # Peers' sockets already listen (the parent bound them), so frames sent before
            # a peer's replica runs wait in its backlog.
            for _ in range(3):
                service.submit_payload(KeygenRequest(1, parties, "insecure-test"))
            if os.environ.get("LOOPBACK_DEBUG"):

                async def report() -> None:
                    while True:
                        await trio.sleep(1)
                        r = service.replica
                        print(r.height, r.view, r.active, len(r.pending), r.stats, file=sys.stderr)

                nursery.start_soon(report)
            await service.wait_until(
                lambda r: len(r.chain.state.app(KeyRegistry).requests) >= target
            )
            rec = service.replica.chain.record(service.replica.height)
            assert rec is not None
            print("TIP", rec.block.height, rec.block.hash.hex(), flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)  # serve until the parent says stop
            nursery.cancel_scope.cancel()
    finally:
        store.close()


if __name__ == "__main__":
    trio.run(node_main, sys.argv[1:])
