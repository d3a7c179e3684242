"""How ``bridge-cli run`` shows its counts: a refreshing table on a terminal, lines otherwise.

Output goes through :class:`Console`, which survives a closed stdout (``run | head``, an SSH
session that went away): the first failed write turns it off and records why, so ``run`` can
stop Telegraf gracefully instead of dying with Telegraf still running.
"""

from __future__ import annotations

import sys
from typing import TextIO

from telegraf_bridge.cli.run_tally import RunTally

_CLEAR_BELOW = "\x1b[J"


class Console:
    """Lines and a redrawn status table on one stream."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.interactive = self.stream.isatty()
        self.broken = False
        self._table_lines = 0

    def _write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.broken = True

    def line(self, text: str) -> None:
        """A line that stays (printed above the table on a terminal)."""
        self._erase_table()
        self._write(text + "\n")

    def table(self, lines: list[str]) -> None:
        """Replace the status table (terminal) or print it once (otherwise)."""
        self._erase_table()
        self._write("".join(f"{row}\n" for row in lines))
        if self.interactive:
            self._table_lines = len(lines)

    def _erase_table(self) -> None:
        if self._table_lines:
            self._write(f"\x1b[{self._table_lines}F{_CLEAR_BELOW}")
            self._table_lines = 0

    def done(self) -> None:
        """Leave the last table on screen; later lines go below it."""
        self._table_lines = 0


def status_table(tally: RunTally, elapsed: float) -> list[str]:
    """The live table: one row per source and per sink."""
    rows = [f"{elapsed:7.1f}s"]
    if tally.sources:
        rows.append(f"  {'source':<20} {'plugin':<12} {'points':>9} {'skipped':>8}  note")
        for src in tally.sources.values():
            note = f"held: {src.held}" if src.held else ""
            rows.append(
                f"  {src.name:<20} {src.plugin:<12} {src.points:>9} "
                f"{sum(src.skips.values()):>8}  {note}".rstrip()
            )
    rows.append(
        f"  {'sink':<20} {'type':<12} {'written':>9} {'buffered':>8} {'dropped':>8} {'errors':>7}"
    )
    for sink in tally.sinks.values():
        rows.append(
            f"  {sink.name:<20} {sink.kind:<12} {sink.total_written:>9} {sink.buffered:>8} "
            f"{sink.total_dropped:>8} {sink.errors:>7}"
        )
    return rows


def progress_line(tally: RunTally, elapsed: float) -> str:
    """One line for a log or a pipe: points written in all, and any trouble."""
    written = sum(s.total_written for s in tally.sinks.values())
    dropped = sum(s.total_dropped for s in tally.sinks.values())
    buffered = sum(s.buffered for s in tally.sinks.values())
    errors = sum(s.errors for s in tally.sinks.values())
    skipped = sum(sum(src.skips.values()) for src in tally.sources.values())
    held = [src.name for src in tally.sources.values() if src.held]
    return (
        f"{elapsed:6.1f}s  points written: {written}  buffered: {buffered}  dropped: {dropped}"
        f"  write errors: {errors}"
        + (f"  skipped: {skipped}" if skipped else "")
        + (f"  held: {', '.join(held)}" if held else "")
    )
