"""Fixtures of the console tests (helpers in `helpers.py`)."""

from __future__ import annotations

import pytest

from tssnode.testing.fakenode import FakeNode


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()
