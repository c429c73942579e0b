"""`tssnode bench bridge`: a Bitcoin deposit's way to a mint on four nodes.

Four `tssnode run` processes on loopback at the given tier, each watching the regtest
service (Bitcoin Core's engine behind Bitcoin Core's RPC) every `--poll` seconds, a
bridge key of threshold 2 (any 3 sign), and anvil with the gateway. For each of `--runs`
deposits: paid from the regtest wallet and buried `confirmations` deep, then timed from
the block that buries it (mined at t0) to the deposit final in the ledger (2f+1 equal
observations), and from final to its mint signature committed (a validator asks, three
signers presign and sign the digest, the signature goes back into the ledger). Each
deposit is then minted on anvil, and the mint's gas is reported. Then the way back: a burn
of part of the tokens, timed from its EVM block to the burn final in the ledger, and from
final to the release broadcast (fee rate agreed, the transaction built alike at every
node, each input signed in its own session, checked by Bitcoin Core's engine, in the
mempool), then mined and confirmed; first with one input, then a burn of every token left,
which takes every coin the group holds (the deposits left and the first release's
change: `--runs` inputs). Last, the whole round trip of one more deposit, from the block
that buries it to its burn's release confirmed (the mint and burn transactions, and the
two blocks that confirm the release, are sent as soon as each step allows). Status is
read from node 1's API every 0.05 s.

    tssnode bench bridge [--runs 5] [--tier standard] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tssnode.bench.report import table, write_section

CONFIRMATIONS = 2


def measure(runs: int, tier: str, poll: float, timeout: float) -> dict[str, Any]:
    from eth_account import Account

    from tssnode.bridge.btcrpc import Rpc
    from tssnode.bridge.gateway import Gateway
    from tssnode.cli.anvil import ACCOUNT_1_KEY
    from tssnode.cli.bridgenet import PAYER_KEY, RECIPIENT, Settings, bring_up
    from tssnode.testing.anvil import running_anvil
    from tssnode.testing.cluster import running_cluster, wait_for
    from tssnode.testing.regtest import running_regtest

    # (imported here, not at the top: `tssnode bench` lists the benchmarks without web3)

    with (
        tempfile.TemporaryDirectory() as tmp,
        running_regtest(Path(tmp) / "btc") as btc,
        running_anvil(chain_id=31337, accounts=2) as anvil,
        contextlib.closing(Rpc(btc.service_url)) as rpc,
    ):
        rpc.generatetoaddress(101, rpc.getnewaddress())
        watch = {"url": btc.url, "cookie_file": str(Path(tmp) / "btc" / ".cookie"), "poll": poll}
        evm = {"url": anvil.url, "poll": poll}
        with running_cluster(
            Path(tmp) / "net", 4, tier=tier, bitcoin_rpc=watch, evm_rpc=evm
        ) as nodes:
            api = [n.client(timeout=60) for n in nodes]
            settings = Settings(confirmations=CONFIRMATIONS)  # (as `cluster up --bridge` does)
            up = bring_up(api, anvil.url, threshold=2, settings=settings, timeout=timeout)
            address = api[1].post("/bridge/deposit-address", {"to": RECIPIENT})["address"]
            wait_for(lambda: api[0].get("/bridge/addresses"), "the address recorded")
            gateway = Gateway.connect(anvil.url, up.gateway, settings.chain_id)
            relayer = Account.from_key(PAYER_KEY)
            to_final, to_signed, gas = [], [], []
            for i in range(runs):
                txid = rpc.sendtoaddress(address, round(0.1 + i / 100, 8))  # (8 decimals)
                rpc.generatetoaddress(CONFIRMATIONS - 1, rpc.getnewaddress())
                t0 = time.monotonic()
                rpc.generatetoaddress(1, rpc.getnewaddress())  # now deep enough

                def find(status: str, txid: str = txid) -> dict[str, Any] | None:
                    for d in api[0].get("/bridge/deposits"):
                        if d["txid"] == txid and d["status"] in status:
                            return dict(d)
                    return None

                wait_for(lambda: find("final signed"), "final", timeout, 0.05)
                to_final.append(time.monotonic() - t0)
                dep = wait_for(lambda: find("signed"), "signed", timeout, 0.05)
                assert dep is not None
                to_signed.append(time.monotonic() - t0 - to_final[-1])
                gas.append(gateway.mint(dep, relayer).gas_used)
            holder = Account.from_key(ACCOUNT_1_KEY)
            back = []
            for amount in (5_000_000, None):  # one input; then every token left
                burn = amount if amount is not None else gateway.balance(RECIPIENT)
                back.append(_release(api, rpc, gateway, holder, burn, timeout, wait_for))
            # the whole way, once more: paid and buried → … → released and confirmed
            txid = rpc.sendtoaddress(address, 0.3)
            rpc.generatetoaddress(CONFIRMATIONS - 1, rpc.getnewaddress())
            t0 = time.monotonic()
            rpc.generatetoaddress(1, rpc.getnewaddress())
            dep = wait_for(
                lambda: next(
                    (d for d in api[0].get("/bridge/deposits")
                     if d["txid"] == txid and d["status"] in ("signed", "minted")),
                    None,
                ),
                "signed", timeout, 0.05,
            )  # fmt: skip
            assert dep is not None
            gateway.mint(dep, relayer)
            trip = _release(api, rpc, gateway, holder, dep["amount"], timeout, wait_for)
            round_trip = time.monotonic() - t0
            for c in api:
                c.http.close()
    return {
        "final": to_final, "signed": to_signed, "gas": gas, "releases": back,
        "round_trip": round_trip, "round_trip_inputs": trip["inputs"],
    }  # fmt: skip


def _release(
    api: Any, rpc: Any, gateway: Any, holder: Any, amount: int, timeout: float, wait_for: Any
) -> dict[str, Any]:
    """Burn `amount` to a new regtest address and time the release (see the docstring)."""
    payee = rpc.getnewaddress()
    burnt = gateway.burn(payee, amount, holder)
    t0 = time.monotonic()
    where = f"/bridge/releases/{burnt.burn_nonce}"

    def status(*wanted: str) -> dict[str, Any] | None:
        try:
            view = api[0].get(where)
        except Exception:  # (404 until node 1 has seen the burn)
            return None
        return dict(view) if view["status"] in wanted else None

    wait_for(lambda: status("final", "signing", "broadcast"), "burn final", timeout, 0.05)
    final = time.monotonic() - t0
    rel = wait_for(lambda: status("broadcast"), "release signed", timeout, 0.05)
    assert rel is not None
    wait_for(lambda: rel["txid"] in rpc.getrawmempool(), "release broadcast", timeout, 0.05)
    broadcast = time.monotonic() - t0 - final
    t1 = time.monotonic()
    rpc.generatetoaddress(CONFIRMATIONS, rpc.getnewaddress())
    wait_for(lambda: status("confirmed"), "release confirmed", timeout, 0.05)
    (attempt,) = rel["attempts"]
    return {
        "final": final, "broadcast": broadcast, "confirmed": time.monotonic() - t1,
        "inputs": attempt["inputs"], "fee_rate": attempt["fee_rate"], "fee": attempt["fee"],
    }  # fmt: skip


def _ms(xs: list[float]) -> str:
    lo, mid, hi = (round(v * 1e3) for v in (min(xs), statistics.median(xs), max(xs)))
    return f"{mid} ms (min {lo}, max {hi})"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tssnode bench bridge", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="deposits, one after another")
    ap.add_argument("--tier", default="standard", choices=["standard", "insecure-test"])
    ap.add_argument("--poll", type=float, default=0.5, help="each node's Bitcoin poll (s)")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args(argv)
    if args.tier == "insecure-test":
        import os

        os.environ["TSSNODE_ALLOW_INSECURE"] = "1"
    r = measure(args.runs, args.tier, args.poll, args.timeout)
    rows = [
        ["buried → final in the ledger (watch + 3 equal observations)", _ms(r["final"])],
        ["final → mint signature committed (ask, presign, sign, result)", _ms(r["signed"])],
        ["mint on the gateway (anvil), gas", ", ".join(str(g) for g in r["gas"])],
    ]
    for rel in r["releases"]:
        n = f"{rel['inputs']} input{'s' if rel['inputs'] != 1 else ''}"
        rows += [
            [f"burn mined → final in the ledger ({n})", f"{round(rel['final'] * 1e3)} ms"],
            [
                f"final → release broadcast ({n}, {rel['fee_rate']} sat/vB, fee {rel['fee']})",
                f"{round(rel['broadcast'] * 1e3)} ms",
            ],
            [f"buried {CONFIRMATIONS} deep → confirmed in the ledger ({n})",
             f"{round(rel['confirmed'] * 1e3)} ms"],
        ]  # fmt: skip
    rows.append(
        [
            "round trip: a deposit buried → signed → minted → burnt → released → confirmed "
            f"({r['round_trip_inputs']} input)",
            f"{round(r['round_trip'] * 1e3)} ms",
        ]
    )
    out = table(["step", f"{args.runs} deposits, then 3 releases"], rows)
    print(out)
    if args.write:
        body = (__doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0]).replace("\n", " ")
        command = (
            "tssnode bench bridge"
            + (f" --runs {args.runs}" if args.runs != 5 else "")
            + (f" --tier {args.tier}" if args.tier != "standard" else "")
        )
        write_section(args.write, "bridge", body + "\n\n" + out, f"{command} --write {args.write}")
    return 0
