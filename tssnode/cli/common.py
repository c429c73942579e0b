"""What the commands share: the error a command prints before it exits, and output for
people (values, ids, durations and times spelled out, aligned label/value lines and
tables, one JSON document, a progress line on a terminal)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from typing import IO, Any


class CommandError(Exception):
    """What a command prints (after `tssnode COMMAND: `) before it exits with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


# -- readable output ------------------------------------------------------------------------


def fmt(value: Any) -> str:
    """A value for people: `-` for nothing, yes/no, numbers without noise, lists and
    mappings spelled out (never Python's or JSON's notation)."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.3f}".rstrip("0")
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            text = fmt(v)
            parts.append(f"{k} ({text})" if isinstance(v, dict) and v else f"{k} {text}")
        return ", ".join(parts)
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def short(text: Any, head: int = 8, tail: int = 6) -> str:
    """`12D3KooW…dJd4bQ`: enough of an id to tell it apart."""
    if text is None or text == "":
        return "-"
    s = str(text)
    return s if len(s) <= head + tail + 1 else f"{s[:head]}…{s[-tail:]}"


def head(text: Any, n: int = 12) -> str:
    """The first `n` characters of an id (`4196784fadc0…`)."""
    s = fmt(text)
    return s if len(s) <= n else s[:n] + "…"


def duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"


def ago(seconds: Any) -> str:
    text = duration(seconds)
    return text if text == "-" else f"{text} ago"


def when(unix: Any) -> str:
    if not isinstance(unix, int | float) or isinstance(unix, bool):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix))


Row = tuple[str, str | list[str]]


def kv(rows: Sequence[Row]) -> str:
    """Label/value lines, aligned; a list value takes one line per item."""
    width = max((len(label) for label, _ in rows), default=0) + 2
    out = []
    for label, value in rows:
        items = value if isinstance(value, list) else [value]
        items = items or ["-"]
        out.append(f"{label:{width}}{items[0]}".rstrip())
        out += [f"{'':{width}}{item}".rstrip() for item in items[1:]]
    return "\n".join(out)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Columns aligned under their headers (those in `right` aligned right)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


class Progress:
    """One line on stderr that rewrites itself while a command waits, and disappears
    before the result is printed. Silent unless stderr is a terminal, so that nothing
    but the result reaches a pipe, a file or a log."""

    FRAMES = "|/-\\"

    def __init__(self, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.start = time.monotonic()
        self.frame = 0
        self.shown = False

    def update(self, text: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        line = f"{self.FRAMES[self.frame % len(self.FRAMES)]} {text} ({elapsed:.0f} s)"
        self.frame += 1
        width = shutil.get_terminal_size((100, 24)).columns - 1
        if len(line) > width:
            line = line[: width - 1] + "…"
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False
