"""The validated ``bridge.yaml`` as typed objects: what every command reads after loading it.

Why: :mod:`schema` is the one table of options (validation, environment overrides, the generated
reference). Once a config passed it, its values travel in these frozen dataclasses instead of
plain dictionaries, so strict mypy checks every read (``sink.databse`` is a type error, where
``sink["databse"]`` was a ``KeyError`` at run time) and a sink's kind is a class that
``isinstance`` narrows. A test keeps each class's fields equal to its schema section, key by key
and type by type, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from telegraf_bridge.cli import schema


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """The ``agent`` section (see :data:`schema.AGENT` for each option's meaning)."""

    interval: str
    round_interval: bool
    flush_interval: str
    flush_jitter: str
    metric_batch_size: int
    metric_buffer_limit: int
    buffer_strategy: str
    buffer_directory: str
    buffer_max_size_mb: int
    state_directory: str
    plugin_config_directory: str
    python: str
    hostname: str
    omit_hostname: bool
    buffer_disk_sync: bool
    plugin_host: bool
    debug: bool
    quiet: bool
    logfile: str
    health_listen: str
    internal_metrics: bool
    require_clock_sync: bool
    time_floor: str


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    """One entry of ``sources``.

    ``options`` are the plugin's options as written (rendered into its own config file);
    ``parsed`` is what the plugin's own parser (its manifest's ``parse``) made of them: its
    typed options, or None for a disabled source, whose options are not checked.
    """

    name: str
    plugin: str
    enabled: bool
    signal: str
    interval: str
    restart_delay: str
    options: Mapping[str, object]
    parsed: object = None


@dataclass(frozen=True, kw_only=True)
class SinkBase:
    """What every sink has."""

    name: str
    type: str
    enabled: bool


@dataclass(frozen=True, kw_only=True)
class HttpSink(SinkBase):
    """What every InfluxDB sink has: an HTTP endpoint."""

    url: str
    timeout: str
    content_encoding: str
    tls_ca: str
    insecure_skip_verify: bool


@dataclass(frozen=True, kw_only=True)
class V1Sink(HttpSink):
    """``type: influxdb_v1``: a database, a retention policy, a user and its password."""

    database: str
    retention_policy: str
    username: str
    password_env: str
    skip_database_creation: bool


@dataclass(frozen=True, kw_only=True)
class TokenSink(HttpSink):
    """An InfluxDB sink that authenticates with an API token (v2/Cloud and 3)."""

    token_env: str
    token_file: str


@dataclass(frozen=True, kw_only=True)
class V2Sink(TokenSink):
    """``type: influxdb_v2``: InfluxDB Cloud or OSS 2.x."""

    organization: str
    bucket: str


@dataclass(frozen=True, kw_only=True)
class V3Sink(TokenSink):
    """``type: influxdb_v3``: InfluxDB 3 Core or Enterprise."""

    database: str
    sync: bool


@dataclass(frozen=True, kw_only=True)
class FileSink(SinkBase):
    """``type: file``: points appended to a local file."""

    path: str
    format: str
    rotation_max_size_mb: int


InfluxSink = V1Sink | V2Sink | V3Sink
Sink = InfluxSink | FileSink

SINK_CLASSES: Mapping[str, type[Sink]] = {
    "influxdb_v1": V1Sink,
    "influxdb_v2": V2Sink,
    "influxdb_v3": V3Sink,
    "file": FileSink,
}


@dataclass(frozen=True, kw_only=True)
class DownsamplingConfig:
    """The ``downsampling`` section: the four tiers of meter pulses and their route tag."""

    raw_name: str
    raw_retention: str
    name_1m: str
    retention_1m: str
    name_5m: str
    retention_5m: str
    name_1h: str
    retention_1h: str
    lookback: str
    route_tag: str


_T = TypeVar("_T")


def build(cls: type[_T], values: Mapping[str, Any], opts: tuple[schema.Opt, ...]) -> _T:
    """``cls`` from validated ``values``; a key they lack takes its schema default.

    The defaults matter to callers that describe a config only in part (a telegraf.conf read
    back by ``check-config`` names no plugin directory, for example).
    """
    defaults = {opt.key: opt.default for opt in opts}
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]  # cls is a dataclass
    known = {k: v for k, v in {**defaults, **values}.items() if k in names}
    return cls(**known)


def sink_from(values: Mapping[str, Any]) -> Sink:
    """The typed sink of a validated sink mapping, chosen by its ``type``."""
    kind = str(values["type"])
    return build(SINK_CLASSES[kind], values, schema.SINK_COMMON + schema.SINK_TYPE_OPTS[kind])


def agent_from(values: Mapping[str, Any]) -> AgentConfig:
    """The typed agent section of validated values (missing keys take their defaults)."""
    return build(AgentConfig, values, schema.AGENT)


def downsampling_from(values: Mapping[str, Any]) -> DownsamplingConfig:
    """The typed downsampling section of validated values (missing keys: defaults)."""
    return build(DownsamplingConfig, values, schema.DOWNSAMPLING)


_S = TypeVar("_S", V1Sink, V2Sink, V3Sink)


def expect(sink: InfluxSink, kind: type[_S]) -> _S:
    """``sink`` as the version a client or backend serves; another version is a bug."""
    if not isinstance(sink, kind):
        raise TypeError(f"sink {sink.name!r} is a {sink.type} sink, not a {kind.__name__}")
    return sink
