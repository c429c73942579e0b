"""`python -m tssnode.testing.netharness --config node.toml`: one net node as an OS
process.

The process fixture, fault tests and `tssnode bench net` start nodes with this and drive
them over a line protocol: one JSON object per line on stdin (`{"id": 1, "cmd":
"status"}`), one JSON answer per line on stdout (`{"id": 1, "ok": true, "result": …}` or
`{"id": 1, "ok": false, "error": "DeliveryTimeout", "message": …}`). Requests run
concurrently, so a long wait does not hold up a status query. When the node is up the
first line is `{"event": "ready", "peer_id": …, "addrs": […]}`; when it cannot start,
`{"event": "error", …}` and exit status 3.

Logs go to `<data_dir>/net.log` (Python warnings included); nothing is written to
stderr, which the fixtures check. EOF on stdin, `shutdown`, SIGTERM or SIGINT stop the node
cleanly.

Payloads are generated, not shipped through JSON: `{"size": n, "seed": "x"}` means the
`n` bytes of SHAKE-256("x"); answers describe payloads by length and SHA-256 digest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from tssnode.config import ConfigError, NodeConfig
from tssnode.net import peerid
from tssnode.net.errors import HostStartError, IdentityError, NetError
from tssnode.net.node import NetNode
from tssnode.net.store import Delivery

log = logging.getLogger(__name__)
EXIT_START_FAILED = 3
_STAMP = struct.Struct(">d")


def payload(size: int, seed: str) -> bytes:
    """Deterministic test payload of `size` bytes."""
    return hashlib.shake_256(seed.encode()).digest(size) if size else b""


def stamped(size: int, seed: str) -> bytes:
    """A payload whose first 8 bytes are the send time (`time.monotonic()`, which all
    processes on one machine share), for latency measurements."""
    body = payload(max(size, _STAMP.size), seed)
    return _STAMP.pack(time.monotonic()) + body[_STAMP.size :]


def latency_of(delivery: Delivery) -> float | None:
    """Receive time minus the send time stamped in the payload (seconds)."""
    data = delivery.envelope.payload
    if len(data) < _STAMP.size:
        return None
    sent: float = _STAMP.unpack(data[: _STAMP.size])[0]
    return delivery.received_mono - sent


def describe(delivery: Delivery) -> dict[str, Any]:
    env = delivery.envelope
    return {
        "sender": peerid.to_text(env.sender),
        "seq": env.seq,
        "round": env.round,
        "broadcast": env.is_broadcast,
        "via": delivery.via,
        "size": len(env.payload),
        "sha256": hashlib.sha256(env.payload).hexdigest(),
    }


class Harness:
    """Answers control requests for one node."""

    def __init__(self, node: NetNode, out: trio.abc.SendStream) -> None:
        self.node = node
        self.out = out
        self.write_lock = trio.Lock()
        self.stop = trio.Event()
        self.commands: dict[str, Callable[..., Awaitable[Any]]] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("cmd_")
        }

    async def emit(self, message: dict[str, Any]) -> None:
        line = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        async with self.write_lock:
            await self.out.send_all(line)

    async def handle(self, line: bytes) -> None:
        request: dict[str, Any] = {}
        try:
            request = json.loads(line)
            command = self.commands[request.pop("cmd")]
            rid = request.pop("id")
        except Exception as exc:
            await self.emit({"id": request.get("id"), "ok": False, "error": "BadRequest",
                             "message": repr(exc)})  # fmt: skip
            return
        try:
            result = await command(**request)
        except Exception as exc:
            if not isinstance(exc, NetError | trio.TooSlowError | ValueError | KeyError):
                log.exception("command failed")
            await self.emit({"id": rid, "ok": False, "error": type(exc).__name__,
                             "message": str(exc)})  # fmt: skip
            return
        await self.emit({"id": rid, "ok": True, "result": result})

    # -- commands ----------------------------------------------------------------------------

    async def cmd_status(self) -> dict[str, Any]:
        return self.node.status()

    async def cmd_wait_ready(self, peers: list[str], seconds: float) -> bool:
        await self.node.wait_ready(peers, within=seconds)
        return True

    async def cmd_set_allowed(self, peers: list[str] | None) -> bool:
        self.node.set_allowed(peers)
        return True

    async def cmd_broadcast(
        self, session: str, round: int, size: int, seed: str, stamp: bool = False
    ) -> dict[str, Any]:
        data = stamped(size, seed) if stamp else payload(size, seed)
        env = await self.node.broadcast(bytes.fromhex(session), round, data)
        return {"seq": env.seq, "sha256": hashlib.sha256(data).hexdigest()}

    async def cmd_broadcast_many(
        self,
        session: str,
        rounds: list[int],
        size: int,
        seed: str,
        stamp: bool = False,
        pace: float = 0.0,
    ) -> float:
        """Broadcast one message per round, `pace` seconds apart; returns the seconds it
        took."""
        start = time.perf_counter()
        for rnd in rounds:
            data = stamped(size, f"{seed}/{rnd}") if stamp else payload(size, f"{seed}/{rnd}")
            await self.node.broadcast(bytes.fromhex(session), rnd, data)
            if pace:
                await trio.sleep(pace)
        return time.perf_counter() - start

    async def cmd_send(
        self,
        peer: str,
        session: str,
        round: int,
        size: int,
        seed: str,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        data = payload(size, seed)
        start = time.perf_counter()
        env = await self.node.send(peer, bytes.fromhex(session), round, data, deadline=deadline)
        return {
            "seq": env.seq,
            "sha256": hashlib.sha256(data).hexdigest(),
            "seconds": time.perf_counter() - start,
        }

    async def cmd_send_many(
        self, peer: str, session: str, count: int, size: int, seed: str
    ) -> list[float]:
        """`count` sequential direct sends; returns each one's round trip in seconds."""
        data = payload(size, seed)
        times = []
        for rnd in range(count):
            start = time.perf_counter()
            await self.node.send(peer, bytes.fromhex(session), rnd, data)
            times.append(time.perf_counter() - start)
        return times

    async def cmd_messages(
        self, session: str, round: int, kind: str | None = None
    ) -> list[dict[str, Any]]:
        return [describe(d) for d in self.node.messages(bytes.fromhex(session), round, kind)]

    async def cmd_count(self, session: str, rounds: list[int], kind: str | None = None) -> int:
        sid = bytes.fromhex(session)
        return sum(len(self.node.messages(sid, r, kind)) for r in rounds)

    async def cmd_latencies(self, session: str, rounds: list[int]) -> list[float]:
        sid = bytes.fromhex(session)
        found = []
        for rnd in rounds:
            for d in self.node.messages(sid, rnd, "broadcast"):
                if d.via != "self" and (lat := latency_of(d)) is not None:
                    found.append(lat)
        return found

    async def cmd_collect(
        self, session: str, round: int, senders: list[str], seconds: float
    ) -> dict[str, str]:
        found = await self.node.collect_broadcasts(
            bytes.fromhex(session), round, senders, within=seconds
        )
        return {k: hashlib.sha256(v.payload).hexdigest() for k, v in found.items()}

    async def cmd_gossip_state(self) -> dict[str, Any]:
        """What pubsub holds per peer (for diagnosing readiness)."""
        gossip = self.node.gossip
        assert gossip is not None
        ps = gossip.pubsub
        topic_peers = ps.peer_topics.get(gossip.topic, set())
        mesh = gossip.router.mesh.get(gossip.topic, set())
        return {
            str(p): {"stream": p in ps.peers, "subscribed": p in topic_peers, "mesh": p in mesh}
            for p in {*ps.peers, *topic_peers, *mesh}
        }

    async def cmd_shutdown(self) -> bool:
        self.stop.set()
        return True


