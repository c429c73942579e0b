"""The node process's native heap (glibc's malloc), kept from growing for good.

A node frees most of what a burst of requests took, but glibc keeps freed memory in its
arenas (one per thread that allocates, up to 8 per core: the trio thread cache, proof
workers, LevelDB's) instead of giving it back, so RSS only ever grows with the busiest
moment so far, and fragments. Two settings, both no-ops where the C library is not glibc:

- `limit_arenas()`, called before any thread starts: at most `ARENAS` arenas
  (`mallopt(M_ARENA_MAX)`, what `MALLOC_ARENA_MAX` does; an operator's own
  `MALLOC_ARENA_MAX` wins);
- `keep_trimmed()`, a task: every `TRIM_EVERY` seconds `malloc_trim(0)` hands the free
  pages of every arena back to the system.

What was measured with them: docs/reliability.md ("Node memory: what holds it").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from functools import cache

import trio

log = logging.getLogger("tssnode.heap")

#: glibc's mallopt parameter number for the arena limit (malloc.h: M_ARENA_MAX)
M_ARENA_MAX = -8
ARENAS = 2
TRIM_EVERY = 30.0


@cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, or None (another C library: musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    return libc if version() else None


def limit_arenas(arenas: int = ARENAS) -> bool:
    """At most `arenas` malloc arenas (unless MALLOC_ARENA_MAX is set); whether it took."""
    libc = _glibc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Give the free pages of every arena back to the system; whether any were."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


async def keep_trimmed(every: float = TRIM_EVERY) -> None:
    """`trim()` every `every` seconds until cancelled (a few ms each: it walks the free
    lists of each arena, holding the GIL, which is why the arenas are few)."""
    if _glibc() is None:
        log.info("not glibc: the heap is left to the C library")
        return
    while True:
        await trio.sleep(every)
        trim()
