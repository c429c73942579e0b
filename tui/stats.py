"""Running tallies the console keeps from the event stream: proof counts and rate, and
the log book with its level filter and search. No Textual here."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

LEVELS = ("debug", "info", "warning", "error")
# What is kept (see also tui.state's MAX_*), the oldest dropped first:
MAX_LOG_LINES = 1000  # log lines (the Log screen)
MAX_REJECTIONS = 200  # rejected proofs listed one by one
MAX_PROOF_NAMES = 64  # proof types, and parties, counted apart; the rest count as OTHER
RATE_SECONDS = 600  # seconds of the proof rate kept (the sparkline shows the last 60)
OTHER = "other"


def level_rank(level: str) -> int:
    """Position in LEVELS; an unknown level counts as info."""
    return LEVELS.index(level) if level in LEVELS else 1


@dataclass(frozen=True)
class LogLine:
    time: float
    level: str
    source: str  # "node" for the node's own log events, "event" or "console" otherwise
    text: str

    def matches(self, min_level: str, search: str) -> bool:
        if level_rank(self.level) < level_rank(min_level):
            return False
        return not search or search.casefold() in self.text.casefold()


class LogBook:
    """The newest `maxlen` lines, in order of arrival."""

    def __init__(self, maxlen: int = MAX_LOG_LINES) -> None:
        self.lines: deque[LogLine] = deque(maxlen=maxlen)
        self.total = 0  # lines ever added, so a reader knows how many are new

    def add(self, line: LogLine) -> None:
        self.lines.append(line)
        self.total += 1

    def view(self, min_level: str = "debug", search: str = "") -> list[LogLine]:
        return [line for line in self.lines if line.matches(min_level, search)]


@dataclass
class Counts:
    verified: int = 0
    rejected: int = 0
    seconds: float = 0.0  # time spent verifying, summed

    @property
    def total(self) -> int:
        return self.verified + self.rejected

    @property
    def mean_ms(self) -> float | None:
        return 1000.0 * self.seconds / self.total if self.total else None


@dataclass(frozen=True)
class Rejection:
    time: float
    proof: str
    party: str
    reason: str


class ProofStats:
    """Verified and rejected proofs by proof type and by party, and the rate per second."""

    def __init__(
        self, keep_rejections: int = MAX_REJECTIONS, keep_seconds: int = RATE_SECONDS
    ) -> None:
        self.by_type: dict[str, Counts] = {}
        self.by_party: dict[str, Counts] = {}
        self.rejections: deque[Rejection] = deque(maxlen=keep_rejections)
        self._per_second: dict[int, int] = {}
        self._keep = keep_seconds

    def record(
        self,
        time: float,
        proof: str,
        party: str,
        ok: bool,
        seconds: float | None,
        reason: str | None = None,
    ) -> None:
        for table, name in ((self.by_type, proof), (self.by_party, party)):
            if name not in table and len(table) >= MAX_PROOF_NAMES:
                name = OTHER  # a node naming ever new proofs or parties must not grow this
            counts = table.setdefault(name, Counts())
            if ok:
                counts.verified += 1
            else:
                counts.rejected += 1
            counts.seconds += seconds or 0.0
        if not ok:
            self.rejections.appendleft(Rejection(time, proof, party, reason or "rejected"))
        second = int(time)
        self._per_second[second] = self._per_second.get(second, 0) + 1
        if len(self._per_second) > self._keep:
            for old in sorted(self._per_second)[: len(self._per_second) - self._keep]:
                del self._per_second[old]

    @property
    def totals(self) -> Counts:
        out = Counts()
        for counts in self.by_type.values():
            out.verified += counts.verified
            out.rejected += counts.rejected
            out.seconds += counts.seconds
        return out

    def rate(self, now: float, window: int = 60) -> list[int]:
        """Proofs checked in each of the last `window` seconds, oldest first."""
        end = int(now)
        return [self._per_second.get(second, 0) for second in range(end - window + 1, end + 1)]
