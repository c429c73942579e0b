"""`tssnode simulate`: keygen → aux-info → presign → sign for N parties in one process.

    tssnode simulate --parties 4 --threshold 2 [--tier standard] [--primes PATH|pool]
                     [--message TEXT] [--hash sha256] [--json] [--seed N]

Without --primes every party generates fresh safe primes (progress on stderr, when it is
a terminal).
`--primes pool` uses the committed test pool of the tier's size; a PATH names a pool
file in the same format (one hex prime per line). The insecure-test tier needs
`--allow-insecure`. `tssnode demo` is the same run with fixed, friendly defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gmpy2 import mpz

from tssnode.crypto import params as tiers
from tssnode.crypto.digests import HASHES, message_digest
from tssnode.crypto.primes import PrimePool, safe_prime
from tssnode.errors import TssError
from tssnode.protocol import auxinfo
from tssnode.testing.localgroup import LocalGroup, PrimeSourceFactory
from tssnode.testing.protocol_runner import RunResult


class _Progress:
    """Counts safe primes as worker threads finish them, on one stderr line."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.lock = threading.Lock()
        self.start = time.perf_counter()

    def tick(self) -> None:
        with self.lock:
            self.done += 1
            if self.enabled:
                elapsed = time.perf_counter() - self.start
                print(
                    f"\r  safe primes: {self.done}/{self.total} ({elapsed:.1f} s)",
                    end="" if self.done < self.total else "\n",
                    file=sys.stderr,
                    flush=True,
                )


def _fresh(bits: int, progress: _Progress) -> PrimeSourceFactory:
    def factory(_party: int) -> auxinfo.PrimeSource:
        def source() -> tuple[mpz, mpz]:
            p = safe_prime(bits)
            progress.tick()
            q = safe_prime(bits)
            progress.tick()
            return p, q

        return source

    return factory


def _from_pool(pool: PrimePool) -> PrimeSourceFactory:
    lock = threading.Lock()

    def factory(_party: int) -> auxinfo.PrimeSource:
        def source() -> tuple[mpz, mpz]:
            with lock:
                p, q = pool.take(2)
            return p, q

        return source

    return factory


def run(
    *,
    parties: int,
    threshold: int,
    tier: str,
    primes: str | None,
    message: str,
    hash_name: str,
    seed: int | None = None,
    allow_insecure: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    if allow_insecure:
        tiers.permit_insecure()
    params = tiers.tier(tier)
    if not 0 <= threshold < parties:
        raise TssError("need 0 ≤ threshold < parties")

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr)

    if primes is None:
        say(f"generating {2 * parties} fresh {params.prime_bits}-bit safe primes")
        source = _fresh(params.prime_bits, _Progress(2 * parties, progress))
    else:
        path = None if primes == "pool" else Path(primes)
        source = _from_pool(PrimePool.load(params.prime_bits, path))
    group = LocalGroup(tuple(range(1, parties + 1)), threshold, params, seed=seed)
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], RunResult]) -> Any:
        say(f"{name} …")
        t0 = time.perf_counter()
        result = fn().only_result()
        timings[name] = round(time.perf_counter() - t0, 4)
        return result

    shares = timed("keygen", group.keygen)
    shares = timed("aux_info", lambda: group.aux(shares, source))
    signers = tuple(range(1, threshold + 2))
    presigs = timed("presign", lambda: group.presign(shares, signers))
    digest = message_digest(message.encode(), hash_name)
    out = timed("sign", lambda: group.sign(shares, presigs, digest))
    result = out[signers[0]]
    sig = result.signature
    return {
        "parties": parties,
        "threshold": threshold,
        "tier": params.name,
        "public_key": result.public_key.to_bytes().hex(),
        "message": message,
        "hash": hash_name,
        "digest": digest.hex(),
        "signature": {"r": f"{sig.r:064x}", "s": f"{sig.s:064x}", "v": sig.eth_v()},
        "signers": list(signers),
        "timings_s": timings,
    }


DESCRIPTIONS = {
    "tssnode simulate": "keygen → aux-info → presign → sign for N parties in this one process "
    "(no network, no nodes): the protocol as the nodes run it, with timings. Progress goes to "
    "stderr when it is a terminal; the result to stdout.",
    "tssnode demo": "`tssnode simulate` with friendly defaults: a 3-of-4 key (4 parties, "
    "threshold 2: any 3 sign) with primes from the committed pool, and a signature. For real "
    "nodes on loopback, `tssnode cluster demo` (what `make demo` runs).",
}


def _parser(prog: str, defaults: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    d = {"parties": 3, "threshold": 1, "primes": None, **(defaults or {})}
    ap = argparse.ArgumentParser(prog=prog, description=DESCRIPTIONS.get(prog))
    ap.add_argument(
        "--parties",
        type=int,
        default=d["parties"],
        metavar="N",
        help=f"how many parties hold the key (default {d['parties']})",
    )
    ap.add_argument(
        "--threshold",
        type=int,
        default=d["threshold"],
        metavar="T",
        help=f"any T + 1 parties sign; 0 ≤ T < N (default {d['threshold']})",
    )
    ap.add_argument(
        "--tier",
        choices=sorted(tiers.TIERS),
        default="standard",
        help="the parameter tier (default standard; insecure-test needs --allow-insecure)",
    )
    ap.add_argument(
        "--primes",
        metavar="PATH|pool",
        default=d["primes"],
        help="safe primes from a pool file, or 'pool' for the committed test pool "
        + ("(default)" if d["primes"] == "pool" else "(default: generate fresh ones)"),
    )
    ap.add_argument(
        "--message",
        default="hello from tssnode",
        metavar="TEXT",
        help="the message to sign (default 'hello from tssnode')",
    )
    ap.add_argument(
        "--hash",
        choices=HASHES,
        default="sha256",
        help="how the message is hashed (default sha256)",
    )
    ap.add_argument(
        "--seed", type=int, metavar="N", help="seed the protocol randomness (reproducible runs)"
    )
    ap.add_argument("--allow-insecure", action="store_true", help="permit the insecure-test tier")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    return ap


def _print_human(r: dict[str, Any]) -> None:
    sig = r["signature"]
    lines = [
        f"parties     {r['parties']} (threshold {r['threshold']}: any {r['threshold'] + 1} sign)",
        f"tier        {r['tier']}",
        f"public key  {r['public_key']}",
        f"message     {r['message']!r}",
        f"digest      {r['hash']} {r['digest']}",
        f"signers     {', '.join(map(str, r['signers']))}",
        f"signature   r = {sig['r']}",
        f"            s = {sig['s']}",
        f"            v = {sig['v']}",
        "timings     " + ", ".join(f"{k} {v:.3f} s" for k, v in r["timings_s"].items()),
    ]
    print("\n".join(lines))


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str = "tssnode simulate",
    defaults: dict[str, Any] | None = None,
) -> int:
    args = _parser(prog, defaults).parse_args(argv)
    try:
        result = run(
            parties=args.parties,
            threshold=args.threshold,
            tier=args.tier,
            primes=args.primes,
            message=args.message,
            hash_name=args.hash,
            seed=args.seed,
            allow_insecure=args.allow_insecure,
            progress=sys.stderr.isatty(),
        )
    except (TssError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        _print_human(result)
    return 0


def demo_main(argv: Sequence[str] | None = None) -> int:
    """`tssnode demo`: a 3-of-4 key (four parties, threshold 2), standard tier, primes
    from the pool."""
    defaults = {"parties": 4, "threshold": 2, "primes": "pool"}
    return main(list(argv or []), prog="tssnode demo", defaults=defaults)
