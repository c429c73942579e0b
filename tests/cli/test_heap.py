"""`tssnode.cli.heap`: the node gives freed native memory back (glibc's malloc_trim) and
keeps its arenas few. Measured in a process of its own, so pytest's heap does not count."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tssnode.cli import heap

pytestmark = pytest.mark.skipif(heap._glibc() is None, reason="glibc only")

# Fills the heap with 200 MiB of 100 KiB blocks (below the mmap threshold, so they come
# from the heap), frees all but the last (which pins the heap's top, so glibc cannot give
# the rest back by itself), and reports RSS before the fill, after the free, after trim.
SCRIPT = """
import json
from tssnode.cli import heap

def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) // 1024 for l in f if l.startswith("VmRSS:"))

start = rss()
blocks = [bytearray(100 * 1024) for _ in range(2048)]
for b in blocks:
    b[::4096] = b"x" * len(b[::4096])  # touch every page
last = blocks[-1]
del blocks
freed = rss()
trimmed = heap.trim()
print(json.dumps({"start": start, "freed": freed, "after": rss(), "trimmed": trimmed}))
"""


def test_trim_gives_freed_memory_back():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    r = json.loads(out.stdout)
    assert r["freed"] - r["start"] > 150  # MiB: the free did not give it back by itself
    assert r["trimmed"] is True
    assert r["after"] - r["start"] < 30  # trim did


def test_an_operators_arena_limit_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert heap.limit_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert heap.limit_arenas() is True
