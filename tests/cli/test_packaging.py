"""The example configs are package data (`tssnode.configs`, mapped from `configs/` in
pyproject.toml): `tssnode cluster` finds them with importlib.resources in an installed
wheel, falls back to a checkout's `configs/`, and says so clearly when neither is there
(issue 14)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest
from setuptools import find_namespace_packages

from tssnode.cli import cluster, configs
from tssnode.cli.common import CommandError
from tssnode.config import NodeConfig

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def make_package(where: Path, name: str, *, nodes: int = 2) -> Path:
    """A package `name` whose `configs` directory holds example configs (no __init__.py,
    as in a wheel), on sys.path via `where`."""
    pkg = where / name
    local = pkg / "configs" / "local"
    local.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for i in range(1, nodes + 1):
        (local / f"node{i}.toml").write_text(
            textwrap.dedent(
                f"""\
                # the checkout's note on its paths
                [node]
                network_id = "from-{name}"
                data_dir = "../../.local/node{i}"
                [net]
                listen = "/ip4/127.0.0.1/tcp/{4100 + i}"
                [api]
                listen = "127.0.0.1:{3000 + i}"
                [ledger]
                genesis = "../../.local/genesis.toml"
                """
            )
        )
    return pkg


def test_configs_are_found_with_importlib_resources(tmp_path, monkeypatch):
    make_package(tmp_path, "cfgpkg_found")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = configs.example_configs("cfgpkg_found.configs")
    node1 = found.joinpath("local").joinpath("node1.toml")
    assert 'network_id = "from-cfgpkg_found"' in node1.read_text()
    assert configs._checkout_local(found) is None  # package data, not a checkout


def test_the_checkout_is_the_fallback(monkeypatch):
    found = configs.example_configs("no_such_package_here.configs")
    assert found == ROOT / "configs"
    assert configs._checkout_local(found) == ROOT / "configs" / "local"
    assert configs.local_configs(4)[0] == ROOT / "configs" / "local" / "node1.toml"


def test_a_clear_error_without_configs(tmp_path, monkeypatch):
    monkeypatch.setattr(configs, "ROOT", tmp_path)
    with pytest.raises(CommandError, match=r"example configs are missing.*reinstall"):
        configs.example_configs("no_such_package_here.configs")


def test_installed_configs_are_copied_out_of_the_package(tmp_path, monkeypatch, capsys):
    """In a wheel, the configs' relative data paths would point into site-packages: the
    network gets copies in a state directory instead, made by `cluster up` only."""
    make_package(tmp_path / "site", "cfgpkg_installed", nodes=3)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    found = configs.example_configs("cfgpkg_installed.configs")
    monkeypatch.setattr(configs, "example_configs", lambda: found)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with pytest.raises(CommandError, match=r"no local network in .*cluster up"):
        configs.local_configs(3)  # status and down make nothing
    assert cluster.cmd_cluster(["status", "3"]) == 1
    assert "`tssnode cluster up` makes one" in capsys.readouterr().err
    paths = configs.local_configs(3, create=True)
    net = tmp_path / "state" / "tssnode" / "local"
    assert paths == [net / f"node{i}.toml" for i in (1, 2, 3)]
    cfg = NodeConfig.load(paths[1])
    assert cfg.data_dir == net / "node2" and cfg.genesis_path == net / "genesis.toml"
    assert cfg.network_id == "from-cfgpkg_installed" and cfg.api.port == 3002
    assert "checkout's note" not in paths[1].read_text()
    paths[0].write_text(paths[0].read_text() + "\n# edited\n")
    configs.local_configs(3, create=True)
    assert paths[0].read_text().endswith("# edited\n")  # an existing copy is kept
    with pytest.raises(CommandError, match="has 3 nodes"):
        configs.local_configs(4, create=True)


def test_pyproject_lists_every_package():
    found = {
        p
        for p in find_namespace_packages(where=str(ROOT), include=["tssnode*", "tui*"])
        if "__pycache__" not in p
    }
    listed = set(SETUPTOOLS["packages"])
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert SETUPTOOLS["package-dir"]["tssnode.configs"] == "configs"


def test_package_data_covers_every_example_config():
    data = SETUPTOOLS["package-data"]
    shipped = set()
    for package, base in (("tssnode.configs", ""), ("tssnode.configs.local", "local/")):
        for path in (ROOT / "configs" / base).glob("*"):
            if path.is_file() and any(fnmatch(path.name, g) for g in data[package]):
                shipped.add(base + path.name)
    on_disk = {str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs").rglob("*.toml")}
    assert on_disk and on_disk <= shipped


def test_a_built_wheel_ships_the_configs(tmp_path):
    """Build the wheel (pip, from a copy of the sources) and look the configs up from it
    with importlib.resources, in a process whose working directory is no checkout."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("tssnode", "tui", "configs"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if build.returncode != 0 and "No matching distribution" in build.stderr:
        pytest.skip("pip cannot get the build backend (setuptools) here")
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("tssnode-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for path in (ROOT / "configs").rglob("*.toml"):
        assert f"tssnode/configs/{path.relative_to(ROOT / 'configs')}" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "from pathlib import Path\n"
        "from tssnode.cli import configs\n"
        "assert Path(configs.__file__).is_relative_to(Path(__import__('sys').argv[1]))\n"
        "found = configs.example_configs()\n"
        "print(found.joinpath('local').joinpath('node1.toml'))\n"
        "print(configs._checkout_local(found))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, str(site)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    node1, checkout = run.stdout.splitlines()
    assert Path(node1) == site / "tssnode" / "configs" / "local" / "node1.toml"
    assert checkout == "None"


def test_package_version() -> None:
    import tssnode

    assert tssnode.__version__
