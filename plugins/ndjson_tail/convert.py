"""One JSON record -> one point: timestamp, tags, flattened fields with one type each.

Why the care: the Telegraf json parser this replaces dropped string fields (``charge_state``),
named fields ``parsed_data_battery_voltage`` while the docs queried ``battery_voltage``, and let
a field be an int on one line and a float on the next, which InfluxDB rejects batch by batch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from telegraf_bridge.plugins.common import FieldType, Point, parse_rfc3339_ns

if TYPE_CHECKING:  # options imports this module's TIMESTAMP_FORMATS
    from telegraf_bridge.plugins.ndjson_tail.options import NdjsonOptions

try:  # optional accelerator; the standard library decoder is the reference
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised on hosts without orjson
    _orjson = None  # type: ignore[assignment]
if os.environ.get("TELEGRAF_BRIDGE_NO_ACCEL"):  # compare both paths, or rule one out
    _orjson = None  # type: ignore[assignment]


def accelerated_loads() -> Callable[[bytes], Any] | None:
    """Orjson's decoder when installed and not ruled out (TELEGRAF_BRIDGE_NO_ACCEL), else None."""
    return None if _orjson is None else _orjson.loads


NS = 1_000_000_000
TIMESTAMP_FORMATS = ("auto", "rfc3339", "unix", "unix_ms", "unix_us", "unix_ns")
MAX_EPOCH_DIGITS = 30
_UNIT_NS = {"unix": NS, "unix_ms": 1_000_000, "unix_us": 1_000, "unix_ns": 1}


class RecordError(ValueError):
    """Why a record cannot become a point; ``reason`` is the counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def epoch_to_ns(value: int | Decimal, unit: str) -> int:
    """Epoch number in ``unit`` (or guessed from its magnitude when ``auto``) to nanoseconds.

    Raises ValueError for NaN, the infinities and numbers past 10**30 (no nanosecond
    timestamp gets near; ``1e999999999`` would otherwise become an integer of a billion digits).
    """
    number = Decimal(value)
    if not number.is_finite() or number.adjusted() > MAX_EPOCH_DIGITS:
        raise ValueError(f"timestamp {str(value)[:40]} is out of range")
    if unit == "auto":
        magnitude = abs(number)
        if magnitude < 10**11:
            unit = "unix"
        elif magnitude < 10**14:
            unit = "unix_ms"
        elif magnitude < 10**17:
            unit = "unix_us"
        else:
            unit = "unix_ns"
    scaled = number * _UNIT_NS[unit]
    return int(scaled.to_integral_value())


def timestamp_ns(value: Any, fmt: str) -> int:
    """The record's timestamp value to integer nanoseconds, or ValueError."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"timestamp is {value!r}")
    if isinstance(value, str):
        if fmt in ("auto", "rfc3339"):
            try:
                return parse_rfc3339_ns(value)
            except ValueError:
                if fmt == "rfc3339":
                    raise
            try:
                number = Decimal(value)
            except InvalidOperation:
                raise ValueError(f"not a timestamp: {value!r}") from None
            return epoch_to_ns(number, "auto")
        try:
            return epoch_to_ns(Decimal(value), fmt)
        except InvalidOperation:
            raise ValueError(f"not an epoch number: {value!r}") from None
    if isinstance(value, int | Decimal):
        if fmt == "rfc3339":
            raise ValueError(f"expected an RFC 3339 string, got {value!r}")
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError(f"timestamp is {value}")
        return epoch_to_ns(value, fmt)
    raise ValueError(f"timestamp has type {type(value).__name__}")


def _as_float(value: float | int | Decimal) -> float:
    """A JSON number as a float field's value.

    An integer beyond a float's range is infinite, as the decimal ``1e400`` is, so the
    serializer drops and counts it instead of the conversion raising.
    """
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _nan(name: str) -> float:
    return float(name.replace("Infinity", "inf"))


