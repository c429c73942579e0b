"""The gateway's compiled contracts (ABI and bytecode), committed; `scripts/compile_contracts.py`
makes them from `contracts/` with solc-js.

They are package data (read with importlib.resources), so an installed node deploys and
talks to the gateway with no compiler and no Node at hand.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

#: the committed artifacts, `NAME.json` each
ARTIFACTS = ("BridgeGateway", "WrappedBTC")


def load(name: str) -> dict[str, Any]:
    """The artifact `name` ("abi", "bytecode", "deployedBytecode", "compiler",
    "source_sha256"); a name outside ARTIFACTS is refused rather than looked up as a path."""
    if name not in ARTIFACTS:
        raise ValueError(f"no contract artifact {name!r}: one of {', '.join(ARTIFACTS)}")
    text = resources.files(__name__).joinpath(f"{name}.json").read_text()
    artifact: dict[str, Any] = json.loads(text)
    return artifact
