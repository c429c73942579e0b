"""Where a node's memory goes: `TSSNODE_TRACEMALLOC=SECONDS tssnode run ...`.

Off unless the variable is set (tracing makes Python's allocations slower). When set, the
node starts `tracemalloc` before anything else is built; one period after it is up it
saves a first snapshot to `<data dir>/memtrace-first.snap`, and every period after that
the newest to `<data dir>/memtrace-latest.snap` (each replaced in one step). The node
only takes and saves snapshots (a second or so of its event loop each time); comparing
them is heavy pure-Python work and runs elsewhere:

    python -m tssnode.cli.memtrace DATA_DIR        (or FIRST.snap LATEST.snap)

prints the live allocations that grew most between the two, by the traceback that made
them, then the largest by file and line. Sizes and code locations only, never values: no
secret reaches a snapshot or the report. Python's allocations only: memory that native
libraries take for themselves (LevelDB, GMP limbs, glibc's arenas) does not show; compare
the report's "traced" total with the node's RSS.
"""

from __future__ import annotations

import logging
import os
import sys
import tracemalloc
from pathlib import Path

import trio

log = logging.getLogger("tssnode.memtrace")

ENV = "TSSNODE_TRACEMALLOC"
FIRST, LATEST = "memtrace-first.snap", "memtrace-latest.snap"
#: frames kept per allocation (more: finer attribution, slower and bigger snapshots)
FRAMES = 8
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


def save(path: Path) -> None:
    """A snapshot of the live allocations, to `path` (replaced in one step)."""
    snapshot = tracemalloc.take_snapshot()
    tmp = path.with_name(f".{path.name}.tmp")
    snapshot.dump(str(tmp))
    os.replace(tmp, path)


def _ignore(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    return snapshot.filter_traces(
        (
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        )
    )


def report(first: Path, latest: Path) -> str:
    """What grew between two saved snapshots, as text."""
    before = _ignore(tracemalloc.Snapshot.load(str(first)))
    now = _ignore(tracemalloc.Snapshot.load(str(latest)))
    total = sum(t.size for t in now.traces) / 2**20
    lines = [
        f"memtrace: {first} → {latest}",
        f"traced now {total:.1f} MiB (Python's own allocations)",
        "",
        f"== grew most (top {TOP}, by traceback) ==",
    ]
    for stat in now.compare_to(before, "traceback")[:TOP]:
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
    """Save the first snapshot after `every` seconds, then the newest every `every`
    seconds, until cancelled."""
    start()
    log.warning("memory tracing on (%s): snapshots in %s every %.0f s", ENV, data_dir, every)
    await trio.sleep(every)
    save(data_dir / FIRST)
    while True:
        await trio.sleep(every)
        save(data_dir / LATEST)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 1:
        first, latest = Path(args[0]) / FIRST, Path(args[0]) / LATEST
    elif len(args) == 2:
        first, latest = Path(args[0]), Path(args[1])
    else:
        print("usage: python -m tssnode.cli.memtrace DATA_DIR | FIRST LATEST", file=sys.stderr)
        return 2
    for path in (first, latest):
        if not path.is_file():
            print(f"memtrace: no snapshot at {path}", file=sys.stderr)
            return 1
    print(report(first, latest), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
