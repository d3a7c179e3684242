"""Clock sanity: never stamp a point with 1970 or a stale boot time.

A Pi Zero has no real-time clock. Until NTP has synchronised it, ``time.time()`` returns the
time the last shutdown saved (fake-hwclock) or 1970. Two checks guard against that: a floor
(points before it are refused) and the kernel's own synchronisation flag (``adjtimex``:
``TIME_ERROR`` or ``STA_UNSYNC``), used by plugins that stamp data with the system clock to
hold data until the clock is trustworthy.

The floor only catches clockless timestamps (1970, a few days after the epoch). It must never
refuse real history: a 2025 SmartSolar file or a backfill keeps its timestamps and arrives, so
the default sits far below any plausible record. A stale boot time past the floor is the sync
flag's job, not the floor's.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

log = logging.getLogger("telegraf_bridge.clock")

# The default floor: far past 1970 (a clockless device), far before any real record or backfill.
DEFAULT_TIME_FLOOR = "2000-01-01T00:00:00Z"

_TIME_ERROR = 5
_STA_UNSYNC = 0x0040


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; only ``status`` and the return value are read.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


def kernel_clock_synchronised() -> bool | None:
    """The kernel's view (True/False), or None where it cannot be asked (not Linux).

    ``adjtimex`` is looked up among the symbols the interpreter already has (libc's), not
    through ``ctypes.util.find_library``: that imports subprocess, shutil and tempfile into
    every plugin and runs ``ldconfig -p`` in a child process on every call.
    """
    try:
        adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None
    tx = _Timex()  # modes = 0: read only
    state = adjtimex(ctypes.byref(tx))
    if state < 0:
        return None
    return state != _TIME_ERROR and not tx.status & _STA_UNSYNC


def parse_time_floor(text: str) -> int:
    """An RFC 3339 instant as integer nanoseconds since the epoch."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000


class ClockGuard:
    """Says whether the system clock can be trusted to stamp data right now.

    ``require_sync = False`` trusts any clock past the floor (for hosts where the sync flag is
    not maintained, such as some containers); the floor always applies.
    """

    def __init__(
        self,
        *,
        floor_ns: int | None = None,
        require_sync: bool = True,
        probe: Callable[[], bool | None] = kernel_clock_synchronised,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.floor_ns = parse_time_floor(DEFAULT_TIME_FLOOR) if floor_ns is None else floor_ns
        self.require_sync = require_sync
        self._probe = probe
        self._now_ns = now_ns
        self._held = False
        self.held: str | None = None  # why data is held right now (for the status file)
        self._lock = threading.Lock()

    def reason_unsane(self) -> str | None:
        """Why the clock is not trustworthy now, or None when it is."""
        now = self._now_ns()
        if now < self.floor_ns:
            when = datetime.fromtimestamp(now / 1e9, UTC).isoformat()
            return f"system clock reads {when}, before the floor; waiting for time sync"
        if self.require_sync and self._probe() is False:
            return "kernel reports the system clock as unsynchronised (no NTP yet)"
        return None

    def is_sane(self) -> bool:
        """True when data may be stamped with the system clock; logs changes once."""
        reason = self.reason_unsane()
        with self._lock:
            self.held = reason
            if reason and not self._held:
                self._held = True
                log.warning("holding data: %s", reason)
            elif not reason and self._held:
                self._held = False
                log.info("system clock is sane again; resuming")
        return reason is None
