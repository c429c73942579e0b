"""Logging set-up for `tssnode run`: readable text or one JSON object a line.

Context travels in the standard `extra=` of a log call; these keys are known and, when
present, become fields of the JSON record (and a `[key=value …]` suffix of a text line):
`ssid` (session id, hex), `phase`, `round`, `height`, `view`, `peer`, `request`, `key_id`.
No other attribute of a record is emitted, so nothing a caller attaches by accident
(an object holding a share, say) can reach the log.

    log.info("session done", extra={"ssid": ssid.hex(), "phase": "sign", "round": 1})
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

#: `extra=` keys that become fields of a record.
CONTEXT = ("ssid", "phase", "round", "height", "view", "peer", "request", "key_id")
FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    return {k: getattr(record, k) for k in CONTEXT if getattr(record, k, None) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, context."""

    @staticmethod
    def converter(secs: float | None = None) -> time.struct_time:
        return time.gmtime(secs)  # timestamps in UTC

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context_of(record),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The usual line, with the context appended: `… [ssid=ab12 phase=sign round=1]`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx = context_of(record)
        if not ctx:
            return line
        return line + " [" + " ".join(f"{k}={v}" for k, v in ctx.items()) + "]"


def setup(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once: `level` one of `LEVELS`, `fmt` one of `FORMATS`
    (`ValueError` otherwise). Replaces any handler set before."""
    if level.upper() not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
