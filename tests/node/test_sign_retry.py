"""When the node that accepted a sign request asks again (`_retry_until_signed`): a request
that failed is retried; one that is merely slow (in a block, its sessions queued behind a
burst) is not, since a retry would only add a presignature's work to the load that keeps
it waiting; one dropped before it was ordered is."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from tssnode.node.requests import SIGN_DEADLINE, STUCK_AFTER, NodeRequests
from tssnode.registry.records import RequestRecord
from tssnode.registry.transactions import SignRequest

TX = b"\x01" * 32
PARTIES = (b"a" * 32, b"b" * 32, b"c" * 32)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


PENDING = RequestRecord("sign", PARTIES[0], 5, b"", "k", PARTIES, (1, 2), "pending", b"", ())


class Asker(NodeRequests):
    """The retry loop of `NodeRequests` over a ledger whose requests a test sets."""

    def __init__(self, record: RequestRecord | None, pending: bool = False) -> None:
        self.requests: dict[bytes, RequestRecord] = {} if record is None else {TX: record}
        self.changed = trio.Event()
        self.replica_pending = {TX} if pending else set()
        self.asked: list[SignRequest] = []
        self.submitted = {TX: SignRequest("k", b"\x02" * 32, (), ())}
        self.retried: dict[bytes, bytes] = {}
        self.accepted = SimpleNamespace(retried=lambda old, new: None)
        self.service = SimpleNamespace(wait_until=self._wait_until)

    @property  # type: ignore[override]
    def registry(self) -> Any:
        return SimpleNamespace(requests=self.requests)

    @property  # type: ignore[override]
    def replica(self) -> Any:
        return SimpleNamespace(pending=self.replica_pending)

    def offline(self) -> set[bytes]:
        return set()

    async def _wait_until(self, ok: Any) -> None:
        while True:
            rec = self.requests.get(TX)
            if rec is not None and rec.status != "pending":
                return
            await self.changed.wait()
            self.changed = trio.Event()

    def accept(self, payload: SignRequest, *, retry_of: bytes) -> bytes:  # type: ignore[override]
        self.asked.append(payload)
        return b"\x03" * 32

    def settle(self, status: str) -> None:
        self.requests[TX] = replace(self.requests[TX], status=status)
        self.changed.set()


@pytest.mark.trio
async def test_a_slow_request_in_a_block_is_waited_for_not_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    asker = Asker(PENDING)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(asker._retry_until_signed, TX, 3)
        await trio.sleep(SIGN_DEADLINE * 10)  # slow, far past the old 45 s retry
        assert asker.asked == []
        asker.settle("done")
    assert asker.asked == []


@pytest.mark.trio
async def test_a_failed_request_is_retried_at_once(autojump_clock: trio.testing.MockClock) -> None:
    asker = Asker(PENDING)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(asker._retry_until_signed, TX, 2)
        await trio.sleep(1.0)
        asker.settle("failed")
    assert len(asker.asked) == 1 and asker.retried == {TX: b"\x03" * 32}


@pytest.mark.trio
async def test_a_request_dropped_before_ordering_and_a_stuck_one_are_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    dropped = Asker(None, pending=False)
    await dropped._retry_until_signed(TX, 2)
    assert len(dropped.asked) == 1
    stuck = Asker(PENDING)
    start = trio.current_time()
    await stuck._retry_until_signed(TX, 2)
    assert len(stuck.asked) == 1 and trio.current_time() - start >= STUCK_AFTER
