"""The options by which every query command picks its sink, declared once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def sink_options(func: F) -> F:
    """``--config`` (or ``BRIDGE_CONFIG``) and ``--sink``, as ``config_path`` and ``sink_name``."""
    func = click.option(
        "--sink", "sink_name", help="Sink to query; default: the first enabled InfluxDB one."
    )(func)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="BRIDGE_CONFIG",
        help="bridge.yaml naming the sinks (env: BRIDGE_CONFIG); without it the sinks come "
        "from the environment alone (the seeds' INFLUX_* variables, BRIDGE_SINK_*).",
    )(func)
