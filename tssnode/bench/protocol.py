"""`tssnode bench protocol`: each CGGMP21 phase, all parties in one process.

For (n, t) = (3, 1), (5, 2) and (5, 4) at the standard tier: keygen, aux-info with pool
primes, presign for t+1 signers and sign, each with one worker thread and with two
(gmpy2 releases the GIL in the workers); aux-info also with fresh safe primes. For each
phase it counts the modular exponentiations (and the products of Π^prm's fixed-base
table) and replays them alone, so `÷ floor` = one-worker time ÷ pure arithmetic time.

    tssnode bench protocol [--sizes 3:1 5:2 5:4] [--fresh-runs 5] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tssnode.bench.counting import Recording, record
from tssnode.bench.report import table, write_section
from tssnode.crypto import params as tiers
from tssnode.crypto.digests import message_digest
from tssnode.protocol.base import SERIAL, Workers
from tssnode.testing.localgroup import LocalGroup, fresh_primes, pool_primes
from tssnode.testing.protocol_runner import RunResult

PHASES = ("keygen", "aux-info (pool)", "presign", "sign")
PHASE_HEADER = [
    "n:t",
    "phase",
    "1 worker",
    "2 workers",
    "exps (+ products)",
    "÷ floor (1 worker)",
    "÷ exps alone",
]
NODE_HEADER = ["n:t", "one node's work", "1 worker", "2 workers", "speed-up"]


def _timed(fn: Callable[[], RunResult]) -> tuple[float, dict[int, object]]:
    t0 = time.perf_counter()
    res = fn().only_result()
    return time.perf_counter() - t0, res


def _run_once(
    n: int, t: int, params: tiers.Parameters, workers: int, seed: int
) -> tuple[dict[str, float], dict[str, Recording] | None]:
    """One pass through all phases; with workers == 1 also record the exponentiations."""
    group = LocalGroup(tuple(range(1, n + 1)), t, params, seed=seed, workers=workers)
    times: dict[str, float] = {}
    recs: dict[str, Recording] = {}
    signers = tuple(range(1, t + 2))
    digest = message_digest(b"bench", "sha256")
    primes = pool_primes(params, random.Random(seed))
    steps: list[tuple[str, Callable[[], RunResult]]] = []
    state: dict[str, dict[int, object]] = {}
    steps = [
        ("keygen", group.keygen),
        ("aux-info (pool)", lambda: group.aux(state["keygen"], primes)),  # type: ignore[arg-type]
        ("presign", lambda: group.presign(state["aux-info (pool)"], signers)),  # type: ignore[arg-type]
        ("sign", lambda: group.sign(state["aux-info (pool)"], state["presign"], digest)),  # type: ignore[arg-type]
    ]
    for name, fn in steps:
        times[name], state[name] = _timed(fn)
    if workers == 1:
        # the same phases again, recorded (recording adds a little overhead: not timed)
        group2 = LocalGroup(tuple(range(1, n + 1)), t, params, seed=seed, workers=1)
        primes2 = pool_primes(params, random.Random(seed))
        state2: dict[str, dict[int, object]] = {}
        steps2: list[tuple[str, Callable[[], RunResult]]] = [
            ("keygen", group2.keygen),
            ("aux-info (pool)", lambda: group2.aux(state2["keygen"], primes2)),  # type: ignore[arg-type]
            ("presign", lambda: group2.presign(state2["aux-info (pool)"], signers)),  # type: ignore[arg-type]
            ("sign", lambda: group2.sign(state2["aux-info (pool)"], state2["presign"], digest)),  # type: ignore[arg-type]
        ]
        for name, fn in steps2:
            with record() as rec:
                state2[name] = fn().only_result()
            recs[name] = rec
        return times, recs
    return times, None


def _fresh_aux(n: int, t: int, params: tiers.Parameters, seed: int, runs: int) -> list[float]:
    """Seconds of aux-info with fresh primes, `runs` times. The 2n safe-prime searches
    take as long as they happen to (a 1024-bit one: 0.2 s median, 1.5 s at p90), so one
    run says little: the table gives the median and the spread."""
    out = []
    for run in range(runs):
        group = LocalGroup(tuple(range(1, n + 1)), t, params, seed=seed + run, workers=2)
        shares = group.keygen().only_result()
        t0 = time.perf_counter()
        group.aux(shares, fresh_primes(params)).only_result()
        out.append(time.perf_counter() - t0)
    return out


def _node_work(n: int, t: int, params: tiers.Parameters, seed: int, threads: int) -> list[float]:
    """One party's work in aux-info (pool primes) and presign, with `[node] workers` =
    `threads`: the parties run one after another (as if each had the machine to itself)
    and each spreads its per-peer proofs over `threads` threads. Seconds per party."""
    with ThreadPoolExecutor(threads) as pool:
        workers = Workers(pool) if threads > 1 else SERIAL
        parties = tuple(range(1, n + 1))
        group = LocalGroup(parties, t, params, seed=seed, workers=1, party_workers=workers)
        shares = group.keygen().only_result()
        aux, shares = _timed(lambda: group.aux(shares, pool_primes(params, random.Random(seed))))
        pre, _ = _timed(lambda: group.presign(shares, tuple(range(1, t + 2))))  # type: ignore[arg-type]
    return [aux / n, pre / (t + 1)]


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tssnode bench protocol", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["3:1", "5:2", "5:4"], help="n:t pairs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fresh-runs", type=int, default=5, help="runs of fresh-prime aux-info")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args(argv)
    params = tiers.STANDARD
    rows: list[list[str]] = []
    summary: list[list[str]] = []
    node_rows: list[list[str]] = []
    for size in args.sizes:
        n, t = (int(v) for v in size.split(":"))
        one_node = _node_work(n, t, params, args.seed, 1)
        two_node = _node_work(n, t, params, args.seed, 2)
        for i, phase in enumerate(("aux-info (pool)", f"presign ({t + 1} signers)")):
            speedup = f"{one_node[i] / two_node[i]:.2f}×"
            node_rows.append([f"{n}:{t}", phase, _fmt(one_node[i]), _fmt(two_node[i]), speedup])
        print(table(NODE_HEADER, node_rows[-2:]))
        one, recs = _run_once(n, t, params, 1, args.seed)
        two, _ = _run_once(n, t, params, 2, args.seed)
        assert recs is not None
        for phase in PHASES:
            rec = recs[phase]
            floor = rec.floor(repeats=1) if rec.count() or rec.products else 0.0
            exps_only = rec.floor(repeats=1, products=False) if rec.products else floor
            work = str(rec.count())
            if rec.products:
                work += f" + {rec.products_text()}"
            rows.append(
                [
                    f"{n}:{t}",
                    phase if phase != "presign" else f"presign ({t + 1} signers)",
                    _fmt(one[phase]),
                    _fmt(two[phase]),
                    work,
                    f"{one[phase] / floor:.2f}×" if floor else "–",
                    f"{one[phase] / exps_only:.2f}×" if exps_only else "–",
                ]
            )
        runs = _fresh_aux(n, t, params, args.seed, args.fresh_runs)
        fresh = statistics.median(runs)
        spread = f"{_fmt(fresh)} ({_fmt(min(runs))}–{_fmt(max(runs))}, {len(runs)} runs)"
        rows.append([f"{n}:{t}", "aux-info (fresh primes)", "–", spread, "–", "–", "–"])
        print(table(PHASE_HEADER, rows[-5:]))
        summary.append(
            [
                f"{n}:{t}",
                _fmt(two["keygen"] + fresh),
                _fmt(two["keygen"] + two["aux-info (pool)"]),
                _fmt(two["presign"]),
                _fmt(two["sign"]),
            ]
        )
    sum_header = ["n:t", "keygen + aux (fresh)", "keygen + aux (pool)", "presign", "sign"]
    print(table(sum_header, summary))
    if args.write:
        body = "\n\n".join(
            [
                "All parties in one process at the standard tier (2048-bit Paillier). "
                "`exps` counts every modular exponentiation of the phase (all parties), "
                "and the modular products of Π^prm's fixed-base table; `÷ floor` is the "
                "one-worker time over the time to replay those exponentiations and products "
                "alone, `÷ exps alone` over the exponentiations alone. Fresh-prime aux-info "
                "generates 2n 1024-bit safe primes: its median over "
                f"{args.fresh_runs} runs, with the fastest and the slowest.",
                table(PHASE_HEADER, rows),
                "With two workers:",
                table(sum_header, summary),
                "One node's own work per phase, with `[node] workers` = 1 and 2: the "
                "parties run one after another, each on the whole machine, and each "
                "spreads its per-peer proofs (and, in a node, the checks of its peers' "
                "messages) over its workers. Time per party.",
                table(NODE_HEADER, node_rows),
            ]
        )
        write_section(
            args.write, "protocol", body, "tssnode bench protocol --write docs/benchmarks.md"
        )
    return 0
