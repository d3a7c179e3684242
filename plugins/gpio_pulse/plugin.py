"""gpio_pulse source: count meter pulses on GPIO pins into raw pulses and window rows.

Capture and output are decoupled: the backend's thread (kernel edge events, RPi.GPIO
callbacks or the simulator) only appends ``(channel, edge time)`` to a bounded queue and never
waits, so a burst cannot delay edge capture; a full queue counts and logs each dropped edge.
The runner's thread owns everything else: bounce filtering, the raw pulse points, the window
counters, the state file and the backend's supervision.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from telegraf_bridge.plugins.common import (
    Backoff,
    ChangeLogger,
    Emit,
    FieldType,
    PluginContext,
    PluginSpec,
    Point,
    StateFile,
    format_duration,
    worth_logging_between,
)
from telegraf_bridge.plugins.gpio_pulse import options
from telegraf_bridge.plugins.gpio_pulse.backend import Backend, open_backend
from telegraf_bridge.plugins.gpio_pulse.channels import Channel
from telegraf_bridge.plugins.gpio_pulse.options import TierRoute
from telegraf_bridge.plugins.gpio_pulse.sim import SimBackend
from telegraf_bridge.plugins.gpio_pulse.windows import NS, WindowCounter, WindowRow

log = logging.getLogger("telegraf_bridge.plugins.gpio_pulse")

DEFAULT_INTERVAL_S = 1.0
BATCH = 20_000
# Edges replayed from the state file at start-up when the last run could not write them.
MAX_PENDING_SAVED = 100_000
_INT = FieldType.INTEGER
# Counts are integers in every tier and every sink (a float count would conflict in InfluxDB).
FIELD_TYPES: dict[str, FieldType] = {
    "Pulse": _INT,
    "pulses": _INT,
    "pulses_total": _INT,
    "energy_wh": FieldType.FLOAT,
    "power_w": FieldType.FLOAT,
    "energy_total_wh": FieldType.FLOAT,
    "edges": _INT,
    "bounces": _INT,
    "overflows": _INT,
    "late": _INT,
    "queue_high_water": _INT,
    "running": FieldType.BOOLEAN,
}


class EdgeQueue:
    """Single-producer hand-over from the capture thread; never blocks the producer.

    ``deque.append`` and ``popleft`` are atomic in CPython, so the capture thread takes no
    lock; only it writes ``overflows``.
    """

    def __init__(self, capacity: int, channels: int, wake: Callable[[], None]) -> None:
        self.capacity = capacity
        self.items: deque[tuple[int, int]] = deque()
        self.overflows = [0] * channels
        self.received = [0] * channels
        self.high_water = 0
        self._wake = wake
        self._wake_at = max(1, min(capacity // 4, 5000))

    def push(self, channel: int, t_ns: int) -> None:
        """Called by the backend for every edge."""
        self.received[channel] += 1
        size = len(self.items)
        if size >= self.capacity:
            self.overflows[channel] += 1
            return
        self.items.append((channel, t_ns))
        self.high_water = max(self.high_water, size + 1)
        if size + 1 == self._wake_at:
            self._wake()

    def take(self, limit: int) -> list[tuple[int, int]]:
        """Up to ``limit`` edges, oldest first."""
        items = self.items
        count = min(limit, len(items))
        return [items.popleft() for _ in range(count)]


class PulseSource:
    """Counts pulses of every channel of one meter."""

    def __init__(
        self,
        ctx: PluginContext,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        opts = options.parse(ctx.config)
        self.channels: list[Channel] = list(opts.channels)
        self.names = [c.name for c in self.channels]
        self.by_name = {c.name: c for c in self.channels}
        self.measurement = opts.measurement
        self.meter_measurement = opts.meter_measurement
        self.status_measurement = opts.status_measurement
        window_s = opts.window_s
        self.grace_ns = round(opts.grace_s * NS)
        self.route_tag = opts.route_tag
        self.raw_tier = opts.raw_tier
        self.tier_routes = list(opts.tier_routes)
        self.kind = opts.backend
        self.chip = opts.chip
        self.sim_config = opts.sim
        capacity = opts.queue_size
        restart_delay = opts.restart_delay_s
        backoff_max = opts.restart_backoff_max_s

        ctx.serializer.field_types = FIELD_TYPES
        self.wall_ns = wall_ns
        self.monotonic = monotonic
        self.instance = ctx.instance
        self.writer = ctx.writer
        self.queue = EdgeQueue(capacity, len(self.channels), ctx.wakeup)
        self.meter = WindowCounter(round(window_s) * NS, self.grace_ns, self.names)
        self.tiers = [
            (route, WindowCounter(route.window_s * NS, self.grace_ns, self.names))
            for route in self.tier_routes
        ]
        self.last_accepted: list[int | None] = [None] * len(self.channels)
        self.pulses = [0] * len(self.channels)
        self.bounces = [0] * len(self.channels)
        self.changes = ChangeLogger(log)
        self.backoff = Backoff(
            initial=restart_delay, maximum=max(backoff_max, restart_delay), jitter=0.1
        )
        self.backend: Backend | None = None
        self.next_start = float("-inf")
        self.logged_overflows = [0] * len(self.channels)
        self.started_ns = wall_ns()
        self.state = StateFile(ctx.state_path(), min_interval_s=0.0)
        self._restore(self._saved(ctx.checkpoint))
        self.stopping = threading.Event()

    # -- state -------------------------------------------------------------------------------

    def _saved(self, checkpoint: bytes) -> dict[str, Any]:
        """The newest counters: the journal's checkpoint, else the state file.

        The checkpoint is written with the very batch whose pulses it counts, so after any
        crash the counters agree with the raw pulses handed to Telegraf (or replayed from the
        journal). The state file, written at exit, is the fallback for a first start.
        """
        if checkpoint:
            try:
                doc = json.loads(checkpoint)
                if isinstance(doc, dict):
                    self.state.load()  # moves a corrupt file aside all the same
                    return doc
            except ValueError:
                log.error("the journal's checkpoint is unreadable; using the state file")
        return self.state.load() or {}

    def checkpoint(self) -> bytes:
        """The counters after the batch just gathered (stored in the journal with it)."""
        return json.dumps(self._state(), separators=(",", ":")).encode()

    def _restore(self, saved: dict[str, Any]) -> None:
        problems = self.meter.restore(saved.get("meter"))
        tiers_saved = saved.get("tiers") or {}
        for route, counter in self.tiers:
            problems += counter.restore(tiers_saved.get(route.tier))
        last = saved.get("last_accepted") or {}
        for index, name in enumerate(self.names):
            value = last.get(name) if isinstance(last, dict) else None
            if isinstance(value, int):
                self.last_accepted[index] = value
        pending = saved.get("pending") or []
        replayed = 0
        if isinstance(pending, list):
            for item in pending[:MAX_PENDING_SAVED]:
                if (
                    isinstance(item, list)
                    and len(item) == 2
                    and item[0] in self.names
                    and isinstance(item[1], int)
                ):
                    self.queue.items.append((self.names.index(item[0]), item[1]))
                    replayed += 1
        if replayed:
            log.info("replaying %d pulse(s) the last run captured but could not write", replayed)
        for problem in problems:
            log.warning(
                "state file %s: %s; that channel's counters start again", self.state.path, problem
            )
        if saved:
            log.info(
                "restored counters from %s: %s",
                self.state.path,
                ", ".join(f"{n}={self.meter.totals[n]}" for n in self.names),
            )

    def _state(self, pending: Sequence[tuple[int, int]] = ()) -> dict[str, Any]:
        return {
            "version": 1,
            "meter": self.meter.to_json(),
            "tiers": {route.tier: counter.to_json() for route, counter in self.tiers},
            "last_accepted": {
                name: value
                for name, value in zip(self.names, self.last_accepted, strict=True)
                if value is not None
            },
            "pending": [[self.names[c], t] for c, t in pending[:MAX_PENDING_SAVED]],
        }

    # -- the runner's thread -----------------------------------------------------------------

    def gather(self, emit: Emit) -> bool:
        """Turn queued edges into points, close due windows, keep the backend running."""
        self._supervise()
        for channel, t_ns in self.queue.take(BATCH):
            self._edge(channel, t_ns, emit)
        self._log_overflows()
        now = self.wall_ns()
        closed = self.meter.close_due(now, self.started_ns)
        for row in closed:
            self._emit_meter(row, emit)
        for route, counter in self.tiers:
            for row in counter.close_due(now, self.started_ns):
                if row.pulses:
                    self._emit_tier(route, row, emit)
        if closed:
            self._emit_status(emit, closed[0].start_ns)
        return len(self.queue.items) > 0

    def _edge(self, channel: int, t_ns: int, emit: Emit) -> None:
        last = self.last_accepted[channel]
        spec = self.channels[channel]
        if last is not None and 0 <= t_ns - last < spec.min_interval_ns:
            self.bounces[channel] += 1
            return
        self.last_accepted[channel] = t_ns
        self.pulses[channel] += 1
        name = spec.name
        tags = {"PulseType": name}
        if self.route_tag:
            tags[self.route_tag] = self.raw_tier
        emit(Point(self.measurement, tags, {"Pulse": 1}, t_ns))
        row = self.meter.add(name, t_ns)
        if row is not None:
            self._emit_meter(row, emit)
        for route, counter in self.tiers:
            row = counter.add(name, t_ns)
            if row is not None:
                self._emit_tier(route, row, emit)

    def _fields(self, row: WindowRow, window_s: int) -> dict[str, int | float]:
        energy = row.pulses * self.by_name[row.channel].wh_per_pulse
        return {"pulses": row.pulses, "energy_wh": energy, "power_w": energy * 3600 / window_s}

    def _emit_meter(self, row: WindowRow, emit: Emit) -> None:
        if not self.meter_measurement:
            return
        fields = self._fields(row, self.meter.window_ns // NS)
        fields["pulses_total"] = row.pulses_total
        fields["energy_total_wh"] = row.pulses_total * self.by_name[row.channel].wh_per_pulse
        tags = {"PulseType": row.channel}
        if self.route_tag:
            tags[self.route_tag] = self.raw_tier
        emit(Point(self.meter_measurement, tags, fields, row.start_ns))

    def _emit_tier(self, route: TierRoute, row: WindowRow, emit: Emit) -> None:
        tags = {"PulseType": row.channel, self.route_tag: route.tier}
        emit(Point(self.measurement, tags, self._fields(row, route.window_s), row.start_ns))

    def _emit_status(self, emit: Emit, window_ns: int) -> None:
        if not self.status_measurement:
            return
        backend = self.backend.name if self.backend is not None else "none"
        for index, name in enumerate(self.names):
            tags = {"PulseType": name, "source": self.instance, "backend": backend}
            if self.route_tag:
                tags[self.route_tag] = self.raw_tier
            fields: dict[str, int | float | bool | str] = {
                "edges": self.queue.received[index],
                "pulses": self.pulses[index],
                "bounces": self.bounces[index],
                "overflows": self.queue.overflows[index],
                "late": self.meter.late_dropped[name],
                "queue_high_water": self.queue.high_water,
                "running": self.backend is not None,
            }
            fields.update(self.writer.journal_fields())
            emit(Point(self.status_measurement, tags, fields, window_ns))

    def _log_overflows(self) -> None:
        """Log a channel's drops when its count passes 1, 10, 100, ... since the last gather."""
        for index, count in enumerate(self.queue.overflows):
            before = self.logged_overflows[index]
            if count == before:
                continue
            self.logged_overflows[index] = count
            if worth_logging_between(before, count):
                log.warning(
                    "channel %s: edge queue full (queue_size = %d), %d edge(s) dropped so "
                    "far; raise queue_size or check for a noisy input (min_interval)",
                    self.names[index],
                    self.queue.capacity,
                    count,
                )

    # -- the backend -------------------------------------------------------------------------

    def _open_backend(self) -> Backend:
        if self.kind == "sim":
            assert self.sim_config is not None  # noqa: S101 - set whenever kind is sim
            return SimBackend(self.channels, self.sim_config, wall_ns=self.wall_ns)
        return open_backend(self.kind, self.channels, chip=self.chip)

    def _supervise(self) -> None:
        backend = self.backend
        if backend is not None:
            problem = backend.problem()
            if problem is None:
                return
            backend.stop()
            self.backend = None
            self._schedule_restart("edge capture stopped", problem)
        now = self.monotonic()
        if now < self.next_start or self.stopping.is_set():
            return
        try:
            backend = self._open_backend()
            backend.start(self.queue.push)
        except Exception as exc:
            self._schedule_restart("cannot start edge capture", str(exc) or repr(exc))
            return
        self.backend = backend
        self.changes.recovered("backend", f"edge capture running ({backend.name})")
        log.info(
            "counting pulses with backend %s on %s",
            backend.name,
            ", ".join(f"{c.name}=GPIO{c.pin}" for c in self.channels),
        )

    def _schedule_restart(self, what: str, detail: str) -> None:
        delay = self.backoff.next_delay()
        self.next_start = self.monotonic() + delay
        if not self.changes.problem(
            "backend",
            f"{what}: {detail}; retrying with backoff up to "
            f"{format_duration(self.backoff.maximum)}",
            logging.ERROR,
        ):
            log.debug("%s: %s; next try in %.1f s", what, detail, delay)

    # -- shutdown ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop capture, write what is queued, and save counters (and unwritten edges)."""
        self.stopping.set()
        if self.backend is not None:
            self.backend.stop()
            self.backend = None
        pending = list(self.queue.items)
        self.queue.items.clear()
        if not pending:
            self.state.save(self._state())
            return
        # Counters as they were before these edges, with the edges kept for a replay: what is
        # saved when Telegraf can no longer take them (a replayed pulse overwrites itself).
        before = self._state(pending)
        points: list[Point] = []
        for channel, t_ns in pending:
            self._edge(channel, t_ns, points.append)
        try:
            self.writer.write_points(points, meta=self.checkpoint())
        except (BrokenPipeError, OSError, ValueError) as exc:
            if self.writer.journaled:
                log.info("Telegraf has gone; %d pulse(s) wait in the journal", len(pending))
            else:
                log.warning(
                    "could not write %d pulse(s) at shutdown (%s); saved for the next start",
                    len(pending),
                    exc,
                )
                self.state.save(before)
                return
        self.state.save(self._state())


SPEC = PluginSpec("gpio_pulse", PulseSource, default_interval_s=DEFAULT_INTERVAL_S)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``bridge-gpio-pulse`` and ``python -m telegraf_bridge.plugins.gpio_pulse``."""
    return SPEC.main(argv)
