"""Fixtures of the console tests (helpers in `helpers.py`)."""

from __future__ import annotations

import pytest

from tests.tui.fake_node import FakeNode


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()
