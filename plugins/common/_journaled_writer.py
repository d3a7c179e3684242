"""The writer for sources that cannot read their data again: journal first, then Telegraf.

Every batch is appended to the source's :class:`Journal` before it is written to stdout, and
retired by the delivery rule of :mod:`._delivery` (Telegraf has read the bytes, and
``commit_delay`` has passed). A background thread (the keeper) retires, fsyncs at
``sync_interval`` (the power-cut exposure window of sources that acknowledge nothing), writes
again what an earlier run left, and applies the cap.

At the cap (:mod:`._cap`) a live source stops handing data to Telegraf: new batches stay in the
journal, in order, and go out when the sinks have drained the buffer. Past the cap the oldest
unsent entries are dropped, counted, and reported with a ``W!`` line and in the status file.

Sources that acknowledge to someone (the HTTP listener) pass ``durable=True``: the call
returns only once the batch is fsynced, and concurrent callers share one fsync.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO

from telegraf_bridge.plugins.common._cap import HOLD_SHARE, BufferCap
from telegraf_bridge.plugins.common._delivery import DeliveryTracker
from telegraf_bridge.plugins.common._journal import DEFAULT_SEGMENT_BYTES, Entry, Journal
from telegraf_bridge.plugins.common._lineprotocol import (
    LineProtocolSerializer,
    Point,
    worth_logging_between,
)
from telegraf_bridge.plugins.common._log import ChangeLogger
from telegraf_bridge.plugins.common._runner import LineWriter

log = logging.getLogger("telegraf_bridge.journal")

DEFAULT_COMMIT_DELAY_S = 30.0
DEFAULT_SYNC_INTERVAL_S = 5.0
TICK_S = 0.2
# Bytes of old entries written per keeper tick, so a long replay lets new data queue behind it
# without holding the writer's lock for long.
SEND_PER_TICK = 1 << 20
MIN_SEGMENT_BYTES = 16 * 1024


def segment_bytes_for(cap_bytes: int) -> int:
    """Segments small against the cap (a dropped entry frees its space with its segment)."""
    if cap_bytes <= 0:
        return DEFAULT_SEGMENT_BYTES
    return max(MIN_SEGMENT_BYTES, min(DEFAULT_SEGMENT_BYTES, cap_bytes // 64))


class JournaledWriter(LineWriter):
    """A :class:`LineWriter` that journals every batch; see the module docstring."""

    journaled = True

    def __init__(
        self,
        stream: BinaryIO,
        serializer: LineProtocolSerializer,
        journal: Journal,
        *,
        commit_delay_s: float = DEFAULT_COMMIT_DELAY_S,
        sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S,
        cap: BufferCap | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(stream, serializer)
        self.journal = journal
        self.tracker: DeliveryTracker[int] = DeliveryTracker(self, commit_delay_s)
        self.sync_interval_s = sync_interval_s
        self.cap = cap or BufferCap(0, None, None)
        self._monotonic = monotonic
        self._unsent: deque[Entry] = deque()
        self.holding = False
        self.output_gone = False
        self._last_sync = monotonic()
        self._logged_drops = 0
        self._changes = ChangeLogger(log)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- start and stop ----------------------------------------------------------------------

    def open(self) -> bytes:
        """Open the journal; returns the source's newest checkpoint (``b""`` if none).

        What an earlier run left is queued to be written again before any new batch.
        """
        left = self.journal.open()
        self._unsent.extend(left)
        if left:
            log.info(
                "journal %s: writing again %d batch(es), %d point(s), that an earlier run "
                "handed to Telegraf without knowing it had them stored",
                self.journal.directory,
                len(left),
                sum(e.lines for e in left),
            )
        return self.journal.meta

    def start(self) -> None:
        """Start the keeper thread (after one look at the cap, so the first batch obeys it)."""
        with self._lock:
            self._apply_cap()
        self._thread = threading.Thread(target=self._keep, name="journal", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the keeper, retire what is safe, fsync; unretired entries stay for next time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._retire()
            self.journal.close()

    # -- writing -----------------------------------------------------------------------------

    def write_points(
        self, points: Iterable[Point], *, meta: bytes = b"", durable: bool = False
    ) -> int:
        """Journal, then write ``points``; returns how many lines were taken.

        ``meta`` is the source's checkpoint after these points. With ``durable`` the call
        returns once the batch is fsynced, even if Telegraf has gone (it is written again at
        the next start). Otherwise a vanished Telegraf raises BrokenPipeError, after the batch
        is safe in the journal.
        """
        return self.write_lines(self.serializer.lines(points), meta=meta, durable=durable)

    def write_lines(self, lines: Sequence[str], *, meta: bytes = b"", durable: bool = False) -> int:
        """Journal, then write lines the serializer made; as :meth:`write_points`."""
        if not lines:
            return 0
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        with self._lock:
            try:
                entry = self.journal.append(payload, meta)
            except OSError as exc:
                if durable:
                    raise  # nothing was promised yet: the client keeps its data
                # The disk failed: Telegraf still gets the batch, only without the journal's
                # protection, which the log says (a live source has no other copy).
                self._changes.problem(
                    "append", f"cannot journal to {self.journal.directory} ({exc}); writing on"
                )
                self._unjournaled(payload, len(lines))
                return len(lines)
            self._changes.recovered("append", f"journaling to {self.journal.directory} again")
            if self._unsent or self.holding or self.output_gone or not self._send(entry, payload):
                self._unsent.append(entry)
        if durable:
            self.journal.sync_through(entry.seq)
        elif self.output_gone:
            raise BrokenPipeError("Telegraf has gone away; the batch is kept in the journal")
        return len(lines)

    def _send_unsent(self, budget: int) -> None:
        """Write queued entries in order, up to about ``budget`` bytes (lock held)."""
        sent = 0
        while self._unsent and sent < budget and not self.output_gone:
            entry = self._unsent[0]
            if not self._send(entry, self.journal.read(entry)):
                return
            self._unsent.popleft()
            sent += entry.size

    def _unjournaled(self, payload: bytes, lines: int) -> None:
        """Write a batch the journal could not take (lock held); raises if Telegraf is gone."""
        self._stream.write(payload)
        self._stream.flush()
        self.points_written += lines
        self.bytes_written += len(payload)

    def _send(self, entry: Entry, payload: bytes) -> bool:
        """Write one entry to Telegraf (lock held); False when Telegraf has gone."""
        try:
            self._stream.write(payload)
            self._stream.flush()
        except (OSError, ValueError):
            self.output_gone = True
            return False
        self.points_written += entry.lines
        self.bytes_written += len(payload)
        self.tracker.record(entry.seq)
        return True

    # -- the keeper --------------------------------------------------------------------------

    def _keep(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except Exception:
                # The keeper must outlive a bad moment (a full disk): log and go on.
                log.exception("journal %s: keeping failed; retrying", self.journal.directory)
                self._stop.wait(1.0)

    def tick(self) -> None:
        """One round of the keeper: retire, cap, send, fsync when due."""
        with self._lock:
            self._retire()
            self._apply_cap()
            if not self.holding:
                self._send_unsent(SEND_PER_TICK)
        now = self._monotonic()
        if now - self._last_sync >= self.sync_interval_s and self.journal.unsynced():
            self.journal.sync()
            self._last_sync = now

    def _retire(self) -> None:
        committed = self.tracker.advance()
        if committed is not None:
            self.journal.retire(committed)

    def _apply_cap(self) -> None:
        cap = self.cap
        if not cap.enabled:
            return
        used = cap.used()
        was = self.holding
        self.holding = used >= cap.cap_bytes * HOLD_SHARE
        if self.holding and not was:
            self._changes.problem(
                "cap",
                f"the disk buffer and journals hold {used / 2**20:.1f} MiB, near the cap of "
                f"{cap.cap_bytes / 2**20:.1f} MiB (agent.buffer_max_size_mb): new data waits in "
                f"the journal {self.journal.directory}; at the cap its oldest entries are dropped",
            )
        elif was and not self.holding:
            self._changes.recovered(
                "cap", f"below the cap again ({used / 2**20:.1f} MiB): handing the journal on"
            )
        before = self.journal.stats.dropped_lines
        while self._unsent and used >= cap.cap_bytes and len(self._unsent) > 1:
            entry = self._unsent.popleft()
            self.journal.drop(entry)
            # Counted as freed now; the disk space follows when its segment is deleted, so the
            # journal passes the cap by at most one segment (see segment_bytes_for).
            used -= entry.frame_bytes
        dropped = self.journal.stats.dropped_lines
        if dropped != before and worth_logging_between(self._logged_drops, dropped):
            log.warning(
                "journal %s at the cap of %.1f MiB (agent.buffer_max_size_mb): %d point(s) "
                "dropped so far, oldest first, to keep the newest; the sinks are not draining "
                "the buffer (see `bridge-cli run`), or raise agent.buffer_max_size_mb",
                self.journal.directory,
                cap.cap_bytes / 2**20,
                dropped,
            )
            self._logged_drops = dropped

    # -- figures -----------------------------------------------------------------------------

    def journal_status(self) -> dict[str, int | float | bool]:
        """The journal's figures for the status file and status points."""
        with self._lock:
            stats = self.journal.stats
            return {
                "entries": len(self.journal.entries),
                "bytes": self.journal.size_bytes(),
                "oldest_age_s": round(self.journal.oldest_age_s(), 3),
                "replayed": stats.replayed,
                "dropped": stats.dropped_lines,
                "torn": stats.torn,
                "holding": self.holding,
                # What the journal costs the SD card since start (docs/delivery.md).
                "appended": stats.appended,
                "bytes_written": stats.bytes_written,
                "fsyncs": stats.fsyncs,
            }
