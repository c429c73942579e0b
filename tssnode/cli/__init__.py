"""The `tssnode` command line, and the composition root that wires a node.

Each subcommand lives in the module that owns it; this file only dispatches, so that
the layers add their commands without editing one big parser. `tssnode bench NAME` runs
`tssnode.bench.NAME.main(argv)`. docs/cli.md documents every command.

    node.py       init, run, vault                 a node's data directory, the node, its vault
    daemon.py     (run)                            the composition root: net, ledger, node, API
    cluster.py    cluster up|down|status|demo      a local network on loopback
    localchains.py, bridgenet.py, bridgedemo.py     (cluster up --bridge, demo --bridge)
                                                   its chains, the bridge brought up, the demo
    anvil.py, btcregtest.py                        anvil and `tssnode regtest` as processes
    client.py     status, validators, keys, keygen, sign, signatures, blocks
    verify.py     verify                           check a signature, offline
    bridge.py     bridge setup|info|address|deposits|mint   the bridge, and mints on the EVM chain
    simulate.py   simulate, demo                   the protocol in one process
    common.py, configs.py, processes.py, views.py, follow.py: what the commands share

A command that needs a node's config takes `--config FILE`, else `$TSSNODE_CONFIG`, else
`./tssnode.toml`; an API client also takes `--api URL --token-file PATH` instead. Results
go to stdout (with `--json`, exactly one JSON document); progress while waiting goes to
stderr, and only when stderr is a terminal. Exit codes: 0 success, 1 failure (a request
that failed, a node that is down, an invalid signature, an error), 2 bad usage.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: command → (module, function taking argv, one-line help)
COMMANDS = {
    "init": ("tssnode.cli.node", "cmd_init", "create a node's data directory (identity, token)"),
    "run": ("tssnode.cli.node", "cmd_run", "run a node headless until SIGINT/SIGTERM"),
    "vault": ("tssnode.cli.node", "cmd_vault", "rekey: re-seal the vault under a new passphrase"),
    "cluster": (
        "tssnode.cli.cluster",
        "cmd_cluster",
        "up|down|status of a local network (up --bridge: with its chains and the bridge); "
        "demo: one of its own, a key and a signature (--bridge: a deposit minted)",
    ),
    "status": ("tssnode.cli.client", "cmd_status", "a node's height, view, peers and liveness"),
    "validators": ("tssnode.cli.client", "cmd_validators", "the validators and their peer ids"),
    "keys": ("tssnode.cli.client", "cmd_keys", "the keys a node knows, or one key in full"),
    "keygen": ("tssnode.cli.client", "cmd_keygen", "request a threshold key and wait for it"),
    "sign": ("tssnode.cli.client", "cmd_sign", "request a signature and wait for it"),
    "signatures": ("tssnode.cli.client", "cmd_signatures", "the signatures in the ledger"),
    "blocks": ("tssnode.cli.client", "cmd_blocks", "the newest blocks, newest first"),
    "verify": ("tssnode.cli.verify", "cmd_verify", "check a signature against a public key"),
    "bridge": (
        "tssnode.cli.bridge",
        "main",
        "the bridge: setup, info, address, deposits, mint (submit to the gateway)",
    ),
    "console": ("tui.cli", "main", "the operator console for a node (Textual)"),
    "simulate": (
        "tssnode.cli.simulate",
        "main",
        "keygen → aux-info → presign → sign in one process",
    ),
    "demo": (
        "tssnode.cli.simulate",
        "demo_main",
        "simulate a 3-of-4 key and a signature in one process",
    ),
    "faults": (
        "tssnode.testing.faults",
        "main",
        "run fault schedules from a TOML manifest against real nodes",
    ),
    "regtest": (
        "tssnode.regtest.service",
        "main",
        "a regtest Bitcoin chain with Bitcoin Core's RPC, validated by its engine",
    ),
    "bench": (
        "tssnode.cli",
        "bench",
        "benchmarks: crypto, protocol, net, ledger, cluster, console, burst, throughput, bridge",
    ),
}

#: how `tssnode --help` groups the commands (every command is in exactly one group)
GROUPS = (
    ("run a node", ("init", "run", "vault")),
    ("a local network on loopback", ("cluster",)),
    (
        "ask a running node (--config FILE, $TSSNODE_CONFIG or ./tssnode.toml)",
        (
            "status",
            "validators",
            "keys",
            "keygen",
            "sign",
            "signatures",
            "blocks",
            "bridge",
            "console",
        ),
    ),
    ("offline, no node needed", ("verify", "simulate", "demo")),
    ("testing", ("faults", "regtest", "bench")),
)

BENCHES = (
    "crypto", "protocol", "net", "ledger", "cluster", "console", "burst", "throughput", "bridge",
)  # fmt: skip


def usage() -> str:
    lines = [
        "usage: tssnode COMMAND [options]",
        "       tssnode COMMAND --help   (a command's options)",
    ]
    for title, names in GROUPS:
        lines += ["", f"{title}:"]
        lines += [f"  {name:11} {COMMANDS[name][2]}" for name in names]
    lines += [
        "",
        "`make run` runs `tssnode cluster up --bridge`; `make demo` runs `tssnode cluster demo",
        "--bridge`: a deposit minted on four real nodes and two chains of its own. `tssnode demo`",
        "runs keygen and signing in this one process. docs/cli.md describes every command.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(usage(), file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help", "help"):
        if args[0] == "help" and len(args) > 1 and args[1] in COMMANDS:
            return main([args[1], "--help"])
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        from tssnode import __version__

        print(f"tssnode {__version__}")
        return 0
    if args[0] not in COMMANDS:
        print(f"tssnode: unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[args[0]]
    entry = getattr(importlib.import_module(module), function)
    return int(entry(args[1:]) or 0)


def bench(args: Sequence[str]) -> int:
    listing = f"usage: tssnode bench {{{','.join(BENCHES)}}} [options]"
    if args and args[0] in ("-h", "--help"):
        print(f"{listing}\n\nmeasure and (--write FILE) record; `tssnode bench NAME --help`")
        return 0
    if not args or args[0] not in BENCHES:
        print(listing, file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"tssnode.bench.{args[0]}")
    except ModuleNotFoundError:
        print(f"tssnode bench {args[0]}: not built yet", file=sys.stderr)
        return 2
    return int(module.main(list(args[1:])) or 0)
