"""`tssnode bridge setup|info|address|deposits|mint`: the bridge, through a node's API
(docs/bridge.md), and the mint submitted to the gateway on the EVM chain.

    tssnode bridge setup --key-id K --chain-id 31337 --gateway 0x… --network regtest …
    tssnode bridge info
    tssnode bridge address --to 0x… [--nonce 0x…] [--payload 0x…]
    tssnode bridge deposits [--to 0x…] | deposits TXID:VOUT
    tssnode bridge mint TXID:VOUT --evm-rpc URL --key-file PATH

`setup` is this validator's vote (in force on 2f+1 identical votes). `mint` reads the
signed deposit from the node, checks the EVM node is the chain the bridge signs for, and
submits the mint, paid by the account whose private key (hex) is in `--key-file`; anyone
may submit it, since the recipient is inside the signed digest. The node is chosen as for
every client command (`--config`, or `--api` with `--token-file`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tssnode.api.client import ApiClient, ApiError, ApiUnavailable
from tssnode.cli.client import _client, _client_args
from tssnode.cli.common import CommandError, fmt, kv, print_json, table


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tssnode bridge", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="action", required=True)
    setup = sub.add_parser("setup", help="vote for the bridge's settings")
    setup.add_argument("--key-id", required=True, help="a key made with purpose bridge")
    setup.add_argument("--chain-name", default="Ethereum", help="the EVM chain's name in sHash")
    setup.add_argument("--chain-id", type=int, required=True)
    setup.add_argument("--gateway", required=True, help="the gateway contract's address")
    setup.add_argument(
        "--network", required=True, choices=["mainnet", "testnet", "signet", "regtest"]
    )
    setup.add_argument("--confirmations", type=int, default=6)
    setup.add_argument("--fee-sats", type=int, default=10_000)
    setup.add_argument("--min-deposit-sats", type=int, default=20_000)
    sub.add_parser("info", help="the bridge's settings in force")
    address = sub.add_parser("address", help="a deposit address for an EVM recipient")
    address.add_argument("--to", required=True, help="the EVM address the BTC mints to")
    address.add_argument("--nonce", help="32 bytes of hex (default: random)")
    address.add_argument("--payload", help="hex the deposit commits to (pHash)")
    deposits = sub.add_parser("deposits", help="final deposits, or one of them")
    deposits.add_argument("outpoint", nargs="?", metavar="TXID:VOUT")
    deposits.add_argument("--to", help="only those minting to this EVM address")
    mint = sub.add_parser("mint", help="submit a signed deposit's mint to the gateway")
    mint.add_argument("outpoint", metavar="TXID:VOUT")
    mint.add_argument("--evm-rpc", required=True, metavar="URL", help="the EVM node's JSON-RPC")
    mint.add_argument(
        "--key-file", required=True, type=Path, metavar="PATH",
        help="the paying account's private key (hex), e.g. an anvil dev account's",
    )  # fmt: skip
    rsetup = sub.add_parser("release-setup", help="vote for the release side's settings")
    rsetup.add_argument("--evm-confirmations", type=int, default=12)
    rsetup.add_argument("--bump-after", type=int, default=6, help="Bitcoin blocks before RBF")
    rsetup.add_argument("--min-release-sats", type=int, default=10_000)
    rsetup.add_argument("--max-fee-rate", type=int, default=500, help="sat/vB at most")
    rsetup.add_argument("--sweep-at", type=int, default=0, help="deposits swept together")
    burn = sub.add_parser("burn", help="burn wrapped tokens for a BTC release")
    burn.add_argument("--to", required=True, help="the Bitcoin address the BTC goes to")
    burn.add_argument("--amount", type=int, required=True, help="satoshis (token units)")
    burn.add_argument("--evm-rpc", required=True, metavar="URL", help="the EVM node's JSON-RPC")
    burn.add_argument(
        "--key-file", required=True, type=Path, metavar="PATH",
        help="the token holder's private key (hex)",
    )  # fmt: skip
    releases = sub.add_parser("releases", help="burns and their releases, or one of them")
    releases.add_argument("burn_nonce", nargs="?", type=int, metavar="BURN_NONCE")
    for p in (setup, sub.choices["info"], address, deposits, mint, rsetup, burn, releases):
        _client_args(p)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with _client(args) as api:
            try:
                return _run(args, api)
            except ApiUnavailable:
                raise CommandError(f"no node answers at {api.base_url}") from None
    except CommandError as exc:
        print(f"tssnode bridge {args.action}: {exc.message}", file=sys.stderr)
        return exc.code
    except ApiError as exc:
        print(f"tssnode bridge {args.action}: {exc.message} (HTTP {exc.status})", file=sys.stderr)
        return 1


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print_json(data)
    else:
        print(text)


def _deposit_rows(d: dict[str, Any]) -> str:
    rows = [(k.replace("_", " "), fmt(v)) for k, v in d.items() if k != "signature"]
    sig = d["signature"]
    rows.append(("signature", f"r={sig['r']} s={sig['s']} v={sig['v']}" if sig else "-"))
    return kv(rows)


def _run(args: argparse.Namespace, api: ApiClient) -> int:
    if args.action == "setup":
        out = api.post(
            "/bridge/setup",
            {
                "key_id": args.key_id, "chain_name": args.chain_name,
                "chain_id": args.chain_id, "gateway": args.gateway, "network": args.network,
                "confirmations": args.confirmations, "fee_sats": args.fee_sats,
                "min_deposit_sats": args.min_deposit_sats,
            },
        )  # fmt: skip
        _emit(args, out, f"voted (transaction {out['tx']}); in force on 2f+1 identical votes")
    elif args.action == "info":
        info = api.get("/bridge")
        _emit(args, info, kv([(k.replace("_", " "), fmt(v)) for k, v in info.items()]))
    elif args.action == "address":
        body = {"to": args.to, "nonce": args.nonce, "payload": args.payload}
        out = api.post("/bridge/deposit-address", {k: v for k, v in body.items() if v})
        _emit(args, out, kv([(k, fmt(v)) for k, v in out.items()]))
    elif args.action == "deposits":
        if args.outpoint:
            dep = api.get(f"/bridge/deposits/{args.outpoint}")
            _emit(args, dep, _deposit_rows(dep))
        else:
            deps = api.get("/bridge/deposits", **({"to": args.to} if args.to else {}))
            rows = [
                [f"{d['txid']}:{d['vout']}", d["status"], str(d["amount"]), d["to"]] for d in deps
            ]
            _emit(args, deps, table(["deposit", "status", "amount (sats)", "to"], rows, (2,)))
    elif args.action == "release-setup":
        out = api.post(
            "/bridge/release-setup",
            {
                "evm_confirmations": args.evm_confirmations, "bump_after": args.bump_after,
                "min_release_sats": args.min_release_sats, "max_fee_rate": args.max_fee_rate,
                "sweep_at": args.sweep_at,
            },
        )  # fmt: skip
        _emit(args, out, f"voted (transaction {out['tx']}); in force on 2f+1 identical votes")
    elif args.action == "releases":
        if args.burn_nonce is not None:
            rel = api.get(f"/bridge/releases/{args.burn_nonce}")
            _emit(args, rel, kv([(k.replace("_", " "), fmt(v)) for k, v in rel.items()]))
        else:
            rels = api.get("/bridge/releases")
            rows = [
                [str(r["burn_nonce"]), r["status"], str(r["amount"]), fmt(r["paid"]),
                 fmt(r["txid"]), r["to"]]
                for r in rels
            ]  # fmt: skip
            heads = ["burn", "status", "amount (sats)", "paid", "txid", "to"]
            _emit(args, rels, table(heads, rows, (2, 3)))
    elif args.action == "burn":
        return _burn(args, api)
    else:
        return _mint(args, api)
    return 0


def _burn(args: argparse.Namespace, api: ApiClient) -> int:
    from eth_account import Account  # (web3 is imported by this command only)

    from tssnode.bridge.gateway import Gateway, GatewayError

    info = api.get("/bridge")
    if not info["set_up"]:
        raise CommandError("the bridge is not set up")
    try:
        key = args.key_file.read_text().strip()
    except OSError as exc:
        raise CommandError(f"cannot read {args.key_file}: {exc.strerror or exc}") from None
    try:
        gateway = Gateway.connect(args.evm_rpc, info["gateway"], info["chain_id"])
        done = gateway.burn(args.to, args.amount, Account.from_key(key))
    except (GatewayError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    out = {"burnt": True, "burn_nonce": done.burn_nonce, "tx": done.tx_hash,
           "block": done.block, "gas_used": done.gas_used}  # fmt: skip
    _emit(args, out, kv([(k.replace("_", " "), fmt(v)) for k, v in out.items()]))
    return 0


def _mint(args: argparse.Namespace, api: ApiClient) -> int:
    from eth_account import Account  # (web3 is imported by this command only)

    from tssnode.bridge.gateway import Gateway, GatewayError

    info = api.get("/bridge")
    if not info["set_up"]:
        raise CommandError("the bridge is not set up")
    dep = api.get(f"/bridge/deposits/{args.outpoint}")
    try:
        key = args.key_file.read_text().strip()
    except OSError as exc:
        raise CommandError(f"cannot read {args.key_file}: {exc.strerror or exc}") from None
    try:
        gateway = Gateway.connect(args.evm_rpc, info["gateway"], info["chain_id"])
        if gateway.minted(bytes.fromhex(dep["nHash"][2:])):
            _emit(args, {"minted": True, "already": True}, "already minted")
            return 0
        done = gateway.mint(dep, Account.from_key(key))
    except (GatewayError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    out = {"minted": True, "tx": done.tx_hash, "block": done.block, "gas_used": done.gas_used,
           "to": dep["to"], "balance": done.balance}  # fmt: skip
    _emit(args, out, kv([(k.replace("_", " "), fmt(v)) for k, v in out.items()]))
    return 0
