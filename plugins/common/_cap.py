"""The disk-buffer cap: Telegraf's disk buffer plus every plugin's journal, against one limit.

Telegraf does not cap its disk buffer, and the journals (:mod:`._journal`) hold what Telegraf
has not taken yet, so ``agent.buffer_max_size_mb`` is enforced here, by the sources: each one
measures the same total (the buffer directory, every ``*.journal`` directory in the state
directory, and what is still in its own pipe to Telegraf) and follows its own rule at the cap
(ndjson_tail waits, HTTP answers 503, live sources hold their data in the journal and drop
its oldest entries).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

# A WAL entry takes up to about four times its line-protocol size (gob encoding): bytes still
# in the pipe to Telegraf are counted that way, since they will land in the WAL.
WAL_BYTES_PER_LP_BYTE = 4
JOURNAL_SUFFIX = ".journal"
# Live sources stop handing data to Telegraf at this share of the cap, so their journals have
# the rest to keep their newest data in (dropping the oldest) without passing the cap.
HOLD_SHARE = 15 / 16


def directory_size(path: Path) -> int:
    """Total size of the files below ``path`` (0 when it does not exist)."""
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


def journals_size(state_dir: Path) -> int:
    """Bytes held by every plugin's journal in ``state_dir``."""
    try:
        names = [p for p in state_dir.iterdir() if p.name.endswith(JOURNAL_SUFFIX)]
    except OSError:
        return 0
    return sum(directory_size(p) for p in names)


class BufferCap:
    """Measures buffer + journals (+ bytes in flight) against ``cap_bytes``; 0 means no cap.

    Measuring is a directory scan, so :meth:`used` caches it for ``every_s``.
    """

    def __init__(
        self,
        cap_bytes: int,
        buffer_dir: Path | None,
        state_dir: Path | None,
        *,
        in_flight: Callable[[], int] = lambda: 0,
        every_s: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cap_bytes = cap_bytes if buffer_dir is not None else 0
        self.buffer_dir = buffer_dir
        self.state_dir = state_dir
        self._in_flight = in_flight
        self._every_s = every_s
        self._monotonic = monotonic
        self._measured = 0
        self._at = float("-inf")

    @property
    def enabled(self) -> bool:
        """Whether a cap applies."""
        return self.cap_bytes > 0

    def used(self, *, fresh: bool = False) -> int:
        """Bytes counted against the cap."""
        if not self.enabled or self.buffer_dir is None:
            return 0
        now = self._monotonic()
        if fresh or now - self._at >= self._every_s:
            self._measured = directory_size(self.buffer_dir) + (
                journals_size(self.state_dir) if self.state_dir is not None else 0
            )
            self._at = now
        return self._measured + WAL_BYTES_PER_LP_BYTE * self._in_flight()
