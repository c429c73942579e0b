"""`tssnode bench ledger` runs end to end with tiny parameters (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tssnode.bench.ledger import main


def test_bench_ledger_writes_its_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "benchmarks.md"
    assert main(["--latency-runs", "2", "--burst", "8", "--write", str(out)]) == 0
    text = out.read_text()
    assert "<!-- bench:ledger -->" in text and "leveldb store" in text
    assert "| setup |" in capsys.readouterr().out
