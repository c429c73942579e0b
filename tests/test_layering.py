"""The layering of ARCHITECTURE.md: a lower layer imports nothing from a higher one, and
the maths layers import no I/O framework. Each layer is imported in a fresh interpreter
and its sys.modules inspected."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import tssnode

IO_FRAMEWORKS = ("trio", "libp2p", "plyvel", "textual", "httpx", "starlette", "hypercorn")
# layer → tssnode subpackages it must never import (everything above it)
RULES = {
    "tssnode.crypto": (
        "tssnode.zk",
        "tssnode.protocol",
        "tssnode.net",
        "tssnode.ledger",
        "tssnode.node",
        "tssnode.api",
        "tssnode.store",
        "tssnode.cli",
    ),
    "tssnode.zk": (
        "tssnode.protocol",
        "tssnode.net",
        "tssnode.ledger",
        "tssnode.node",
        "tssnode.api",
        "tssnode.store",
        "tssnode.cli",
    ),
    "tssnode.protocol": (
        "tssnode.net",
        "tssnode.ledger",
        "tssnode.node",
        "tssnode.api",
        "tssnode.store",
        "tssnode.cli",
    ),
}
MATHS = ("tssnode.crypto", "tssnode.zk", "tssnode.protocol")


def _modules_of(package: str) -> list[str]:
    pkg = __import__(package, fromlist=["_"])
    return [package] + [
        f"{package}.{m.name}"
        for m in pkgutil.iter_modules(pkg.__path__)
        if not m.name.startswith("_")
    ]


def _imported_by(module: str) -> list[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("layer", sorted(RULES))
def test_lower_layers_do_not_import_upper_ones(layer):
    for module in _modules_of(layer):
        loaded = _imported_by(module)
        bad = [m for m in loaded if m.startswith(RULES[layer])]
        assert not bad, f"{module} imports {bad}"
        if layer in MATHS:
            io = [m for m in loaded if m.split(".")[0] in IO_FRAMEWORKS]
            assert not io, f"{module} imports I/O frameworks {io}"


def test_package_version():
    assert tssnode.__version__
