"""ARCHITECTURE.md: `tui` imports nothing from `tssnode` but the API client, the API's
schema (the console could attach to a node on another machine) and the node's config
parser (`tssnode console --config` reads a node config as the node does), and the
console's core (model, state, actions, digests, …) does not import Textual (STYLE.md).
Each module is imported in a fresh interpreter and its sys.modules inspected."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import tui

ALLOWED_NODE_MODULES = {
    "tssnode",
    "tssnode.api",
    "tssnode.api.client",
    "tssnode.schema",
    "tssnode.config",
    # what `tssnode.config` imports today: the peer-id check of the net layer (the
    # config ↔ net cycle of issue 15) and the common error base
    "tssnode.errors",
    "tssnode.net",
    "tssnode.net.errors",
    "tssnode.net.peerid",
    # the message-digest rules, written once (crypto/digests.py), and what the config's
    # tier check reads (crypto/params.py) with its imports
    "tssnode.crypto",
    "tssnode.crypto.arith",
    "tssnode.crypto.digests",
    "tssnode.crypto.encoding",
    "tssnode.crypto.group",
    "tssnode.crypto.params",
}
PLAIN = (
    "tui.model",
    "tui.state",
    "tui.stats",
    "tui.actions",
    "tui.digests",
    "tui.retry",
    "tui.paths",
    "tui.daemon",
    "tui.names",
)


def _all_modules() -> list[str]:
    return sorted(
        m.name for m in pkgutil.walk_packages(tui.__path__, "tui.") if m.name != "tui.__main__"
    )


def _imported_by(module: str) -> list[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_every_module_is_checked():
    assert set(PLAIN) < set(_all_modules())
    assert "tui.app" in _all_modules() and "tui.widgets.keys" in _all_modules()


def test_tui_imports_only_the_api_client_from_the_node():
    code = "import json, sys\n" + "".join(f"import {m}\n" for m in _all_modules())
    code += "print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    node = {m for m in json.loads(out.stdout) if m.split(".")[0] == "tssnode"}
    assert node <= ALLOWED_NODE_MODULES, sorted(node - ALLOWED_NODE_MODULES)


@pytest.mark.parametrize("module", PLAIN)
def test_the_core_does_not_import_textual(module):
    loaded = _imported_by(module)
    assert not [m for m in loaded if m.split(".")[0] == "textual"]
