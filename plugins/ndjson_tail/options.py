"""The options of an ``ndjson_tail`` source, read by the plugin and checked by ``bridge-cli``.

Pure parsing (no file is opened or globbed), so render-config can refuse a bad option before
anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from telegraf_bridge.plugins.common._config import ConfigError, Section
from telegraf_bridge.plugins.common._lineprotocol import FieldType
from telegraf_bridge.plugins.ndjson_tail.convert import TIMESTAMP_FORMATS
from telegraf_bridge.plugins.ndjson_tail.files import INITIAL_READ_OFFSETS

# Options that name files; bridge-cli anchors relative ones at the config file's directory.
PATH_KEYS = ("files",)
DEFAULT_FIELD_TYPES = {"model_id": "integer"}


@dataclass(frozen=True)
class NdjsonOptions:
    """Which files to tail and how their records become points."""

    files: tuple[str, ...]
    field_types: dict[str, FieldType]
    measurement: str
    timestamp_key: str
    timestamp_format: str
    tag_keys: tuple[str, ...]
    field_containers: tuple[str, ...]
    keep_container_prefix: bool
    separator: str
    max_depth: int
    fallback: str
    fallback_container: str
    fallback_measurement: str
    batch_lines: int
    max_future_s: float
    commit_delay_s: float
    state_interval_s: float
    buffer_max_size_mb: int
    buffer_directory: Path | None
    watch: str
    initial_read_offset: str
    max_line_bytes: int
    complete_after_s: float


def _string_list(sec: Section, key: str, default: list[str]) -> tuple[str, ...]:
    value = sec.raw(key)
    if value is None:
        return tuple(default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{sec.where}.{key} = {value!r} is invalid: expected a list of strings")
    return tuple(value)


def _field_types(sec: Section) -> dict[str, FieldType]:
    table = sec.table("field_types")
    configured = {name: table.raw(name) for name in table.keys()}  # noqa: SIM118 - a Section
    declared: dict[str, FieldType] = {}
    for name, kind in {**DEFAULT_FIELD_TYPES, **configured}.items():
        try:
            declared[name] = FieldType(kind)
        except ValueError:
            raise ConfigError(
                f"{sec.where}.field_types.{name} = {kind!r} is invalid: expected one of "
                + ", ".join(repr(t.value) for t in FieldType)
            ) from None
    return declared


def parse(sec: Section) -> NdjsonOptions:
    """Validate an ndjson_tail source's options; every problem names its key."""
    files = _string_list(sec, "files", [])
    opts = NdjsonOptions(
        files=files,
        field_types=_field_types(sec),
        measurement=sec.string("measurement", "smartsolar"),
        timestamp_key=sec.string("timestamp_key", "timestamp"),
        timestamp_format=sec.string("timestamp_format", "auto", choices=TIMESTAMP_FORMATS),
        tag_keys=_string_list(sec, "tag_keys", ["device_name", "device_address"]),
        field_containers=_string_list(sec, "field_containers", ["parsed_data"]),
        keep_container_prefix=sec.boolean("keep_container_prefix", False),
        separator=sec.string("separator", "_"),
        max_depth=sec.integer("max_depth", 8, minimum=1),
        fallback=sec.string("fallback", "skip", choices=("skip", "raw")),
        fallback_container=sec.string("fallback_container", "readings"),
        fallback_measurement=sec.string("fallback_measurement", "smartsolar_raw"),
        batch_lines=sec.integer("batch_lines", 1000, minimum=1),
        max_future_s=sec.duration("max_future", 86400.0),
        commit_delay_s=sec.duration("commit_delay", 30.0, minimum=0.0),
        state_interval_s=sec.duration("state_interval", 10.0, minimum=0.0),
        buffer_max_size_mb=sec.integer("buffer_max_size_mb", 0, minimum=0),
        buffer_directory=Path(d) if (d := sec.string("buffer_directory", "")) else None,
        watch=sec.string("watch", "auto", choices=("auto", "inotify", "poll")),
        initial_read_offset=sec.string(
            "initial_read_offset", "saved-or-beginning", choices=INITIAL_READ_OFFSETS
        ),
        max_line_bytes=sec.integer("max_line_bytes", 1024 * 1024, minimum=1024),
        complete_after_s=sec.duration("complete_after", 300.0),
    )
    sec.check_unknown()
    if not files:
        raise ConfigError(
            f"{sec.where}.files is required: a list of globs such as "
            '["/data/smartsolar-v1/*.ndjson"]'
        )
    if opts.buffer_max_size_mb and opts.buffer_directory is None:
        raise ConfigError(f"{sec.where}.buffer_max_size_mb needs buffer_directory (Telegraf's)")
    return opts
