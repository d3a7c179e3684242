"""Pulse counts per fixed window, closed in time order, for the meter and tier rows.

Why counts and not points: a window row is a pure function of the pulses in it (count, energy,
mean power, stamped at the window's start), so a replay of the same pulses writes the same
bytes, and InfluxDB overwrites rather than duplicates. Windows are aligned to the Unix epoch,
so every process, and InfluxDB's own GROUP BY time(), agree where they start.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

NS = 1_000_000_000
# Closed windows kept per channel so a pulse that arrives late can still correct its window.
KEEP_CLOSED = 3
# Bound on zero rows made in one call (a clock jump must not flood the output).
MAX_EMPTY_ROWS = 1000


@dataclass
class ClosedWindow:
    """A window that has been emitted, with what it counted."""

    start_ns: int
    pulses: int
    pulses_total: int


@dataclass
class ChannelWindows:
    """One channel's open windows and the running totals of the closed ones."""

    open: dict[int, int] = field(default_factory=dict)
    closed: deque[ClosedWindow] = field(default_factory=lambda: deque(maxlen=KEEP_CLOSED))
    last_closed_start: int | None = None


@dataclass(frozen=True)
class WindowRow:
    """One finished (or corrected) window of one channel."""

    channel: str
    start_ns: int
    pulses: int
    pulses_total: int


class WindowCounter:
    """Counts pulses per ``window_ns`` for each channel; closes windows after ``grace_ns``.

    ``pulses_total`` of a row is the channel's cumulative count at the end of that window:
    the persisted total of everything closed before it plus its own count, so it does not
    depend on how the pulses were batched.
    """

    def __init__(self, window_ns: int, grace_ns: int, channels: list[str]) -> None:
        if window_ns <= 0:
            raise ValueError("window must be positive")
        self.window_ns = window_ns
        self.grace_ns = grace_ns
        self.channels = {name: ChannelWindows() for name in channels}
        self.totals = dict.fromkeys(channels, 0)
        # Pulses older than the closed windows kept: in the raw points, not in any window row.
        self.late_dropped = dict.fromkeys(channels, 0)

    def window_of(self, t_ns: int) -> int:
        """The start of the window holding ``t_ns``."""
        return t_ns - t_ns % self.window_ns

    def add(self, channel: str, t_ns: int) -> WindowRow | None:
        """Count one pulse; returns a corrected row when it falls in a closed window."""
        state = self.channels[channel]
        start = self.window_of(t_ns)
        if state.last_closed_start is None or start > state.last_closed_start:
            state.open[start] = state.open.get(start, 0) + 1
            return None
        for closed in state.closed:
            if closed.start_ns == start:
                closed.pulses += 1
                self.totals[channel] += 1
                for later in state.closed:
                    if later.start_ns >= start:
                        later.pulses_total += 1
                return WindowRow(channel, start, closed.pulses, closed.pulses_total)
        self.late_dropped[channel] += 1
        return None

    def close_due(self, now_ns: int, since_ns: int) -> list[WindowRow]:
        """Close, in time order, every window whose end plus grace has passed.

        Whole windows without a pulse since ``since_ns`` (when this process started counting)
        get a row with zero pulses, so a quiet meter reads 0 W rather than nothing; windows
        from before the process started are only closed when they hold restored pulses.
        """
        rows: list[WindowRow] = []
        horizon = now_ns - self.grace_ns
        first_full = self.window_of(since_ns)
        if first_full < since_ns:
            first_full += self.window_ns
        for name, state in self.channels.items():
            due = {s for s in state.open if s + self.window_ns <= horizon}
            start = first_full
            if state.last_closed_start is not None:
                start = max(start, state.last_closed_start + self.window_ns)
            empties = 0
            while start + self.window_ns <= horizon and empties < MAX_EMPTY_ROWS:
                due.add(start)
                start += self.window_ns
                empties += 1
            for window in sorted(due):
                rows.append(self._close(name, state, window, state.open.pop(window, 0)))
        return rows

    def _close(self, name: str, state: ChannelWindows, start: int, pulses: int) -> WindowRow:
        self.totals[name] += pulses
        state.last_closed_start = start
        state.closed.append(ClosedWindow(start, pulses, self.totals[name]))
        return WindowRow(name, start, pulses, self.totals[name])

    # -- persistence ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Open windows, totals and the last closed window of every channel."""
        return {
            name: {
                "total": self.totals[name],
                "open": [[start, count] for start, count in sorted(state.open.items())],
                "last_closed": state.last_closed_start,
            }
            for name, state in self.channels.items()
        }

    def restore(self, doc: object) -> list[str]:
        """Load what :meth:`to_json` saved; returns problems (the affected channel starts empty)."""
        problems: list[str] = []
        if not isinstance(doc, dict):
            return ["window state is not a mapping"] if doc is not None else []
        for name, saved in doc.items():
            if name not in self.channels:
                continue  # a channel removed from the config
            try:
                total = int(saved["total"])
                opened = {int(s): int(c) for s, c in saved["open"]}
                last = saved.get("last_closed")
                last_closed = None if last is None else int(last)
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"channel {name}: {exc!r}")
                continue
            if total < 0 or any(c < 0 for c in opened.values()):
                problems.append(f"channel {name}: negative count")
                continue
            self.totals[name] = total
            self.channels[name].open = {s: c for s, c in opened.items() if s % self.window_ns == 0}
            self.channels[name].last_closed_start = last_closed
        return problems
