"""Liveness you can see: is the ledger committing, and if not, why.

Safety alone is not enough: a network whose chain has stopped signs nothing, and the
operator must see it without reading logs. `assess` turns what the node knows (the age
of the last block, the requests waiting to be ordered, a view change under way, how many
validators are online) into a `Liveness` report that `/status`, `/health`, the console
and the log all use:

- **below quorum**: fewer than n − f validators online (this node included); nothing can
  commit until more come back;
- **stalled**: there is work for the ledger (requests waiting to be ordered, or a view
  change under way) and no block has committed for `stall_after` seconds.

An idle chain with nothing to order is not stalled, however old its last block.
`Watchdog` logs each change at WARNING (and once more every `repeat` seconds while it
lasts), and the recovery at INFO; in the first seconds after start-up, while the node is
still dialling its peers, it does not warn of a missing quorum (`/status` still says so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Seconds without a block, with work waiting, before the ledger counts as stalled.
STALL_AFTER = 30.0


def quorum_of(n: int) -> int:
    """n − f with f = ⌊(n − 1)/3⌋: how many validators PBFT needs to commit."""
    return n - (n - 1) // 3 if n else 0


@dataclass(frozen=True)
class Liveness:
    last_block_age_s: float
    pending_requests: int
    view_change: bool
    validators: int
    validators_online: int
    quorum: int
    stalled: bool
    below_quorum: bool
    reason: str | None

    @property
    def healthy(self) -> bool:
        return not (self.stalled or self.below_quorum)


def assess(
    *,
    last_block_age: float,
    pending: int,
    view_change: bool,
    validators: int,
    online: int,
    stall_after: float = STALL_AFTER,
) -> Liveness:
    """The report for one moment (pure: the caller measures, this decides)."""
    needed = quorum_of(validators)
    below = bool(validators) and online < needed
    work = pending > 0 or view_change
    stalled = work and last_block_age >= stall_after
    reason: str | None = None
    if below:
        reason = f"below quorum: {online} of {validators} validators online, {needed} needed"
    elif stalled:
        waiting = f"{pending} request{'s' if pending != 1 else ''} waiting"
        vc = ", a view change under way" if view_change else ""
        reason = f"no block for {last_block_age:.0f} s with {waiting}{vc}"
    return Liveness(
        last_block_age_s=round(last_block_age, 1),
        pending_requests=pending,
        view_change=view_change,
        validators=validators,
        validators_online=online,
        quorum=needed,
        stalled=stalled,
        below_quorum=below,
        reason=reason,
    )


class Watchdog:
    """Logs the transitions of successive reports (and repeats a standing problem)."""

    def __init__(self, repeat: float = 60.0, *, started: float = 0.0, grace: float = 0.0) -> None:
        self.repeat = repeat
        #: a node that has just started has not met its peers yet: no quorum warning before
        self.quiet_until = started + grace
        self._kind: str | None = None
        self._since_log = 0.0

    def observe(self, report: Liveness, now: float, view: int) -> None:
        kind = "below quorum" if report.below_quorum else "stalled" if report.stalled else None
        if kind == "below quorum" and now < self.quiet_until:
            return
        if kind is None:
            if self._kind is not None:
                log.info("ledger live again (view %d); it was %s", view, self._kind)
        elif kind != self._kind or now - self._since_log >= self.repeat:
            log.warning("ledger %s (view %d): %s", kind, view, report.reason)
            self._since_log = now
        self._kind = kind
