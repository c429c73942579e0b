"""`tssnode bench ledger`: PBFT commit latency and throughput for 4 replicas.

In one process: four `ReplicaService`s over the in-memory trio transport, each with its
own LevelDB (synced batches, as in the node) in a temporary directory, on the real clock.
Latency is submit → committed at the submitting replica, one request at a time;
throughput submits a burst at once and waits until every replica has executed all of it
(the primary batches what arrives while earlier blocks are in flight). The same runs with
the in-memory store show what the fsyncs cost. Over libp2p on loopback: to be run when
The last row runs each replica on its own libp2p host (the node's `LedgerLink`).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from tssnode.bench.report import Timing, table, write_section
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.genesis import Validator, make_genesis
from tssnode.ledger.replica import ReplicaOptions
from tssnode.ledger.service import ReplicaService
from tssnode.ledger.transactions import SignedTx, make_tx
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import KeygenRequest
from tssnode.store.db import KeyValueStore, LevelStore
from tssnode.testing.memnet import MemoryNetwork
from tssnode.testing.memstore import MemoryStore

N = 4


def _keys() -> list[IdentityKey]:
    ks = [IdentityKey.from_seed(hashlib.sha256(b"bench-ledger:%d" % i).digest()) for i in range(N)]
    return sorted(ks, key=lambda k: k.public_bytes())


async def _measure(
    services: list[ReplicaService],
    tx: Callable[[int], SignedTx],
    latency_runs: int,
    burst: int,
) -> tuple[Timing, float, float, int]:
    """Commit latency (one request at a time) and a burst's throughput."""
    samples = []
    for i in range(latency_runs):
        t = tx(i)
        t0 = time.perf_counter()
        services[i % N].submit(t)
        await services[i % N].wait_for_tx(t.hash)
        samples.append(time.perf_counter() - t0)
    txs = [tx(i) for i in range(burst)]
    h0 = max(svc.replica.height for svc in services)
    for svc in services:  # everyone has the latency runs' blocks before the burst
        await svc.wait_for_height(h0)
    t0 = time.perf_counter()
    for i, t in enumerate(txs):
        services[i % N].submit(t)
    ends = (txs[0].hash, txs[-1].hash)
    for svc in services:
        await svc.wait_until(
            lambda r: all(r.chain.tx_location(h) is not None for h in ends) and not r.pending
        )
    elapsed = time.perf_counter() - t0
    blocks = services[0].replica.height - h0
    return Timing.of(samples), blocks / elapsed, burst / elapsed, blocks


async def _run(
    store_kind: str, latency_runs: int, burst: int, workdir: Path, max_batch: int
) -> tuple[Timing, float, float, int]:
    keys = _keys()
    genesis = make_genesis(
        [Validator(k.public_bytes(), f"v{i}", "") for i, k in enumerate(keys)],
        chain_name=f"bench-{store_kind}-{max_batch}",
        checkpoint_interval=16,
        window=64,
        tx_lifetime=100_000,
    )
    parties = tuple(k.public_bytes() for k in keys)
    net = MemoryNetwork(seed="bench")
    stores: list[KeyValueStore] = [
        LevelStore(workdir / f"{store_kind}-{max_batch}" / f"n{i}")
        if store_kind == "leveldb"
        else MemoryStore()
        for i in range(N)
    ]
    opts = ReplicaOptions(view_timeout=30.0, tick=1.0, max_batch=max_batch)
    services = [
        ReplicaService(k, genesis, s, net.connect(k.public_bytes()), opts, apps=(KeyRegistry,))
        for k, s in zip(keys, stores, strict=True)
    ]
    counter = 0

    def tx(i: int) -> SignedTx:
        nonlocal counter
        counter += 1
        return make_tx(
            keys[i % N],
            genesis.chain_id,
            KeygenRequest(1, parties, "insecure-test"),
            expiry=50_000,
            nonce=counter.to_bytes(8, "big"),
        )

    try:
        async with trio.open_nursery() as nursery:
            for svc in services:
                await nursery.start(svc.run)
            result = await _measure(services, tx, latency_runs, burst)
            nursery.cancel_scope.cancel()
    finally:
        for st in stores:
            st.close()
    return result


