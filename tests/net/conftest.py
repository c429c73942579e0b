"""Multi-node fixtures for the net layer.

* `net_cluster`: N nodes in the test's trio run (default 3; parametrize indirectly with
  N, or with a dict {"n": N, <net setting>: value, ...}). Ready when every node is ready
  with every other.
* `process_cluster`: N nodes as OS processes from generated config files (default 3),
  driven through `tssnode.testing.netharness`; for fault tests (SIGKILL, SIGSTOP).

Both check at teardown that nothing leaked: no trio tasks left under the test, no extra
threads (py-libp2p's pubsub starts one per node), and no process wrote to stderr.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio

from tssnode.testing.netcluster import LocalCluster, ProcessCluster, local_cluster, process_cluster


def child_tasks() -> int:
    """Tasks running under the current task (the test's own task tree)."""
    count = 0
    stack = list(trio.lowlevel.current_task().child_nurseries)
    while stack:
        nursery = stack.pop()
        for task in nursery.child_tasks:
            count += 1
            stack.extend(task.child_nurseries)
    return count


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], within: float, every: float = 0.05
) -> None:
    """Poll `check` until it is true; `trio.TooSlowError` after `within` seconds. For state
    that has no event to wait on (a counter, another process's status)."""
    with trio.fail_after(within):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await trio.sleep(every)


async def wait_threads(baseline: int) -> int:
    """Thread count once stray threads had a moment to finish (joined threads are gone at
    once; this only absorbs interpreter bookkeeping)."""
    for _ in range(50):
        if threading.active_count() <= baseline:
            break
        await trio.sleep(0.02)
    return threading.active_count()


@pytest.fixture
async def net_cluster(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[LocalCluster]:
    param = getattr(request, "param", 3)
    settings = dict(param) if isinstance(param, dict) else {"n": param}
    n = settings.pop("n")
    threads = threading.active_count()
    async with local_cluster(tmp_path / "local", n, **settings) as cluster:
        yield cluster
    assert child_tasks() == 0, "tasks left running after the cluster stopped"
    assert await wait_threads(threads) <= threads, "threads left running after the cluster"


@pytest.fixture
async def process_nodes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ProcessCluster]:
    n = getattr(request, "param", 3)
    async with process_cluster(tmp_path / "procs", n) as cluster:
        yield cluster
    for node in cluster.nodes:
        assert node.process is not None and node.process.returncode is not None
    assert cluster.stderr_output() == {}, "a node process wrote to stderr"
