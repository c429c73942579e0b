"""`tssnode console`: open the operator console for one node.

tssnode console --attach http://127.0.0.1:3001 --token-file data/node1/api.token
tssnode console --config configs/node1.toml      # starts the node if it is not up

With --config the console also knows the node's data directory (ctrl+s saves under its
screenshots/) and its genesis (the validators' names); --genesis names the latter for
--attach.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tui.screens.main import TABS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tssnode console",
        description="The operator console of a tssnode validator (Textual).",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--attach", metavar="URL", help="the node's API, e.g. http://127.0.0.1:3001")
    where.add_argument(
        "--config", metavar="FILE", type=Path, help="a node config; starts the node if needed"
    )
    p.add_argument("--token-file", metavar="PATH", type=Path, help="the node's api.token")
    p.add_argument("--no-start", action="store_true", help="with --config: never start the node")
    p.add_argument("--tab", choices=[t for t, _, _ in TABS], default="peers", help="first screen")
    p.add_argument("--theme", help="a Textual theme name (t changes it inside)")
    p.add_argument(
        "--screenshot-dir",
        metavar="DIR",
        type=Path,
        help="where ctrl+s saves SVG screenshots (default: screenshots/ in the node's data"
        " directory with --config, else ./screenshots/)",
    )
    p.add_argument(
        "--genesis",
        metavar="FILE",
        type=Path,
        help="the network's genesis, for the validators' names (default with --config: the"
        " node's [ledger] genesis)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from tui.link import Target
    from tui.names import read_genesis_names

    data_dir: Path | None = None
    node_name: str | None = None
    genesis: Path | None = args.genesis
    if genesis is not None and not genesis.is_file():
        print(f"tssnode console: no genesis file at {genesis}", file=sys.stderr)
        return 2

    if args.attach:
        if args.token_file is None:
            parser().error("--attach needs --token-file")
        if not args.token_file.is_file():
            print(f"tssnode console: no token file at {args.token_file}", file=sys.stderr)
            return 2
        target = Target.from_token_file(args.attach, args.token_file)
    else:
        from tui.daemon import DaemonError, ensure_running

        try:
            node = ensure_running(args.config, start=not args.no_start)
        except DaemonError as exc:
            print(f"tssnode console: {exc}", file=sys.stderr)
            return 1
        target = Target.from_token_file(node.api_url, args.token_file or node.token_file)
        data_dir, node_name = node.data_dir, node.name
        genesis = genesis or node.genesis_file
    names = read_genesis_names(genesis) if genesis is not None else {}

    from tui.app import ConsoleApp

    app = ConsoleApp(
        target,
        screenshot_dir=args.screenshot_dir,
        data_dir=data_dir,
        names=names,
        node_name=node_name,
        initial_tab=args.tab,
    )
    if args.theme:
        if args.theme not in app.available_themes:
            themes = ", ".join(sorted(app.available_themes))
            print(
                f"tssnode console: unknown theme {args.theme!r}; one of {themes}", file=sys.stderr
            )
            return 2
        app.theme = args.theme
    app.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
