"""The console's connection to one node: snapshots, polling and the event stream over the
control API, turned into Textual messages; reconnection with backoff.

`NodeLink.run` never returns and never raises for anything the node does: an unreachable
node, a rejected token or a garbled answer all become `LinkDown` and a retry after a
growing delay (the token file is read again on every attempt, so a node that was
re-initialised is picked up). An event stream that fails while the node still answers
is only `StreamDown`: the console stays connected, polling, and reopens the stream from
the last event it applied. The app runs it in a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from textual.message import Message

from tssnode.api.client import ApiError, ApiUnavailable, AsyncApiClient, read_token
from tui.messages import (
    EventsWaiting,
    FetchFailed,
    LinkDown,
    LinkUp,
    Snapshot,
    StreamDown,
    StreamUp,
    Synced,
)
from tui.retry import Backoff

#: Routes read at connection time, and those polled while connected.
SNAPSHOTS = ("status", "validators", "peers", "sessions", "keys", "blocks")
POLLED = ("status", "peers", "validators", "sessions")
BLOCK_WINDOW = 50
#: Events received and not yet applied by the app, at most: when the app is this far
#: behind, the stream is not read until it catches up (the node buffers, and says so
#: with a "dropped" log event if it has to drop: the console then reloads everything).
MAX_BACKLOG = 10_000


class NodeApi(Protocol):
    """What the console needs of an API client (`tssnode.api.client.AsyncApiClient`)."""

    async def get(self, path: str, **params: Any) -> Any: ...
    async def post(self, path: str, body: Any = None, **params: Any) -> Any: ...
    def events(self, since: int | None = None) -> AsyncIterator[dict[str, Any]]: ...
    async def aclose(self) -> None: ...


ClientFactory = Callable[[str, str], NodeApi]


@dataclass(frozen=True)
class Target:
    """Where the node is and how to get its token (read again at every attempt)."""

    url: str
    token: Callable[[], str]

    @classmethod
    def from_token_file(cls, url: str, path: str | Path) -> Target:
        return cls(url.rstrip("/"), lambda: read_token(path))


class NodeLink:
    def __init__(
        self,
        target: Target,
        post: Callable[[Message], object],
        *,
        factory: ClientFactory = AsyncApiClient,
        backoff: Backoff | None = None,
        poll_interval: float | None = 2.0,
        resume_from: Callable[[dict[str, Any]], int | None] = lambda status: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.target = target
        self.post = post
        self.factory = factory
        self.backoff = backoff or Backoff()
        self.poll_interval = poll_interval
        self.resume_from = resume_from
        self.sleep = sleep
        self.client: NodeApi | None = None
        self.events: deque[dict[str, Any]] = deque()
        self._room = asyncio.Event()  # set when `take` makes room in a full backlog
        self.rung = False  # an EventsWaiting is on its way: the app has yet to drain
        self.height = 0
        self._since: int | None = None
        self._loaded = asyncio.Event()

    # -- the connection loop ------------------------------------------------------------------
    async def run(self) -> None:
        delays: Iterator[float] = self.backoff.delays()
        while True:
            connected = False
            try:
                connected = await self._connect()
                await self._serve()
                reason = "the node closed the event stream"
            except ApiUnavailable as exc:
                reason = str(exc)
            except ApiError as exc:
                reason = (
                    f"the node refused the token ({exc.message})"
                    if exc.status == 401
                    else f"HTTP {exc.status}: {exc.message}"
                )
            except OSError as exc:
                reason = f"cannot read the token: {exc}"
            except (httpx.HTTPError, ValueError) as exc:
                reason = f"bad answer from the node: {exc}"
            except Exception as exc:  # a bug of ours must not end the link: show it, retry
                reason = f"unexpected error: {exc!r}"
            finally:
                await self._close()
            if connected:
                delays = self.backoff.delays()
            delay = next(delays)
            self.post(LinkDown(reason, delay))
            await self.sleep(delay)

    async def _connect(self) -> bool:
        self.client = self.factory(self.target.url, self.target.token())
        status = await self.client.get("/status")
        self.post(LinkUp(self.target.url))
        self._saw_status(status)
        self.post(Snapshot("status", status))
        self._since = self.resume_from(status) if isinstance(status, dict) else None
        return True

    async def _serve(self) -> None:
        # events are buffered from the start (none is lost) but handed over only once
        # every snapshot is in, so each event applies on top of the state it follows
        self._loaded = asyncio.Event()
        tasks = [
            asyncio.create_task(self._stream_loop()),
            asyncio.create_task(self._load_and_poll()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the first failure, raised here
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _stream_loop(self) -> None:
        """Follow the event stream. If it fails while the node still answers `/status`,
        the console stays connected (polling keeps it current) and the stream is opened
        again after a delay, from the last event applied; if the node does not answer,
        the whole link goes down."""
        since = self._since
        delays = self.backoff.delays()
        while True:
            try:
                await self._stream(since)
            except ApiError as exc:
                if exc.status == 401:
                    raise
                reason = f"HTTP {exc.status}: {exc.message}"
            except (ApiUnavailable, httpx.HTTPError, ValueError, AttributeError) as exc:
                reason = str(exc) or type(exc).__name__
            status = await self.get("/status")  # ApiUnavailable here: the node is gone
            delay = next(delays)
            self.post(StreamDown(reason, delay))
            await self.sleep(delay)
            since = self.resume_from(status) if isinstance(status, dict) else None

    async def _stream(self, since: int | None) -> None:
        assert self.client is not None
        first = True
        async for event in self.client.events(since=since):
            if first:
                self.post(StreamUp())
                first = False
            while len(self.events) >= MAX_BACKLOG:  # the app is far behind: wait for it
                self._room.clear()
                await self._room.wait()
            self.events.append(event)
            if self._loaded.is_set():
                self.ring()
        raise ApiUnavailable("the node closed the event stream")

    async def _load_and_poll(self) -> None:
        for kind in SNAPSHOTS[1:]:
            await self.fetch(kind, quiet=False)
        self.post(Synced())
        self._loaded.set()
        if self.events:
            self.ring()
        if self.poll_interval is None:
            await asyncio.Event().wait()
            return
        while True:
            await self.sleep(self.poll_interval)
            for kind in POLLED:
                await self.fetch(kind, quiet=False)

    async def _close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail
                await client.aclose()

    def take(self, n: int) -> list[dict[str, Any]]:
        """The app takes the oldest `n` events (or fewer) waiting."""
        taken = [self.events.popleft() for _ in range(min(n, len(self.events)))]
        self._room.set()
        return taken

    def ring(self) -> None:
        """Tell the app that events wait: once until it drains them (not once an event)."""
        if not self.rung:
            self.rung = True
            self.post(EventsWaiting())

    # -- requests --------------------------------------------------------------------------
    async def fetch(self, kind: str, ident: str = "", *, quiet: bool = True) -> None:
        """GET one resource and post it as a `Snapshot`. A refusal (4xx/5xx) is posted as
        `FetchFailed`; a lost connection is left to the stream to notice unless `quiet`
        is False (then it propagates and the link reconnects)."""
        path, params = self._route(kind, ident)
        try:
            data = await self.get(path, **params)
        except ApiError as exc:
            self.post(FetchFailed(kind, f"HTTP {exc.status}: {exc.message}", exc.status))
            return
        except ApiUnavailable:
            if quiet:
                return
            raise
        if kind == "status":
            self._saw_status(data)
        self.post(Snapshot(kind, data, ident))

    async def get(self, path: str, **params: Any) -> Any:
        if self.client is None:
            raise ApiUnavailable("not connected to the node")
        return await self.client.get(path, **params)

    async def call(self, path: str, body: Any = None) -> Any:
        """POST for an action; raises ApiError / ApiUnavailable for the caller to show."""
        if self.client is None:
            raise ApiUnavailable("not connected to the node")
        return await self.client.post(path, body)

    def _route(self, kind: str, ident: str) -> tuple[str, dict[str, Any]]:
        if kind == "blocks":
            if ":" in ident:  # "first:last", at most the last BLOCK_WINDOW of them
                first, last = (int(h) for h in ident.split(":", 1))
                first = max(first, last - BLOCK_WINDOW + 1)
                return "/blocks", {"from": first, "limit": last - first + 1}
            if ident:
                return "/blocks", {"from": int(ident), "limit": 1}
            start = max(0, self.height - BLOCK_WINDOW + 1)
            return "/blocks", {"from": start, "limit": BLOCK_WINDOW}
        if kind == "key":
            return f"/keys/{ident}", {}
        if kind == "signature":
            return f"/signatures/{ident}", {}
        if kind == "block":
            return f"/blocks/{ident}", {}
        if kind.startswith("bridge."):  # bridge.addresses, bridge.deposits, bridge.releases
            return f"/bridge/{kind.removeprefix('bridge.')}", {}
        return f"/{kind}", {}

    def _saw_status(self, status: Any) -> None:
        if isinstance(status, dict) and isinstance(status.get("height"), int):
            self.height = status["height"]
