"""Line-protocol serialisation with one declared type per field and no way to inject a point.

Why this is ours and not a client library's: a plugin's line is parsed by Telegraf, so a stray
newline, an unescaped separator or a trailing backslash would split, merge or corrupt points,
and a field that is an int in one line and a float in the next makes InfluxDB reject whole
batches. Every such case here is either made safe or skipped, and every skip is counted and
logged (see :class:`SkipCounter`), never silent.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

log = logging.getLogger("telegraf_bridge.lineprotocol")

FieldValue = float | int | str | bool

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1

# Whitespace that Telegraf's parser does not accept inside names, keys and tag values is replaced
# by its two-character escape (as Telegraf's own serializer does); string fields only need line
# breaks replaced, and we do that so a line is always exactly one physical line.
_CONTROL = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f", "\v": "\\v"}
_LINE_BREAKS = {"\n": "\\n", "\r": "\\r"}
# Telegraf's parser keeps a backslash literally, except before these characters (which it
# unescapes) and at the very end of an element (where it would swallow the separator). Such a
# backslash cannot be represented, so it becomes U+FF3C FULLWIDTH REVERSE SOLIDUS, counted.
_NAME_UNSAFE_AFTER_BACKSLASH = ", "
_KEY_UNSAFE_AFTER_BACKSLASH = ',= "'
BACKSLASH_STAND_IN = "\uff3c"
# Fast paths: most names and values need no work at all; one C-level regex search says so.
# Public: a schema-specialised fast path (ndjson_tail's) takes only what needs no work.
KEY_WORK = re.compile("[\\\\,= \t\n\r\f\v\ud800-\udfff]")
_NAME_WORK = re.compile("[\\\\, \t\n\r\f\v\ud800-\udfff]")
STRING_WORK = re.compile('[\\\\"\n\r\ud800-\udfff]')


class _TypeMismatch(Exception):
    """A field's value does not fit its declared type (counted as ``field_type_mismatch``)."""


class FieldType(StrEnum):
    """The declared type of a field; each field keeps exactly one for its whole life."""

    FLOAT = "float"
    INTEGER = "integer"
    UNSIGNED = "unsigned"
    STRING = "string"
    BOOLEAN = "boolean"