async def _run_libp2p(
    latency_runs: int, burst: int, workdir: Path
) -> tuple[Timing, float, float, int]:
    """The same measurement with each replica on its own libp2p host (loopback, Noise,
    mplex), in one process: the ledger's frames over the real net layer."""
    from tssnode.config import NetConfig
    from tssnode.net import peerid
    from tssnode.net.identity import NodeIdentity
    from tssnode.net.node import NetNode
    from tssnode.node.links import LEDGER_SESSION, LedgerLink
    from tssnode.testing.ports import free_port

    keys = _keys()
    genesis = make_genesis(
        [Validator(k.public_bytes(), f"v{i}", "") for i, k in enumerate(keys)],
        chain_name="bench-libp2p",
        checkpoint_interval=16,
        window=64,
        tx_lifetime=100_000,
    )
    parties = tuple(k.public_bytes() for k in keys)
    ports = [free_port() for _ in keys]
    nets = [
        NetNode(
            "bench-ledger",
            workdir / f"p2p{i}",
            NetConfig(listen=f"/ip4/127.0.0.1/tcp/{port}"),
            identity=NodeIdentity.from_seed(k.seed()),
        )
        for i, (k, port) in enumerate(zip(keys, ports, strict=True))
    ]
    stores = [LevelStore(workdir / "libp2p" / f"n{i}") for i in range(N)]
    opts = ReplicaOptions(view_timeout=30.0, tick=1.0, max_batch=256)
    counter = 0

    def tx(i: int) -> SignedTx:
        nonlocal counter
        counter += 1
        return make_tx(
            keys[i % N],
            genesis.chain_id,
            KeygenRequest(1, parties, "insecure-test"),
            expiry=50_000,
            nonce=counter.to_bytes(8, "big"),
        )

    async def route(net: NetNode, link: LedgerLink) -> None:
        async for d in net.inbox:
            if d.envelope.session_id == LEDGER_SESSION:
                link.deliver(peerid.public_key(d.envelope.sender), d.envelope.payload)

    try:
        async with trio.open_nursery() as nursery:
            for net in nets:
                await nursery.start(net.run)
            for i, net in enumerate(nets):
                for j, k in enumerate(keys):
                    if i != j:
                        addr = f"/ip4/127.0.0.1/tcp/{ports[j]}"
                        net.peers.learn(peerid.from_public_key(k.public_bytes()), [addr], "bench")
            for i, net in enumerate(nets):
                others = [
                    peerid.from_public_key(k.public_bytes()) for j, k in enumerate(keys) if j != i
                ]
                with trio.fail_after(60):
                    while not set(others) <= set(net.peers.ready()):
                        await net.peers.wait_changed()
            services = []
            for k, net, st in zip(keys, nets, stores, strict=True):
                link = LedgerLink(net, k.public_bytes())
                link.bind(nursery)
                nursery.start_soon(route, net, link)
                svc = ReplicaService(k, genesis, st, link, opts, apps=(KeyRegistry,))
                link.recipients = lambda s=svc: s.replica.config()  # as the daemon wires it
                await nursery.start(svc.run)
                services.append(svc)
            result = await _measure(services, tx, latency_runs, burst)
            nursery.cancel_scope.cancel()
    finally:
        for st in stores:
            st.close()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tssnode bench ledger", description=__doc__)
    ap.add_argument("--latency-runs", type=int, default=50)
    ap.add_argument("--burst", type=int, default=2000)
    ap.add_argument("--write", type=Path, help="update this results file (docs/benchmarks.md)")
    args = ap.parse_args(list(argv or []))
    rows = []
    with tempfile.TemporaryDirectory(prefix="tssnode-bench-ledger-") as tmp:
        for kind in ("leveldb", "memory"):
            for max_batch, burst in ((256, args.burst), (1, args.burst // 4)):
                lat, bps, tps, blocks = trio.run(
                    _run, kind, args.latency_runs, burst, Path(tmp), max_batch
                )
                rows.append(
                    [
                        f"{kind} store, ≤ {max_batch} tx/block",
                        f"{lat.median * 1e3:.2f} ms (p10 {lat.p10 * 1e3:.2f}, "
                        f"p90 {lat.p90 * 1e3:.2f})",
                        f"{bps:.0f}",
                        f"{tps:.0f} ({burst} txs in {blocks} blocks)",
                    ]
                )
        burst = args.burst // 4
        lat, bps, tps, blocks = trio.run(_run_libp2p, args.latency_runs, burst, Path(tmp))
        rows.append(
            [
                "leveldb store, libp2p loopback (one host per replica), ≤ 256 tx/block",
                f"{lat.median * 1e3:.2f} ms (p10 {lat.p10 * 1e3:.2f}, p90 {lat.p90 * 1e3:.2f})",
                f"{bps:.0f}",
                f"{tps:.0f} ({burst} txs in {blocks} blocks)",
            ]
        )
    body = (
        f"{N} replicas in one process over the in-memory transport, each with its own store "
        "(LevelDB: every vote, block and checkpoint a synced batch). Commit latency: one "
        "request at a time, submit → committed at the submitting replica "
        f"({args.latency_runs} runs). Throughput: a burst of requests submitted at once, "
        "until every replica has executed all of them (the primary keeps up to 4 sequences "
        "in flight and batches what waits).\n\n"
        + table(["setup", "commit latency (median)", "blocks/s", "tx/s (burst)"], rows)
    )
    print(body)
    if args.write:
        command = "tssnode bench ledger" + (
            f" --latency-runs {args.latency_runs} --burst {args.burst}"
            if (args.latency_runs, args.burst) != (50, 2000)
            else ""
        )
        write_section(args.write, "ledger", body, command + f" --write {args.write}")
    return 0
