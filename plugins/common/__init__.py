"""The execd shim shared by every plugin: serializer, runner, logging, state, backoff, clock."""

from telegraf_bridge.plugins.common._backoff import Backoff, retry
from telegraf_bridge.plugins.common._clock import ClockGuard, kernel_clock_synchronised
from telegraf_bridge.plugins.common._config import (
    ConfigError,
    Section,
    format_duration,
    load_toml,
    parse_duration,
)
from telegraf_bridge.plugins.common._delivery import DeliveryTracker
from telegraf_bridge.plugins.common._lineprotocol import (
    FieldType,
    FieldValue,
    LineProtocolSerializer,
    Point,
    SkipCounter,
    worth_logging,
    worth_logging_between,
)
from telegraf_bridge.plugins.common._log import ChangeLogger, setup_logging
from telegraf_bridge.plugins.common._main import PluginContext, PluginSpec, plugin_main
from telegraf_bridge.plugins.common._runner import Emit, LineWriter, Runner, Source
from telegraf_bridge.plugins.common._state import StateFile, write_atomic
from telegraf_bridge.plugins.common._timefmt import format_rfc3339_ns, parse_rfc3339_ns

__all__ = [
    "Backoff",
    "ChangeLogger",
    "ClockGuard",
    "ConfigError",
    "DeliveryTracker",
    "Emit",
    "FieldType",
    "FieldValue",
    "LineProtocolSerializer",
    "LineWriter",
    "PluginContext",
    "PluginSpec",
    "Point",
    "Runner",
    "Section",
    "SkipCounter",
    "Source",
    "StateFile",
    "format_duration",
    "format_rfc3339_ns",
    "kernel_clock_synchronised",
    "load_toml",
    "parse_duration",
    "parse_rfc3339_ns",
    "plugin_main",
    "retry",
    "setup_logging",
    "worth_logging",
    "worth_logging_between",
    "write_atomic",
]
