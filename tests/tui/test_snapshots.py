"""SVG snapshots of every screen and dialog at 80×24 and 160×48, from the frozen data
with the clock stopped and animations off. `pytest --snapshot-update` rewrites them
(look at the report before accepting a change)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.helpers import (
    make_app,
    open_help,
    open_keygen,
    open_release,
    open_sign_confirmation,
    settled,
)
from tssnode.testing.fakenode import FakeNode
from tui.screens.main import TABS

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("tab", [tab for tab, _, _ in TABS])
def test_screen(snap_compare: Any, tab: str, size: str) -> None:
    app = make_app(FakeNode(), initial_tab=tab)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=settled)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "dialog",
    [open_keygen, open_sign_confirmation, open_help],
    ids=["keygen", "sign-confirm", "help"],
)
def test_dialog(snap_compare: Any, dialog: Any, size: str) -> None:
    app = make_app(FakeNode(), initial_tab="keys")
    assert snap_compare(app, terminal_size=SIZES[size], run_before=dialog)


@pytest.mark.parametrize("size", SIZES)
def test_bridge_release(snap_compare: Any, size: str) -> None:
    """The Bridge screen with a release in its detail (a bumped one: both attempts)."""
    app = make_app(FakeNode(), initial_tab="bridge")
    assert snap_compare(app, terminal_size=SIZES[size], run_before=open_release)
