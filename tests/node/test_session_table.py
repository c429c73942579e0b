"""`GET /sessions`'s table is bounded: every running session and the newest finished ones
(it grew by one entry per session for the node's whole life: issue 12)."""

from __future__ import annotations

from types import SimpleNamespace

from tssnode.node.executor import FINISHED_SESSIONS, Executor, SessionInfo


def _info(i: int, status: str) -> SessionInfo:
    return SessionInfo(f"{i:064x}", "sign", "00", "k", ["1", "2"], float(i), status=status)


def test_the_oldest_finished_sessions_go_and_running_ones_stay():
    table: dict[str, SessionInfo] = {}
    holder = SimpleNamespace(sessions=table)
    running = [_info(i, "running") for i in range(3)]
    for info in running:
        table[info.session_id] = info
    for i in range(3, 3 + FINISHED_SESSIONS + 40):
        info = _info(i, "done" if i % 2 else "failed")
        table[info.session_id] = info
        Executor._trim_sessions(holder)  # type: ignore[arg-type]
    finished = [s for s in table.values() if s.status != "running"]
    assert len(finished) == FINISHED_SESSIONS
    assert all(r.session_id in table for r in running)
    newest = [f"{i:064x}" for i in range(3 + 40, 3 + FINISHED_SESSIONS + 40)]
    assert [s.session_id for s in finished] == newest
