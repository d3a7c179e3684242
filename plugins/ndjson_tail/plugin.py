"""ndjson_tail: tail NDJSON files with persistent state and emit one point per record.

Delivery: positions are saved only once Telegraf has read the lines and had ``commit_delay``
to buffer them (see plugins/common/_delivery.py), so a crash anywhere replays lines instead of
losing them. Replayed lines produce byte-identical points, which InfluxDB stores once. The
disk-buffer cap is enforced here by back-pressure: at the cap the plugin stops reading and the
data waits in the source files, which are durable already.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from telegraf_bridge.plugins.common import (
    ChangeLogger,
    ConfigError,
    DeliveryTracker,
    Emit,
    FieldType,
    PluginContext,
    PluginSpec,
    StateFile,
)
from telegraf_bridge.plugins.common._cap import BufferCap
from telegraf_bridge.plugins.ndjson_tail import options
from telegraf_bridge.plugins.ndjson_tail.convert import converter_from_options
from telegraf_bridge.plugins.ndjson_tail.files import FileSet
from telegraf_bridge.plugins.ndjson_tail.records import RecordLines

log = logging.getLogger("telegraf_bridge.plugins.ndjson_tail")

NS = 1_000_000_000


class NdjsonTail:
    """The Source: reads, converts and writes in bounded batches; commits positions late."""

    def __init__(self, ctx: PluginContext) -> None:
        opts = options.parse(ctx.config)
        globs = list(opts.files)
        declared = opts.field_types
        self.converter = converter_from_options(opts)
        self.batch_lines = opts.batch_lines
        self.max_future_ns = round(opts.max_future_s * NS)
        commit_delay = opts.commit_delay_s
        state_interval = opts.state_interval_s
        # Measured before every batch: the overshoot is then one batch plus what is in flight.
        self.cap = BufferCap(
            opts.buffer_max_size_mb * 1024 * 1024,
            opts.buffer_directory,
            ctx.state_dir,
            in_flight=ctx.writer.unread_bytes,
            every_s=0.0,
        )
        self.watch = opts.watch

        self.serializer = ctx.serializer
        self.counter = ctx.serializer.counter
        self.writer = ctx.writer
        self.clock = ctx.clock_guard
        self.changes = ChangeLogger(log)
        self.state = StateFile(ctx.state_path(), min_interval_s=state_interval)
        saved = self.state.load() or {}
        for name, kind in dict(saved.get("types", {})).items():
            try:
                self.converter.field_types.setdefault(name, FieldType(kind))
            except ValueError:
                continue
        # Declared types win over those learned from data.
        self.converter.field_types.update(declared)
        self.serializer.field_types = self.converter.field_types
        self.records = RecordLines(self.converter, self.serializer, self.max_future_ns)
        self.files = FileSet(
            globs,
            saved.get("files"),
            initial_read_offset=opts.initial_read_offset,
            max_line_bytes=opts.max_line_bytes,
            complete_after_s=opts.complete_after_s,
            skip=self._skip,
        )
        self.files.scan()
        self.tracker: DeliveryTracker[dict[str, Any]] = DeliveryTracker(self.writer, commit_delay)
        self.tracker.committed = self.files.state()
        self._floors: dict[str, Any] = {}
        self._observer = self._start_watching(globs, ctx) if self.watch != "poll" else None

    # -- watching ----------------------------------------------------------------------------

    def _start_watching(self, globs: list[str], ctx: PluginContext) -> Any:
        try:
            # Imported here: watchdog is optional on hosts where polling is enough.
            from watchdog.events import FileSystemEventHandler  # noqa: PLC0415 - optional
            from watchdog.observers import Observer  # noqa: PLC0415 - optional
        except ImportError:
            if self.watch == "inotify":
                raise ConfigError(
                    "ndjson_tail.watch = 'inotify' needs the watchdog package"
                ) from None
            log.info("watchdog is not installed; polling every interval")
            return None

        wake = ctx.wakeup

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                wake()

        # watchdog logs its own stop() racing a pending read as an error; here it is the
        # normal shutdown, and an E! line would fail `bridge-cli check-config`.
        logging.getLogger("watchdog.observers.inotify").addFilter(_not_the_stop_race)
        observer = Observer()
        for directory in {Path(g).parent for g in globs}:
            if directory.is_dir():
                observer.schedule(Handler(), str(directory), recursive=False)
        try:
            observer.start()
        except OSError as exc:
            # e.g. inotify watch limit reached, or a filesystem without inotify (some FUSE/NFS).
            if self.watch == "inotify":
                raise ConfigError(f"cannot watch the NDJSON directories: {exc}") from None
            log.warning("file events unavailable (%s); polling every interval", exc)
            return None
        return observer

    # -- helpers -----------------------------------------------------------------------------

    def _skip(self, reason: str, where: str) -> None:
        self.counter.count(reason, where)

    def _at_cap(self) -> bool:
        """Whether Telegraf's disk buffer and the journals have reached the cap."""
        if not self.cap.enabled:
            return False
        size = self.cap.used()
        if size >= self.cap.cap_bytes:
            self.changes.problem(
                "cap",
                f"disk buffer {self.cap.buffer_dir} (with the journals) holds "
                f"{size / 2**20:.1f} MiB, at its cap of {self.cap.cap_bytes / 2**20:.0f} MiB: "
                f"holding {self.files.unread_bytes()} bytes unread in the source files until "
                "the sinks drain it",
            )
            return True
        self.changes.recovered(
            "cap", f"disk buffer below its cap again ({size / 2**20:.1f} MiB); reading on"
        )
        return False

    # -- the Source protocol -----------------------------------------------------------------

    def gather(self, emit: Emit) -> bool:
        """Read up to ``batch_lines`` lines, write their points, and commit what is safe."""
        del emit  # this source writes its own batches, to tie positions to written bytes
        self.files.scan()
        known = self._known_keys()
        if self._at_cap():
            self._commit()
            return False
        now = time.time()
        now_ns = time.time_ns()
        clock_sane = self.clock.reason_unsane() is None
        budget = self.batch_lines
        lines: list[str] = []
        render = self.records.line
        for key, _pos in self.files.ordered():
            for line in self.files.read(key, budget, now):
                budget -= 1
                rendered = render(line, now_ns, clock_sane)
                if rendered is not None:
                    lines.append(rendered)
            if budget <= 0:
                break
        new_files = [key for key in self.files.positions if key not in known]
        for key in new_files:
            self._floors[key] = None  # new file: its start must be committed before use
        if budget < self.batch_lines or new_files:
            self.writer.write_lines(lines)
            self.tracker.record(self.files.state())
        self._commit()
        return budget <= 0

    def _known_keys(self) -> set[str]:
        committed = self.tracker.committed or {}
        return set(committed) | set(self._floors)

    def _committed_state(self) -> dict[str, Any]:
        committed = dict(self.tracker.committed or {})
        for key in list(self._floors):
            if key in committed:
                del self._floors[key]
        for key in self._floors:
            pos = self.files.positions.get(key)
            if pos is not None:
                doc = pos.as_json()
                doc.update(offset=0, line=0, done=False, discarding=False)
                committed[key] = doc
        return committed

    def _state_doc(self) -> dict[str, Any]:
        return {
            "files": self._committed_state(),
            "types": {k: v.value for k, v in self.converter.field_types.items()},
        }

    def _commit(self) -> None:
        self.tracker.advance()
        self.state.save_if_due(self._state_doc())

    def close(self) -> None:
        """Save the committed positions (never the merely written ones) and stop watching."""
        if self._observer is not None:
            self._observer.stop()
        self.tracker.advance()
        self.state.save(self._state_doc())


def _not_the_stop_race(record: logging.LogRecord) -> bool:
    return "called when the thread is inactive" not in str(record.msg)


# No journal: the NDJSON files are the journal (positions are committed late).
SPEC = PluginSpec("ndjson_tail", NdjsonTail, journal=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``bridge-ndjson-tail``; also ``python -m ...plugins.ndjson_tail``."""
    return SPEC.main(argv)
