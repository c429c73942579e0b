"""Reconnect delays: exponential backoff with a cap. No Textual here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """first, first·factor, first·factor², … never more than `cap` seconds."""

    first: float = 0.5
    factor: float = 2.0
    cap: float = 15.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield min(delay, self.cap)
            delay = min(delay * self.factor, self.cap)
