"""Atomic JSON state files that survive a power cut, with a safe fallback when corrupt.

Write order: temporary file in the same directory, fsync it, rename over the old file, fsync
the directory. After a power cut the file is therefore either the old or the new version, never
a mix. A corrupt file (half-written by something else, edited by hand) is moved aside with a
clear error and the plugin starts from its documented fallback instead of crashing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("telegraf_bridge.state")

STATE_FORMAT = 1


class StateFile:
    """One JSON document on disk, written atomically and at most every ``min_interval_s``.

    The interval spares SD cards; callers that must not lose a position (before acknowledging
    data, at shutdown) call :meth:`save` directly, which always writes.
    """

    def __init__(self, path: Path, *, min_interval_s: float = 0.0) -> None:
        self.path = Path(path)
        self.min_interval_s = min_interval_s
        self._last_write = float("-inf")
        self._last_data: Any = None

    def load(self) -> dict[str, Any] | None:
        """The saved document, or None when there is none or it is unreadable."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error(
                "cannot read state file %s (%s); starting without saved state", self.path, exc
            )
            return None
        try:
            doc = json.loads(raw.decode("utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
                raise ValueError("not a telegraf-bridge state document of format 1")
            data = doc["data"]
            if not isinstance(data, dict):
                raise ValueError("'data' is not an object")
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            try:
                self.path.replace(aside)
                where = f"moved to {aside}"
            except OSError:
                where = "left in place"
            log.error(
                "state file %s is corrupt (%s); %s, starting without saved state",
                self.path,
                exc,
                where,
            )
            return None
        self._last_data = data
        return data

    def save(self, data: dict[str, Any]) -> None:
        """Write ``data`` now, atomically and durably."""
        payload = json.dumps({"format": STATE_FORMAT, "data": data}, sort_keys=True).encode()
        write_atomic(self.path, payload, mode=0o644)
        self._last_write = time.monotonic()
        self._last_data = data

    def save_if_due(self, data: dict[str, Any]) -> bool:
        """Write ``data`` if it changed and the rate limit allows; True when written."""
        if data == self._last_data:
            return False
        if time.monotonic() - self._last_write < self.min_interval_s:
            return False
        self.save(data)
        return True


def write_atomic(path: Path, content: bytes | str, *, mode: int = 0o600) -> None:
    """Replace ``path`` so readers (and a power cut) see the old or the new file, never a mix.

    The temporary file is created with ``mode`` from the start (never world-readable, even for
    an instant) in the target's directory, fsynced, renamed over the target, and the directory
    is fsynced so the rename itself is durable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
