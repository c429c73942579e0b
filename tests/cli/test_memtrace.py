"""`TSSNODE_TRACEMALLOC`: the node's memory diagnosis (off by default; a file of the
allocations that grew, by traceback)."""

from __future__ import annotations

import tracemalloc

import pytest
import trio

from tssnode.cli import memtrace


def test_off_unless_asked_and_a_bad_value_is_refused(monkeypatch, caplog):
    monkeypatch.delenv(memtrace.ENV, raising=False)
    assert memtrace.interval() is None
    monkeypatch.setenv(memtrace.ENV, "30")
    assert memtrace.interval() == 30.0
    monkeypatch.setenv(memtrace.ENV, "0")
    assert memtrace.interval() is None
    monkeypatch.setenv(memtrace.ENV, "often")
    assert memtrace.interval() is None
    assert "is not a number of seconds" in caplog.text


@pytest.fixture
def tracing():
    was = tracemalloc.is_tracing()
    yield
    if not was:
        tracemalloc.stop()


def _grow(kept: list[bytes]) -> None:
    kept.extend(bytes(4096) + i.to_bytes(4, "big") for i in range(500))


@pytest.mark.trio
async def test_the_report_names_what_grew_by_its_traceback(tmp_path, tracing, capsys):
    kept: list[bytes] = []
    with trio.move_on_after(0.45):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(memtrace.run, tmp_path, 0.2)
            await trio.sleep(0.25)  # after the first snapshot
            _grow(kept)
    assert (tmp_path / memtrace.FIRST).is_file() and (tmp_path / memtrace.LATEST).is_file()
    assert memtrace.main([str(tmp_path)]) == 0
    text = capsys.readouterr().out
    head, grew = text.split("== grew most", 1)
    assert "traced now" in head
    first = grew.split("\n\n")[0]  # the biggest growth, with its traceback
    assert "test_memtrace.py" in first and "_grow" in first
    size = float(first.splitlines()[1].split()[0])
    assert size >= 500 * 4096 / 1024  # KiB: at least what _grow keeps
    assert len(kept) == 500


def test_the_report_needs_two_snapshots(tmp_path, capsys):
    assert memtrace.main([str(tmp_path)]) == 1
    assert "no snapshot at" in capsys.readouterr().err
    assert memtrace.main([]) == 2
