"""docs/console.md shows a screenshot of every screen and dialog, and every screenshot
in docs/console/ is one that `make_docs_screenshots.py` makes and the page shows."""

from __future__ import annotations

import re
from pathlib import Path

from tests.tui.make_docs_screenshots import DOCS, SHOTS

PAGE = DOCS.parent / "console.md"


def test_every_screenshot_is_made_and_shown():
    shown = set(re.findall(r"\]\(console/([\w-]+)\.svg\)", PAGE.read_text()))
    on_disk = {p.stem for p in Path(DOCS).glob("*.svg")}
    assert shown == on_disk == set(SHOTS)
