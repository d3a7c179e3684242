"""An HTTP telemetry body -> points, with one rule per JSON shape and a 400 for anything else.

The body is IoTFlow's (``POST /api/v1/devices/telemetry``)::

    {"data": {"temperature": 24.5}, "type": "environmental",
     "metadata": {"room": "lab"}, "timestamp": "2026-03-01T12:00:00Z"}

or a batch of such objects, ``{"points": [{...}, ...]}``. The mapping is the one MQTT gets from
Telegraf's json parser, so a device's points look the same whichever transport it uses:

- measurement: ``type`` (default: the listener's ``default_type``), a plain name;
- fields: ``data`` keys; numbers as floats (so ``1`` and ``1.5`` never conflict), booleans as
  booleans, strings as string fields unless the key is a declared string tag (then a tag),
  ``null`` skipped; nested objects and arrays flattened like Telegraf's json parser
  (``{"a": {"b": 1}}`` -> ``a_b``, ``{"a": [1, 2]}`` -> ``a_0``, ``a_1``);
- tags: the registry's (``device_id``, ``device_name``, ``device_type``, ``location``), plus
  ``metadata`` strings;
- time: ``timestamp`` (RFC 3339 with an offset), else the receive time.

Why strict (400) and not lenient: the device gets told at once, with the JSON path, and nothing
half-understood reaches InfluxDB. The one exception is a key the bundle owns (the registry's
tags, ``topic``, ``timestamp`` inside ``data`` or ``metadata``): it is dropped and counted, as
the MQTT side drops it (``fieldexclude``), because IoTFlow's own example sends
``metadata.location`` and such a body must keep working - the registry's value is the one
stored.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from telegraf_bridge.plugins.common import FieldValue, Point, parse_rfc3339_ns
from telegraf_bridge.plugins.iotflow.options import RESERVED_KEYS

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
INT64_MAX = 2**63 - 1
_FLOAT_MAX = sys.float_info.max
# Keys the bundle sets itself or reads itself; a payload cannot set them.
OWNED_KEYS = frozenset((*RESERVED_KEYS, "timestamp"))
POINT_KEYS = frozenset(("data", "type", "metadata", "timestamp", "device_id"))
BATCH_KEYS = frozenset(("points", "device_id"))
MAX_DEPTH = 8  # levels of nesting inside ``data`` (``data`` itself is level 1)
MAX_FIELDS = 256  # fields of one point after flattening
MAX_METADATA = 32  # tags from ``metadata``
MAX_KEY_CHARS = 128  # one JSON key
MAX_FLAT_KEY_CHARS = 256  # a flattened field key (a_b_0 ...)
MAX_TAG_CHARS = 256  # a tag value (InfluxDB keeps the series key in memory)
MAX_STRING_CHARS = 65536  # a string field (InfluxDB 1.x's limit is 64 KiB)

# Why a request was refused, as counted in the status row; each 400 carries one of these.
PAYLOAD_REASONS = (
    "malformed_json",
    "invalid_body",
    "too_many_points",
    "invalid_type",
    "invalid_data",
    "invalid_value",
    "invalid_key",
    "too_deep",
    "too_many_fields",
    "invalid_metadata",
    "invalid_timestamp",
    "timestamp_before_floor",
)


class PayloadError(ValueError):
    """A body that cannot be stored; ``message`` names the JSON path and is safe to return."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Rules:
    """What the mapping depends on besides the body: options, the agent's time floor."""

    default_type: str = "telemetry"
    string_tags: frozenset[str] = frozenset()
    max_points: int = 500
    time_floor_ns: int | None = None
    # Measurements a device may not write (the plugin's own status rows).
    reserved_types: frozenset[str] = frozenset()


@dataclass
class Mapped:
    """The points of one body, and what was dropped on the way (counted by the listener)."""

    points: list[Point] = field(default_factory=list)
    dropped_keys: int = 0
    # Points stamped with the receive time: they need a trustworthy system clock.
    receive_time_points: int = 0


def _show(key: str) -> str:
    """A JSON key as it appears in a path, cut short (it is user input going into messages)."""
    text = key if len(key) <= 40 else key[:37] + "..."
    return json.dumps(text, ensure_ascii=True)


def _path(parent: str, key: str) -> str:
    if NAME.match(key):
        return f"{parent}.{key}"
    return f"{parent}[{_show(key)}]"


# -- decoding ----------------------------------------------------------------------------------


class NonFinite:
    """``NaN``, ``Infinity`` or ``-Infinity`` in the body, refused once its JSON path is known.

    Python's json module accepts these words as floats; InfluxDB cannot store them.
    """

    def __init__(self, name: str) -> None:
        self.name = name


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise PayloadError("malformed_json", f"key {_show(key)} appears twice in one object")
        out[key] = value
    return out


