"""`tssnode bench burst`: a burst of sign requests on a 4-node loopback network.

Four `tssnode run` processes, a 2-of-4 key (any 3 sign) with a presignature pool, then
`--count` sign requests sent at once (32 client threads, each with one kept-alive
connection per API, round-robin over the four APIs).
Reports the time to accept them all, the time until every one is ordered and signed,
the throughput, the latency of each request (API call → node 0's `request.settled`
event for it; a request settled under a retry's id is found by a status sweep every
`--poll` seconds, default 1), the
view changes during the burst, and each node's RSS before, right after, and after a
minute of idling (what the burst took must come back, not grow without bound).

    tssnode bench burst [--count 200] [--tier standard] [--pool 4] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tssnode.api.client import ApiClient, ApiError, ApiUnavailable
from tssnode.bench.report import table, write_section

#: Seconds the network idles after the burst before each node's RSS is read again.
IDLE_AFTER = 60.0
#: Client threads that read the outstanding requests' statuses in each sweep.
POLLERS = 8


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _status_of(client: ApiClient, sid: str) -> str | None:
    try:
        return str(client.get(f"/signatures/{sid}")["status"])
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    except ApiUnavailable:
        return None


def percentile(xs: list[float], q: float) -> float:
    """The q-quantile (0 < q < 1) of `xs`, linear between ranks."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    return statistics.quantiles(s, n=100, method="inclusive")[round(q * 100) - 1]


def measure(
    count: int,
    tier: str,
    pool: int,
    timeout: float,
    rounds: int = 1,
    keep: Path | None = None,
    poll: float = 1.0,
    idle: float = IDLE_AFTER,
) -> dict[str, Any]:
    """Run the bursts; the network lives in a temporary directory, or in `keep`, left
    there afterwards (its nodes' data directories and logs, to look at)."""
    from tssnode.testing.cluster import new_key, running_cluster, wait_for

    with (
        contextlib.nullcontext(str(keep)) if keep else tempfile.TemporaryDirectory() as tmp,
        running_cluster(Path(tmp), 4, tier=tier, presign_pool=pool) as nodes,
    ):
        clients = [n.client(timeout=60) for n in nodes]
        try:
            wait_for(
                lambda: all(c.get("/status")["peers_connected"] == 3 for c in clients), "peers"
            )
            key = new_key(clients[1], clients[0], pool=pool)
            time.sleep(2)
            rss_before = [rss_mib(n.proc.pid) for n in nodes if n.proc is not None]
            view0 = max(c.get("/status")["view"] for c in clients)
            bursts = [
                _burst(nodes, clients, key["key_id"], count, timeout, r, poll, idle)
                for r in range(rounds)
            ]
            statuses = [c.get("/status") for c in clients]
            first = bursts[0]
            return {
                **first,
                "count": count,
                "views": max(s["view"] for s in statuses) - view0,
                "height": max(s["height"] for s in statuses),
                "rss_before": rss_before,
                "rounds": bursts,
            }
        finally:
            for c in clients:
                c.http.close()


class _Settlements:
    """Follows node 0's `request.settled` events in a thread of its own: when each request
    was settled, as that node saw it, without asking the nodes anything."""

    def __init__(self, node: Any) -> None:
        self.seen: dict[str, tuple[float, str]] = {}  # request id → (monotonic time, status)
        self._client = node.client(timeout=60)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _follow(self) -> None:
        # since=0: an event published between the stream's headers and the node's
        # subscription is replayed from its history
        params = {"since": 0, "kind": "request.settled"}
        with (
            contextlib.suppress(Exception),  # the stream ends when `close` closes it
            self._client.http.stream("GET", "/events", params=params, timeout=None) as resp,
        ):
            self._ready.set()
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    ev = json.loads(line[6:])
                    self.seen[str(ev["request"])] = (time.monotonic(), str(ev["status"]))
        self._ready.set()

    def close(self) -> None:
        self._client.http.close()


