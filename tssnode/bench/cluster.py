"""`tssnode bench cluster`: request-to-result latency on a 4-node loopback network.

Four `tssnode run` processes (real LevelDB, real libp2p, the HTTP API) in a temporary
directory at the chosen tier. Times, from the API call to the result committed in the
ledger: keygen (with aux-info; fresh safe primes come from each node's background
reserve), refresh, and signing (fresh presign bound to the digest, then sign).

    tssnode bench cluster [--tier standard] [--signs 10] [--write docs/benchmarks.md]
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


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tssnode bench cluster", description=__doc__.splitlines()[0])
    ap.add_argument("--tier", default="standard", choices=["standard", "insecure-test"])
    ap.add_argument("--signs", type=int, default=10)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args(argv)
    from tssnode.node.localnet import make_cluster, wait_for

    if args.tier == "insecure-test":
        os.environ["TSSNODE_ALLOW_INSECURE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        nodes = make_cluster(Path(tmp), 4, tier=args.tier)
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
            keygen_s = time.perf_counter() - t0
            signs = []
            for i in range(args.signs):
                t0 = time.perf_counter()
                out = clients[3].post("/sign", {"key_id": key["key_id"], "message": f"bench {i}"})
                sid = out["signature_id"]
                _poll(partial(_done, clients[3], sid))
                signs.append(time.perf_counter() - t0)
            time.sleep(5)
            t0 = time.perf_counter()
            ref = clients[2].post(f"/keys/{key['key_id']}/refresh")
            del ref
            _poll(lambda: clients[0].get(f"/keys/{key['key_id']}")["epoch"] == 1)
            refresh_s = time.perf_counter() - t0
        finally:
            for c in clients:
                c.http.close()
            for n in nodes:
                n.stop()
    rows = [
        ["keygen + aux-info (2-of-4 → any 3 sign)", f"{keygen_s:.2f} s", "1"],
        ["refresh", f"{refresh_s:.2f} s", "1"],
        [
            "sign, no presignature pool (presign + sign)",
            f"{statistics.median(signs) * 1e3:.0f} ms "
            f"(min {min(signs) * 1e3:.0f}, max {max(signs) * 1e3:.0f})",
            str(len(signs)),
        ],
    ]
    out = table(["request → result committed", "time", "runs"], rows)
    print(out)
    if args.write:
        body = (
            f"Four `tssnode run` processes on loopback at the `{args.tier}` tier (real "
            "LevelDB, libp2p, HTTP API), all on this 2-core machine. Each figure runs from "
            "the API call to the result committed in the ledger.\n\n" + out
        )
        write_section(
            args.write,
            "cluster",
            body,
            f"tssnode bench cluster --tier {args.tier} --write docs/benchmarks.md",
        )
    return 0
