"""Telegraf's log as ``bridge-cli run`` reads it: new lines as they are written, parsed, grouped.

A ``W!`` or ``E!`` line in a log nobody reads is a silent drop, so ``run`` puts each on its
console. Repeats are grouped by the message with its numbers blanked out (``occurrence 10``
and ``occurrence 100`` are the same warning), shown once and counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# "2026-12-07T06:00:13Z E! [outputs.influxdb::cloud] message"; the plugin part is optional.
_LINE = re.compile(
    r"^(?P<time>\S+)\s+(?P<level>[EWID])!\s+(?:\[(?P<plugin>[^\]]+)\]\s+)?(?P<message>.*)$"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Some plugins repeat the level and plugin inside their message ("E! [outputs.influxdb] ...").
_INNER_PREFIX = re.compile(r"^[EWID]! \[[^\]]+\] ")


@dataclass(frozen=True)
class LogLine:
    """One parsed line of Telegraf's log."""

    level: str  # "E", "W", "I" or "D"
    plugin: str  # e.g. "outputs.influxdb::cloud", "agent", or "" for none
    message: str
    text: str  # the line as written, without its time stamp

    @property
    def alias(self) -> str:
        """The plugin instance's alias (a source or sink name), or ""."""
        return self.plugin.partition("::")[2]

    @property
    def kind(self) -> str:
        """The plugin type without the alias, e.g. ``outputs.influxdb``."""
        return self.plugin.partition("::")[0]


def parse_line(raw: str) -> LogLine | None:
    """A log line, or None for a line that is not one of Telegraf's (a continuation)."""
    match = _LINE.match(raw.rstrip("\r\n"))
    if not match:
        return None
    plugin = match["plugin"] or ""
    message = _INNER_PREFIX.sub("", match["message"])
    text = f"{match['level']}! " + (f"[{plugin}] " if plugin else "") + message
    return LogLine(match["level"], plugin, message, text)


class LogFollower:
    """Returns the lines appended to a file since the last call; never re-reads old bytes.

    A partial last line is kept until its newline arrives, so a message is never split.
    """

    def __init__(self, path: Path, *, from_end: bool = True) -> None:
        self.path = path
        self._offset = path.stat().st_size if from_end and path.exists() else 0
        self._partial = b""

    def new_lines(self) -> list[str]:
        """Complete lines written since the previous call."""
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, 2)
                if size < self._offset:  # truncated or replaced: start again
                    self._offset, self._partial = 0, b""
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete]


@dataclass
class Repeated:
    """One warning or error with how often it was seen."""

    first: LogLine
    count: int = 1


@dataclass
class LogDigest:
    """``W!`` and ``E!`` lines grouped by their shape; ``add`` says whether a line is new."""

    groups: dict[str, Repeated] = field(default_factory=dict)

    @staticmethod
    def key(line: LogLine) -> str:
        """Lines that differ only in their numbers are one group."""
        return _NUMBER.sub("#", f"{line.level} {line.plugin} {line.message}")

    def add(self, line: LogLine) -> bool:
        """Count ``line``; True when its group is new (print it now)."""
        key = self.key(line)
        group = self.groups.get(key)
        if group is None:
            self.groups[key] = Repeated(line)
            return True
        group.count += 1
        return False