def _burst(
    nodes: Sequence[Any],
    clients: Sequence[ApiClient],
    key_id: str,
    count: int,
    timeout: float,
    round_no: int,
    poll: float,
    idle: float,
) -> dict[str, Any]:
    """One burst of `count` sign requests, then each node's RSS right after it and after
    `idle` seconds of idling. A request's latency runs from its API call to node 0's
    `request.settled` event for it; a request no event settled (a retry settles under
    its new id) is asked for by a status sweep every `poll` seconds. The nodes do not
    answer a status query per request and sweep: at 0.1 s those took a fifth of the
    cores the burst was measuring."""

    # One client per API, made before the clock starts and shared by the 32 threads (an
    # httpx client is thread-safe and keeps a connection per thread that uses it at
    # once). Making a client costs 27 ms of CPU (its TLS context, even for http): a
    # client per thread and API (04de9d7) made about 50 of them inside the measured
    # window, 1.3 s of the two cores the nodes were being measured on.
    shared = [node.client(timeout=120) for node in nodes]

    def sign(i: int) -> tuple[int, str, float]:
        c = shared[i % 4]
        t = time.monotonic()
        out = c.post(
            "/sign", {"key_id": key_id, "message": f"burst {round_no}.{i}", "hash": "sha256"}
        )
        return i, str(out["signature_id"]), t

    follower = _Settlements(nodes[0])
    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(32) as ex:
            sent = list(ex.map(sign, range(count)))
        accepted = time.monotonic() - t0
        latency: dict[int, float] = {}
        failed: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        last_done = t0
        swept = time.monotonic()
        with ThreadPoolExecutor(POLLERS) as ex:
            while len(latency) + len(failed) < count and time.monotonic() < deadline:
                time.sleep(0.05)
                now = time.monotonic()
                todo = [s for s in sent if s[0] not in latency and s[0] not in failed]
                for i, sid, t in todo:
                    if sid in follower.seen:
                        at, outcome = follower.seen[sid]
                        if outcome == "done":
                            latency[i] = at - t
                            last_done = max(last_done, at)
                        else:
                            failed[i] = sid
                if now - swept < poll:
                    continue
                swept = now
                todo = [s for s in todo if s[0] not in latency and s[0] not in failed]
                statuses = ex.map(lambda s: _status_of(clients[s[0] % 4], s[1]), todo)
                for (i, sid, t), status in zip(todo, statuses, strict=True):
                    if status == "done":
                        latency[i] = now - t
                        last_done = max(last_done, now)
                    elif status == "failed":
                        failed[i] = sid
    finally:
        follower.close()
        for c in shared:
            c.http.close()
    elapsed = last_done - t0
    rss_after = [rss_mib(n.proc.pid) for n in nodes if n.proc is not None]
    time.sleep(idle)  # does the memory the burst took come back?
    rss_idle = [rss_mib(n.proc.pid) for n in nodes if n.proc is not None]
    return {
        "accepted_s": accepted,
        "elapsed_s": elapsed,
        "done": len(latency),
        "failed": len(failed),
        "latencies": sorted(latency.values()),
        "rss_after": rss_after,
        "rss_idle": rss_idle,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tssnode bench burst", description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200, help="sign requests in the burst")
    ap.add_argument("--tier", default="standard", choices=["standard", "insecure-test"])
    ap.add_argument("--pool", type=int, default=4, help="presignature pool per key")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait at most")
    ap.add_argument(
        "--rounds", type=int, default=1, help="bursts one after another on the same network"
    )
    ap.add_argument(
        "--keep",
        type=Path,
        help="run the network in this directory and leave it there (data, logs and, with "
        "TSSNODE_TRACEMALLOC set, each node's memtrace.txt)",
    )
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between status sweeps")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args(argv)
    if args.tier == "insecure-test":
        os.environ["TSSNODE_ALLOW_INSECURE"] = "1"
    r = measure(args.count, args.tier, args.pool, args.timeout, args.rounds, args.keep, args.poll)
    lat = r["latencies"] or [float("nan")]
    p50, p95 = percentile(lat, 0.5), percentile(lat, 0.95)
    rss = zip(r["rss_before"], r["rss_after"], r["rss_idle"], strict=True)
    rows = [
        ["requests accepted (202)", f"{r['count']} in {r['accepted_s']:.1f} s"],
        ["signed and verified by the ledger", f"{r['done']} (failed: {r['failed']})"],
        ["burst → last signature", f"{r['elapsed_s']:.0f} s"],
        ["throughput", f"{r['done'] / r['elapsed_s']:.2f} signatures/s"],
        ["latency p50 / p95 / max", f"{p50:.0f} s / {p95:.0f} s / {max(lat):.0f} s"],
        ["view changes during the burst(s)", str(r["views"])],
        [
            f"node RSS before → after → {IDLE_AFTER:.0f} s idle (MiB)",
            ", ".join(f"{a:.0f} → {b:.0f} → {c:.0f}" for a, b, c in rss),
        ],
    ]
    for n, later in enumerate(r["rounds"][1:], start=2):
        rows.append([
            f"burst {n}: signed (failed), burst → last; RSS after → idle (MiB)",
            f"{later['done']} ({later['failed']}), {later['elapsed_s']:.0f} s; "
            + ", ".join(
                f"{b:.0f} → {c:.0f}"
                for b, c in zip(later["rss_after"], later["rss_idle"], strict=True)
            ),
        ])  # fmt: skip
    out = table(["burst", "result"], rows)
    print(out)
    if args.write:
        body = (
            f"Four `tssnode run` processes on loopback at the `{args.tier}` tier, a 2-of-4 key "
            f"(any 3 sign) with a pool of {args.pool} presignatures, then {args.count} sign "
            "requests at once (32 client threads sharing one client per API, made before the "
            "clock starts, round-robin over the four APIs). A request "
            "is done when its signature is in the ledger; latency runs from its API call to "
            "node 0's `request.settled` event for it (or, for a request settled under a "
            f"retry's id, a status sweep every {args.poll:g} s). Every presignature beyond "
            "the pool is made during the burst, so throughput is the presign rate of two "
            "cores shared by four nodes.\n\n" + out
        )
        write_section(
            args.write,
            "burst",
            body,
            f"tssnode bench burst --count {args.count} --tier {args.tier} --pool {args.pool} "
            + (f"--poll {args.poll:g} " if args.poll != 1.0 else "")
            + f"--write {args.write}",
        )
    done = all(b["done"] == r["count"] for b in r["rounds"])
    return 0 if done else 1
