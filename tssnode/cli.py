"""The `tssnode` command line.

Each subcommand lives in the module that owns it; this file only dispatches, so that
later layers add their commands without editing one big parser. `tssnode bench NAME`
runs `tssnode.bench.NAME.main(argv)`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "simulate": ("tssnode.simulate", "run keygen → aux-info → presign → sign in one process"),
    "demo": ("tssnode.simulate", "the in-process demo that `make run` starts"),
    "bench": ("tssnode.bench", "benchmarks: crypto, protocol, net, ledger, cluster"),
    "console": ("tui.cli", "the operator console for a node (Textual)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="tssnode", description="threshold ECDSA validator node")
    parser.add_argument(
        "command",
        choices=sorted(COMMANDS),
        help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items()),
    )
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    ns = parser.parse_args(args[:1])
    if ns.command == "bench":
        return _bench(args[1:])
    module = importlib.import_module(COMMANDS[ns.command][0])
    entry = getattr(module, "demo_main" if ns.command == "demo" else "main")
    return int(entry(args[1:]) or 0)


def _bench(args: list[str]) -> int:
    names = ("crypto", "protocol", "net", "ledger", "cluster")
    if not args or args[0] not in names:
        print(f"usage: tssnode bench {{{','.join(names)}}} [options]", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"tssnode.bench.{args[0]}")
    except ModuleNotFoundError:
        print(f"tssnode bench {args[0]}: not built yet", file=sys.stderr)
        return 2
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