class Point(NamedTuple):
    """One measurement at one instant, before serialisation (a tuple: cheap to make)."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int


class SkipCounter:
    """Counts every sanitised value and skipped field or point, and logs them sparingly.

    The first occurrence of each reason is logged, then the 10th, 100th, 1000th and so on, so a
    bad input source cannot flood Telegraf's log but never goes unnoticed.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or log
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, reason: str, detail: str = "") -> None:
        """Record one occurrence of ``reason`` (e.g. ``nonfinite_field``)."""
        with self._lock:
            n = self._counts.get(reason, 0) + 1
            self._counts[reason] = n
        if worth_logging(n):
            suffix = f": {detail}" if detail else ""
            self._logger.warning("%s (occurrence %d)%s", reason, n, suffix)

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts, keyed by reason."""
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        """How many skips or sanitisations were recorded in all."""
        with self._lock:
            return sum(self._counts.values())


def worth_logging(n: int) -> bool:
    """Whether the ``n``-th occurrence of something is logged: the 1st, 10th, 100th, ..."""
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1


def worth_logging_between(before: int, now: int) -> bool:
    """Whether a count that grew from ``before`` to ``now`` passed an occurrence that is logged.

    For counters bumped in bulk (thousands of drops between two looks), where checking each
    occurrence with :func:`worth_logging` would cost a loop per drop.
    """
    logged = 1
    while logged <= now:
        if logged > before:
            return True
        logged *= 10
    return False


def _replace(text: str, table: Mapping[str, str]) -> str:
    if not any(ch in text for ch in table):
        return text
    return "".join(table.get(ch, ch) for ch in text)


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _escape(text: str, specials: str, unsafe_after_backslash: str) -> tuple[str, bool]:
    """Escape ``specials`` with a backslash, replacing unreadable backslashes.

    Returns the text and whether a backslash had to become its stand-in.
    """
    if "\\" not in text and not any(ch in text for ch in specials):
        return text, False
    out = []
    replaced = False
    last = len(text) - 1
    for index, ch in enumerate(text):
        if ch == "\\" and (index == last or text[index + 1] in unsafe_after_backslash):
            out.append(BACKSLASH_STAND_IN)
            replaced = True
            continue
        if ch in specials:
            out.append("\\")
        out.append(ch)
    return "".join(out), replaced


@dataclass
class LineProtocolSerializer:
    """Turns :class:`Point` objects into safe line-protocol lines.

    ``field_types`` declares a type per field key; undeclared numbers become floats (so a JSON
    ``1`` and ``1.5`` never conflict), booleans stay booleans and strings stay strings.
    ``time_floor_ns`` refuses points stamped before it (a Pi without a real-time clock boots in
    1970).
    """

    field_types: Mapping[str, FieldType] = field(default_factory=dict)
    time_floor_ns: int | None = None
    counter: SkipCounter = field(default_factory=SkipCounter)
    # Serialised "measurement,tags" per series: a device's tags repeat on every point. Only
    # prefixes whose escaping recorded no skip are cached, so every skip is still counted.
    _series: dict[tuple[str, tuple[tuple[str, str], ...]], str] = field(
        default_factory=dict, repr=False
    )
    series_cache_size: int = 4096
    # Field keys that need no escaping, remembered (they repeat on every point).
    _plain_keys: set[str] = field(default_factory=set, repr=False)

    # -- elements --------------------------------------------------------------------------

    def _clean(self, text: str, what: str, table: Mapping[str, str]) -> str:
        if not _valid_unicode(text):
            self.counter.count("invalid_unicode_replaced", what)
            text = text.encode("utf-8", "replace").decode("utf-8")
        cleaned = _replace(text, table)
        if cleaned != text:
            self.counter.count("control_characters_escaped", what)
        return cleaned

    def _key(self, text: str, what: str) -> str:
        if not KEY_WORK.search(text):
            return text
        escaped, replaced = _escape(
            self._clean(text, what, _CONTROL), ",= ", _KEY_UNSAFE_AFTER_BACKSLASH
        )
        if replaced:
            self.counter.count("unrepresentable_backslash_replaced", what)
        return escaped

    def _measurement(self, name: str) -> str | None:
        if not name or name.startswith("#"):
            # A line starting with '#' is a comment to every line-protocol parser.
            self.counter.count("invalid_measurement", repr(name[:40]))
            return None
        if not _NAME_WORK.search(name):
            return name
        escaped, replaced = _escape(
            self._clean(name, "measurement", _CONTROL), ", ", _NAME_UNSAFE_AFTER_BACKSLASH
        )
        if replaced:
            self.counter.count("unrepresentable_backslash_replaced", "measurement")
        return escaped

    def _field_value(self, key: str, value: object) -> str | None:
        """The rendered value of a field, or None (counted) when it cannot be written."""
        declared = self.field_types.get(key)
        if type(value) is float and declared in (None, FieldType.FLOAT):  # the common case
            return repr(value) if math.isfinite(value) else self._float(key, value)
        try:
            if isinstance(value, bool):
                if declared not in (None, FieldType.BOOLEAN):
                    raise _TypeMismatch
                return "true" if value else "false"
            if isinstance(value, int):
                return self._int_value(key, value, declared)
            if isinstance(value, float):
                return self._float_value(key, value, declared)
            if isinstance(value, str) and declared in (None, FieldType.STRING):
                return self._string_value(key, value)
            raise _TypeMismatch
        except _TypeMismatch:
            self.counter.count(
                "field_type_mismatch",
                f"{key!r} is declared {declared or 'untyped'} but got {type(value).__name__}",
            )
            return None

    def _int_value(self, key: str, value: int, declared: FieldType | None) -> str | None:
        """An integer as its field's declared type (untyped: a float)."""
        if declared in (None, FieldType.FLOAT):
            return self._float(key, float(value))
        if declared is FieldType.INTEGER:
            return self._integer(key, value)
        if declared is FieldType.UNSIGNED:
            return self._unsigned(key, value)
        raise _TypeMismatch

    def _float_value(self, key: str, value: float, declared: FieldType | None) -> str | None:
        """A float as its field's type; a whole float also fits an integer field."""
        if declared in (None, FieldType.FLOAT):
            return self._float(key, value)
        if declared in (FieldType.INTEGER, FieldType.UNSIGNED) and value.is_integer():
            whole = int(value)
            if declared is FieldType.INTEGER:
                return self._integer(key, whole)
            return self._unsigned(key, whole)
        raise _TypeMismatch

    def _string_value(self, key: str, value: str) -> str:
        if not STRING_WORK.search(value):
            return '"' + value + '"'
        text = self._clean(value, f"field {key!r}", _LINE_BREAKS)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def _float(self, key: str, value: float) -> str | None:
        if not math.isfinite(value):
            self.counter.count("nonfinite_field_dropped", f"{key!r}={value}")
            return None
        return repr(value)

    def _integer(self, key: str, value: int) -> str | None:
        if not INT64_MIN <= value <= INT64_MAX:
            self.counter.count("integer_out_of_range", f"{key!r}={value}")
            return None
        return f"{value}i"

    def _unsigned(self, key: str, value: int) -> str | None:
        if not 0 <= value <= UINT64_MAX:
            self.counter.count("unsigned_out_of_range", f"{key!r}={value}")
            return None
        return f"{value}u"

    # -- points ----------------------------------------------------------------------------

    def line(self, point: Point) -> str | None:
        """One line without its newline, or None when the point had to be skipped."""
        ts = self._timestamp(point)
        if ts is None:
            return None
        prefix = self._prefix(point)
        if prefix is None:
            return None
        fields = self._fields(point)
        if not fields:
            self.counter.count("point_without_fields_skipped", point.measurement)
            return None
        return f"{prefix} {','.join(fields)} {ts}"

    def _timestamp(self, point: Point) -> int | None:
        """The point's time when it is an int64 at or after the time floor (else counted)."""
        ts = point.time_ns
        if isinstance(ts, bool) or not isinstance(ts, int):
            self.counter.count("invalid_timestamp", f"{point.measurement}: {ts!r}")
            return None
        if not INT64_MIN <= ts <= INT64_MAX:
            self.counter.count("invalid_timestamp", f"{point.measurement}: {ts} out of range")
            return None
        if self.time_floor_ns is not None and ts < self.time_floor_ns:
            self.counter.count("timestamp_before_floor", f"{point.measurement}: {ts}")
            return None
        return ts

    def _prefix(self, point: Point) -> str | None:
        """``measurement,tags`` from the series cache, or escaped now (and cached when clean)."""
        try:
            series = (point.measurement, tuple(sorted(point.tags.items())))
            prefix = self._series.get(series)
        except TypeError:  # an unhashable tag value: take the slow path, which skips it
            series, prefix = None, None
        if prefix is not None:
            return prefix
        before = self.counter.total()
        prefix = self._series_prefix(point)
        if prefix is not None and series is not None and self.counter.total() == before:
            if len(self._series) >= self.series_cache_size:
                self._series.clear()
            self._series[series] = prefix
        return prefix

    def _fields(self, point: Point) -> list[str]:
        """``key=value`` per field that can be written, in key order; the others counted."""
        fields = []
        seen: set[str] = set()
        types = self.field_types
        values = point.fields
        for key in sorted(values):
            value = values[key]
            # The common cases inline: a plain key with a finite float for a float field, or
            # with a string that needs no escaping for a string field.
            if key in self._plain_keys and key not in seen:
                if (
                    type(value) is float
                    and math.isfinite(value)
                    and types.get(key, FieldType.FLOAT) is FieldType.FLOAT
                ):
                    seen.add(key)
                    fields.append(f"{key}={value!r}")
                    continue
                if (
                    type(value) is str
                    and types.get(key, FieldType.STRING) is FieldType.STRING
                    and not STRING_WORK.search(value)
                ):
                    seen.add(key)
                    fields.append(f'{key}="{value}"')
                    continue
            rendered = self._field(point, key, value, seen)
            if rendered is not None:
                fields.append(rendered)
        return fields

    def _field(self, point: Point, key: str, value: object, seen: set[str]) -> str | None:
        """One field the inline cases did not take: its key escaped, duplicates dropped."""
        if not key:
            self.counter.count("empty_field_key_dropped", point.measurement)
            return None
        if key in self._plain_keys:
            escaped_key = key
        else:
            escaped_key = self._key(key, "field key")
            if escaped_key == key and len(self._plain_keys) < self.series_cache_size:
                self._plain_keys.add(key)
        if escaped_key in seen:
            self.counter.count("duplicate_key_dropped", f"field {key!r}")
            return None
        rendered = self._field_value(key, value)
        if rendered is None:
            return None
        seen.add(escaped_key)
        return f"{escaped_key}={rendered}"

    def cached_prefix(self, measurement: str, tags: Mapping[str, str]) -> str | None:
        """The ``measurement,tags`` prefix :meth:`line` has cached for this series, or None.

        Only prefixes whose escaping counted nothing are cached, so a fast path that uses one
        skips no count; on None it must let :meth:`line` see the point.
        """
        return self._series.get((measurement, tuple(sorted(tags.items()))))

    def _series_prefix(self, point: Point) -> str | None:
        """``measurement,tag=value,...`` for a point, or None when the point must be skipped."""
        measurement = self._measurement(point.measurement)
        if measurement is None:
            return None

        parts = [measurement]
        seen: set[str] = set()
        for key in sorted(point.tags):
            value = point.tags[key]
            if not key:
                self.counter.count("empty_tag_key_dropped", point.measurement)
                continue
            if not isinstance(value, str) or value == "":
                self.counter.count("empty_or_invalid_tag_value_dropped", f"tag {key!r}")
                continue
            escaped_key = self._key(key, "tag key")
            if escaped_key in seen:
                # Two keys that differ only in control characters end up equal once escaped.
                self.counter.count("duplicate_key_dropped", f"tag {key!r}")
                continue
            seen.add(escaped_key)
            parts.append(f",{escaped_key}={self._key(value, f'tag {key!r}')}")

        return "".join(parts)

    def lines(self, points: Iterable[Point]) -> list[str]:
        """Serialise many points, leaving out those that had to be skipped."""
        out = []
        for point in points:
            rendered = self.line(point)
            if rendered is not None:
                out.append(rendered)
        return out
