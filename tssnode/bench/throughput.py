"""`tssnode bench throughput`: signatures per second on the 4-node loopback network.

Two runs, each on a fresh network of four `tssnode run` processes at the standard tier
with a 2-of-4 key (any 3 sign), all on this machine:

- **warm burst**: a presignature pool as large as the burst, filled first; then the
  whole burst at once. Each request needs one sign round, and the ledger batches the
  requests (and their results) into blocks. The pool refills meanwhile.
- **sustained**: a pool of 4 and a burst many times larger: all but 4 presignatures are
  made while the requests wait, so the run goes at the rate presignatures are made.

The sustained run's bound is presign compute: the work of one presignature (the three
signers' presign of a 4-party key, all in one process on one thread, as `bench protocol`
measures it), timed here before the networks start, shared among the machine's cores;
its inverse is the most signatures per second they can make when every signature needs
a fresh presignature, however many sessions run at once. (An earlier version took the
presign's time on two threads, a latency: a network running many sessions at once beat
that "bound".)

    tssnode bench throughput [--warm 50] [--sustained 60] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tssnode.bench.burst import measure, percentile
from tssnode.bench.report import table, write_section
from tssnode.crypto import params as tiers
from tssnode.testing.localgroup import LocalGroup, pool_primes

#: the cores this process may use (the bound divides a presignature's work among them)
CORES = len(os.sched_getaffinity(0))
#: seconds between status sweeps for the requests no `request.settled` event settled
POLL = 5.0


def presign_times(runs: int = 3) -> tuple[float, float]:
    """Median seconds of one presign for 3 signers of a 2-of-4 standard key, all parties
    in one process: on one thread (the work of a presignature), and on two."""
    params = tiers.STANDARD
    out = []
    for workers in (1, 2):
        group = LocalGroup((1, 2, 3, 4), 2, params, seed=1, workers=workers)
        shares = group.keygen().only_result()
        shares = group.aux(shares, pool_primes(params, random.Random(1))).only_result()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            group.presign(shares, (1, 2, 3)).only_result()
            times.append(time.perf_counter() - t0)
        out.append(statistics.median(times))
    return out[0], out[1]


def _row(name: str, r: dict[str, Any], limit: str) -> list[str]:
    lat = r["latencies"] or [float("nan")]
    rate = r["done"] / r["elapsed_s"]
    return [
        name,
        f"{r['done']} of {r['count']} (failed {r['failed']})",
        f"{rate:.2f}",
        f"{percentile(lat, 0.5):.2f} s / {percentile(lat, 0.95):.2f} s",
        f"{r['views']}",
        limit,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="tssnode bench throughput", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--warm", type=int, default=50, help="requests (and pool) of the warm burst")
    ap.add_argument("--sustained", type=int, default=60, help="requests of the sustained run")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args(argv)
    serial, two = presign_times()
    bound = serial / CORES  # seconds of the two cores per presignature, at best
    print(f"presign: {serial * 1e3:.0f} ms on one thread, {two * 1e3:.0f} ms on two → "
          f"at most {1 / bound:.2f} signatures/s")  # fmt: skip
    warm = measure(args.warm, "standard", args.warm, args.timeout, poll=POLL, idle=0)
    print(warm["done"], "warm in", f"{warm['elapsed_s']:.1f} s")
    sustained = measure(args.sustained, "standard", 4, args.timeout, poll=POLL, idle=0)
    rate = sustained["done"] / sustained["elapsed_s"]
    rows = [
        _row(
            "warm burst (pool = burst)",
            warm,
            "the API, the sign rounds and the ledger (the pool's refill waits for the burst)",
        ),
        _row(
            "sustained (pool of 4)",
            sustained,
            f"presign compute: {rate * bound:.2f} of the bound ({1 / bound:.2f}/s: "
            f"{serial * 1e3:.0f} ms of work per presignature on {CORES} cores)",
        ),
    ]
    header = ["run", "signed", "signatures/s", "latency p50 / p95", "view changes", "limited by"]
    out = table(header, rows)
    print(out)
    if args.write:
        body = (
            "Four `tssnode run` processes on loopback at the `standard` tier, a 2-of-4 key "
            "(any 3 sign), one fresh network per run, all on this 2-core machine. Every "
            "request is sent at once (32 client threads sharing one client per API, made "
            "before the clock starts, round-robin over the four APIs); "
            "it is done when its signature is in the ledger: node 0's `request.settled` "
            "event for it (a request settled under a retry's id is found by a status sweep "
            f"every {POLL:g} s). Throughput runs from the first request to the last "
            "signature. The warm burst starts with a pool as large as itself; the "
            f"sustained run with a pool of 4, so {args.sustained - 4} presignatures are made "
            "while requests wait. Its bound is the work of a presignature: one presign for "
            f"3 signers of a 4-party key, all parties in one process on one thread, took "
            f"{serial * 1e3:.0f} ms (median of 3; {two * 1e3:.0f} ms on two threads), so "
            f"{CORES} cores make at most {1 / bound:.2f} presignatures per second, however "
            "many sessions run at once.\n\n" + out
        )
        command = "tssnode bench throughput" + (
            f" --warm {args.warm} --sustained {args.sustained}"
            if (args.warm, args.sustained) != (50, 60)
            else ""
        )
        write_section(args.write, "throughput", body, f"{command} --write {args.write}")
    ok = warm["done"] == args.warm and sustained["done"] == args.sustained
    return 0 if ok else 1
