"""Writes docs/console/*.svg: the console's own screenshots (`App.save_screenshot`, what
ctrl+s saves) of every screen and dialog, from the frozen test data with the clock
stopped, so they change only when the console does.

    .venv/bin/python -m tests.tui.make_docs_screenshots
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

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

DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"
WIDE = (120, 36)
SMALL = (80, 24)

#: file name → (first tab, terminal size, what to do before the screenshot)
SHOTS: dict[str, tuple[str, tuple[int, int], Callable[[Any], Awaitable[None]]]] = {
    **{tab: (tab, WIDE, settled) for tab, _, _ in TABS},
    "keys-80x24": ("keys", SMALL, settled),
    "sessions-80x24": ("sessions", SMALL, settled),
    "bridge-release": ("bridge", WIDE, open_release),
    "keygen": ("keys", WIDE, open_keygen),
    "sign-confirm": ("keys", WIDE, open_sign_confirmation),
    "help": ("keys", WIDE, open_help),
}


async def shoot(name: str) -> Path:
    tab, size, before = SHOTS[name]
    app = make_app(FakeNode(), initial_tab=tab)
    async with app.run_test(size=size) as pilot:
        await before(pilot)
        return Path(app.save_screenshot(filename=f"{name}.svg", path=str(DOCS)))


def main() -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    for name in SHOTS:
        print(asyncio.run(shoot(name)))


if __name__ == "__main__":
    main()
