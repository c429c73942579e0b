"""Shared benchmark plumbing: timing helpers and the docs/benchmarks.md section writer."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Timing:
    median: float
    p10: float
    p90: float
    runs: int

    @staticmethod
    def of(samples: list[float]) -> Timing:
        s = sorted(samples)
        q = statistics.quantiles(s, n=10) if len(s) >= 2 else [s[0]] * 9
        return Timing(statistics.median(s), q[0], q[-1], len(s))

    def ms(self) -> str:
        return f"{self.median * 1e3:.2f} ms"


def measure(fn: Callable[[], object], *, runs: int = 10, warmup: int = 1) -> Timing:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return Timing.of(samples)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_section(path: Path, name: str, body: str, command: str) -> None:
    """Replace (or append) this benchmark's section of the results file."""
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    section = (
        f"<!-- bench:{name} -->\n"
        f"## {name}\n\n"
        f"`{command}` — {stamp}, commit {git_revision()}, {machine()}\n\n"
        f"{body.strip()}\n"
        f"<!-- /bench:{name} -->"
    )
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmark results\n\nWritten by `tssnode bench`; never edited by hand.\n"
    )
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")
