"""Where a node's memory goes: `TSSNODE_TRACEMALLOC=SECONDS tssnode run ...`.

Off unless the variable is set (tracing makes Python's allocations some 2–3× slower). When
set, the node starts `tracemalloc` before anything else is built, takes a first snapshot
once it is up, and every SECONDS writes `<data dir>/memtrace.txt` (replaced in one step):
the allocations still alive that grew most since that first snapshot, by the traceback
that made them, then the largest by file and line. Sizes only, never values: no secret
reaches the file. How it was used: docs/reliability.md ("Node memory").
"""

from __future__ import annotations

import logging
import os
import time
import tracemalloc
from pathlib import Path

import trio

from tssnode.launch import write_atomic

log = logging.getLogger("tssnode.memtrace")

ENV = "TSSNODE_TRACEMALLOC"
FILE = "memtrace.txt"
#: frames kept per allocation (more: finer attribution, slower)
FRAMES = 12
TOP = 25


def interval() -> float | None:
    """The period `TSSNODE_TRACEMALLOC` asks for, or None (off, or not a positive number)."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        log.warning("%s=%r is not a number of seconds: memory tracing stays off", ENV, text)
        return None
    return seconds if seconds > 0 else None


def start() -> None:
    """Begin tracing (call before the node builds anything)."""
    if not tracemalloc.is_tracing():
        tracemalloc.start(FRAMES)


def _ignore(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    return snapshot.filter_traces(
        (
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        )
    )


def report(baseline: tracemalloc.Snapshot, now: tracemalloc.Snapshot, began: float) -> str:
    """The text of one `memtrace.txt`."""
    traced, peak = tracemalloc.get_traced_memory()
    lines = [
        f"memtrace of pid {os.getpid()} at {time.strftime('%Y-%m-%d %H:%M:%S')}, "
        f"{time.monotonic() - began:.0f} s after the first snapshot",
        f"traced now {traced / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB",
        "",
        f"== grew most since the first snapshot (top {TOP}, by traceback) ==",
    ]
    for stat in now.compare_to(baseline, "traceback")[:TOP]:
        lines.append(
            f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks"
            f"  (now {stat.size / 1024:.1f} KiB in {stat.count})"
        )
        lines += [f"      {line}" for line in stat.traceback.format(most_recent_first=True)]
    lines += ["", f"== largest now (top {TOP}, by line) =="]
    for line in now.statistics("lineno")[:TOP]:
        lines.append(f"{line.size / 1024:10.1f} KiB {line.count:8d} blocks  {line.traceback}")
    return "\n".join(lines) + "\n"


async def run(data_dir: Path, every: float) -> None:
    """Write `<data dir>/memtrace.txt` every `every` seconds until cancelled."""
    start()
    baseline = _ignore(tracemalloc.take_snapshot())
    began = time.monotonic()
    log.warning("memory tracing on (%s): %s every %.0f s", ENV, data_dir / FILE, every)
    while True:
        await trio.sleep(every)
        now = _ignore(tracemalloc.take_snapshot())
        text = await trio.to_thread.run_sync(report, baseline, now, began)
        write_atomic(data_dir / FILE, text)
