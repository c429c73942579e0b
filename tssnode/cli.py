"""The `tssnode` command line.

Each subcommand lives in the module that owns it; this file only dispatches, so that
the layers add their commands without editing one big parser. `tssnode bench NAME` runs
`tssnode.bench.NAME.main(argv)`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: command → (module, function taking argv, one-line help)
COMMANDS = {
    "init": ("tssnode.commands", "cmd_init", "create a node's data directory (identity, token)"),
    "run": ("tssnode.commands", "cmd_run", "run a node headless (--config FILE)"),
    "vault": ("tssnode.commands", "cmd_vault", "rekey: re-seal the vault under a new passphrase"),
    "cluster": ("tssnode.commands", "cmd_cluster", "up|down|status: a local network on loopback"),
    "status": ("tssnode.commands", "cmd_status", "a node's status (API client)"),
    "keygen": ("tssnode.commands", "cmd_keygen", "request a threshold key (API client)"),
    "sign": ("tssnode.commands", "cmd_sign", "request a signature (API client)"),
    "blocks": ("tssnode.commands", "cmd_blocks", "list blocks (API client)"),
    "console": ("tui.cli", "main", "the operator console for a node (Textual)"),
    "simulate": ("tssnode.simulate", "main", "keygen → aux-info → presign → sign in one process"),
    "demo": ("tssnode.simulate", "demo_main", "the in-process demo"),
    "faults": (
        "tssnode.testing.faults",
        "main",
        "run fault schedules from a TOML manifest against real nodes",
    ),
    "bench": (
        "tssnode.cli",
        "bench",
        "benchmarks: crypto, protocol, net, ledger, cluster, console, burst",
    ),
}

BENCHES = ("crypto", "protocol", "net", "ledger", "cluster", "console", "burst")


def usage() -> str:
    lines = ["usage: tssnode COMMAND [options]", "", "commands:"]
    lines += [f"  {name:10} {info[2]}" for name, info in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] not in COMMANDS:
        print(f"tssnode: unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[args[0]]
    entry = getattr(importlib.import_module(module), function)
    return int(entry(args[1:]) or 0)


def bench(args: Sequence[str]) -> int:
    if not args or args[0] not in BENCHES:
        print(f"usage: tssnode bench {{{','.join(BENCHES)}}} [options]", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"tssnode.bench.{args[0]}")
    except ModuleNotFoundError:
        print(f"tssnode bench {args[0]}: not built yet", file=sys.stderr)
        return 2
    return int(module.main(list(args[1:])) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