async def _serve(config: NodeConfig) -> int:
    out = trio.lowlevel.FdStream(os.dup(sys.stdout.fileno()))
    inp = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    try:
        node = NetNode(config.network_id, config.data_dir, config.net)
    except (IdentityError, NetError) as exc:
        await out.send_all((json.dumps({"event": "error", "error": type(exc).__name__,
                                        "message": str(exc)}) + "\n").encode())  # fmt: skip
        return EXIT_START_FAILED
    harness = Harness(node, out)
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(node.run)
        except HostStartError as exc:
            await harness.emit({"event": "error", "error": type(exc).__name__, "message": str(exc)})
            nursery.cancel_scope.cancel()
            return EXIT_START_FAILED
        await harness.emit({"event": "ready", "peer_id": node.peer_id, "addrs": node.addrs})

        async def read_commands() -> None:
            buffer = b""
            while True:
                chunk = await inp.receive_some(65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        nursery.start_soon(harness.handle, line)
            harness.stop.set()

        async def watch_signals() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    harness.stop.set()
                    return

        nursery.start_soon(read_commands)
        nursery.start_soon(watch_signals)
        await harness.stop.wait()
        nursery.cancel_scope.cancel()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tssnode.testing.netharness")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        config = NodeConfig.load(args.config)
    except ConfigError as exc:
        print(json.dumps({"event": "error", "error": "ConfigError", "message": str(exc)}))
        return EXIT_START_FAILED
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = logging.FileHandler(config.data_dir / "net.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler], force=True)
    logging.captureWarnings(True)
    return trio.run(_serve, config)


if __name__ == "__main__":
    sys.exit(main())
