"""iotflow source: the HTTP listener of IoTFlow device telemetry, as an execd plugin.

The MQTT side of an iotflow source is Telegraf's own ``inputs.mqtt_consumer``; this process
serves the HTTP side (``POST /api/v1/devices/telemetry``, see http_listener.py) and writes a
status row (``iotflow_http_status``) at every gather with its request counters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from telegraf_bridge.plugins.common import ConfigError, Emit, PluginContext, PluginSpec, Point
from telegraf_bridge.plugins.iotflow import options as iotflow_options
from telegraf_bridge.plugins.iotflow import payload
from telegraf_bridge.plugins.iotflow.http_listener import (
    ListenerError,
    ListenerSettings,
    TelemetryListener,
)
from telegraf_bridge.plugins.iotflow.registry import RegistryError
from telegraf_bridge.plugins.iotflow.registry_watcher import RegistryWatcher

log = logging.getLogger("telegraf_bridge.plugins.iotflow")

STATUS_MEASUREMENT = "iotflow_http_status"
CLOCK_CHECK_S = 1.0


class CachedCheck:
    """A boolean check run at most once per ``every_s`` (the clock probe is not free)."""

    def __init__(
        self,
        check: Callable[[], bool],
        every_s: float = CLOCK_CHECK_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._every_s = every_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._value = True
        self._next = float("-inf")

    def __call__(self) -> bool:
        """The last result, refreshed when it is older than ``every_s``."""
        with self._lock:
            now = self._monotonic()
            if now >= self._next:
                self._value = self._check()
                self._next = now + self._every_s
            return self._value


class IotflowSource:
    """Runs the HTTP listener; each gather reports its counters."""

    def __init__(self, ctx: PluginContext) -> None:
        # parse() fails on a typo (the shim has read its own keys by now) before a port is bound.
        opts = iotflow_options.parse(ctx.config)
        self.instance = ctx.instance
        self.writer = ctx.writer
        self.interval_ns = max(1, round(ctx.interval_s * 1e9))
        self.listener: TelemetryListener | None = None
        self.watcher: RegistryWatcher | None = None
        if not opts.http.enabled:
            log.info("http.enabled = false: no HTTP listener (MQTT is Telegraf's own input)")
            return
        try:
            self.watcher = RegistryWatcher(opts.registry)
        except RegistryError as exc:
            raise ConfigError(f"iotflow.registry: {exc}") from None
        if not self.watcher.registry.devices:
            log.warning(
                "the device registry %s has no devices: every request is refused until "
                "`bridge-cli devices add` registers one",
                opts.registry,
            )
        http = opts.http
        settings = ListenerSettings(
            host=http.host,
            port=http.port,
            workers=http.workers,
            max_body_bytes=http.max_body_bytes,
            rules=payload.Rules(
                default_type=http.default_type,
                string_tags=frozenset(opts.string_tags),
                max_points=http.max_points,
                time_floor_ns=ctx.serializer.time_floor_ns,
                reserved_types=frozenset({STATUS_MEASUREMENT}),
            ),
            tls_cert=http.tls_cert,
            tls_key=http.tls_key,
        )
        try:
            self.listener = TelemetryListener(
                settings,
                self.watcher,
                ctx.writer,
                clock_ok=CachedCheck(ctx.clock_guard.is_sane),
                on_output_gone=ctx.wakeup,
            )
            self.listener.start()
        except ListenerError as exc:
            raise ConfigError(f"iotflow.http: {exc}") from None

    def gather(self, emit: Emit) -> None:
        """One status row with the listener's counters since start-up."""
        if self.listener is None or self.watcher is None:
            return
        registry = self.watcher.current()  # also picks up a changed file without traffic
        now = time.time_ns()
        fields: dict[str, float | int | bool | str] = dict(self.listener.stats.snapshot())
        fields["busy_workers"] = self.listener.busy_workers()
        fields["registry_devices"] = len(registry.devices)
        fields["registry_reloads"] = self.watcher.reloads
        fields["registry_reload_errors"] = self.watcher.reload_errors
        fields.update(self.writer.journal_fields())
        tags = {"source": self.instance}
        # Stamped at the interval's start: a second gather in the same interval replaces it.
        emit(Point(STATUS_MEASUREMENT, tags, fields, now - now % self.interval_ns))

    def close(self) -> None:
        """Stop accepting and let requests in progress finish."""
        if self.listener is not None:
            self.listener.stop()
            self.listener = None


SPEC = PluginSpec("iotflow", IotflowSource)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``bridge-iotflow`` and ``python -m telegraf_bridge.plugins.iotflow``."""
    return SPEC.main(argv)
