"""The simulated-network property: over many seeds of drops, duplicates, reordering,
partitions that heal and crash/restarts (≤ f), every replica commits identical blocks
with no gaps, nobody equivocates, and after the heal every replica reaches the same
height with every request executed.

CHAOS_SEEDS (100) seeds × {4, 7} replicas = 200 seeded runs in `make test` (about 18 s
on one core); the `slow` variant runs seeds 100–749 of each size (1,300 runs, about 2 min).
"""

from __future__ import annotations

import pytest

from tests.ledger.harness import assert_consistent, assert_no_equivocation, chaos_run

CHAOS_SEEDS = 100
CHUNK = 25
MORE_SEEDS = 650
MORE_CHUNK = 50


def check_seed(seed: int, n: int) -> None:
    net, height_before_quiet = chaos_run(seed, n)
    rs = net.alive_replicas()
    assert len(rs) == n
    height = assert_consistent(rs)
    for node in net.nodes.values():
        assert_no_equivocation(node.sent)
    assert {r.height for r in rs} == {height}, f"seed {seed}: heights differ"
    assert all(not r.pending for r in rs), f"seed {seed}: requests left unexecuted"
    assert height > height_before_quiet, f"seed {seed}: no progress after the heal"
    assert not any(r.halted for r in rs)


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("start", range(0, CHAOS_SEEDS, CHUNK))
def test_chaos_seeds(n: int, start: int) -> None:
    for seed in range(start, start + CHUNK):
        check_seed(seed, n)


@pytest.mark.slow
@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("start", range(CHAOS_SEEDS, CHAOS_SEEDS + MORE_SEEDS, MORE_CHUNK))
def test_chaos_many_more_seeds(n: int, start: int) -> None:
    for seed in range(start, start + MORE_CHUNK):
        check_seed(seed, n)
