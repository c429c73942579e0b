"""The layering is enforced by import-linter contracts in pyproject.toml (run by `make
check`). They hold for the code as it is, and each break issue 15 found in the old code
(and a few more) makes them fail: the break is put back into a copy of the tree and
`lint-imports` must refuse it, naming the contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"

# (module file, import line added to it, the contract that must break)
BREAKS = {
    "ledger imports protocol": (
        "tssnode/ledger/chain.py",
        "import tssnode.protocol.base",
        "The ledger engine knows transactions as bytes",
    ),
    "ledger imports an application": (
        "tssnode/ledger/state.py",
        "import tssnode.registry.app",
        "Layers",
    ),
    "node imports api": ("tssnode/node/node.py", "import tssnode.api.facade", "Layers"),
    "node imports the CLI": ("tssnode/node/datadir.py", "import tssnode.cli.common", "Layers"),
    "net imports config": ("tssnode/net/node.py", "import tssnode.config", "Layers"),
    "openapi imports the routes": (
        "tssnode/api/openapi.py",
        "import tssnode.api.app",
        "The API's routes over its parts",
    ),
    "the product imports a test double": (
        "tssnode/node/events.py",
        "import tssnode.testing.cluster",
        "Nothing in the product imports",
    ),
    "the bridge imports the node": (
        "tssnode/bridge/hashes.py",
        "import tssnode.node.node",
        "Layers",
    ),
    "the bridge imports the regtest chain": (
        "tssnode/bridge/hashes.py",
        "import tssnode.regtest",
        "Nothing in the product imports",
    ),
    "the console imports the node": (
        "tui/model.py",
        "import tssnode.node.node",
        "The console imports from tssnode only",
    ),
    # the console's allowlist: a module of tssnode that is not on it is refused, even one
    # no other contract keeps from the console
    "the console imports the bridge": (
        "tui/model.py",
        "import tssnode.bridge.hashes",
        "The console imports from tssnode only",
    ),
    "the console imports the API's metrics": (
        "tui/state.py",
        "import tssnode.api.metrics",
        "The console imports from tssnode only",
    ),
    "the console imports Paillier": (
        "tui/digests.py",
        "import tssnode.crypto.paillier",
        "The console imports from tssnode only",
    ),
    # and what it may import does not pull the node in behind it
    "the console's API client imports the node": (
        "tssnode/api/client.py",
        "import tssnode.node.node",
        "What the console imports from tssnode pulls in no part of the node",
    ),
    "a CLI module that runs no test network imports a test harness": (
        "tssnode/cli/common.py",
        "import tssnode.testing.cluster",
        "The CLI imports the test harnesses only",
    ),
    "logs imports the node": ("tssnode/logs.py", "import tssnode.node.node", "Layers"),
    "ledger imports an application for a type only": (
        "tssnode/ledger/state.py",
        "import typing\n\nif typing.TYPE_CHECKING:\n    import tssnode.registry.app",
        "The ledger engine knows transactions as bytes",
    ),
    "maths does I/O": ("tssnode/zk/common.py", "import trio", "The maths layers do no I/O"),
    "the node serves HTTP": (
        "tssnode/node/metrics.py",
        "import starlette.applications",
        "The node knows nothing of HTTP",
    ),
    "the store runs trio": ("tssnode/store/db.py", "import trio", "The store holds bytes"),
    "the ledger imports libp2p": (
        "tssnode/ledger/blocks.py",
        "import libp2p",
        "The ledger engine runs over any transport",
    ),
    "the console's core imports Textual": (
        "tui/state.py",
        "import textual.app",
        "The console's core does not import Textual",
    ),
}


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("tssnode", "tui"):
        shutil.copytree(ROOT / name, dst / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_the_code_keeps_every_contract(tmp_path: Path) -> None:
    out = _lint(_copy(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_each_break_is_caught(tmp_path: Path, name: str) -> None:
    path, line, contract = BREAKS[name]
    root = _copy(tmp_path)
    target = root / path
    text = target.read_text()
    # after `from __future__ import annotations`, at run time (or under TYPE_CHECKING, if
    # the added lines say so: a type-only import counts like any other)
    head, sep, rest = text.partition("from __future__ import annotations\n")
    assert sep, path
    target.write_text(head + sep + line + "  # noqa\n" + rest)
    out = _lint(root)
    assert out.returncode != 0, f"{name} was not caught"
    broken = out.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, out.stdout
