"""taptap source: supervise ``taptap observe`` and turn its reports into points.

The child's stdout is read on its own thread and parsed there; the events wait in a bounded
queue for the runner's thread, which owns every piece of state (identities, counters, the
child's life). A full queue blocks the reader, so taptap blocks on its stdout and nothing
already decoded is dropped. Supervision runs at every gather: a child that exits is restarted
with backoff (never a restart storm), a missing binary or serial port is explained once, and
silence longer than ``stale_after`` is logged once and shown in the status point.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from telegraf_bridge.plugins.common import (
    Backoff,
    ChangeLogger,
    Emit,
    PluginContext,
    PluginSpec,
    Point,
    StateFile,
    format_duration,
)
from telegraf_bridge.plugins.taptap import options
from telegraf_bridge.plugins.taptap.events import (
    BadLine,
    Event,
    PowerReport,
    parse_line,
)
from telegraf_bridge.plugins.taptap.identity import Identities
from telegraf_bridge.plugins.taptap.points import (
    REPORT_FIELD_TYPES,
    STATUS_FIELD_TYPES,
    learn_identities,
    report_point,
)
from telegraf_bridge.plugins.taptap.process import StderrRelay, TaptapProcess

log = logging.getLogger("telegraf_bridge.plugins.taptap")

NS = 1_000_000_000
DEFAULT_INTERVAL_S = 5.0
BY_ID_DIR = Path("/dev/serial/by-id")
BATCH = 5000


def by_id_paths(directory: Path = BY_ID_DIR) -> list[str]:
    """The stable serial port names present now (empty when no adapter is plugged in)."""
    try:
        return sorted(str(p) for p in directory.iterdir())
    except OSError:
        return []


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def serial_port_problem(path: str, by_id_dir: Path = BY_ID_DIR) -> str | None:
    """Why ``path`` cannot be opened, as an instruction; None when it looks usable."""
    port = Path(path)
    if not port.exists():
        present = by_id_paths(by_id_dir)
        listing = ", ".join(present) if present else "none (is the RS485 adapter plugged in?)"
        return f"serial port {path} does not exist; ports in {by_id_dir}: {listing}"
    if not os.access(path, os.R_OK | os.W_OK):
        group = _group_name(port.stat().st_gid)
        user = _user_name()
        return (
            f"no permission to open {path} (group {group!r}); add the user running Telegraf "
            f"to it: sudo usermod -aG {group} {user}, then restart Telegraf"
        )
    return None


class EventQueue:
    """Bounded hand-over from the reader thread; a full queue blocks the reader."""

    def __init__(self, capacity: int, stop: threading.Event) -> None:
        self._items: deque[Event] = deque()
        self._capacity = capacity
        self._stop = stop
        self._cond = threading.Condition()

    def put(self, event: Event) -> None:
        """Add one event, waiting while the queue is full (until stop)."""
        with self._cond:
            while len(self._items) >= self._capacity and not self._stop.is_set():
                self._cond.wait(0.5)
            self._items.append(event)

    def take(self, limit: int) -> list[Event]:
        """Up to ``limit`` events, oldest first."""
        with self._cond:
            count = min(limit, len(self._items))
            taken = [self._items.popleft() for _ in range(count)]
            if taken:
                self._cond.notify_all()
            return taken

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class TaptapSource:
    """One ``taptap observe`` child, kept running."""

    def __init__(
        self,
        ctx: PluginContext,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        opts = options.parse(ctx.config)
        self.argv, self.serial = list(opts.argv), opts.serial
        if self.serial and self.serial.startswith("/dev/tty"):
            log.warning(
                "taptap.serial = %r may name another adapter after a reboot or replug; "
                "prefer its /dev/serial/by-id/ path (see `bridge-cli serial-ports`)",
                self.serial,
            )
        self.measurement = opts.measurement
        self.status_measurement = opts.status_measurement
        self.status_interval_ns = round(opts.status_interval_s * NS)
        self.stale_after_s = opts.stale_after_s
        restart_delay = opts.restart_delay_s
        backoff_max = opts.restart_backoff_max_s
        self.stable_after_s = opts.stable_after_s
        max_line = opts.max_line_bytes
        capacity = opts.queue_size
        ctx.serializer.field_types = {**REPORT_FIELD_TYPES, **STATUS_FIELD_TYPES}
        self.counter = ctx.serializer.counter
        self.instance = ctx.instance
        self.writer = ctx.writer
        self.monotonic = monotonic
        self.wall_ns = wall_ns
        self.wakeup = ctx.wakeup
        self.stop_event = threading.Event()
        self.queue = EventQueue(capacity, self.stop_event)
        self.max_line = max_line
        self.backoff = Backoff(
            initial=restart_delay, maximum=max(backoff_max, restart_delay), jitter=0.1
        )
        self.changes = ChangeLogger(log)
        self.stderr = StderrRelay(log)
        self.process: TaptapProcess | None = None
        self.next_start = float("-inf")
        self.starts = 0
        self.reports = 0
        self.skipped = 0
        self.last_report: float | None = None
        self.quiet_since = monotonic()
        self.last_status_window: int | None = None
        self.state = StateFile(ctx.state_path(), min_interval_s=60.0)
        saved = self.state.load() or {}
        self.identities = Identities.from_json(saved.get("identities") or {})
        log.info("running %s", " ".join(self.argv))

    # -- the runner's thread -----------------------------------------------------------------

    def gather(self, emit: Emit) -> bool:
        """Hand over decoded reports, supervise the child, and emit the status point."""
        now = self.monotonic()
        events = self.queue.take(BATCH)
        for event in events:
            self._handle(event, emit, now)
        self._supervise(now)
        self._check_stale(now, emit)
        self._emit_status(emit, now, force=False)
        if self.identities.changed and self.state.save_if_due(self._state()):
            self.identities.changed = False
        return len(self.queue) > 0

    def _handle(self, event: Event, emit: Emit, now: float) -> None:
        learn_identities(event, self.identities)
        if not isinstance(event, PowerReport):
            return
        emit(report_point(event, self.identities, self.measurement))
        self.reports += 1
        self.last_report = now
        self.changes.recovered("stale", "power reports arrive again")
        self.changes.recovered(
            "process", f"taptap is running and reporting again after {self.restarts} restart(s)"
        )

    def _supervise(self, now: float) -> None:
        proc = self.process
        if proc is not None:
            if not proc.finished():
                return
            self._exited(proc, now)
            self.process = None
        if now < self.next_start or self.stop_event.is_set():
            return
        problem = self._preflight()
        if problem is not None:
            self._schedule_restart(now, "cannot start taptap", problem, logging.ERROR)
            return
        proc = TaptapProcess(
            self.argv,
            self._on_line,
            self._on_skip,
            self.stderr,
            max_line_bytes=self.max_line,
            stop_event=self.stop_event,
        )
        try:
            proc.start()
        except OSError as exc:
            self._schedule_restart(now, "cannot start taptap", str(exc), logging.ERROR)
            return
        self.changes.recovered("start", "taptap can be started again")
        self.starts += 1
        self.process = proc
        log.debug("started taptap (pid %s)", proc.pid)

    @property
    def restarts(self) -> int:
        """Starts after the first one."""
        return max(0, self.starts - 1)

    def _preflight(self) -> str | None:
        binary = self.argv[0]
        if shutil.which(binary) is None:
            return (
                f"the taptap binary {binary!r} was not found or is not executable; install it "
                "with `cargo install taptap --locked` (needs libudev-dev) or set "
                'taptap = "/full/path/to/taptap"'
            )
        if self.serial is not None:
            return serial_port_problem(self.serial)
        return None

    def _exited(self, proc: TaptapProcess, now: float) -> None:
        ran = now - proc.started_at
        code = proc.returncode
        if ran >= self.stable_after_s:
            self.backoff.reset()
        detail = f"exit status {code}"
        if self.stderr.last_error:
            detail += f"; its last message: {self.stderr.last_error}"
        if self.serial is not None and "busy" in self.stderr.last_error.lower():
            detail += (
                f"; another process holds {self.serial}: find it with `sudo fuser -v {self.serial}`"
            )
        elif self.serial is not None:
            problem = serial_port_problem(self.serial)
            if problem:
                detail += f"; {problem}"
        self.stderr.last_error = ""
        self._schedule_restart(now, f"taptap stopped after {ran:.0f} s", detail, logging.WARNING)

    def _schedule_restart(self, now: float, what: str, detail: str, level: int) -> None:
        delay = self.backoff.next_delay()
        self.next_start = now + delay
        key = "start" if what.startswith("cannot") else "process"
        logged = self.changes.problem(
            key,
            f"{what} ({detail}); restarting it with backoff up to "
            f"{format_duration(self.backoff.maximum)}",
            level,
        )
        if not logged:
            log.debug("%s (%s); next start in %.1f s", what, detail, delay)

    def _check_stale(self, now: float, emit: Emit) -> None:
        since = self.last_report if self.last_report is not None else self.quiet_since
        if now - since < self.stale_after_s:
            return
        if self.changes.problem(
            "stale",
            f"no power report for {format_duration(now - since)} (night, a loose RS485 wire, "
            "or A/B swapped); the status point shows stale = true until reports arrive",
        ):
            self._emit_status(emit, now, force=True)

    def _emit_status(self, emit: Emit, now: float, *, force: bool) -> None:
        if not self.status_measurement:
            return
        window = (self.wall_ns() // self.status_interval_ns) * self.status_interval_ns
        if not force and window == self.last_status_window:
            return
        self.last_status_window = window
        since = self.last_report if self.last_report is not None else self.quiet_since
        fields: dict[str, float | int | bool | str] = {
            "running": self.process is not None and not self.process.finished(),
            "stale": now - since >= self.stale_after_s,
            "restarts": self.restarts,
            "reports": self.reports,
            "skipped_lines": self.skipped,
        }
        if self.last_report is not None:
            fields["last_report_age_s"] = float(round(now - self.last_report, 3))
        fields.update(self.writer.journal_fields())
        tags = {"src": "tigo", "source": self.instance}
        emit(Point(self.status_measurement, tags, fields, window))

    # -- the reader thread -------------------------------------------------------------------

    def _on_line(self, line: bytes) -> None:
        try:
            event = parse_line(line)
        except BadLine as exc:
            self._on_skip(exc.reason, str(exc))
            return
        self.queue.put(event)
        self.wakeup()

    def _on_skip(self, reason: str, detail: str) -> None:
        self.skipped += 1
        self.counter.count(reason, detail)

    # -- shutdown ----------------------------------------------------------------------------

    def _state(self) -> dict[str, object]:
        return {"identities": self.identities.to_json()}

    def close(self) -> None:
        """Stop the child and save what was learnt of the installation."""
        self.stop_event.set()
        if self.process is not None:
            self.process.stop()
            self.process = None
        self.state.save(self._state())


SPEC = PluginSpec("taptap", TaptapSource, default_interval_s=DEFAULT_INTERVAL_S)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``bridge-taptap`` and ``python -m telegraf_bridge.plugins.taptap``."""
    return SPEC.main(argv)
