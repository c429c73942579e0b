"""The node tests start processes and open API clients: each test's garbage is collected
as it ends, so a client or socket it left open is reported against that test (pytest turns
the ResourceWarning into a failure) instead of whichever test the collector next runs in.
A collection costs milliseconds; these tests take seconds."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collect_what_the_test_left() -> Iterator[None]:
    yield
    gc.collect()
