"""Route py-libp2p's logging into ours, and keep the library from writing to stderr.

py-libp2p configures its `libp2p` logger at import time: no handlers and
`propagate = False`, so its warnings would reach Python's last-resort handler, which
prints to stderr. The bridge replaces that with one handler that re-emits each record, at
or above the chosen level, on our logger `tssnode.net.libp2p.<module>` (the record's
`libp2p_name` attribute keeps the original name). From there records go wherever the
application sends `tssnode` logs. A `NullHandler` on `tssnode.net.libp2p` means that with
no logging configured at all the records are dropped instead of reaching stderr.

The `multiaddr` package (used by libp2p) is bridged the same way.

One py-libp2p module, `libp2p.network.connection.swarm_connection`, logs through the
module-level `logging.debug()`/`logging.warning()` functions, i.e. the root logger; when
the root logger has no handler those functions call `logging.basicConfig()`, which installs
a stderr handler for the whole process the first time a connection closes. The bridge
points that module's `logging` name at a namespace whose functions log to the module's own
`libp2p.…` logger instead, so those records are bridged like all others.
"""

from __future__ import annotations

import importlib
import logging
import types

TARGET = "tssnode.net.libp2p"
SOURCES = ("libp2p", "multiaddr")


#: Library records that report events our own code expects and handles (a redial that
#: fails, a stream to a frozen peer that times out) are passed on at DEBUG, not ERROR:
#: (logger name, message prefix).
DEMOTED = (
    ("libp2p.transport.tcp.tcp", "Failed to open TCP stream"),
    ("libp2p.host.basic_host", "Failed to open stream to peer"),
    # a frame for a stream that one side just reset (a timeout, a refused stream)
    ("libp2p.stream_muxer.mplex.mplex", "Received message for non-existent stream"),
    ("libp2p.stream_muxer.mplex.mplex", "Received data from remote after stream was closed"),
    # a stream opened on a connection that is going away (a dropped or frozen peer)
    ("libp2p.protocol_muxer.multiselect_client", "MultiselectClient handshake: write failed"),
    ("libp2p.protocol_muxer.multiselect_client", "MultiselectClient handshake: read failed"),
)


class _Bridge(logging.Handler):
    """Re-emit a library record on the matching `tssnode.net.libp2p.*` logger."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            original = record.name
            if record.levelno > logging.DEBUG and any(
                original == name and str(record.msg).startswith(prefix) for name, prefix in DEMOTED
            ):
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
                if self.level > logging.DEBUG:
                    return
            suffix = original.split(".", 1)[1] if original.startswith("libp2p.") else original
            target = logging.getLogger(f"{TARGET}.{suffix}" if suffix != "libp2p" else TARGET)
            record.libp2p_name = original
            record.name = target.name
            if target.isEnabledFor(record.levelno):
                target.handle(record)
        except Exception:  # a logging failure must never reach the library's code path
            self.handleError(record)


_bridge: _Bridge | None = None

#: Modules of py-libp2p that log through the root logger's module-level functions.
ROOT_LOGGING_MODULES = ("libp2p.network.connection.swarm_connection",)


def _module_logging(name: str) -> types.SimpleNamespace:
    """Stand-in for the `logging` module inside `name`: same functions, own logger."""
    logger = logging.getLogger(name)
    return types.SimpleNamespace(
        debug=logger.debug,
        info=logger.info,
        warning=logger.warning,
        error=logger.error,
        exception=logger.exception,
        critical=logger.critical,
        log=logger.log,
        getLogger=logging.getLogger,
        DEBUG=logging.DEBUG,
        INFO=logging.INFO,
        WARNING=logging.WARNING,
        ERROR=logging.ERROR,
    )


def _reroute_root_logging() -> None:
    for name in ROOT_LOGGING_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "logging", None) is logging:
            module.logging = _module_logging(name)  # type: ignore[attr-defined]


def install(level: int | str = logging.WARNING) -> None:
    """Install (or re-level) the bridge; idempotent and safe to call from every node."""
    global _bridge
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
        if not isinstance(level, int):
            raise ValueError(f"unknown log level {level!r}")
    if _bridge is None:
        _bridge = _Bridge()
        logging.getLogger(TARGET).addHandler(logging.NullHandler())
    _bridge.setLevel(level)
    _reroute_root_logging()
    for name in SOURCES:
        source = logging.getLogger(name)
        for handler in list(source.handlers):
            if handler is not _bridge:
                source.removeHandler(handler)
        if _bridge not in source.handlers:
            source.addHandler(_bridge)
        source.propagate = False
        source.setLevel(level)


def installed_level() -> int | None:
    """The bridge's current level, or None when it is not installed."""
    return None if _bridge is None else _bridge.level
