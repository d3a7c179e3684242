"""From the config to a client: load the settings, pick the sink, open its client.

Why here: ``healthcheck``, ``rssi-report``, ``query``, ``delete-data``, preflight and the admin
commands all start the same way: the sink named by ``--sink`` (or the first enabled InfluxDB
one), its credential read from the environment or a file, a client of its version.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from telegraf_bridge.cli.config_model import FileSink, InfluxSink
from telegraf_bridge.cli.influx.auth import read_credential
from telegraf_bridge.cli.influx.client import Client
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.cli.influx.versions import version_of

__all__ = ["load_query_settings", "open_sink", "select_sink"]
from telegraf_bridge.cli.context import bridge_context
from telegraf_bridge.cli.settings import InvalidConfig, Settings
from telegraf_bridge.plugins.common import ConfigError, parse_duration


def load_query_settings(config_path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """The settings to pick a sink from: ``config_path``, or the environment alone.

    Without a config file the seeds' variables (``INFLUX_URL``/``INFLUX_DB``, ...) and the
    ``BRIDGE_*`` overrides still describe sinks, so a seed's ``.env`` is enough to run a
    health check. An invalid config is a ``config_error`` listing every problem.
    """
    try:
        if config_path is None:
            return bridge_context().settings(None, env, text="", base_dir=Path.cwd())
        return bridge_context().settings(config_path, env)
    except InvalidConfig as exc:
        raise SinkError("config_error", str(exc)) from None


def select_sink(settings: Settings, name: str | None) -> InfluxSink:
    """The sink to query: ``name``, or the first enabled InfluxDB sink.

    Raises :class:`SinkError` (``config_error``) naming the sinks there are when ``name`` is
    unknown, disabled or a file sink, or when no InfluxDB sink is configured.
    """
    queryable = settings.active_influx_sinks()
    listing = ", ".join(f"{s.name} ({s.type})" for s in settings.sinks) or "none"
    if name is None:
        if not queryable:
            raise SinkError(
                "config_error",
                f"no enabled InfluxDB sink in the config to query (sinks: {listing})",
            )
        return queryable[0]
    for sink in settings.sinks:
        if sink.name != name:
            continue
        if not sink.enabled:
            raise SinkError("config_error", f"sink {name!r} is disabled (enabled: false)")
        if isinstance(sink, FileSink):
            raise SinkError(
                "config_error", f"sink {name!r} is a {sink.type} sink; it cannot be queried"
            )
        return sink
    raise SinkError("config_error", f"no sink named {name!r}; the config has: {listing}")


def open_sink(
    sink: InfluxSink,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float | None = None,
) -> Client:
    """The client for a validated InfluxDB sink (from ``Settings.active_influx_sinks``).

    ``timeout`` (seconds per socket operation) defaults to the sink's own ``timeout``.
    """
    environ = os.environ if env is None else env
    try:
        seconds = timeout if timeout is not None else parse_duration(sink.timeout)
    except ConfigError as exc:
        raise SinkError("config_error", str(exc)) from None
    client = version_of(sink).client
    credential = read_credential(sink, environ)
    if client.requires_secret and not credential.secret:
        raise SinkError("config_error", f"sink {sink.name!r} has no token")
    return client(sink, credential, timeout=seconds)
