"""Failpoints: named places in the code where a test makes the process die at once.

As etcd's gofail and TiKV's fail-rs do, a crash is injected exactly where it hurts most
(after a share is computed but before it is written, after a vote is sent, half-way
through a view change), instead of at a random moment of a `kill -9`. The environment
variable `TSSNODE_FAILPOINT` names one point, or `name@N` to die at its N-th hit (several,
comma-separated); `hit(name)` then writes one line to stderr and calls `os._exit(86)`:
no cleanup, no flush of anything not already on disk, as after SIGKILL. Unset (always,
outside tests), `hit` is one dictionary look-up.

Every point in the code is listed in `POINTS`, so a test suite can run them all.

A few points corrupt instead of kill (`CORRUPT_POINTS`, armed as `corrupt:<name>`): the
process goes on with a damaged value, as a faulty or malicious party would, so a test can
show what catches it. Unset, `corrupt` hands the value back untouched.
"""

from __future__ import annotations

import os
import sys

ENV = "TSSNODE_FAILPOINT"
#: The exit status of a process stopped by a failpoint (tests tell it from a crash).
EXIT_CODE = 86

#: name → where it is (every `hit` call in the code uses one of these names)
POINTS: dict[str, str] = {
    "keygen.share-computed": "keygen + aux-info done, the share not yet written",
    "refresh.share-computed": "refresh done, the new share not yet written",
    "share.written": "a key share written (synced), its result vote not yet submitted",
    "result.voted": "a keygen, refresh, presign or sign result handed to the ledger",
    "presign.stored": "a pooled presignature written, its ready vote not yet submitted",
    "sign.share-written": "a signature share written with its presignature's use",
    "sign.share-sent": "round 1 of sign sent (the signature share is out)",
    "block.before-commit": "a block executed, not yet written",
    "block.committed": "a block written, the node not yet told",
    "pbft.vote-sent": "a prepare or commit journalled and handed to the transport",
    "pbft.checkpoint": "a checkpoint vote journalled, not yet broadcast",
    "pbft.view-change": "a view change journalled, not yet broadcast",
}


#: name → what is corrupted there (armed as `corrupt:<name>`; every one of its hits)
CORRUPT_POINTS: dict[str, str] = {
    "sign.result": "a signature this node combined, before it votes it: s made q − s "
    "(a high-s, wrongly normalised signature of the same digest)",
}


def _parse(spec: str | None) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in (spec or "").split(","):
        name, _, count = item.strip().partition("@")
        if name:
            armed[name] = int(count) if count.isdigit() and int(count) > 0 else 1
    return armed


_armed = _parse(os.environ.get(ENV))
_corrupting = {n.removeprefix("corrupt:") for n in _armed if n.startswith("corrupt:")}


def arm(spec: str | None) -> None:
    """Set the armed points as the environment variable would (for in-process tests)."""
    global _armed, _corrupting
    _armed = _parse(spec)
    _corrupting = {n.removeprefix("corrupt:") for n in _armed if n.startswith("corrupt:")}


def corrupting(name: str) -> bool:
    """Whether the corrupting point `name` is armed (see `CORRUPT_POINTS`)."""
    if name in _corrupting:
        sys.stderr.write(f"failpoint corrupt:{name} hit: the value is corrupted\n")
        sys.stderr.flush()
        return True
    return False


def hit(name: str) -> None:
    """Die here if this point is armed (and this is its N-th hit)."""
    if not _armed or name not in _armed:
        return
    _armed[name] -= 1
    if _armed[name] > 0:
        return
    sys.stderr.write(f"failpoint {name} hit: exiting\n")
    sys.stderr.flush()
    os._exit(EXIT_CODE)
