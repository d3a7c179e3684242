"""A per-source journal on disk: every batch a plugin hands to Telegraf, until Telegraf has it.

Why: execd has no acknowledgement. A batch written to stdout may still sit in the pipe or in
Telegraf's channels when Telegraf (or the whole device) dies, and a live source (a meter, a bus,
an HTTP client that was told "stored") cannot produce it again. So each batch is appended here
first and kept until the delivery rule (:mod:`._delivery`) says Telegraf has it in its own disk
buffer; on start, whatever is still here is written again, byte for byte.

Layout: ``<directory>/<first seq:020d>.seg``, append-only segment files of framed entries::

    magic "TBJ1" | seq u64 | created_ns i64 | payload_len u32 | meta_len u32 | crc32 u32
    payload (line protocol) | meta (the source's own checkpoint, may be empty)

The CRC covers the header fields before it and both bodies, so a torn tail after a power cut
(a half-written header or body) is detected: it is cut off, counted and logged, never replayed.
A segment is deleted once every entry in it is retired; deleting whole files is the only way
the journal shrinks, so nothing is ever rewritten in place.

``meta`` lets a source keep a checkpoint of its own state in the same write as the points it
produced (gpio_pulse keeps its window counters there), so the two cannot disagree after a crash.
A new segment starts with the latest checkpoint, so deleting old segments never loses it.

Not thread-safe on its own: :class:`JournaledWriter` serialises access, except
:meth:`sync_through`, which is built for concurrent callers (group commit).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("telegraf_bridge.journal")

MAGIC = b"TBJ1"
_HEADER = struct.Struct("<4sQqIII")
HEADER_BYTES = _HEADER.size
SEGMENT_SUFFIX = ".seg"
LOCK_NAME = "lock"
DEFAULT_SEGMENT_BYTES = 256 * 1024
# An entry larger than this is not a real entry but a corrupt length field.
MAX_ENTRY_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class Entry:
    """Where one entry lives; the payload stays on disk until it is sent.

    Slotted: a journal held at the cap can index a hundred thousand entries on a 512 MB Pi.
    """

    seq: int
    created_ns: int
    segment: Path
    offset: int  # of the payload, in the segment
    size: int  # payload bytes
    meta_size: int
    lines: int  # points in the payload (one line each)

    @property
    def frame_bytes(self) -> int:
        """Bytes the entry takes on disk."""
        return HEADER_BYTES + self.size + self.meta_size


@dataclass
class JournalStats:
    """Counters for the status file and the status points."""

    appended: int = 0
    replayed: int = 0  # entries found at start and written again
    dropped: int = 0  # entries dropped at the cap (oldest first)
    dropped_lines: int = 0
    torn: int = 0  # corrupt or half-written tails cut off at start
    torn_bytes: int = 0
    fsyncs: int = 0
    bytes_written: int = 0


def encode(seq: int, created_ns: int, payload: bytes, meta: bytes = b"") -> bytes:
    """One framed entry."""
    body = struct.pack("<Qq", seq, created_ns) + payload + meta
    crc = zlib.crc32(struct.pack("<II", len(payload), len(meta)), zlib.crc32(body))
    return _HEADER.pack(MAGIC, seq, created_ns, len(payload), len(meta), crc) + payload + meta


def _frames(data: bytes) -> Iterator[tuple[int, int, int, int, int, int]]:
    """(seq, created_ns, payload offset, payload size, meta size, frame end) of each good frame.

    Stops at the first bad frame; the caller compares the last end with the data's length.
    """
    offset = 0
    while offset + HEADER_BYTES <= len(data):
        magic, seq, created_ns, size, meta_size, crc = _HEADER.unpack_from(data, offset)
        end = offset + HEADER_BYTES + size + meta_size
        if magic != MAGIC or size + meta_size > MAX_ENTRY_BYTES or end > len(data):
            return
        start = offset + HEADER_BYTES
        body = struct.pack("<Qq", seq, created_ns) + data[start:end]
        if zlib.crc32(struct.pack("<II", size, meta_size), zlib.crc32(body)) != crc:
            return
        yield seq, created_ns, start, size, meta_size, end
        offset = end


class JournalBusy(Exception):
    """Another live process holds the journal."""


class Journal:
    """Append-only segments of framed entries; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._clock_ns = clock_ns
        self.entries: deque[Entry] = deque()  # unretired, oldest first
        self.stats = JournalStats()
        self.meta: bytes = b""  # the newest checkpoint
        self.meta_seq = 0
        self.next_seq = 1
        self._segments: deque[tuple[Path, int]] = deque()  # (path, last seq in it)
        self._active: int | None = None  # fd of the segment being appended to
        self._active_path: Path | None = None
        self._active_size = 0
        self._sizes: dict[Path, int] = {}
        # group commit
        self._sync_cond = threading.Condition()
        self._synced_seq = 0
        self._appended_seq = 0
        self._syncing = False
        self._dir_dirty = False
        self._lock_fd: int | None = None

    # -- start -------------------------------------------------------------------------------

    def _take_lock(self, timeout_s: float) -> None:
        """Wait for the previous instance to let go (it may still be closing after Telegraf died).

        Two processes appending to one journal would interleave frames; the kernel releases
        the lock when its holder dies, so waiting is always bounded by the old one's exit.
        """
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout_s
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise JournalBusy(
                        f"journal {self.directory} is still in use by another process after "
                        f"{timeout_s:.0f} s (two instances with the same state_dir and "
                        "instance?)"
                    ) from None
                if not waited:
                    log.info("journal %s: waiting for the previous one to exit", self.directory)
                    waited = True
                time.sleep(0.05)
        self._lock_fd = fd

    def open(self, lock_timeout_s: float = 30.0) -> list[Entry]:
        """Read what an earlier run left: returns its entries (to be written again), oldest first.

        A bad frame ends its segment: the rest of that file is cut off and counted (torn).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self._take_lock(lock_timeout_s)
        paths = sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}"))
        for path in paths:
            data = path.read_bytes()
            last_seq = 0
            good_end = 0
            for seq, created_ns, start, size, meta_size, end in _frames(data):
                if seq < self.next_seq:
                    break  # out of order: not ours, or a corrupt file; treated as torn
                if size:
                    lines = data.count(b"\n", start, start + size)
                    self.entries.append(Entry(seq, created_ns, path, start, size, meta_size, lines))
                if meta_size:
                    self.meta = data[start + size : end]
                    self.meta_seq = seq
                self.next_seq = seq + 1
                last_seq = seq
                good_end = end
            if good_end < len(data):
                self.stats.torn += 1
                self.stats.torn_bytes += len(data) - good_end
                log.warning(
                    "journal %s: %d byte(s) after offset %d are half-written or corrupt (a "
                    "power cut during a write?); cut off, the entries before them are kept",
                    path,
                    len(data) - good_end,
                    good_end,
                )
                with path.open("r+b") as handle:
                    handle.truncate(good_end)
                    os.fsync(handle.fileno())
            if good_end == 0:
                path.unlink()
                continue
            self._segments.append((path, last_seq))
            self._sizes[path] = good_end
        self._appended_seq = self._synced_seq = self.next_seq - 1
        self.stats.replayed = len(self.entries)
        return list(self.entries)

    # -- writing -----------------------------------------------------------------------------

    def append(self, payload: bytes, meta: bytes = b"") -> Entry:
        """Append one entry (not yet fsynced: see :meth:`sync` and :meth:`sync_through`)."""
        if self._active is None or self._active_size >= self.segment_bytes:
            self._start_segment()
        assert self._active is not None and self._active_path is not None  # noqa: S101 - set just above
        seq = self.next_seq
        self.next_seq += 1
        created = self._clock_ns()
        frame = encode(seq, created, payload, meta)
        try:
            written = os.write(self._active, frame)
            if written != len(frame):
                raise OSError(f"short write to {self._active_path} ({written} of {len(frame)})")
        except OSError:
            # Disk full or failing: cut the half-written frame off so later frames stay
            # readable, and continue in a new segment.
            with contextlib.suppress(OSError):
                os.ftruncate(self._active, self._active_size)
            self._close_active()
            self.next_seq = seq
            raise
        entry = Entry(
            seq,
            created,
            self._active_path,
            self._active_size + HEADER_BYTES,
            len(payload),
            len(meta),
            payload.count(b"\n"),
        )
        self._active_size += len(frame)
        self._sizes[self._active_path] = self._active_size
        self._segments[-1] = (self._active_path, seq)
        if payload:
            self.entries.append(entry)
        if meta:
            self.meta = meta
            self.meta_seq = seq
        self.stats.appended += 1
        self.stats.bytes_written += len(frame)
        with self._sync_cond:
            self._appended_seq = seq
        return entry

    def _start_segment(self) -> None:
        self._close_active(sync=True)
        path = self.directory / f"{self.next_seq:020d}{SEGMENT_SUFFIX}"
        self._active = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._active_path = path
        self._active_size = 0
        self._sizes[path] = 0
        self._segments.append((path, self.next_seq - 1))
        self._dir_dirty = True
        if self.meta:
            # The newest checkpoint goes first, so deleting older segments never loses it.
            self.append(b"", self.meta)

    def _close_active(self, *, sync: bool = False) -> None:
        """Close the segment being appended to; with ``sync``, fsync what it holds unsynced.

        A later :meth:`sync_through` fsyncs only the segment active then, so entries left
        unsynced in a closed segment would be counted as durable without being so.
        """
        if self._active is None:
            return
        if sync and self.unsynced():
            with self._sync_cond:
                target = self._appended_seq
                dir_dirty, self._dir_dirty = self._dir_dirty, False
            os.fsync(self._active)
            if dir_dirty:
                _fsync_directory(self.directory)
            self.stats.fsyncs += 1
            with self._sync_cond:
                self._synced_seq = max(self._synced_seq, target)
                self._sync_cond.notify_all()
        os.close(self._active)
        self._active = None
        self._active_path = None

    def read(self, entry: Entry) -> bytes:
        """The payload of ``entry``."""
        with entry.segment.open("rb") as handle:
            handle.seek(entry.offset)
            return handle.read(entry.size)

    # -- durability --------------------------------------------------------------------------

    def sync(self) -> None:
        """Flush what was appended so far to disk (and the directory, after a new segment)."""
        with self._sync_cond:
            target = self._appended_seq
        self.sync_through(target)

    def sync_through(self, seq: int) -> None:
        """Return once entry ``seq`` is on disk; concurrent callers share one fsync.

        The first caller to arrive fsyncs everything appended by then; callers arriving
        meanwhile wait and are usually covered by that fsync, or share the next one.
        """
        with self._sync_cond:
            while self._synced_seq < seq:
                if self._syncing:
                    self._sync_cond.wait()
                    continue
                self._syncing = True
                target = self._appended_seq
                # A duplicate: append() may close the segment (a roll) while this fsyncs.
                fd = os.dup(self._active) if self._active is not None else None
                dir_dirty, self._dir_dirty = self._dir_dirty, False
                break
            else:
                return
        try:
            if fd is not None:
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            if dir_dirty:
                _fsync_directory(self.directory)
            self.stats.fsyncs += 1
        finally:
            with self._sync_cond:
                self._syncing = False
                self._synced_seq = max(self._synced_seq, target)
                self._sync_cond.notify_all()

    def unsynced(self) -> bool:
        """Whether anything appended is not fsynced yet."""
        with self._sync_cond:
            return self._synced_seq < self._appended_seq

    # -- shrinking ---------------------------------------------------------------------------

    def retire(self, seq: int) -> None:
        """Entries up to ``seq`` are in Telegraf's buffer: forget them, delete whole segments."""
        while self.entries and self.entries[0].seq <= seq:
            self.entries.popleft()
        self._delete_segments_before(self.entries[0].seq if self.entries else self.next_seq)

    def drop(self, entry: Entry) -> None:
        """Give up ``entry`` (the cap's rule for live sources: their oldest unsent data)."""
        self.entries.remove(entry)
        self.stats.dropped += 1
        self.stats.dropped_lines += entry.lines
        self._delete_segments_before(self.entries[0].seq if self.entries else self.next_seq)

    def _delete_segments_before(self, keep_from: int) -> None:
        """Delete segments whose every entry is older than ``keep_from``."""
        while self._segments:
            path, last_seq = self._segments[0]
            if last_seq >= keep_from:
                return
            if path == self._active_path:
                # Everything is retired: the next append starts a new segment, so a restart
                # replays nothing Telegraf already has.
                self._close_active()
            if self.meta and self.meta_seq <= last_seq:
                # The newest checkpoint lives in this segment: it moves to a new one first,
                # durably, so no crash can leave the journal without it.
                self._start_segment()
                assert self._active is not None  # noqa: S101 - _start_segment opens it
                os.fsync(self._active)
                self.stats.fsyncs += 1
            self._segments.popleft()
            self._sizes.pop(path, None)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self._dir_dirty = True

    # -- figures -----------------------------------------------------------------------------

    def size_bytes(self) -> int:
        """Bytes the journal takes on disk."""
        return sum(self._sizes.values())

    def oldest_age_s(self, now_ns: int | None = None) -> float:
        """Age of the oldest unretired entry (0 when empty)."""
        if not self.entries:
            return 0.0
        now = self._clock_ns() if now_ns is None else now_ns
        return max(0.0, (now - self.entries[0].created_ns) / 1e9)

    def close(self) -> None:
        """Flush to disk and close (entries stay for the next start)."""
        self.sync()
        self._close_active()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _fsync_directory(directory: Path) -> None:
    """Make a created or deleted file name durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
