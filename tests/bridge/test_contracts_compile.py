"""The committed artifacts are what the sources compile to: scripts/compile_contracts.py
recompiles them (solc-js, offline) into a temporary directory, byte for byte the same."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tssnode.bridge import contracts

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "compile_contracts.py"
COMMITTED = Path(contracts.__file__).parent


@pytest.fixture(scope="module")
def recompiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("artifacts")
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return out


@pytest.mark.parametrize("name", contracts.ARTIFACTS)
def test_recompiling_gives_the_committed_artifact(recompiled, name):
    fresh = (recompiled / f"{name}.json").read_text()
    committed = (COMMITTED / f"{name}.json").read_text()
    assert json.loads(fresh) == contracts.load(name)
    assert fresh == committed  # and the same bytes: the output is deterministic


@pytest.mark.parametrize("name", contracts.ARTIFACTS)
def test_an_artifact_names_its_compiler_and_sources(name):
    artifact = contracts.load(name)
    assert artifact["compiler"].startswith("0.8.30+commit.")
    for key in ("bytecode", "deployedBytecode"):
        assert artifact[key].startswith("0x") and len(artifact[key]) > 1000
        bytes.fromhex(artifact[key][2:])
    sources = artifact["source_sha256"]
    assert f"contracts/{name}.sol" in sources
    assert "@openzeppelin/contracts/token/ERC20/ERC20.sol" in sources
    for unit, digest in sources.items():
        base = ROOT / "node_modules" if unit.startswith("@openzeppelin/") else ROOT
        assert hashlib.sha256((base / unit).read_bytes()).hexdigest() == digest, unit


def test_the_loader_refuses_an_unknown_name():
    with pytest.raises(ValueError, match="no contract artifact"):
        contracts.load("../../pyproject")
