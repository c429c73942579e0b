"""`tssnode bench crypto`: the cryptographic core at the standard tier.

Times Paillier encryption and decryption (with and without CRT), 1024-bit safe-prime
generation (median and spread), and prove/verify of every proof; prints the cost of one
gmpy2.powmod at 2048 and 4096 bits, and for each proof its count of modular
exponentiations (and of the products of Π^prm's fixed-base table) and the time to replay
exactly that arithmetic alone (the floor).

    tssnode bench crypto [--runs 10] [--primes 16] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import random
import secrets
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import gmpy2
from gmpy2 import mpz

from tssnode.bench.counting import record
from tssnode.bench.report import Timing, measure, table, write_section
from tssnode.crypto import params as tiers
from tssnode.crypto.arith import sample_pm
from tssnode.crypto.group import G, Q, base_mul
from tssnode.crypto.paillier import PaillierSecretKey
from tssnode.crypto.pedersen import generate as pedersen_generate
from tssnode.crypto.primes import PrimePool, safe_prime
from tssnode.protocol.presign import plaintext_bound
from tssnode.zk import affg, dec, enc, fac, logstar, mod, mul, mulstar, prm, sch
from tssnode.zk.common import ProofContext

ProofCase = tuple[str, Callable[[], Any], Callable[[Any], None]]


def _powmod_floor(runs: int) -> list[list[str]]:
    rows = []
    for mod_bits, exp_bits in ((2048, 2048), (4096, 2048), (4096, 4096)):
        n = mpz(secrets.randbits(mod_bits)) | 1 | (mpz(1) << (mod_bits - 1))
        b = mpz(secrets.randbits(mod_bits - 1))
        e = mpz(secrets.randbits(exp_bits)) | (mpz(1) << (exp_bits - 1))
        pub = measure(partial(gmpy2.powmod, b, e, n), runs=runs * 5)
        sec = measure(partial(gmpy2.powmod_sec, b, e, n), runs=runs * 5)
        rows.append(
            [f"{mod_bits}", f"{exp_bits}", pub.ms(), sec.ms(), f"{sec.median / pub.median:.2f}×"]
        )
    return rows


def _paillier(sk: PaillierSecretKey, runs: int) -> list[list[str]]:
    pk = sk.public
    m = sample_pm(256)
    c, _ = pk.encrypt(m)
    cases = [
        ("encrypt (public key)", lambda: pk.encrypt(m)),
        ("encrypt (secret key, CRT)", lambda: sk.encrypt(m)),
        ("decrypt without CRT", lambda: sk.decrypt_plain(c)),
        ("decrypt with CRT", lambda: sk.decrypt(c)),
    ]
    return [[name, measure(fn, runs=runs).ms()] for name, fn in cases]


def _proof_cases(pool: PrimePool, params: tiers.Parameters) -> list[ProofCase]:
    rng = random.Random(1)
    sk, other = (PaillierSecretKey(*pool.take(2)) for _ in range(2))
    p1, q1, p2, q2 = pool.take(4)
    own_ped = pedersen_generate(p1, q1, rng)
    ped = pedersen_generate(p2, q2, rng).public  # the verifier's
    ctx = ProofContext(b"bench", 1, params)
    x = rng.randrange(1, Q)
    X = base_mul(x)
    cases: list[ProofCase] = []

    def add(name: str, module: Any, stmt: Any, wit: Any) -> None:
        cases.append(
            (name, lambda: module.prove(ctx, stmt, wit), lambda p: module.verify(ctx, stmt, p))
        )

    add("Π^sch", sch, sch.SchStatement(X), sch.SchWitness(x))
    K, rho = sk.encrypt(x)
    add("Π^enc", enc, enc.EncStatement(sk.public, K, ped), enc.EncWitness(mpz(x), rho, sk))
    add(
        "Π^log*",
        logstar,
        logstar.LogStarStatement(sk.public, K, X, G, ped),
        logstar.LogStarWitness(mpz(x), rho, sk),
    )
    C0, _ = other.encrypt(rng.randrange(1, Q))
    y = sample_pm(params.ell_prime)
    D_mask, s = other.public.encrypt(y)
    D = other.public.add(other.public.mul(C0, x), D_mask)
    Y, r = sk.encrypt(y)
    add(
        "Π^aff-g",
        affg,
        affg.AffgStatement(other.public, sk.public, C0, D, Y, X, ped),
        affg.AffgWitness(mpz(x), y, s, r, sk),
    )
    Yc, _ = sk.encrypt(rng.randrange(1, Q))
    zero, rho_c = sk.encrypt(0)
    Cm = sk.public.add(sk.public.mul(Yc, x), zero)
    add(
        "Π^mul", mul, mul.MulStatement(sk.public, K, Yc, Cm), mul.MulWitness(mpz(x), rho_c, rho, sk)
    )
    add(
        "Π^mul*",
        mulstar,
        mulstar.MulStarStatement(sk.public, Yc, Cm, X, ped),
        mulstar.MulStarWitness(mpz(x), rho_c, sk),
    )
    bits = plaintext_bound(params, 3)
    yv = sample_pm(bits - 1)
    Cd, rho_d = sk.encrypt(yv)
    add(
        "Π^dec",
        dec,
        dec.DecStatement.single(sk.public, Cd, int(yv % Q), bits, ped),
        dec.DecWitness((yv,), (rho_d,), sk),
    )
    add("Π^mod", mod, mod.ModStatement(sk.n), mod.ModWitness(sk.p, sk.q))
    add("Π^prm", prm, own_ped.public, own_ped)
    add("Π^fac", fac, fac.FacStatement(sk.public, ped), fac.FacWitness(sk.p, sk.q))
    return cases


def _proofs(cases: list[ProofCase], runs: int) -> list[list[str]]:
    rows = []
    for name, prove, verify in cases:
        proof = prove()
        t_prove = measure(prove, runs=runs)
        t_verify = measure(partial(verify, proof), runs=runs)
        with record() as rp:
            prove()
        with record() as rv:
            verify(proof)
        fp = rp.floor() if rp.count() or rp.products else 0.0
        fv = rv.floor() if rv.count() or rv.products else 0.0
        rows.append(
            [
                name,
                t_prove.ms(),
                rp.summary(),
                f"{t_prove.median / fp:.2f}×" if fp else "–",
                t_verify.ms(),
                rv.summary(),
                f"{t_verify.median / fv:.2f}×" if fv else "–",
            ]
        )
    return rows


def _safe_primes(count: int) -> Timing:
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        safe_prime(1024)
        samples.append(time.perf_counter() - t0)
    return Timing.of(samples)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tssnode bench crypto", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--primes", type=int, default=16, help="safe primes to time (≥ 10)")
    ap.add_argument("--write", type=Path, help="update this results file (docs/benchmarks.md)")
    args = ap.parse_args(argv)
    params = tiers.STANDARD
    pool = PrimePool.load(params.prime_bits)
    random.Random(0).shuffle(pool.primes)

    floor = _powmod_floor(args.runs)
    print(table(["modulus bits", "exponent bits", "powmod", "powmod_sec", "sec/pub"], floor))
    paillier = _paillier(PaillierSecretKey(*pool.take(2)), args.runs)
    print(table(["Paillier, N = 2048 bits", "median"], paillier))
    primes = _safe_primes(max(args.primes, 10))
    prime_row = [
        [
            "1024-bit safe prime",
            f"{primes.median:.3f} s",
            f"{primes.p10:.3f} s",
            f"{primes.p90:.3f} s",
            str(primes.runs),
        ]
    ]
    print(table(["", "median", "p10", "p90", "samples"], prime_row))
    proofs = _proofs(_proof_cases(pool, params), args.runs)
    header = [
        "proof",
        "prove",
        "exps (×mod bits)",
        "÷ floor",
        "verify",
        "exps (×mod bits)",
        "÷ floor",
    ]
    print(table(header, proofs))
    if args.write:
        body = "\n\n".join(
            [
                "One modular exponentiation (gmpy2, full-size exponent):",
                table(["modulus bits", "exponent bits", "powmod", "powmod_sec", "sec/pub"], floor),
                "Paillier at the standard tier:",
                table(["operation", "median"], paillier),
                "Safe-prime generation (one core; sieve on p' and 2p'+1, then Fermat, then gmpy2):",
                table(["", "median", "p10", "p90", "samples"], prime_row),
                "Every proof at the standard tier (2048-bit moduli; prover with its own key's CRT "
                "where it has one). `exps` counts the modular exponentiations by modulus size, and "
                "the products of Π^prm's fixed-base table; `÷ floor` is the measured time over "
                "the time to replay exactly those exponentiations and products and nothing "
                "else.",
                table(header, proofs),
            ]
        )
        write_section(args.write, "crypto", body, "tssnode bench crypto --write docs/benchmarks.md")
    return 0
