"""Per-instance status file: what a plugin skipped or held, for the console of ``bridge-cli``.

Why: a skip counted only in Telegraf's log is a silent drop to the user. ``bridge-cli run`` and
``check-config`` read ``<state_dir>/<plugin>-<instance>.status.json`` and show every skip
reason with its count and the option that changes it
(:mod:`telegraf_bridge.cli.source_status`).

The document (``StateFile`` format 1, ``data``)::

    {"plugin": "ndjson_tail", "instance": "smartsolar", "pid": 1234,
     "started_ns": 1767225600000000000, "updated_ns": ..., "exited": false,
     "skips": {"timestamp_before_floor": 3}, "held": null, "points": 120}

``held`` is the ClockGuard's reason while it holds data (clock unsynchronised or before the
floor), else null. ``points`` counts the lines written to stdout. Sources with a delivery journal
add ``journal``: ``entries``, ``bytes``, ``oldest_age_s`` (not yet retired), ``replayed`` (written
again at start), ``dropped`` (points dropped at the cap), ``torn`` (corrupt tails cut off at
start), ``holding`` (data held back at the cap), and what it cost the disk since start:
``appended`` (frames), ``bytes_written`` and ``fsyncs``.

SD-card rule: a background check every ``interval_s`` (default 5 s) writes only when the
skips, the hold or the journal's replays, drops, torn tails or holding changed since the last
write; points alone never cause a write while the
plugin runs (they change every gather). So a healthy plugin writes the file exactly once, at
exit, with its final counts; a plugin that skips writes at most once per interval.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from telegraf_bridge.plugins.common._clock import ClockGuard
from telegraf_bridge.plugins.common._lineprotocol import SkipCounter
from telegraf_bridge.plugins.common._runner import LineWriter
from telegraf_bridge.plugins.common._state import StateFile

STATUS_SUFFIX = "status"
DEFAULT_INTERVAL_S = 5.0


class StatusReporter:
    """Writes the status file when skips or the hold change (throttled), and at exit."""

    def __init__(
        self,
        path: Path,
        *,
        plugin: str,
        instance: str,
        counter: SkipCounter,
        writer: LineWriter,
        guard: ClockGuard | None,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.file = StateFile(path)
        self.plugin = plugin
        self.instance = instance
        self.counter = counter
        self.writer = writer
        self.guard = guard
        self.interval_s = interval_s
        self.started_ns = time.time_ns()
        self.writes = 0
        self._written: tuple[object, ...] = ({}, None, {})
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def document(self, *, exited: bool) -> dict[str, Any]:
        """The status as written now."""
        doc: dict[str, Any] = {
            "plugin": self.plugin,
            "instance": self.instance,
            "pid": os.getpid(),
            "started_ns": self.started_ns,
            "updated_ns": time.time_ns(),
            "exited": exited,
            "skips": self.counter.snapshot(),
            "held": self.guard.held if self.guard is not None else None,
            "points": self.writer.points_written,
        }
        journal = self.writer.journal_status()
        if journal:
            doc["journal"] = journal
        return doc

    def _watched(self, doc: dict[str, Any]) -> tuple[object, ...]:
        """What causes a write when it changes (never the counts that move every gather)."""
        journal = doc.get("journal") or {}
        return (
            doc["skips"],
            doc["held"],
            {k: journal[k] for k in ("replayed", "dropped", "torn", "holding") if journal.get(k)},
        )

    def check(self) -> bool:
        """Write if the skips or the hold changed since the last write; True when written."""
        with self._lock:
            if self._watched(self.document(exited=False)) == self._written:
                return False
            self._write(exited=False)
            return True

    def _write(self, *, exited: bool) -> None:
        doc = self.document(exited=exited)
        try:
            self.file.save(doc)
        except OSError:
            return  # the state directory is the plugin's own problem; it reports that itself
        self._written = self._watched(doc)
        self.writes += 1

    def start(self) -> None:
        """Check every ``interval_s`` in a daemon thread until :meth:`close`."""
        self._thread = threading.Thread(target=self._loop, name="status", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def close(self) -> None:
        """Stop the thread and write the final counts (points included)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 1)
        with self._lock:
            self._write(exited=True)
