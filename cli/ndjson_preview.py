"""What ndjson_tail would skip in NDJSON lines, counted by reason, with the option that changes it.

Why: ``migrate-ndjson`` is where a SmartSolar user first sees their history. A record the plugin
will later skip (stamped before ``agent.time_floor``, without a timestamp, without a field
container, ...) is only a ``W!`` line in telegraf.log by then; here it is shown on the console
while the user is still looking, with its count and the fix. The rules are the plugin's own:
the same converter (``converter_from_config``), the same serializer with the same floor, and
the same ``max_future`` check, applied to the lines in file order (so learned field types
match the plugin's).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from telegraf_bridge.plugins.common import (
    ConfigError,
    LineProtocolSerializer,
    Section,
    SkipCounter,
    format_duration,
)
from telegraf_bridge.plugins.common._clock import DEFAULT_TIME_FLOOR, parse_time_floor
from telegraf_bridge.plugins.ndjson_tail import options as ndjson_options
from telegraf_bridge.plugins.ndjson_tail.convert import (
    RecordError,
    converter_from_options,
    load_record,
)

NS = 1_000_000_000
# Skip reasons that drop the whole record (the others drop one field of it).
RECORD_REASONS = frozenset(
    {
        "empty_line",
        "invalid_json",
        "invalid_utf8",
        "not_an_object",
        "too_deeply_nested",
        "missing_timestamp",
        "invalid_timestamp",
        "no_field_container",
        "timestamp_in_future",
        "timestamp_before_floor",
        "point_without_fields_skipped",
        "invalid_measurement",
    }
)
# The preview's counter must not log: its counts are printed as a summary instead.
_quiet = logging.getLogger("telegraf_bridge.cli.ndjson_preview")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class SkipPreview:
    """Feeds NDJSON lines through ndjson_tail's rules and counts what it would skip.

    ``options`` are the ndjson_tail source's options (empty: the plugin's defaults);
    ``time_floor`` is ``agent.time_floor``, which a ``time_floor`` option of the source
    overrides as it does in the rendered plugin config.
    """

    def __init__(
        self,
        options: Mapping[str, Any] | None = None,
        time_floor: str = DEFAULT_TIME_FLOOR,
        *,
        now_ns: int | None = None,
    ) -> None:
        opts = dict(options or {})
        self.floor_text = str(opts.pop("time_floor", time_floor))
        # The preview reads given files, not the source's globs, which may be unset here.
        opts.setdefault("files", ["-"])
        parsed = ndjson_options.parse(Section(opts, "ndjson_tail"))
        self.converter = converter_from_options(parsed)
        self.max_future_s = parsed.max_future_s
        try:
            floor_ns = parse_time_floor(self.floor_text)
        except ValueError:
            raise ConfigError(
                f"time_floor = {self.floor_text!r} is invalid: expected an RFC 3339 time"
            ) from None
        self.counter = SkipCounter(_quiet)
        self.serializer = LineProtocolSerializer(
            field_types=self.converter.field_types, time_floor_ns=floor_ns, counter=self.counter
        )
        self.now_ns = time.time_ns() if now_ns is None else now_ns
        self.records = 0
        self.kept = 0

    def feed(self, line: bytes) -> None:
        """One NDJSON line (without its newline), as the plugin would read it."""
        self.records += 1
        if not line.strip():
            self.counter.count("empty_line")
            return
        try:
            obj, duplicates = load_record(line, self.converter.timestamp_key)
            point, problems = self.converter.convert(obj)
        except RecordError as exc:
            self.counter.count(exc.reason)
            return
        for _key in duplicates:
            self.counter.count("duplicate_json_key")
        for reason, _detail in problems:
            self.counter.count(reason)
        if point.time_ns > self.now_ns + round(self.max_future_s * NS):
            self.counter.count("timestamp_in_future")
            return
        if self.serializer.line(point) is not None:
            self.kept += 1

    def counts(self) -> dict[str, int]:
        """Skips by reason."""
        return self.counter.snapshot()

    def messages(self) -> list[str]:
        """One line per reason: the count, what it means, and the option that changes it."""
        return [self._message(reason, n) for reason, n in sorted(self.counts().items())]

    def _message(self, reason: str, n: int) -> str:
        c = self.converter
        what = "record(s)" if reason in RECORD_REASONS else "field value(s)"
        skipped = "would be skipped" if reason in RECORD_REASONS else "would be dropped"
        text = {
            "timestamp_before_floor": (
                f"stamped before agent.time_floor {self.floor_text} {skipped}; set "
                "agent.time_floor earlier to keep them"
            ),
            "missing_timestamp": (
                f"without a {c.timestamp_key!r} key {skipped}; set the source's timestamp_key "
                "option to the key that holds their time"
            ),
            "invalid_timestamp": (
                f"whose {c.timestamp_key!r} cannot be read as timestamp_format "
                f"{c.timestamp_format!r} {skipped}; set the source's timestamp_format (auto, "
                "rfc3339, unix, unix_ms, unix_us, unix_ns)"
            ),
            "no_field_container": (
                f"with none of the field containers {', '.join(c.field_containers)} {skipped}; "
                "set the source's field_containers, or fallback: raw to keep them in "
                f"{c.fallback_measurement}"
            ),
            "timestamp_in_future": (
                f"stamped more than max_future ({format_duration(self.max_future_s)}) ahead of "
                f"this host's clock {skipped}; check the clock, or raise the source's max_future"
            ),
            "nesting_too_deep": (
                f"nested deeper than max_depth {c.max_depth} {skipped}; raise the source's "
                "max_depth to keep them"
            ),
            "array_value_skipped": (
                f"holding a JSON array {skipped}: arrays cannot be fields (no option keeps them)"
            ),
            "field_type_mismatch": (
                f"whose type differs from the field's first or declared type {skipped}; declare "
                "the type in the source's field_types"
            ),
        }.get(reason, f"{skipped} ({reason}; see plugins/ndjson_tail/README.md)")
        return f"{n} {what} {text}"
