"""`tssnode bench net`: gossip latency and direct-message round trips on loopback.

Five nodes, each bootstrapped from one other, first as five `NetNode`s in this process,
then as five OS processes (`tssnode.testing.netharness`). Measured:

* gossip delivery latency: every node broadcasts paced 1 KiB messages whose first bytes
  hold the send time (`time.monotonic()`, shared by all processes of one machine); each
  receiver records arrival minus send time. Median and p99 over all (message, receiver).
* direct messages from node 0 to node 1, one after another: round trip (envelope out,
  acknowledgement back) and throughput, for 64 KiB and 1 MiB payloads.

`--write docs/benchmarks.md` replaces this benchmark's section of the results file.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from tssnode.bench.report import table, write_section
from tssnode.testing.netcluster import LocalCluster, ProcessCluster, local_cluster, process_cluster
from tssnode.testing.netharness import latency_of, payload, stamped

NODES = 5
GOSSIP_SIZE = 1024
SESSION = b"bench-net"
SIZES = {"64 KiB": 64 * 1024, "1 MiB": 1024 * 1024}


@dataclass
class Results:
    gossip: list[float]  # seconds, one per (message, receiver)
    expected: int
    direct: dict[str, list[float]]  # size label -> per-send round trips, seconds


def pct(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


async def bench_local(base: Path, per_node: int, pace: float, counts: dict[str, int]) -> Results:
    async with local_cluster(base, NODES) as cluster:
        return await _local(cluster, per_node, pace, counts)


async def _local(
    cluster: LocalCluster, per_node: int, pace: float, counts: dict[str, int]
) -> Results:
    async def publish(i: int) -> None:
        for rnd in range(per_node):
            await cluster[i].broadcast(SESSION, rnd, stamped(GOSSIP_SIZE, f"{i}/{rnd}"))
            await trio.sleep(pace)

    async with trio.open_nursery() as nursery:
        for i in range(NODES):
            nursery.start_soon(publish, i)
    expected = per_node * NODES * (NODES - 1)
    rounds = range(per_node)
    for i, node in enumerate(cluster.nodes):
        for rnd in rounds:
            await node.collect_broadcasts(SESSION, rnd, cluster.others(i), within=60)
    latencies = [
        lat
        for node in cluster.nodes
        for rnd in rounds
        for d in node.messages(SESSION, rnd, "broadcast")
        if d.via != "self" and (lat := latency_of(d)) is not None
    ]
    direct: dict[str, list[float]] = {}
    for label, size in SIZES.items():
        data = payload(size, label)
        await cluster[0].send(cluster.peer_ids[1], b"warm-up", 0, data)
        times = []
        for rnd in range(counts[label]):
            start = time.perf_counter()
            await cluster[0].send(cluster.peer_ids[1], SESSION + label.encode(), rnd, data)
            times.append(time.perf_counter() - start)
        direct[label] = times
    return Results(latencies, expected, direct)


async def bench_processes(
    base: Path, per_node: int, pace: float, counts: dict[str, int]
) -> Results:
    async with process_cluster(base, NODES) as cluster:
        return await _processes(cluster, per_node, pace, counts)


async def _processes(
    cluster: ProcessCluster, per_node: int, pace: float, counts: dict[str, int]
) -> Results:
    session = SESSION.hex()
    rounds = list(range(per_node))

    async def publish(i: int) -> None:
        await cluster[i].call(
            "broadcast_many",
            session=session,
            rounds=rounds,
            size=GOSSIP_SIZE,
            seed=str(i),
            stamp=True,
            pace=pace,
        )

    async with trio.open_nursery() as nursery:
        for i in range(NODES):
            nursery.start_soon(publish, i)
    latencies: list[float] = []
    for i in range(NODES):
        for rnd in rounds:
            await cluster[i].call(
                "collect", session=session, round=rnd, senders=cluster.others(i), seconds=60
            )
        latencies += await cluster[i].call("latencies", session=session, rounds=rounds)
    direct = {}
    for label, size in SIZES.items():
        times = await cluster[0].call(
            "send_many",
            peer=cluster.peer_ids[1],
            session=(SESSION + label.encode()).hex(),
            count=counts[label] + 1,
            size=size,
            seed=label,
        )
        direct[label] = times[1:]  # the first send warms up
    return Results(latencies, per_node * NODES * (NODES - 1), direct)


def render(local: Results, procs: Results, per_node: int, pace: float) -> str:
    def gossip(r: Results) -> str:
        return f"{ms(statistics.median(r.gossip))} / {ms(pct(r.gossip, 99))}"

    def rtt(r: Results, label: str) -> str:
        t = r.direct[label]
        return f"{ms(statistics.median(t))} / {ms(pct(t, 90))}"

    def rate(r: Results, label: str) -> str:
        t = r.direct[label]
        return f"{SIZES[label] * len(t) / sum(t) / 2**20:.1f} MiB/s"

    rows = [
        [
            f"gossip delivery latency, {NODES} nodes, {GOSSIP_SIZE} B (median / p99)",
            gossip(local),
            gossip(procs),
        ]
    ]
    for label in SIZES:
        rows.append(
            [f"direct {label} round trip (median / p90)", rtt(local, label), rtt(procs, label)]
        )
        rows.append(
            [f"direct {label} throughput (sequential)", rate(local, label), rate(procs, label)]
        )
    notes = (
        f"Gossip: each of {NODES} nodes broadcast {per_node} messages, one every "
        f"{pace * 1e3:.0f} ms, all at once; {len(local.gossip)} and {len(procs.gossip)} "
        f"deliveries measured (of {local.expected} each). Direct: node 0 to node 1, one at a "
        f"time, each acknowledged, after one warm-up send; "
        f"{', '.join(f'{len(local.direct[k])} × {k}' for k in SIZES)}. "
        "Round trip = envelope out and acknowledgement back, signatures and strict decoding "
        "included. In one process all five nodes share one core's worth of Python; across "
        "processes they share the machine's two cores. Noise + mplex over TCP on 127.0.0.1."
    )
    return table(["measurement", "in one process", "across processes"], rows) + "\n\n" + notes


async def run(per_node: int, pace: float, counts: dict[str, int]) -> tuple[Results, Results]:
    with tempfile.TemporaryDirectory(prefix="bench-net-") as tmp:
        local = await bench_local(Path(tmp) / "local", per_node, pace, counts)
        procs = await bench_processes(Path(tmp) / "procs", per_node, pace, counts)
    return local, procs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tssnode bench net", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=40, help="broadcasts per node")
    parser.add_argument("--pace", type=float, default=0.05, help="seconds between broadcasts")
    parser.add_argument("--count-64k", type=int, default=40, help="direct 64 KiB sends")
    parser.add_argument("--count-1m", type=int, default=20, help="direct 1 MiB sends")
    parser.add_argument("--write", type=Path, help="results file (docs/benchmarks.md)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    counts = {"64 KiB": args.count_64k, "1 MiB": args.count_1m}
    local, procs = trio.run(run, args.messages, args.pace, counts)
    body = render(local, procs, args.messages, args.pace)
    print(body)
    if args.write:
        command = " ".join(["tssnode bench net", *argv])
        write_section(args.write, "net", body, command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
