"""Logging to stderr in the form Telegraf's execd input understands.

Telegraf reads each stderr line of an execd plugin and logs it at the level given by its prefix
(``E! ``, ``W! ``, ``I! ``, ``D! ``); it reads lines of at most 64 KiB. A log line therefore must
be one physical line, short, and carry its prefix.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TextIO

MAX_LINE_CHARS = 1000

_PREFIXES = {
    logging.DEBUG: "D! ",
    logging.INFO: "I! ",
    logging.WARNING: "W! ",
    logging.ERROR: "E! ",
    logging.CRITICAL: "E! ",
}


def one_line(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """Fold a message onto one line and cut it to ``limit`` characters."""
    flat = text.replace("\r\n", " | ").replace("\n", " | ").replace("\r", " | ")
    if len(flat) > limit:
        flat = flat[: limit - 15] + " ...[truncated]"
    return flat


class TelegrafFormatter(logging.Formatter):
    """Prefix each record with its Telegraf level marker and keep it on one line."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            exc = record.exc_info[1]
            message = f"{message}: {type(exc).__name__}: {exc}"
        prefix = _PREFIXES.get(record.levelno, "I! ")
        return prefix + one_line(f"[{record.name}] {message}")


def setup_logging(*, debug: bool = False, stream: TextIO | None = None) -> None:
    """Route the root logger to stderr with Telegraf prefixes; idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_telegraf_bridge", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(TelegrafFormatter())
    handler._telegraf_bridge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)


class ChangeLogger:
    """Log a condition once when it starts and once when it ends, never in between.

    A device asleep at night or a link that is down for hours must produce two log lines, not
    an error storm.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._active: dict[str, bool] = {}
        self._lock = threading.Lock()

    def problem(self, key: str, message: str, level: int = logging.WARNING) -> bool:
        """Report that ``key`` is failing; logs only on the first report. True if logged."""
        with self._lock:
            if self._active.get(key):
                return False
            self._active[key] = True
        self._logger.log(level, message)
        return True

    def recovered(self, key: str, message: str) -> bool:
        """Report that ``key`` works again; logs only if it was failing. True if logged."""
        with self._lock:
            if not self._active.get(key):
                return False
            self._active[key] = False
        self._logger.info(message)
        return True