def _load_exact(line: bytes) -> tuple[dict[str, Any], list[str]]:
    """The reference decoder: exact decimals, NaN/Infinity literals, duplicate keys named."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("invalid_utf8", f"byte {exc.start} is not UTF-8") from None
    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):  # the last value wins, as in every JSON parser; count it
            seen: set[str] = set()
            duplicates.extend(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        return obj

    try:
        obj = json.loads(
            text, parse_float=Decimal, parse_constant=_nan, object_pairs_hook=pairs_hook
        )
    except json.JSONDecodeError as exc:
        raise RecordError("invalid_json", f"{exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise RecordError("too_deeply_nested", "JSON nesting exceeds Python's limit") from None
    except ValueError:  # an integer past Python's digit limit (sys.int_info): unreadable
        raise RecordError("invalid_json", "a number of more than 4300 digits") from None
    if not isinstance(obj, dict):
        raise RecordError("not_an_object", f"JSON {type(obj).__name__} instead of an object")
    return obj, duplicates


BACKSLASH = b"\\"


def _object_keys(value: dict[str, Any]) -> int:
    """How many keys the decoded objects hold in all (nested objects and arrays included)."""
    total = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        children = item.values() if type(item) is dict else item
        if type(item) is dict:
            total += len(item)
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append(child)
    return total


def load_record(line: bytes, exact_key: str = "") -> tuple[dict[str, Any], list[str]]:
    """Decode one line into an object; returns it and the keys that appeared twice.

    With orjson installed (an optional accelerator; it has no ARMv6 build) plain lines are
    decoded by it, and the result is the reference decoder's in every case: a line orjson
    refuses, a line whose ``exact_key`` (the timestamp) is a float, and any line where a
    repeated key is possible go through the reference decoder. Repeats are ruled out exactly:
    in a line without backslashes and without whitespace after a quote, every '":' ends a key,
    so their count equals the decoded keys unless a key was repeated.
    """
    if _orjson is None or BACKSLASH in line or b'" ' in line or b'"\t' in line or b'"\r' in line:
        return _load_exact(line)
    try:
        obj = _orjson.loads(line)
    except _orjson.JSONDecodeError:
        return _load_exact(line)
    if (
        type(obj) is not dict
        or (exact_key and type(obj.get(exact_key)) is float)
        or line.count(b'":') != _object_keys(obj)
    ):
        return _load_exact(line)
    return obj, []


@dataclass
class RecordConverter:
    """Converts decoded records using the configured mapping.

    ``field_types`` holds the declared types and grows as new fields are seen (first type
    wins); the plugin persists it so a restart keeps every field's type.
    """

    measurement: str = "smartsolar"
    timestamp_key: str = "timestamp"
    timestamp_format: str = "auto"
    tag_keys: tuple[str, ...] = ("device_name", "device_address")
    field_containers: tuple[str, ...] = ("parsed_data",)
    keep_container_prefix: bool = False
    separator: str = "_"
    max_depth: int = 8
    fallback: str = "skip"
    fallback_container: str = "readings"
    fallback_measurement: str = "smartsolar_raw"
    field_types: dict[str, FieldType] = field(default_factory=dict)

    def convert(self, obj: Mapping[str, Any]) -> tuple[Point, list[tuple[str, str]]]:
        """The point for ``obj`` and the per-field problems (reason, detail) that were skipped."""
        if self.timestamp_key not in obj:
            raise RecordError("missing_timestamp", f"no {self.timestamp_key!r} key")
        try:
            ts = timestamp_ns(obj[self.timestamp_key], self.timestamp_format)
        except ValueError as exc:
            raise RecordError("invalid_timestamp", str(exc)) from None
        tags: dict[str, str] = {}
        for key in self.tag_keys:
            value = obj.get(key)
            if isinstance(value, str):
                tags[key] = value
            elif isinstance(value, int | Decimal) and not isinstance(value, bool):
                tags[key] = str(value)
        problems: list[tuple[str, str]] = []
        fields: dict[str, Any] = {}
        measurement = self.measurement
        containers = [c for c in self.field_containers if isinstance(obj.get(c), dict)]
        if containers:
            for container in containers:
                prefix = container + self.separator if self.keep_container_prefix else ""
                self._flatten(obj[container], prefix, 1, fields, problems)
        elif self.fallback == "raw" and isinstance(obj.get(self.fallback_container), dict):
            measurement = self.fallback_measurement
            self._flatten(obj[self.fallback_container], "", 1, fields, problems)
        else:
            wanted = ", ".join(self.field_containers)
            raise RecordError("no_field_container", f"record has none of: {wanted}")
        return Point(measurement, tags, fields, ts), problems

    def _flatten(
        self,
        obj: Mapping[str, Any],
        prefix: str,
        depth: int,
        out: dict[str, Any],
        problems: list[tuple[str, str]],
    ) -> None:
        types = self.field_types
        for key, value in obj.items():
            name = prefix + key if prefix else key
            kind = type(value)
            # The common cases inline: a number for a float field, a string for a string field.
            if kind is float or kind is Decimal:
                if types.setdefault(name, FieldType.FLOAT) is FieldType.FLOAT:
                    out[name] = float(value)
                    continue
            elif kind is str and types.setdefault(name, FieldType.STRING) is FieldType.STRING:
                out[name] = value
                continue
            if isinstance(value, dict):
                if depth >= self.max_depth:
                    problems.append(("nesting_too_deep", name))
                    continue
                self._flatten(value, name + self.separator, depth + 1, out, problems)
                continue
            typed = self._typed(name, value, problems)
            if typed is not None:
                out[name] = typed

    def _typed(self, name: str, value: Any, problems: list[tuple[str, str]]) -> Any:
        kind_of = type(value)
        # The common case first: a number for a float field.
        if (kind_of is Decimal or kind_of is float) and self.field_types.setdefault(
            name, FieldType.FLOAT
        ) is FieldType.FLOAT:
            return float(value)
        if value is None:
            return None
        if isinstance(value, list):
            problems.append(("array_value_skipped", name))
            return None
        if isinstance(value, bool):
            kind = FieldType.BOOLEAN
        elif isinstance(value, str):
            kind = FieldType.STRING
        else:
            kind = FieldType.FLOAT
        declared = self.field_types.setdefault(name, kind)
        if declared in (FieldType.INTEGER, FieldType.UNSIGNED):
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            # A number written with a decimal point counts as an integer when it is whole and
            # below 2**53, where every decoder (exact decimal or binary float) agrees on it.
            if (
                isinstance(value, Decimal | float)
                and math.isfinite(value)
                and value == int(value)
                and abs(int(value)) < 2**53
            ):
                return int(value)
        elif declared is FieldType.FLOAT and kind is FieldType.FLOAT:
            return _as_float(value)
        elif declared is kind:
            return value
        problems.append(("field_type_mismatch", f"{name}: declared {declared}, got {value!r}"))
        return None


def converter_from_options(opts: NdjsonOptions) -> RecordConverter:
    """The converter a source's parsed options describe, with the declared ``field_types``.

    One place builds it, so ``bridge-cli migrate-ndjson`` previews exactly what the plugin
    will skip.
    """
    return RecordConverter(
        measurement=opts.measurement,
        timestamp_key=opts.timestamp_key,
        timestamp_format=opts.timestamp_format,
        tag_keys=opts.tag_keys,
        field_containers=opts.field_containers,
        keep_container_prefix=opts.keep_container_prefix,
        separator=opts.separator,
        max_depth=opts.max_depth,
        fallback=opts.fallback,
        fallback_container=opts.fallback_container,
        fallback_measurement=opts.fallback_measurement,
        field_types=dict(opts.field_types),
    )
