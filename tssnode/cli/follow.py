"""Waiting for a request (a key or a signature) until it is settled, with a progress line
on a terminal that says what it waits for: the ledger, or a protocol round and the
parties it waits for (from GET /sessions)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from tssnode.api.client import ApiClient, ApiError, ApiUnavailable, get_or_none
from tssnode.cli.common import CommandError, Progress, head, short

#: seconds between two polls of a request's status
POLL_S = 0.25


class WaitTimeout(CommandError):
    pass


PHASES = {"keygen": "keygen", "aux": "aux-info", "presign": "presign", "sign": "sign"}


def _party(who: Any, parties: Sequence[str]) -> str:
    if isinstance(who, int) and not isinstance(who, bool):
        if 1 <= who <= len(parties):
            return short(parties[who - 1])
        return f"party {who}"
    return short(who)


class _Watcher:
    """What a request waits for, in words, from the API's view of it and of the node's
    protocol sessions (GET /sessions, as the console's Sessions screen shows them)."""

    def __init__(self, api: ApiClient, kind: str, ident: str) -> None:
        self.api, self.kind, self.ident = api, kind, ident
        self.parties: list[str] | None = None
        self.sessions_at = 0.0
        self.session_text = ""

    def describe(self, data: dict[str, Any] | None) -> str:
        what = f"{self.kind} {head(self.ident)}"
        if data is None:
            return f"waiting for {what}: the node does not list it yet"
        if data.get("height") is None:
            return f"waiting for {what}: the ledger has not ordered the request yet"
        attempt = data.get("attempts")
        if isinstance(attempt, int) and attempt > 1:  # retried without the parties that failed
            what += f" (attempt {attempt})"
        text = self._session()
        if text:
            return f"waiting for {what}: {text}"
        return f"waiting for {what}: in block {data['height']}, the parties are at work"

    def _session(self) -> str:
        now = time.monotonic()
        if now - self.sessions_at < 1.0:
            return self.session_text
        self.sessions_at = now
        try:
            sessions = self.api.get("/sessions")
        except (ApiError, ApiUnavailable):
            return self.session_text
        mine = [s for s in sessions if isinstance(s, dict) and s.get("request") == self.ident]
        if not mine:  # this node takes no part (or not yet)
            self.session_text = ""
            return ""
        s = max(mine, key=lambda s: (s.get("status") == "running", s.get("started") or 0.0))
        phase = PHASES.get(str(s.get("phase")), str(s.get("phase")))
        if s.get("status") != "running":
            self.session_text = f"{phase} {s.get('status')} here; the ledger records the result"
            return self.session_text
        rounds = f" of {s['rounds']}" if s.get("rounds") else ""
        text = f"{phase} round {s.get('round', '?')}{rounds}"
        waiting = s.get("waiting_for") or []
        if waiting:
            parties = self._parties(s)
            text += ", waiting for " + ", ".join(_party(w, parties) for w in waiting)
        self.session_text = text
        return text

    def _parties(self, session: dict[str, Any]) -> list[str]:
        if self.parties is None:
            self.parties = []
            key_id = session.get("key_id") or (self.ident if self.kind == "key" else "")
            if key_id:
                with contextlib.suppress(ApiError, ApiUnavailable):
                    key = get_or_none(self.api, f"/keys/{key_id}") or {}
                    self.parties = [str(p) for p in key.get("parties") or []]
        return self.parties


def follow(
    api: ApiClient,
    kind: str,
    ident: str,
    *,
    timeout: float,
    progress: Progress | None = None,
) -> Any:
    """Poll a key (`kind` "key") or a signature until it is settled; say what it waits
    for on the progress line meanwhile."""
    path = f"/keys/{ident}" if kind == "key" else f"/signatures/{ident}"
    settled = ("active", "failed") if kind == "key" else ("done", "failed")
    progress = progress or Progress()
    watcher = _Watcher(api, kind, ident)
    deadline = time.monotonic() + timeout
    try:
        while True:
            data = get_or_none(api, path)
            if data is not None and data.get("status") in settled:
                return data
            if time.monotonic() > deadline:
                raise WaitTimeout(f"no result after {timeout:.0f} s")
            if progress.enabled:
                progress.update(watcher.describe(data))
            time.sleep(POLL_S)
    finally:
        progress.clear()


def wait_connected(clients: Sequence[ApiClient], timeout: float) -> None:
    """Until each node is connected to all the others (`peers_connected` of GET /status),
    with the count on the progress line; WaitTimeout after `timeout` seconds."""
    n = len(clients)
    deadline = time.monotonic() + timeout
    progress = Progress()
    try:
        while True:
            seen = [int(c.get("/status").get("peers_connected") or 0) for c in clients]
            if all(s >= n - 1 for s in seen):
                return
            if time.monotonic() > deadline:
                raise WaitTimeout(f"the nodes did not all connect within {timeout:.0f} s")
            progress.update(f"nodes connected: {sum(s >= n - 1 for s in seen)} of {n}")
            time.sleep(POLL_S)
    finally:
        progress.clear()
