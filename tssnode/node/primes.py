"""A background reserve of safe primes, so keygen and refresh never wait on generation.

A worker thread keeps `target` primes of each size the node needs ready, generating
while the node is otherwise idle (gmpy2 releases the GIL in its exponentiations).
`take_pair` hands out two and the reserve refills; if it is empty, the caller waits
for the generator instead of generating on its own.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio
from gmpy2 import mpz

from tssnode.crypto.arith import gil_released
from tssnode.crypto.primes import safe_prime

if TYPE_CHECKING:
    # trio-typing (a libp2p dependency) ships stubs that hide trio.TaskStatus from mypy
    from trio_typing import TaskStatus

log = logging.getLogger("tssnode.node.primes")


class PrimeReserve:
    def __init__(self, sizes: tuple[int, ...], target: int = 4) -> None:
        self.sizes = sizes
        self.target = target
        self.ready: dict[int, list[mpz]] = {bits: [] for bits in sizes}
        self._changed = trio.Event()
        self._wanted = trio.Event()
        self._limiter = trio.CapacityLimiter(1)

    def count(self, bits: int) -> int:
        return len(self.ready.get(bits, []))

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            short = [b for b in self.sizes if len(self.ready[b]) < self.target]
            if not short:
                self._wanted = trio.Event()
                await self._wanted.wait()
                continue
            bits = min(short, key=lambda b: len(self.ready[b]))
            p = await trio.to_thread.run_sync(_generate, bits, limiter=self._limiter)
            self.ready[bits].append(p)
            log.debug("safe prime ready (%d bits, %d in reserve)", bits, len(self.ready[bits]))
            self._changed.set()
            self._changed = trio.Event()

    async def take_pair(self, bits: int) -> tuple[mpz, mpz]:
        if bits not in self.ready:
            self.sizes = (*self.sizes, bits)
            self.ready[bits] = []
        while len(self.ready[bits]) < 2:
            self._wanted.set()
            await self._changed.wait()
        p, q = self.ready[bits].pop(0), self.ready[bits].pop(0)
        self._wanted.set()
        return p, q


def _generate(bits: int) -> mpz:
    with gil_released():
        return safe_prime(bits)
