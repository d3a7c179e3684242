"""What the three admin commands share: config -> sink -> layout -> backend, and error output.

Each step turns its own failure into an :class:`AdminError` whose message names the problem and
whose next steps say how to fix it, so every command prints failures the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import click
from telegraf_bridge.cli.config_model import InfluxSink
from telegraf_bridge.cli.influx.admin.base import AdminBackend, AdminError
from telegraf_bridge.cli.influx.admin.registry import backend_for
from telegraf_bridge.cli.influx.sinks import load_query_settings, select_sink
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.cli.settings import Settings
from telegraf_bridge.cli.tiers import Layout, layout_from_settings, written_names
from telegraf_bridge.plugins.common import ConfigError

MARK_OK = "✓"
MARK_FAIL = "✗"
MARK_SKIP = "-"


@dataclass
class Admin:
    """A chosen sink with its layout and backend."""

    settings: Settings
    sink: InfluxSink
    layout: Layout
    backend: AdminBackend

    def header(self, command: str) -> str:
        """``<command>: sink NAME -> TARGET``."""
        return f"{command}: sink {self.sink.name} -> {self.backend.target()}"


def load(config_path: Path | None, env: Mapping[str, str] | None = None) -> tuple[Settings, Layout]:
    """The validated settings and the tier layout they describe."""
    try:
        settings = load_query_settings(config_path, env)
        return settings, layout_from_settings(settings)
    except SinkError as exc:
        raise AdminError(
            str(exc),
            ("fix the problems listed above (bridge-cli config-reference lists every key)",),
        ) from None
    except ConfigError as exc:
        raise AdminError(f"downsampling layout: {exc}", ("fix the gpio_pulse sources",)) from None


def open_admin(
    config_path: Path | None,
    sink_name: str | None,
    env: Mapping[str, str] | None = None,
    *,
    resample_every_s: int | None = None,
) -> Admin:
    """Load the config, pick the sink (``--sink`` or the first InfluxDB one), build its backend."""
    environ = os.environ if env is None else env
    settings, layout = load(config_path, environ)
    try:
        sink = select_sink(settings, sink_name)
    except SinkError as exc:
        raise AdminError(str(exc), ("name an enabled InfluxDB sink with --sink NAME",)) from None
    backend = backend_for(
        sink,
        environ,
        write_names=written_names(settings, layout, sink),
        resample_every_s=resample_every_s,
    )
    return Admin(settings, sink, layout, backend)


def fail(exc: AdminError) -> NoReturn:
    """Print an AdminError with its numbered next steps to stderr and exit 1."""
    click.echo(f"{MARK_FAIL} ERROR: {exc}", err=True)
    if exc.next_steps:
        click.echo("Next steps:", err=True)
        for number, step in enumerate(exc.next_steps, start=1):
            click.echo(f"  {number}. {step}", err=True)
    click.get_current_context().exit(1)


def default_secrets_dir(config_path: Path | None) -> Path:
    """``secrets/`` next to the config file, or ``./secrets`` without one."""
    return (config_path.parent if config_path else Path()) / "secrets"
