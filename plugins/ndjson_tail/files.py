"""The set of tailed files: identity, positions, rotation, truncation and completion.

A file is identified by device + inode + a fingerprint of its first bytes, so a renamed file
keeps its position, a new file under an old name starts from the beginning, and an inode that
the filesystem reuses for a different file is not mistaken for the old one. Positions are
byte offsets at line starts plus the line number, so skips can be reported as ``file:line``.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger("telegraf_bridge.plugins.ndjson_tail")

FINGERPRINT_BYTES = 256
CHUNK = 64 * 1024
INITIAL_READ_OFFSETS = ("saved-or-beginning", "saved-or-end", "beginning", "end")


@dataclass
class Position:
    """How far one file has been read."""

    path: str
    fp: str
    fp_len: int
    offset: int = 0
    line: int = 0
    done: bool = False
    discarding: bool = False

    def as_json(self) -> dict[str, Any]:
        """JSON form for the state file."""
        return asdict(self)


class Line(NamedTuple):
    """One complete line read from a file."""

    path: str
    number: int
    data: bytes
    too_long: bool = False


def fingerprint(path: str, length: int) -> tuple[str, int]:
    """SHA-256 of the first ``length`` bytes (fewer if the file is shorter) and their count."""
    with open(path, "rb") as handle:  # noqa: PTH123 - hot path, plain open is fine
        head = handle.read(length)
    return hashlib.sha256(head).hexdigest()[:32], len(head)


class FileSet:
    """Tracks every file matching the globs and reads new complete lines from them."""

    def __init__(
        self,
        globs: list[str],
        saved: dict[str, Any] | None,
        *,
        initial_read_offset: str = "saved-or-beginning",
        max_line_bytes: int = 1024 * 1024,
        complete_after_s: float = 300.0,
        skip: Any = None,
    ) -> None:
        self.globs = globs
        self.max_line_bytes = max_line_bytes
        self.complete_after_s = complete_after_s
        self.positions: dict[str, Position] = {}
        self._skip = skip
        use_saved = initial_read_offset.startswith("saved-or-")
        self._start_at_end = initial_read_offset.endswith("end")
        if use_saved and saved:
            for key, doc in saved.items():
                try:
                    self.positions[key] = Position(**doc)
                except TypeError:
                    log.error("ignoring malformed saved position for %s: %r", key, doc)
        self._first_scan = True
        self._stats: dict[str, os.stat_result] = {}

    # -- discovery ---------------------------------------------------------------------------

    def _matching(self) -> dict[str, tuple[str, os.stat_result]]:
        found: dict[str, tuple[str, os.stat_result]] = {}
        for pattern in self.globs:
            for path in glob.glob(pattern):  # noqa: PTH207 - globs come from config strings
                try:
                    st = os.stat(path)  # noqa: PTH116 - str paths from glob
                except OSError:
                    continue
                if not os.path.isfile(path):  # noqa: PTH113 - str paths from glob
                    continue
                found[f"{st.st_dev}:{st.st_ino}"] = (path, st)
        return found

    def scan(self) -> None:
        """Match files on disk with tracked positions; handle new, moved, truncated, gone.

        One glob and one stat per file; a file is opened (to check its fingerprint) only when
        its size or change time moved since the last scan, so hundreds of finished daily files
        cost the SD card nothing but their stat.
        """
        found = self._matching()
        previous = self._stats
        self._stats = {key: st for key, (_path, st) in found.items()}
        # New files first: a copy of a tracked file inherits its position (copytruncate).
        for key, (path, st) in found.items():
            if key not in self.positions:
                self._adopt(key, path, st)
        for key, (path, st) in found.items():
            pos = self.positions[key]
            if pos.path != path:
                log.info(
                    "%s was renamed to %s; continuing at line %d", pos.path, path, pos.line + 1
                )
                pos.path = path
            if st.st_size < pos.offset:
                log.warning(
                    "%s shrank from %d to %d bytes (truncated or copy-truncated); reading it "
                    "again from the start",
                    path,
                    pos.offset,
                    st.st_size,
                )
                if self._skip:
                    self._skip("file_truncated", path)
                self._restart(pos, path)
                continue
            before = previous.get(key)
            if (
                before is not None
                and before.st_size == st.st_size
                and before.st_ctime_ns == st.st_ctime_ns
            ):
                continue  # unchanged since the last scan: same file, nothing to re-check
            fp, fp_len = fingerprint(path, pos.fp_len or FINGERPRINT_BYTES)
            if pos.fp_len and fp_len >= pos.fp_len and fp != pos.fp:
                log.warning(
                    "%s is a different file on a reused inode; reading it from the start", path
                )
                self._restart(pos, path)
            elif pos.fp_len < FINGERPRINT_BYTES and st.st_size > pos.fp_len:
                pos.fp, pos.fp_len = fingerprint(path, FINGERPRINT_BYTES)
        for key in [k for k in self.positions if k not in found]:
            pos = self.positions.pop(key)
            if not pos.done:
                log.warning(
                    "%s is gone (deleted or renamed outside the globs) after line %d; make the "
                    "globs match rotated names to read files to their end",
                    pos.path,
                    pos.line,
                )
        self._first_scan = False

    @staticmethod
    def _restart(pos: Position, path: str) -> None:
        pos.offset, pos.line, pos.done, pos.discarding = 0, 0, False, False
        pos.fp, pos.fp_len = fingerprint(path, FINGERPRINT_BYTES)

    def _adopt(self, key: str, path: str, st: os.stat_result) -> None:
        fp, fp_len = fingerprint(path, FINGERPRINT_BYTES)
        # A copy of a file we were reading (copytruncate's copy, or a move across
        # filesystems) carries our position with it.
        for other in self.positions.values():
            if (
                other.fp == fp
                and other.fp_len == fp_len
                and fp_len >= 64
                and other.offset <= st.st_size
            ):
                self.positions[key] = Position(path, fp, fp_len, other.offset, other.line)
                log.info(
                    "%s is a copy of %s; continuing at line %d", path, other.path, other.line + 1
                )
                return
        pos = Position(path, fp, fp_len)
        if self._first_scan and self._start_at_end:
            pos.offset = _last_line_start(path, st.st_size)
            pos.line = -1  # unknown: line numbers are relative from here
        self.positions[key] = pos

    # -- reading -----------------------------------------------------------------------------

    def ordered(self) -> list[tuple[str, Position]]:
        """Files oldest first (by mtime, then name), so data is replayed in time order."""

        def sort_key(item: tuple[str, Position]) -> tuple[float, str]:
            st = self._stats.get(item[0])
            return (st.st_mtime if st else 0.0, item[1].path)

        # Finished files whose size has not changed are not even opened.
        return sorted(
            (
                (key, pos)
                for key, pos in self.positions.items()
                if not (pos.done and key in self._stats and self._stats[key].st_size == pos.offset)
            ),
            key=sort_key,
        )

    def read(self, key: str, budget: int, now: float) -> Iterator[Line]:
        """Up to ``budget`` complete lines of one file; advances its position as it goes."""
        pos = self.positions[key]
        try:
            handle = open(pos.path, "rb")  # noqa: PTH123, SIM115 - `with handle` below
        except OSError as exc:
            log.warning("cannot open %s: %s", pos.path, exc)
            return
        with handle:
            st = os.fstat(handle.fileno())
            if pos.done and st.st_size == pos.offset:
                return
            pos.done = False
            handle.seek(pos.offset)
            pending = b""
            emitted = 0
            while emitted < budget:
                chunk = handle.read(CHUNK)
                if not chunk:
                    break
                pending += chunk
                start = 0
                find = pending.find
                path = pos.path
                while emitted < budget:
                    end = find(b"\n", start)
                    if end < 0:
                        break
                    if pos.discarding:
                        yield self._take(pos, b"", end + 1 - start)
                    else:  # _take inlined: once per line of a backlog
                        pos.offset += end + 1 - start
                        pos.line += 1
                        yield Line(path, pos.line, pending[start:end].rstrip(b"\r"))
                    start = end + 1
                    emitted += 1
                pending = pending[start:]
                if len(pending) > self.max_line_bytes:
                    # Skip the rest of an overlong line without holding it in memory.
                    pos.offset += len(pending)
                    pos.discarding = True
                    pending = b""
                if emitted >= budget:
                    return
            if (pending or pos.discarding) and self._complete(pos, st, now):
                # The writer finished this file without a final newline.
                yield self._take(pos, pending, len(pending))
                pending = b""
            if not pending and pos.offset == st.st_size and self._complete(pos, st, now):
                pos.done = True

    @staticmethod
    def _take(pos: Position, raw: bytes, size: int) -> Line:
        """Advance past one line of ``size`` bytes (newline included) and describe it."""
        pos.offset += size
        pos.line += 1
        if pos.discarding:  # the end of an overlong line: report it, keep nothing
            pos.discarding = False
            return Line(pos.path, pos.line, b"", too_long=True)
        return Line(pos.path, pos.line, raw.rstrip(b"\r"))

    def _complete(self, pos: Position, st: os.stat_result, now: float) -> bool:
        """A file is complete when a newer file exists and it has been idle long enough."""
        if now - st.st_mtime < self.complete_after_s:
            return False
        return any(
            other.st_ino != st.st_ino and other.st_mtime > st.st_mtime
            for other in self._stats.values()
        )

    def state(self) -> dict[str, Any]:
        """Positions in JSON form."""
        return {key: pos.as_json() for key, pos in self.positions.items()}

    def unread_bytes(self) -> int:
        """Bytes in the tracked files beyond their positions (data waiting at the source)."""
        total = 0
        for pos in self.positions.values():
            try:
                total += max(0, os.stat(pos.path).st_size - pos.offset)  # noqa: PTH116 - str path
            except OSError:
                continue
        return total


def _last_line_start(path: str, size: int) -> int:
    """Offset just after the last newline (where the next complete line will start)."""
    with Path(path).open("rb") as handle:
        back = min(size, CHUNK)
        handle.seek(size - back)
        tail = handle.read(back)
    cut = tail.rfind(b"\n")
    return size - back + cut + 1 if cut >= 0 else (0 if size < CHUNK else size)
