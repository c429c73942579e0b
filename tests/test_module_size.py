"""Issue 15's size rule: no module in the ledger engine or the node over ~500 lines. A
module that grows past it is split along a seam (as `node/executor.py` → `node/phases.py`,
`node/watch.py` → `node/evmwatch.py` and `node/node.py` → `node/early.py` were), not let
grow."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the packages the rule covers (their subpackages too)
PACKAGES = ("tssnode/ledger", "tssnode/node")
LIMIT = 500
#: modules allowed over `LIMIT` for now, each with the most lines it may have: a bound
#: that only goes down, so none of them can grow meanwhile (none today)
ALLOWED: dict[str, int] = {}


def _sizes() -> dict[str, int]:
    sizes = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            with path.open("rb") as f:
                sizes[path.relative_to(ROOT).as_posix()] = sum(1 for _ in f)
    return sizes


def test_no_module_in_the_ledger_or_the_node_is_over_the_size_bound() -> None:
    sizes = _sizes()
    assert sizes, "no modules found: were the packages moved?"
    over = {
        name: f"{lines} lines (at most {ALLOWED.get(name, LIMIT)})"
        for name, lines in sizes.items()
        if lines > ALLOWED.get(name, LIMIT)
    }
    assert not over, f"split these modules along a seam (issue 15): {over}"


def test_each_allowed_exception_is_still_needed() -> None:
    """An exception goes once its module is back under the bound (or gone), so it cannot
    grow back to its old size unnoticed."""
    sizes = _sizes()
    stale = [name for name in ALLOWED if sizes.get(name, 0) <= LIMIT]
    assert not stale, f"within {LIMIT} lines now: remove from ALLOWED: {stale}"
