"""Knowing which emitted data Telegraf has surely taken, so state never runs ahead of it.

execd has no acknowledgement: a line is "delivered" once our ``write`` returns, yet it may sit
in the pipe (up to 64 KiB) or in Telegraf's reader and channels when Telegraf is SIGKILLed. A
source that saved its read position at write time would then lose those lines. The tracker
instead commits a position only when

1. Telegraf has read the bytes from the pipe (``FIONREAD`` on our stdout says how many bytes
   are still unread), and
2. ``commit_delay`` has passed since then, the margin for Telegraf to move what it read into
   its disk buffer (a bounded amount: one 64 KiB reader buffer and a 100-metric channel).

Everything after the committed position is replayed after a restart. Replays are byte-identical
points, which InfluxDB stores once, so the cost of a conservative margin is duplicates in the
buffer, never loss.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

M = TypeVar("M")


class ConsumptionSource(Protocol):
    """What the tracker needs from the writer."""

    bytes_written: int

    def unread_bytes(self) -> int:
        """Bytes written but not yet read by the other end (0 when unknown)."""


class DeliveryTracker(Generic[M]):
    """Turns "written" markers into "committed" ones; see the module docstring."""

    def __init__(
        self,
        writer: ConsumptionSource,
        commit_delay_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_pending: int = 100_000,
    ) -> None:
        self._writer = writer
        self.commit_delay_s = commit_delay_s
        self._clock = clock
        self._written: deque[tuple[int, M]] = deque()
        self._consumed: deque[tuple[float, M]] = deque()
        self._max_pending = max_pending
        self.committed: M | None = None

    def record(self, marker: M) -> None:
        """Note that everything up to ``marker`` has just been written."""
        self._written.append((self._writer.bytes_written, marker))
        if len(self._written) > self._max_pending:
            # Keep memory bounded: dropping the oldest uncommitted marker only makes the
            # commit more conservative (a later marker will cover it).
            self._written.popleft()

    def consumed_bytes(self) -> int:
        """Bytes Telegraf has read from us so far."""
        return self._writer.bytes_written - self._writer.unread_bytes()

    def advance(self) -> M | None:
        """Move markers along; returns the newest committed marker (or None)."""
        now = self._clock()
        consumed = self.consumed_bytes()
        while self._written and self._written[0][0] <= consumed:
            _, marker = self._written.popleft()
            self._consumed.append((now, marker))
        while self._consumed and now - self._consumed[0][0] >= self.commit_delay_s:
            _, self.committed = self._consumed.popleft()
        return self.committed

    def pending(self) -> int:
        """Markers not committed yet."""
        return len(self._written) + len(self._consumed)
