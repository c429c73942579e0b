"""Multi-node net clusters for tests and benchmarks: N net nodes (real libp2p hosts) in
this trio process (`local_cluster`) or N OS processes on loopback ports
(`process_cluster`, each one `python -m tssnode.testing.netharness`).

Both generate an identity and a free port per node, bootstrap every node from exactly one
other (a ring: node i from node i-1), admit exactly the cluster's peers, start everything,
and wait until every node is ready with every other before handing the cluster over. Both
stop everything on exit: the in-process cluster cancels the nodes (which close their hosts
and join pubsub's sweeper threads); the process cluster closes stdin (a clean shutdown),
then kills what is left, and keeps each process's stderr in a file so tests can check that
nothing was printed there.

Timings are shortened for tests (`TEST_NET`); a node that loses a race for its port is
restarted on another one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from tssnode.config import NetConfig, render
from tssnode.launch import piped
from tssnode.net import identity as identity_mod
from tssnode.net.errors import HostStartError, NetError
from tssnode.net.identity import NodeIdentity
from tssnode.net.node import NetNode
from tssnode.testing.ports import free_port

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio's own TaskStatus is hidden by trio-typing

#: Net settings for tests: quick liveness, quick redials, short deadlines.
TEST_NET: dict[str, Any] = {
    "op_timeout": 10.0,
    "send_deadline": 30.0,
    "ping_interval": 0.5,
    "ping_timeout": 3.0,
    "ping_failures": 3,
    "redial_min": 0.1,
    "redial_max": 1.0,
    "pex_interval": 2.0,
    "ready_timeout": 10.0,
    "fetch_grace": 0.5,
}
START_ATTEMPTS = 3


def listen_addr(port: int) -> str:
    return f"/ip4/127.0.0.1/tcp/{port}"


@dataclass
class NodeSpec:
    """Where one cluster node lives and whom it bootstraps from."""

    index: int
    data_dir: Path
    identity: NodeIdentity
    port: int
    bootstrap_from: int | None

    @property
    def peer_id(self) -> str:
        return self.identity.peer_id_text

    @property
    def addr(self) -> str:
        return f"{listen_addr(self.port)}/p2p/{self.peer_id}"


def make_specs(base_dir: Path, n: int, topology: str = "ring") -> list[NodeSpec]:
    """Identities (created as on a node's first start) and ports for `n` nodes."""
    specs = []
    for i in range(n):
        data_dir = Path(base_dir) / f"node{i}"
        identity, _ = identity_mod.load_or_create(data_dir)
        if topology == "ring":
            source: int | None = (i - 1) % n if n > 1 else None
        elif topology == "star":
            source = 0 if i else (1 if n > 1 else None)
        else:
            raise ValueError(f"unknown topology {topology!r}")
        specs.append(NodeSpec(i, data_dir, identity, free_port(), source))
    return specs


def net_config(specs: list[NodeSpec], spec: NodeSpec, overrides: Mapping[str, Any]) -> NetConfig:
    bootstrap = () if spec.bootstrap_from is None else (specs[spec.bootstrap_from].addr,)
    settings = {**TEST_NET, **overrides}
    settings.setdefault("allowed_peers", tuple(s.peer_id for s in specs))
    return NetConfig(listen=listen_addr(spec.port), bootstrap=bootstrap, **settings)


# -- in one process --------------------------------------------------------------------------


@dataclass
class LocalCluster:
    """N `NetNode`s in this trio process."""

    network_id: str
    specs: list[NodeSpec]
    overrides: dict[str, Any]
    nodes: list[NetNode] = field(default_factory=list)
    _scopes: dict[int, trio.CancelScope] = field(default_factory=dict)
    _stopped: dict[int, trio.Event] = field(default_factory=dict)
    _nursery: trio.Nursery | None = None

    def __getitem__(self, i: int) -> NetNode:
        return self.nodes[i]

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def peer_ids(self) -> list[str]:
        return [s.peer_id for s in self.specs]

    def others(self, i: int) -> list[str]:
        return [p for j, p in enumerate(self.peer_ids) if j != i]

    async def _run_node(
        self,
        node: NetNode,
        i: int,
        *,
        task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        stopped = self._stopped[i] = trio.Event()
        try:
            with trio.CancelScope() as scope:
                self._scopes[i] = scope
                await node.run(task_status=task_status)
        finally:
            stopped.set()

    async def start_node(self, i: int) -> NetNode:
        """(Re)start node i with its identity and data directory."""
        assert self._nursery is not None
        for attempt in range(START_ATTEMPTS):
            spec = self.specs[i]
            config = net_config(self.specs, spec, self.overrides)
            node = NetNode(self.network_id, spec.data_dir, config, identity=spec.identity)
            try:
                await self._nursery.start(self._run_node, node, i)
            except HostStartError:
                if attempt + 1 == START_ATTEMPTS:
                    raise
                self.specs[i] = replace(spec, port=free_port())
                continue
            if i < len(self.nodes):
                self.nodes[i] = node
            else:
                self.nodes.append(node)
            return node
        raise AssertionError("unreachable")

    async def stop_node(self, i: int) -> None:
        """Stop node i (as a crash would, but cleanly) and wait until it has stopped."""
        self._scopes[i].cancel()
        await self._stopped[i].wait()

    async def wait_connected(self, within: float = 30.0) -> None:
        """Every running node ready with every other running node."""
        running = [n for n in self.nodes if n.running]
        with trio.fail_after(within):
            for node in running:
                peers = [m.peer_id for m in running if m is not node]
                await node.wait_ready(peers, within=math.inf)


@contextlib.asynccontextmanager
async def local_cluster(
    base_dir: Path,
    n: int,
    *,
    network_id: str = "test-net",
    topology: str = "ring",
    connect_timeout: float = 30.0,
    **overrides: Any,
) -> AsyncIterator[LocalCluster]:
    """Start `n` nodes in this process, wait for full connectivity, stop them on exit."""
    cluster = LocalCluster(network_id, make_specs(base_dir, n, topology), dict(overrides))
    async with trio.open_nursery() as nursery:
        cluster._nursery = nursery
        try:
            for i in range(n):
                await cluster.start_node(i)
            await cluster.wait_connected(connect_timeout)
            yield cluster
        finally:
            nursery.cancel_scope.cancel()


# -- as OS processes -------------------------------------------------------------------------


class RemoteError(NetError):
    """A harness command failed in the node process; `name` is the exception type there."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


class ProcessGone(NetError):
    """The node process exited while a command was waiting for its answer."""


@dataclass
class NodeProcess:
    """One node process and its control channel."""

    spec: NodeSpec
    config_path: Path
    stderr_path: Path
    process: trio.Process | None = None
    addrs: list[str] = field(default_factory=list)
    _pending: dict[int, trio.MemorySendChannel[dict[str, Any]]] = field(default_factory=dict)
    _next_id: int = 0
    _ready: trio.MemorySendChannel[dict[str, Any]] | None = None
    _write_lock: trio.Lock = field(default_factory=trio.Lock)

    @property
    def peer_id(self) -> str:
        return self.spec.peer_id

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def call(self, cmd: str, *, within: float = 120.0, **args: Any) -> Any:
        """Run one harness command in the process and return its result (the command's
        own arguments are `args`; `within` bounds the whole call)."""
        if self.process is None or self.process.stdin is None:
            raise ProcessGone(f"node {self.spec.index} is not running")
        self._next_id += 1
        rid = self._next_id
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._pending[rid] = send
        line = json.dumps({"id": rid, "cmd": cmd, **args}).encode() + b"\n"
        try:
            with trio.fail_after(within):
                async with self._write_lock:
                    await self.process.stdin.send_all(line)
                answer = await receive.receive()
        finally:
            self._pending.pop(rid, None)
        if answer.get("gone"):
            raise ProcessGone(f"node {self.spec.index} exited during {cmd}")
        if not answer["ok"]:
            raise RemoteError(answer["error"], answer["message"])
        return answer["result"]

    async def _read(self, stdout: trio.abc.ReceiveStream) -> None:
        buffer = b""
        try:
            while True:
                chunk = await stdout.receive_some(65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    message = json.loads(line)
                    if "event" in message:
                        if self._ready is not None:
                            self._ready.send_nowait(message)
                    elif (channel := self._pending.get(message.get("id"))) is not None:
                        channel.send_nowait(message)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        finally:
            for channel in list(self._pending.values()):
                with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                    channel.send_nowait({"gone": True})
            if self._ready is not None:
                with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                    self._ready.send_nowait({"event": "exit"})

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""


@dataclass
class ProcessCluster:
    """N node processes on loopback, driven through `tssnode.testing.netharness`."""

    network_id: str
    specs: list[NodeSpec]
    overrides: dict[str, Any]
    base_dir: Path
    nodes: list[NodeProcess] = field(default_factory=list)
    _nursery: trio.Nursery | None = None

    def __getitem__(self, i: int) -> NodeProcess:
        return self.nodes[i]

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def peer_ids(self) -> list[str]:
        return [s.peer_id for s in self.specs]

    def others(self, i: int) -> list[str]:
        return [p for j, p in enumerate(self.peer_ids) if j != i]

    def placeholder(self, i: int) -> NodeProcess:
        """Node i before its process starts."""
        base = self.base_dir
        return NodeProcess(self.specs[i], base / f"node{i}.toml", base / f"node{i}.stderr")

    def write_config(self, i: int) -> Path:
        spec = self.specs[i]
        net = net_config(self.specs, spec, self.overrides)
        keys = {k: getattr(net, k) for k in net.__dataclass_fields__}
        text = render(
            {
                "node": {"network_id": self.network_id, "data_dir": spec.data_dir},
                "net": keys,
                "api": {"listen": f"127.0.0.1:{free_port()}"},
            }
        )
        path = self.base_dir / f"node{i}.toml"
        path.write_text(text)
        return path

    async def start_node(self, i: int, *, within: float = 60.0) -> NodeProcess:
        """Start (or restart) node i's process and wait for its `ready` line."""
        assert self._nursery is not None
        for attempt in range(START_ATTEMPTS):
            path = self.write_config(i)
            node = self.placeholder(i)
            if i < len(self.nodes):
                node._next_id = self.nodes[i]._next_id
                self.nodes[i] = node
            else:
                self.nodes.append(node)
            send, receive = trio.open_memory_channel[dict[str, Any]](4)
            node._ready = send
            err = os.open(node.stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                # the launcher's command line and pipes; trio holds the process (its
                # stdout is read in this nursery)
                harness = piped(
                    "tssnode.testing.netharness",
                    "--config",
                    str(path),
                    stderr=err,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
                node.process = await trio.lowlevel.open_process(harness.argv, **harness.options)
            finally:
                os.close(err)
            assert node.process.stdout is not None
            self._nursery.start_soon(node._read, node.process.stdout)
            with trio.fail_after(within):
                event = await receive.receive()
            if event["event"] == "ready":
                node.addrs = event["addrs"]
                return node
            await self._reap(node)
            if event.get("error") == "HostStartError" and attempt + 1 < START_ATTEMPTS:
                self.specs[i] = replace(self.specs[i], port=free_port())
                continue
            raise RemoteError(event.get("error", "exit"), event.get("message", "process exited"))
        raise AssertionError("unreachable")

    def kill(self, i: int) -> None:
        """SIGKILL node i (no clean shutdown at all)."""
        process = self.nodes[i].process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL)

    def freeze(self, i: int) -> None:
        """SIGSTOP node i: its sockets stay open but nothing answers."""
        process = self.nodes[i].process
        if process is not None:
            process.send_signal(signal.SIGSTOP)

    def thaw(self, i: int) -> None:
        process = self.nodes[i].process
        if process is not None:
            process.send_signal(signal.SIGCONT)

    async def wait_exit(self, i: int) -> int:
        process = self.nodes[i].process
        assert process is not None
        return await process.wait()

    async def restart(self, i: int) -> NodeProcess:
        """Start node i again (same identity, data directory and port) after a kill."""
        if self.nodes[i].alive:
            self.kill(i)
        await self._reap(self.nodes[i])
        return await self.start_node(i)

    async def wait_connected(self, within: float = 60.0) -> None:
        """Every live node ready with every other live node."""
        live = [n for n in self.nodes if n.alive]
        with trio.fail_after(within):
            async with trio.open_nursery() as nursery:
                for node in live:
                    peers = [m.peer_id for m in live if m is not node]
                    nursery.start_soon(
                        lambda n=node, p=peers: n.call("wait_ready", peers=p, seconds=within)
                    )

    async def _reap(self, node: NodeProcess, grace: float = 10.0) -> None:
        process = node.process
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGCONT)  # a frozen process cannot exit
            if process.stdin is not None:
                with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
                    await process.stdin.aclose()  # EOF: the harness shuts down cleanly
            with trio.move_on_after(grace):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
                    await pipe.aclose()

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                for node in self.nodes:
                    nursery.start_soon(self._reap, node)

    def stderr_output(self) -> dict[int, str]:
        """What each node process wrote to stderr (should be nothing)."""
        return {n.spec.index: text for n in self.nodes if (text := n.stderr())}


@contextlib.asynccontextmanager
async def process_cluster(
    base_dir: Path,
    n: int,
    *,
    network_id: str = "test-net",
    topology: str = "ring",
    connect_timeout: float = 60.0,
    **overrides: Any,
) -> AsyncIterator[ProcessCluster]:
    """Start `n` node processes from generated configs, wait for full connectivity."""
    base_dir = Path(base_dir)
    cluster = ProcessCluster(
        network_id, make_specs(base_dir, n, topology), dict(overrides), base_dir
    )
    async with trio.open_nursery() as nursery:
        cluster._nursery = nursery
        try:
            with trio.fail_after(connect_timeout):
                cluster.nodes = [cluster.placeholder(i) for i in range(n)]
                async with trio.open_nursery() as starting:
                    for i in range(n):
                        starting.start_soon(cluster.start_node, i)
            await cluster.wait_connected(connect_timeout)
            yield cluster
        finally:
            await cluster.aclose()
            nursery.cancel_scope.cancel()
