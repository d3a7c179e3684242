"""Hoymiles DTU poller: ``dtu``, ``inverter`` and ``port`` points from Modbus TCP or WiFi.

Why a poll loop of our own rather than the seed's: the seed stamped points with the write time,
wrote one inverter point per port row, summed offline rows into the totals and wrote zeros at
night. Here a point carries the DTU's time (WiFi) or the start of its poll window (Modbus), so a
replayed poll is byte-identical; offline inverters and lifetime counters that go down are left
out and counted; a DTU that goes away is logged once, polled with backoff, and logged once when
it is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from telegraf_bridge.plugins.common import (
    Backoff,
    ChangeLogger,
    Emit,
    PluginContext,
    PluginSpec,
    StateFile,
    format_duration,
)
from telegraf_bridge.plugins.hoymiles import options
from telegraf_bridge.plugins.hoymiles.snapshot import (
    ALL_FIELD_TYPES,
    LifetimeGuard,
    to_points,
)
from telegraf_bridge.plugins.hoymiles.transport import PollError, Transport

log = logging.getLogger("telegraf_bridge.plugins.hoymiles")

NS = 1_000_000_000
DEFAULT_INTERVAL_S = 60.0


def build_transport(kind: str, host: str, port: int, unit_id: int, timeout_s: float) -> Transport:
    """The transport named in the config; a missing library is a config error (raised there)."""
    if kind == "wifi":
        from telegraf_bridge.plugins.hoymiles.wifi import WifiTransport  # noqa: PLC0415 - optional extra

        return WifiTransport(host, port, timeout_s)
    from telegraf_bridge.plugins.hoymiles.modbus import ModbusTransport  # noqa: PLC0415 - optional extra

    return ModbusTransport(host, port, unit_id, timeout_s)


class HoymilesSource:
    """One DTU, polled once per interval (and less often while it fails)."""

    def __init__(
        self,
        ctx: PluginContext,
        *,
        transport: Transport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        opts = options.parse(ctx.config, interval_s=ctx.interval_s, require_host=transport is None)
        kind, host, port, unit_id, timeout_s = (
            opts.transport,
            opts.host,
            opts.port,
            opts.unit_id,
            opts.timeout_s,
        )
        self.dtu_name = opts.dtu_name
        self.names = opts.names
        self.use_dtu_time = opts.use_dtu_time
        self.max_clock_skew_ns = round(opts.max_clock_skew_s * NS)
        backoff_max = opts.backoff_max_s
        self.interval_s = ctx.interval_s
        self.interval_ns = round(ctx.interval_s * NS)
        ctx.serializer.field_types = dict(ALL_FIELD_TYPES)
        self.counter = ctx.serializer.counter
        self.monotonic = monotonic
        self.wall_ns = wall_ns
        self.transport = transport or build_transport(kind, host, port, unit_id, timeout_s)
        self.backoff = Backoff(
            initial=ctx.interval_s, maximum=max(backoff_max, ctx.interval_s), jitter=0.1
        )
        self.next_poll = float("-inf")
        self.changes = ChangeLogger(log)
        self.failed_polls = 0
        self.down_since = 0.0
        self.state = StateFile(ctx.state_path(), min_interval_s=ctx.interval_s)
        saved = self.state.load() or {}
        lifetime = saved.get("lifetime_wh", {})
        self.guard = LifetimeGuard(
            {str(k): int(v) for k, v in lifetime.items()} if isinstance(lifetime, dict) else {}
        )
        log.info(
            "polling %s DTU %r at %s every %s",
            kind,
            self.dtu_name,
            self.transport.endpoint,
            format_duration(ctx.interval_s),
        )

    def gather(self, emit: Emit) -> None:
        """Poll once unless backing off; emit the points of a good poll."""
        now = self.monotonic()
        if now < self.next_poll:
            return
        window_ns = (self.wall_ns() // self.interval_ns) * self.interval_ns
        try:
            snapshot = self.transport.poll()
        except PollError as exc:
            self._failed(now, str(exc))
            return
        self._answered(now)
        stamp = window_ns
        if self.use_dtu_time and snapshot.time_ns is not None:
            skew = abs(snapshot.time_ns - self.wall_ns())
            if skew <= self.max_clock_skew_ns:
                stamp = snapshot.time_ns
                self.changes.recovered("clock", f"DTU {self.dtu_name!r} clock agrees again")
            else:
                self.changes.problem(
                    "clock",
                    f"DTU {self.dtu_name!r} clock is off by {skew / NS:.0f} s; stamping points "
                    "with the poll window instead",
                )
        points, rejected = to_points(
            snapshot, dtu_name=self.dtu_name, time_ns=stamp, guard=self.guard, names=self.names
        )
        for detail in rejected.counter_regressions:
            self.counter.count("lifetime_counter_regression", detail)
        linked = len(snapshot.inverters) - len(rejected.offline_inverters)
        if snapshot.inverters and linked == 0:
            self.changes.problem(
                "offline",
                f"DTU {self.dtu_name!r}: no inverter is linked (night, or the inverters are "
                "off); writing nothing until one reports",
                logging.INFO,
            )
        elif linked:
            self.changes.recovered("offline", f"DTU {self.dtu_name!r}: {linked} inverter(s) report")
        for point in points:
            emit(point)
        self.state.save_if_due({"lifetime_wh": self.guard.highest})

    def _failed(self, now: float, reason: str) -> None:
        if self.failed_polls == 0:
            self.down_since = now
        self.failed_polls += 1
        delay = self.backoff.next_delay()
        self.next_poll = now + delay
        self.changes.problem(
            "reach",
            f"DTU {self.dtu_name!r} at {self.transport.endpoint} does not answer ({reason}); "
            f"writing nothing, retrying with backoff up to "
            f"{format_duration(self.backoff.maximum)}",
        )
        log.debug("poll failed (%s); next attempt in %.1f s", reason, delay)

    def _answered(self, now: float) -> None:
        if self.failed_polls:
            self.changes.recovered(
                "reach",
                f"DTU {self.dtu_name!r} answers again after {self.failed_polls} failed poll(s) "
                f"over {now - self.down_since:.0f} s",
            )
        self.failed_polls = 0
        self.backoff.reset()
        self.next_poll = float("-inf")

    def close(self) -> None:
        """Save the lifetime counters and release the transport."""
        self.state.save({"lifetime_wh": self.guard.highest})
        self.transport.close()


SPEC = PluginSpec("hoymiles", HoymilesSource, default_interval_s=DEFAULT_INTERVAL_S)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``bridge-hoymiles`` and ``python -m telegraf_bridge.plugins.hoymiles``."""
    return SPEC.main(argv)
