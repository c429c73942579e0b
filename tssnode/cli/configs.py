"""Which node config a command uses (`--config FILE`, else `$TSSNODE_CONFIG`, else
`./tssnode.toml`), and the example network's configs shipped with tssnode (what
`tssnode cluster` runs without --dir)."""

from __future__ import annotations

import argparse
import importlib.resources
import os
import re
from importlib.resources.abc import Traversable
from pathlib import Path

from tssnode.cli.common import CommandError
from tssnode.config import ConfigError, NodeConfig

#: a source checkout's root: where `configs/` is when tssnode runs from one without the
#: package data (`python -m tssnode.cli` in a checkout that was never installed)
ROOT = Path(__file__).resolve().parents[2]
#: the example configs shipped as package data (pyproject.toml maps `configs/` to it)
CONFIGS_PACKAGE = "tssnode.configs"
CONFIG_ENV = "TSSNODE_CONFIG"
DEFAULT_CONFIG = "tssnode.toml"


def example_configs(package: str = CONFIGS_PACKAGE) -> Traversable:
    """The example configs shipped with tssnode (`genesis.example.toml`, `local/node*.toml`):
    the package data `tssnode.configs` (an installed wheel, or an editable install), else
    the `configs/` of the checkout this module runs from."""
    try:
        found: Traversable | None = importlib.resources.files(package)
    except (ModuleNotFoundError, TypeError):
        found = None
    if found is not None and found.joinpath("local").joinpath("node1.toml").is_file():
        return found
    checkout = ROOT / "configs"
    if (checkout / "local" / "node1.toml").is_file():
        return checkout
    raise CommandError(
        f"tssnode's example configs are missing (neither the package data {package} nor "
        f"{checkout}): reinstall tssnode"
    )


def _checkout_local(configs: Traversable) -> Path | None:
    """`configs/local` as a directory of a source checkout (its data goes to the
    checkout's `.local/`), or None for configs installed with the package."""
    local = configs.joinpath("local")
    if isinstance(local, Path) and (local.parent.parent / "pyproject.toml").is_file():
        return local
    return None


def local_network_dir() -> Path:
    """Where an installed tssnode keeps its example network (`cluster up` without --dir):
    `$XDG_STATE_HOME/tssnode/local` (default `~/.local/state/tssnode/local`)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tssnode" / "local"


def _materialize(configs: Traversable, n: int, dest: Path) -> list[Path]:
    """Copies of the example node configs in `dest`, each with its data in `dest/nodeI`,
    the genesis in `dest/genesis.toml` and the regtest service's cookie in
    `dest/regtest/regtest/.cookie` (a copy already there is kept as it is)."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, n + 1):
        path = dest / f"node{i}.toml"
        paths.append(path)
        if path.exists():
            continue
        text = configs.joinpath("local").joinpath(f"node{i}.toml").read_text()
        text = re.sub(r"\A(?:#[^\n]*\n)+", "", text)  # the checkout's note on its paths
        text = re.sub(r"(?m)^data_dir\s*=.*$", f'data_dir = "node{i}"', text)
        text = re.sub(r"(?m)^genesis\s*=.*$", 'genesis = "genesis.toml"', text)
        text = re.sub(
            r"(?m)^cookie_file\s*=.*$", 'cookie_file = "regtest/regtest/.cookie"', text
        )  # (where `cluster up --bridge` keeps the regtest service's chain: regtest/)
        header = (
            f"# Local network node {i}: a copy of tssnode's example config, made by `tssnode\n"
            f"# cluster up`. Its data is in node{i}/ next to this file, the genesis in\n"
            "# genesis.toml (written by `tssnode cluster up` from the nodes' identities).\n"
        )
        path.write_text(header + text)
    return paths


def local_configs(n: int = 4, *, create: bool = False) -> list[Path]:
    """The configs of the example local network's first `n` nodes: configs/local of the
    checkout, or (installed) copies of the packaged ones in `local_network_dir()`, made
    when `create`."""
    configs = example_configs()
    available = sum(
        1 for i in range(1, 100) if configs.joinpath("local").joinpath(f"node{i}.toml").is_file()
    )
    if not 1 <= n <= available:
        raise CommandError(f"the example network has {available} nodes (node1..node{available})")
    local = _checkout_local(configs)
    if local is not None:
        return [local / f"node{i}.toml" for i in range(1, n + 1)]
    dest = local_network_dir()
    if create:
        return _materialize(configs, n, dest)
    paths = [dest / f"node{i}.toml" for i in range(1, n + 1)]
    if not all(p.exists() for p in paths):
        raise CommandError(f"no local network in {dest} yet: `tssnode cluster up` makes one")
    return paths


def find_config(given: Path | None, environ: dict[str, str] | None = None) -> Path:
    """The node config to use: `given` (--config), else $TSSNODE_CONFIG, else
    ./tssnode.toml."""
    env = os.environ if environ is None else environ
    if given is not None:
        if not given.is_file():
            raise CommandError(f"no config file {given}", 2)
        return given
    named = env.get(CONFIG_ENV, "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise CommandError(f"{CONFIG_ENV}={named}: no such config file", 2)
        return path
    local = Path(DEFAULT_CONFIG)
    if local.is_file():
        return local
    raise CommandError(
        f"no node config: give --config FILE, set {CONFIG_ENV}, or put {DEFAULT_CONFIG} in "
        "the current directory",
        2,
    )


def load_config(given: Path | None) -> NodeConfig:
    path = find_config(given)
    try:
        return NodeConfig.load(path)
    except ConfigError as exc:
        raise CommandError(str(exc), 2) from None


def api_url(cfg: NodeConfig) -> str:
    """The node's API base URL: `http://host:port` (the config has host:port only)."""
    return f"http://{cfg.api.address}"


def _config_arg(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"the node's config file (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG})",
    )