def decode(body: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys; numbers as floats.

    Integers are parsed as floats straight from their digits, so a 5000-digit integer becomes
    ``inf`` (and a 400 later) instead of hitting Python's integer-string limit, and ``1`` and
    ``1.0`` give the same field type.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("malformed_json", f"body is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(
            text,
            parse_int=float,
            parse_float=float,
            parse_constant=NonFinite,
            object_pairs_hook=_no_duplicates,
        )
    except RecursionError:
        raise PayloadError("too_deep", "body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(
            "malformed_json", f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


# -- structure ---------------------------------------------------------------------------------


def items(doc: Any, max_points: int) -> list[tuple[str, Mapping[str, Any]]]:
    """The point objects of a body with their JSON paths (``$`` or ``$.points[i]``)."""
    if not isinstance(doc, dict):
        raise PayloadError("invalid_body", "body must be a JSON object")
    if "points" not in doc:
        return [("$", doc)]
    extra = sorted(set(doc) - BATCH_KEYS)
    if extra:
        raise PayloadError(
            "invalid_body",
            f"$: a batch has only 'points' (and 'device_id'), not {', '.join(map(_show, extra))}",
        )
    points = doc["points"]
    if not isinstance(points, list) or not points:
        raise PayloadError("invalid_body", "$.points must be a non-empty array of point objects")
    if len(points) > max_points:
        raise PayloadError(
            "too_many_points", f"$.points has {len(points)} points; at most {max_points}"
        )
    out: list[tuple[str, Mapping[str, Any]]] = []
    for index, item in enumerate(points):
        where = f"$.points[{index}]"
        if not isinstance(item, dict):
            raise PayloadError("invalid_body", f"{where} must be an object")
        out.append((where, item))
    return out


def named_devices(doc: Any) -> list[Any]:
    """Every ``device_id`` the body names (top level and per point), as given.

    Read before anything else is checked: a body naming another device is refused as
    unauthorised (401), whatever else is wrong with it.
    """
    if not isinstance(doc, dict):
        return []
    found = [doc["device_id"]] if "device_id" in doc else []
    points = doc.get("points")
    if isinstance(points, list):
        found += [p["device_id"] for p in points if isinstance(p, dict) and "device_id" in p]
    return found


# -- one point ---------------------------------------------------------------------------------


def _check_key(key: str, where: str) -> None:
    if not key:
        raise PayloadError("invalid_key", f"{where}: empty key")
    if len(key) > MAX_KEY_CHARS:
        raise PayloadError("invalid_key", f"{where}: key longer than {MAX_KEY_CHARS} characters")
    if not key.isprintable():
        # Control characters and lone surrogates: escaping could merge two keys.
        raise PayloadError("invalid_key", f"{where}: key contains control characters")


def _check_text(value: str, where: str, limit: int) -> None:
    if len(value) > limit:
        raise PayloadError("invalid_value", f"{where}: string longer than {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError("invalid_value", f"{where}: string is not valid Unicode") from None


def _flatten(value: Any, key: str, where: str, depth: int) -> Iterator[tuple[str, str, Any]]:
    """(flat key, JSON path, leaf) like Telegraf's json parser: ``a_b``, ``a_0``."""
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise PayloadError("too_deep", f"{where}: nested deeper than {MAX_DEPTH} levels")
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for sub, item in pairs:
            if isinstance(sub, str):
                _check_key(sub, _path(where, sub))
                child_where = _path(where, sub)
            else:
                child_where = f"{where}[{sub}]"
            yield from _flatten(item, f"{key}_{sub}", child_where, depth + 1)
        return
    yield key, where, value


def _store(
    key: str,
    path: str,
    leaf: Any,
    rules: Rules,
    into: tuple[dict[str, FieldValue], dict[str, str]],
) -> None:
    """One flattened value into the fields (numbers as float) or, for ``string_tags``, the tags.

    Numbers are stored as float whatever their JSON spelling, so ``1`` and ``1.5`` of one key
    never clash as integer and float fields in InfluxDB.
    """
    fields, tags = into
    if isinstance(leaf, bool):
        fields[key] = leaf
    elif isinstance(leaf, float | int):
        number = float(leaf) if abs(leaf) < _FLOAT_MAX else math.inf
        if not math.isfinite(number):
            raise PayloadError("invalid_value", f"{path}: number out of range")
        fields[key] = number
    elif isinstance(leaf, NonFinite):
        raise PayloadError("invalid_value", f"{path}: {leaf.name} is not a number")
    elif isinstance(leaf, str):
        if key in rules.string_tags:
            _check_text(leaf, path, MAX_TAG_CHARS)
            if leaf:
                tags[key] = leaf
        else:
            _check_text(leaf, path, MAX_STRING_CHARS)
            fields[key] = leaf
    else:  # pragma: no cover - decode() yields nothing else
        raise PayloadError("invalid_value", f"{path}: unsupported value")


def _data(
    data: Any, where: str, rules: Rules, mapped: Mapped
) -> tuple[dict[str, FieldValue], dict[str, str]]:
    if not isinstance(data, dict):
        raise PayloadError("invalid_data", f"{where} must be an object of values")
    fields: dict[str, FieldValue] = {}
    tags: dict[str, str] = {}
    for top, value in data.items():
        _check_key(top, _path(where, top))
        for key, path, leaf in _flatten(value, top, _path(where, top), 1):
            if len(key) > MAX_FLAT_KEY_CHARS:
                raise PayloadError(
                    "invalid_key", f"{path}: flattened key longer than {MAX_FLAT_KEY_CHARS}"
                )
            if key in OWNED_KEYS:
                mapped.dropped_keys += 1
                continue
            if leaf is None:
                continue
            if key in fields or key in tags:
                raise PayloadError("invalid_key", f"{path}: key {_show(key)} occurs twice")
            _store(key, path, leaf, rules, (fields, tags))
            if len(fields) > MAX_FIELDS:
                raise PayloadError(
                    "too_many_fields", f"{where}: more than {MAX_FIELDS} fields after flattening"
                )
    if not fields:
        raise PayloadError("invalid_data", f"{where} has no values to store")
    return fields, tags


def _metadata(meta: Any, where: str, mapped: Mapped) -> dict[str, str]:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise PayloadError("invalid_metadata", f"{where} must be an object of strings")
    if len(meta) > MAX_METADATA:
        raise PayloadError("invalid_metadata", f"{where} has more than {MAX_METADATA} keys")
    tags: dict[str, str] = {}
    for key, value in meta.items():
        path = _path(where, key)
        _check_key(key, path)
        if key in OWNED_KEYS:
            mapped.dropped_keys += 1
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            raise PayloadError(
                "invalid_metadata", f"{path}: metadata values are tags and must be strings"
            )
        _check_text(value, path, MAX_TAG_CHARS)
        if value:
            tags[key] = value
    return tags


def _measurement(value: Any, where: str, rules: Rules) -> str:
    if value is None:
        return rules.default_type
    if not isinstance(value, str) or not NAME.match(value) or value in rules.reserved_types:
        shown = _show(value) if isinstance(value, str) else type(value).__name__
        raise PayloadError(
            "invalid_type",
            f"{where}: {shown} is not a telemetry type (1-64 letters, digits, '_', '.', '-', "
            "starting with a letter or '_')",
        )
    return value


def _timestamp(value: Any, where: str, rules: Rules) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(
            "invalid_timestamp",
            f"{where}: expected an RFC 3339 string such as 2026-03-01T12:00:00Z",
        )
    try:
        ts = parse_rfc3339_ns(value[:64])
    except ValueError as exc:
        raise PayloadError("invalid_timestamp", f"{where}: {exc}") from None
    if len(value) > 64 or not 0 <= ts <= INT64_MAX:
        raise PayloadError("invalid_timestamp", f"{where}: out of range")
    if rules.time_floor_ns is not None and ts < rules.time_floor_ns:
        raise PayloadError(
            "timestamp_before_floor",
            f"{where}: before the agent's time floor (a device clock that is not set?)",
        )
    return ts


def _point(
    item: Mapping[str, Any],
    where: str,
    *,
    device_tags: Mapping[str, str],
    rules: Rules,
    mapped: Mapped,
    receive_ns: int,
) -> Point:
    extra = sorted(set(item) - POINT_KEYS)
    if extra:
        raise PayloadError(
            "invalid_body",
            f"{where}: unknown key(s) {', '.join(map(_show, extra))}; expected data, type, "
            "metadata, timestamp",
        )
    if "data" not in item:
        raise PayloadError("invalid_data", f"{where}.data is missing")
    measurement = _measurement(item.get("type"), f"{where}.type", rules)
    fields, data_tags = _data(item["data"], f"{where}.data", rules, mapped)
    meta = _metadata(item.get("metadata"), f"{where}.metadata", mapped)
    for key, value in meta.items():
        if key in fields:
            raise PayloadError(
                "invalid_metadata", f"{_path(where + '.metadata', key)} is also a data field"
            )
        if data_tags.get(key, value) != value:
            raise PayloadError(
                "invalid_metadata",
                f"{_path(where + '.metadata', key)} differs from the data tag of the same name",
            )
    ts = _timestamp(item.get("timestamp"), f"{where}.timestamp", rules)
    if ts is None:
        # Points of one request without a time of their own get distinct nanoseconds, so a
        # batch of them cannot overwrite each other in InfluxDB (same series, same time).
        ts = receive_ns + mapped.receive_time_points
        mapped.receive_time_points += 1
    return Point(measurement, {**data_tags, **meta, **device_tags}, fields, ts)


def to_points(doc: Any, device_tags: Mapping[str, str], rules: Rules, receive_ns: int) -> Mapped:
    """Every point of a decoded body; raises PayloadError (a 400) for the first problem."""
    mapped = Mapped()
    for where, item in items(doc, rules.max_points):
        mapped.points.append(
            _point(
                item,
                where,
                device_tags=device_tags,
                rules=rules,
                mapped=mapped,
                receive_ns=receive_ns,
            )
        )
    return mapped
