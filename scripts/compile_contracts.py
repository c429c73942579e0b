#!/usr/bin/env python3
"""Compile the gateway's contracts into the committed artifacts in tssnode/bridge/contracts/.

    python scripts/compile_contracts.py [--out DIR]

solc-js (node_modules/solc, the version package-lock.json pins) compiles `contracts/*.sol`
through `scripts/compile_contracts.js`, offline: OpenZeppelin's sources come from
node_modules. Each artifact `NAME.json` holds the ABI, the creation and runtime bytecode,
the compiler's version and the SHA-256 of every source that went into it, written with
sorted keys so that a recompilation gives the same bytes: tests/bridge/test_contracts_compile.py
recompiles and compares, so a committed artifact cannot drift from its source.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "scripts" / "compile_contracts.js"
OUT = ROOT / "tssnode" / "bridge" / "contracts"

#: artifact name → the source unit that defines it
CONTRACTS = {
    "BridgeGateway": "contracts/BridgeGateway.sol",
    "WrappedBTC": "contracts/WrappedBTC.sol",
}
#: the compiler the artifacts come from; another one would give other bytecode
COMPILER = "0.8.30+"
#: cancun, not 0.8.30's default (prague): the gateway needs nothing newer, and cancun's
#: opcodes run on every chain it is likely to be deployed to
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]}
    },
}


class CompileError(Exception):
    """solc refused the sources, warned about them, or is not the pinned version."""


def standard_input() -> dict[str, Any]:
    """solc's standard-JSON input: our sources by content, OpenZeppelin's by import."""
    # the file's exact text (read_text would turn CRLF into LF, and its hash would not be
    # the file's)
    sources = {
        unit: {"content": (ROOT / unit).read_bytes().decode("utf-8")} for unit in CONTRACTS.values()
    }
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def run_solc(request: dict[str, Any]) -> dict[str, Any]:
    """The helper's answer: {"version", "output", "imports"}."""
    node = shutil.which("node")
    if node is None:
        raise CompileError("node is not on PATH (solc-js runs in Node)")
    done = subprocess.run(
        [node, str(HELPER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise CompileError(f"{HELPER.name} failed:\n{done.stderr}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def check(answer: dict[str, Any]) -> None:
    """Refuses another compiler, and any error or warning (a warning is a bug not yet
    understood, as pytest's filterwarnings=error treats them)."""
    if not answer["version"].startswith(COMPILER):
        raise CompileError(f"solc {answer['version']}, not {COMPILER}*: run `npm ci`")
    problems = [e["formattedMessage"] for e in answer["output"].get("errors", [])]
    if problems:
        raise CompileError("solc:\n" + "\n".join(problems))


def artifact(name: str, answer: dict[str, Any], texts: dict[str, str]) -> dict[str, Any]:
    """One contract's committed record; its sources are those its metadata names."""
    compiled = answer["output"]["contracts"][CONTRACTS[name]][name]
    used = json.loads(compiled["metadata"])["sources"]
    return {
        "abi": compiled["abi"],
        "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
        "compiler": answer["version"],
        "source_sha256": {
            unit: hashlib.sha256(texts[unit].encode()).hexdigest() for unit in sorted(used)
        },
    }


def compile_all(out: Path) -> list[Path]:
    """Compiles every contract and writes `out/NAME.json`; returns the files written."""
    request = standard_input()
    answer = run_solc(request)
    check(answer)
    texts = {unit: body["content"] for unit, body in request["sources"].items()}
    texts.update(answer["imports"])
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACTS:
        path = out / f"{name}.json"
        path.write_text(json.dumps(artifact(name, answer, texts), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"directory (default {OUT})")
    args = parser.parse_args(argv)
    try:
        written = compile_all(args.out)
    except CompileError as err:
        print(err, file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
