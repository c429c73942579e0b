"""`tssnode bench console` runs end to end for a second (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tssnode.bench.console import main


def test_bench_console_writes_its_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "benchmarks.md"
    assert main(["--duration", "1", "--press-every", "0.1", "--write", str(out)]) == 0
    text = out.read_text()
    assert "<!-- bench:console -->" in text and "tssnode bench console --duration 1" in text
    printed = capsys.readouterr().out
    assert "| input latency (key 1…7 → screen shown) | p50 " in printed
    assert "| kept at the end | " in printed
