"""Layering: the store imports nothing above crypto; the ledger nothing above itself."""

from __future__ import annotations

import json
import subprocess
import sys


def loaded_after(imports: str) -> set[str]:
    code = f"import sys, json\n{imports}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_store_imports_nothing_above_crypto() -> None:
    mods = loaded_after("import tssnode.store, tssnode.store.vault, tssnode.store.sealing")
    above = {"tssnode.protocol", "tssnode.zk", "tssnode.ledger", "tssnode.net", "trio"}
    assert not {m for m in mods if m.split(".")[0] == "trio" or m.startswith(tuple(above))}


def test_ledger_imports_nothing_above_itself() -> None:
    mods = loaded_after(
        "import tssnode.ledger.replica, tssnode.ledger.service, tssnode.ledger.bootstrap"
    )
    above = ("tssnode.net", "tssnode.node", "tssnode.api", "tssnode.cli", "tui", "textual")
    assert not {m for m in mods if m.startswith(above) or m.split(".")[0] == "libp2p"}
