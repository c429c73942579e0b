"""`tssnode bench cluster`: request-to-result latency on a 4-node loopback network.

Four `tssnode run` processes (real LevelDB, real libp2p, the HTTP API) in a temporary
directory at the chosen tier. Times, from the API call to the result committed in the
ledger: keygen (with aux-info; fresh safe primes come from each node's background
reserve), refresh, and signing, both without a presignature pool (presign bound to the
digest, then sign) and with a warm pool (the one sign round).

    tssnode bench cluster [--tier standard] [--signs 10] [--pool 4] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tssnode.api.client import ApiClient, ApiError
from tssnode.bench.report import table, write_section
from tssnode.crypto.params import INSECURE_ENV, INSECURE_TEST, STANDARD, TIERS


def _poll(fn: Callable[[], Any], timeout: float = 600.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
        except ApiError as exc:
            if exc.status != 404:
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("no result in time")
        time.sleep(0.02)


def _done(client: ApiClient, sid: str) -> bool:
    return bool(client.get(f"/signatures/{sid}")["status"] == "done")


def _active(client: ApiClient, key_id: str) -> Any:
    key = client.get(f"/keys/{key_id}")
    return key if key["status"] == "active" else None


def _presignatures(client: ApiClient, key_id: str, want: int) -> bool:
    return bool(client.get(f"/keys/{key_id}")["presignatures"] >= want)


def _measure(tier: str, pool: int, signs: int) -> dict[str, Any]:
    """One fresh 4-node cluster: keygen, `signs` signatures one after another (with a
    pool: each once the pool is full again, i.e. warm and idle), then a refresh."""
    from tssnode.testing.cluster import make_cluster, wait_for

    out: dict[str, Any] = {"signs": []}
    with tempfile.TemporaryDirectory() as tmp:
        nodes = make_cluster(Path(tmp), 4, tier=tier, presign_pool=pool)
        for n in nodes:
            n.start()
        clients: list[ApiClient] = []
        try:
            for n in nodes:
                n.wait_api()
            clients = [n.client() for n in nodes]
            wait_for(
                lambda: all(c.get("/status")["peers_connected"] == 3 for c in clients), "peers"
            )
            time.sleep(5)  # let the prime reserves fill, as on a node that has been idle
            t0 = time.perf_counter()
            req = clients[1].post("/keygen", {"threshold": 2, "parties": None})
            key = _poll(
                lambda: (k := clients[0].get(f"/keys/{req['key_id']}"))["status"] == "active" and k
            )
            out["keygen"] = time.perf_counter() - t0
            key_id = key["key_id"]
            for i in range(signs):
                if pool:
                    _poll(partial(_presignatures, clients[3], key_id, pool))
                    time.sleep(0.5)  # the last PresignReady votes settle everywhere
                t0 = time.perf_counter()
                res = clients[3].post("/sign", {"key_id": key_id, "message": f"bench {i}"})
                _poll(partial(_done, clients[3], res["signature_id"]))
                out["signs"].append(time.perf_counter() - t0)
            if pool:  # the refresh is measured on an idle network: let the refill finish
                _poll(partial(_presignatures, clients[3], key_id, pool))
            time.sleep(2)
            t0 = time.perf_counter()
            clients[2].post(f"/keys/{key_id}/refresh")
            _poll(lambda: clients[0].get(f"/keys/{key_id}")["epoch"] == 1)
            out["refresh"] = time.perf_counter() - t0
        finally:
            for c in clients:
                c.http.close()
            for n in nodes:
                n.stop()
    return out


def _ms(xs: list[float]) -> str:
    return (
        f"{statistics.median(xs) * 1e3:.0f} ms (min {min(xs) * 1e3:.0f}, max {max(xs) * 1e3:.0f})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tssnode bench cluster", description=__doc__.splitlines()[0])
    ap.add_argument("--tier", default=STANDARD.name, choices=sorted(TIERS))
    ap.add_argument("--signs", type=int, default=10)
    ap.add_argument("--pool", type=int, default=4, help="presignature pool of the warm run")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args(argv)
    if args.tier == INSECURE_TEST.name:
        os.environ[INSECURE_ENV] = "1"
    cold = _measure(args.tier, 0, args.signs)
    warm = _measure(args.tier, args.pool, args.signs)
    rows = [
        ["keygen + aux-info (2-of-4 → any 3 sign)", f"{cold['keygen']:.2f} s", "1"],
        ["refresh", f"{cold['refresh']:.2f} s", "1"],
        ["sign, no presignature pool (presign + sign)", _ms(cold["signs"]), str(args.signs)],
        [
            f"sign, warm pool of {args.pool} (one sign round)",
            _ms(warm["signs"]),
            str(args.signs),
        ],
        ["refresh (second cluster, pool full)", f"{warm['refresh']:.2f} s", "1"],
    ]
    out = table(["request → result committed", "time", "runs"], rows)
    print(out)
    if args.write:
        body = (
            f"Four `tssnode run` processes on loopback at the `{args.tier}` tier (real "
            "LevelDB, libp2p, HTTP API), all on this 2-core machine. Each figure runs from "
            "the API call to the result committed in the ledger. Two fresh clusters: one "
            f"with no presignature pool, one with `presign_pool = {args.pool}`, where each "
            "signature is requested once the pool is full again (warm and idle).\n\n" + out
        )
        write_section(
            args.write,
            "cluster",
            body,
            f"tssnode bench cluster --tier {args.tier} --pool {args.pool} "
            "--write docs/benchmarks.md",
        )
    return 0
