"""Helpers for plugin authors' tests, shipped with the bundle.

Only what a plugin's own tests need: its context as Telegraf's execd runs it (``plugin_ctx``)
and a strict reader of the line protocol it emits (``parse_lines``), which reads exactly as
Telegraf's parser does. The bundle's own test servers (InfluxDB fakes, influxd, Mosquitto and
Telegraf runners) live in the repository's tests/rig and are not installed.
"""

from telegraf_bridge.testing._lineprotocol import (
    LineProtocolError,
    ParsedPoint,
    parse_line,
    parse_lines,
)
from telegraf_bridge.testing._plugin import plugin_ctx

__all__ = [
    "LineProtocolError",
    "ParsedPoint",
    "parse_line",
    "parse_lines",
    "plugin_ctx",
]
