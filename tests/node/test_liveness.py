"""Liveness: when the ledger counts as stalled or below quorum, and what gets logged."""

from __future__ import annotations

import logging

from tssnode.node.liveness import Watchdog, assess, quorum_of


def test_quorum_is_n_minus_f():
    assert [quorum_of(n) for n in (0, 1, 3, 4, 5, 7, 10)] == [0, 1, 3, 3, 4, 5, 7]


def test_an_idle_chain_is_not_stalled_however_old_its_last_block():
    report = assess(last_block_age=3600, pending=0, view_change=False, validators=4, online=4)
    assert report.healthy and not report.stalled and report.reason is None


def test_work_without_blocks_is_a_stall_after_the_threshold():
    kw = {"pending": 3, "view_change": False, "validators": 4, "online": 4, "stall_after": 30}
    assert not assess(last_block_age=29.9, **kw).stalled
    report = assess(last_block_age=31, **kw)
    assert report.stalled and not report.healthy
    assert report.reason == "no block for 31 s with 3 requests waiting"
    vc = assess(last_block_age=31, **{**kw, "pending": 0, "view_change": True})
    assert (
        vc.stalled
        and vc.reason == "no block for 31 s with 0 requests waiting, a view change under way"
    )


def test_below_quorum_comes_first():
    report = assess(last_block_age=99, pending=1, view_change=True, validators=4, online=2)
    assert report.below_quorum and report.stalled and not report.healthy
    assert report.reason == "below quorum: 2 of 4 validators online, 3 needed"
    assert assess(last_block_age=0, pending=0, view_change=False, validators=4, online=3).healthy


def test_the_watchdog_logs_each_change_once_and_repeats_a_standing_one(caplog):
    dog = Watchdog(repeat=60)
    stalled = assess(last_block_age=40, pending=2, view_change=False, validators=4, online=4)
    fine = assess(last_block_age=0, pending=0, view_change=False, validators=4, online=4)
    lost = assess(last_block_age=0, pending=0, view_change=False, validators=4, online=1)
    with caplog.at_level(logging.INFO, logger="tssnode.node.liveness"):
        dog.observe(fine, 0, 0)
        dog.observe(stalled, 1, 2)
        dog.observe(stalled, 30, 2)  # the same stall: quiet
        dog.observe(stalled, 62, 3)  # still stalled a minute later: said again
        dog.observe(lost, 63, 3)  # another problem: said at once
        dog.observe(fine, 64, 4)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        ("WARNING", "ledger stalled (view 2): no block for 40 s with 2 requests waiting"),
        ("WARNING", "ledger stalled (view 3): no block for 40 s with 2 requests waiting"),
        (
            "WARNING",
            "ledger below quorum (view 3): below quorum: 1 of 4 validators online, 3 needed",
        ),
        ("INFO", "ledger live again (view 4); it was below quorum"),
    ]


def test_no_quorum_warning_while_a_node_is_still_starting(caplog):
    dog = Watchdog(started=100.0, grace=10.0)
    alone = assess(last_block_age=0, pending=0, view_change=False, validators=4, online=1)
    with caplog.at_level(logging.INFO, logger="tssnode.node.liveness"):
        dog.observe(alone, 105.0, 0)
        assert caplog.records == []
        dog.observe(alone, 111.0, 0)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
