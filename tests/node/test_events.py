from __future__ import annotations

from contextlib import aclosing

import pytest
import trio

from tssnode.node.events import EventBus

pytestmark = pytest.mark.trio


async def _collect(bus, since, n, out, on_first=None):
    async with aclosing(bus.subscribe(since)) as events:
        async for e in events:
            out.append(e)
            if on_first is not None and len(out) == 1:
                on_first()
            if len(out) == n:
                return


async def test_subscribers_get_every_event_and_history():
    bus = EventBus(history=10, per_subscriber=100)
    bus.publish("log", level="info", message="before")
    replayed: list = []
    live: list = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_collect, bus, 0, 3, replayed)
            nursery.start_soon(_collect, bus, None, 2, live)
            await trio.sleep(0.01)
            bus.publish("log", level="info", message="one")
            bus.publish("log", level="info", message="two")
    assert [e.fields["message"] for e in replayed] == ["before", "one", "two"]
    assert [e.seq for e in live] == [2, 3]
    with pytest.raises(ValueError):
        bus.publish("nonsense")


async def test_a_slow_subscriber_is_told_what_it_missed():
    bus = EventBus(per_subscriber=3)
    seen: list = []

    def flood() -> None:
        for i in range(10):
            bus.publish("log", level="info", message=str(i))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_collect, bus, None, 5, seen, flood)
            await trio.sleep(0.01)
            bus.publish("log", level="info", message="first")
    assert seen[0].fields["message"] == "first"
    assert seen[1].fields == {"level": "warning", "dropped": 7}
    assert [e.fields["message"] for e in seen[2:]] == ["7", "8", "9"]


async def test_a_subscriber_of_some_kinds_gets_only_those_and_misses_none_to_the_rest():
    """A reader of `request.settled` must not lose one to a flood of other events."""
    bus = EventBus(history=50, per_subscriber=3)
    bus.publish("log", level="info", message="old")
    bus.publish(
        "request.settled", request="aa", request_kind="sign", status="done", key_id="k", height=1
    )
    seen: list = []

    def flood() -> None:
        for i in range(20):
            bus.publish("log", level="info", message=str(i))
            if i % 10 == 9:
                bus.publish(
                    "request.settled", request=f"{i:02x}", request_kind="sign",
                    status="failed", key_id="k", height=2,
                )  # fmt: skip

    async def read() -> None:
        async with aclosing(bus.subscribe(0, ["request.settled"])) as events:
            async for e in events:
                seen.append(e)
                if len(seen) == 1:
                    flood()
                if len(seen) == 3:
                    return

    with trio.fail_after(5):
        await read()
    assert [e.kind for e in seen] == ["request.settled"] * 3  # no "dropped" note either
    assert [e.fields["request"] for e in seen] == ["aa", "09", "13"]
