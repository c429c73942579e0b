"""The link to the node, without the app: what it posts as the node comes, goes, restarts
or refuses the token. It runs against the HTTP API test double through the real client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from textual.message import Message

from tests.tui.helpers import FAST, LAST_SEQ
from tssnode.testing.fakenode import URL, FakeNode
from tui import link as link_module
from tui.app import coalesce_fetches
from tui.link import BLOCK_WINDOW, NodeLink, Target
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

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message) -> bool:
        self.messages.append(message)
        return True

    def of(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]


async def wait(ok: Callable[[], object], what: str) -> None:
    for _ in range(500):
        if ok():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def start(node: FakeNode, token: Callable[[], str] | None = None, **options: Any):
    posted = Recorder()
    link = NodeLink(
        Target(URL, token or (lambda: node.token)),
        posted,
        factory=node.client,
        backoff=FAST,
        poll_interval=None,
        **options,
    )
    return link, posted


async def test_connects_loads_then_streams(node):
    link, posted = start(node)
    task = asyncio.create_task(link.run())
    await wait(lambda: len(link.events) == LAST_SEQ and posted.of(EventsWaiting), "events")
    kinds = [m.kind for m in posted.of(Snapshot)]
    assert kinds == ["status", "validators", "peers", "sessions", "keys", "blocks"]
    order = [type(m) for m in posted.messages if not isinstance(m, Snapshot | StreamUp)]
    # every snapshot comes before the first doorbell for events
    assert order[:3] == [LinkUp, Synced, EventsWaiting]
    await stop(task)


async def test_node_going_away_is_retried_with_backoff_and_resumes(node):
    seen: list[int | None] = []
    link, posted = start(node, resume_from=lambda status: seen[-1] if seen else None)
    task = asyncio.create_task(link.run())
    await wait(lambda: posted.of(Synced), "sync")
    seen.append(LAST_SEQ)
    node.go_down()
    await wait(lambda: len(posted.of(LinkDown)) >= 3, "three failed attempts")
    downs = posted.of(LinkDown)
    # the stream broke, and /status did not answer either: the node is gone
    assert all(d.reason.startswith("cannot reach http://127.0.0.1:3001") for d in downs)
    assert [d.retry_in for d in downs[:3]] == [0.02, 0.04, 0.08]
    node.come_back()
    await wait(lambda: len(posted.of(LinkUp)) == 2, "reconnection")
    await wait(lambda: node.streams_opened == 2, "a new stream")
    assert ("GET", "/events", None) in node.requests  # bodies are None for GETs
    node.publish("log", level="info", message="after the outage")
    await wait(lambda: any(e.get("message") == "after the outage" for e in link.events), "event")
    await stop(task)


async def test_resumes_the_stream_from_the_last_event(node):
    link, _ = start(node, resume_from=lambda status: 7)
    task = asyncio.create_task(link.run())
    await wait(lambda: node.streams_opened == 1, "stream")
    assert node.since == [7]
    await stop(task)


async def test_rejected_token_is_a_disconnection_and_the_file_is_read_again(node):
    tokens = iter(["wrong", "wrong", node.token])
    link, posted = start(node, token=lambda: next(tokens, node.token))
    task = asyncio.create_task(link.run())
    await wait(lambda: posted.of(Synced), "sync with the right token")
    downs = posted.of(LinkDown)
    assert len(downs) == 2
    assert downs[0].reason == "the node refused the token (missing or wrong bearer token)"
    await stop(task)


async def test_unreadable_token_file(tmp_path, node):
    link, posted = start(node)
    link.target = Target.from_token_file(URL, tmp_path / "missing.token")
    task = asyncio.create_task(link.run())
    await wait(lambda: posted.of(LinkDown), "failure")
    assert posted.of(LinkDown)[0].reason.startswith("cannot read the token:")
    await stop(task)


async def test_a_refused_route_is_a_warning_not_a_disconnection(node):
    node.broken_routes["/sessions"] = (500, {"error": "sessions not built yet"})
    link, posted = start(node)
    task = asyncio.create_task(link.run())
    await wait(lambda: posted.of(Synced), "sync")
    assert [(f.kind, f.reason) for f in posted.of(FetchFailed)] == [
        ("sessions", "HTTP 500: sessions not built yet")
    ]
    assert not posted.of(LinkDown)
    await stop(task)


async def test_a_broken_stream_of_a_live_node_is_reopened_not_a_disconnection(node):
    node.garble_stream = True
    link, posted = start(node, resume_from=lambda status: 5)
    task = asyncio.create_task(link.run())
    await wait(lambda: posted.of(StreamDown), "the stream failure")
    assert posted.of(StreamDown)[0].reason.startswith("Expecting property name")
    await wait(lambda: posted.of(Synced), "the snapshots, all the same")
    node.garble_stream = False
    await wait(lambda: posted.of(StreamUp), "the stream again")
    assert not posted.of(LinkDown)
    assert node.since[-1] == 5  # reopened from the last event applied
    await stop(task)


async def test_a_missing_event_route_leaves_the_console_polling(node):
    node.broken_routes["/events"] = (404, {"error": "Not Found"})
    link, posted = start(node)
    task = asyncio.create_task(link.run())
    await wait(lambda: len(posted.of(StreamDown)) >= 2, "two stream failures")
    assert posted.of(StreamDown)[0].reason == "HTTP 404: Not Found"
    assert posted.of(Synced) and not posted.of(LinkDown)
    await stop(task)


async def test_the_backlog_is_bounded_the_stream_waits_for_the_app(node, monkeypatch):
    monkeypatch.setattr(link_module, "MAX_BACKLOG", 40)
    link, _ = start(node)
    task = asyncio.create_task(link.run())
    try:
        await wait(lambda: len(link.events) == 40, "a full backlog")
        for i in range(100):  # nobody drains: the stream is read no further than the bound
            node.publish("log", level="info", message=f"line {i}")
        await asyncio.sleep(0.1)
        assert len(link.events) == 40
        got: list[dict[str, Any]] = []
        while not got or got[-1]["seq"] < node.seq:  # the app drains: the rest comes, in order
            got += link.take(7)
            await asyncio.sleep(0.01)
            assert len(link.events) <= 40
        assert [e["seq"] for e in got] == list(range(got[0]["seq"], node.seq + 1))
        assert got[-1]["message"] == "line 99"
    finally:
        await stop(task)


async def test_blocks_asked_for_one_by_one_are_fetched_as_one_range():
    wanted = [("blocks", "13"), ("keys", ""), ("blocks", "15"), ("blocks", "14"), ("blocks", "")]
    assert coalesce_fetches(wanted) == [("keys", ""), ("blocks", ""), ("blocks", "13:15")]
    assert coalesce_fetches([("blocks", "7")]) == [("blocks", "7")]
    link = NodeLink(Target(URL, lambda: "t"), Recorder())
    assert link._route("blocks", "13:15") == ("/blocks", {"from": 13, "limit": 3})
    assert link._route("blocks", "1:500") == ("/blocks", {"from": 451, "limit": BLOCK_WINDOW})
