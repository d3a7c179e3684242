"""The fused fast path: one NDJSON line straight to one line-protocol line, for plain records.

Why: decoding, converting to a :class:`Point` and serialising it again cost about 20 us a
line, most of it generic work that repeats on every line of a file whose records all have one
shape. Built once per source from its options, this path does per line only what varies: the
decode (orjson, or the standard library's C decoder), a check of each value's type against
the field's recorded type, and the formatting. Field order, key escaping and the series prefix
are worked out once per record shape.

It takes a line only when the general path (``load_record`` -> ``RecordConverter.convert`` ->
``LineProtocolSerializer.line``) would produce exactly the same bytes and count nothing: one
field container, no repeated key, no escaped quote, no nested value, no new field, values of
the fields' recorded types that need no escaping, finite numbers, a plain timestamp within
``time_floor`` and ``max_future``, tags whose series prefix the serializer has cached as clean.
For any other line it returns None, having changed nothing but its own caches, and the caller
hands the line to the general path, which counts and logs it as before.
``tests/test_ndjson_fastpath.py`` checks the two byte for byte.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from telegraf_bridge.plugins.common._lineprotocol import (
    INT64_MAX,
    INT64_MIN,
    KEY_WORK,
    STRING_WORK,
    UINT64_MAX,
    FieldType,
    LineProtocolSerializer,
)
from telegraf_bridge.plugins.common._timefmt import parse_rfc3339_ns
from telegraf_bridge.plugins.ndjson_tail import convert
from telegraf_bridge.plugins.ndjson_tail.convert import NS, RecordConverter

# Integers a float field takes as they are: float(int) is exact below 2**53, so it is the same
# float the general path makes.
EXACT_INT = 2**53
# The part of an RFC 3339 time after the minute, in the one spelling this path takes (ASCII
# digits, upper-case 'Z' or a +hh:mm offset, at most 9 fraction digits); parse_rfc3339_ns
# reads everything else, in the general path.
_AFTER_MINUTE = re.compile(r":([0-5][0-9])(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})")
_MINUTE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-5][0-9]")
_FRACTION_NS = [10 ** (9 - digits) for digits in range(10)]
_CACHE_SIZE = 4096
# Float values seen, with their repr: readings repeat (a voltage, a power of 0.0).
_REPRS_SIZE = 65536
_FLOAT, _STRING, _INTEGER, _UNSIGNED, _BOOLEAN = range(5)
_CODES = {
    FieldType.FLOAT: _FLOAT,
    FieldType.STRING: _STRING,
    FieldType.INTEGER: _INTEGER,
    FieldType.UNSIGNED: _UNSIGNED,
    FieldType.BOOLEAN: _BOOLEAN,
}
_FORMATS = {_FLOAT: "%s", _STRING: '"%s"', _INTEGER: "%si", _UNSIGNED: "%su", _BOOLEAN: "%s"}
_RANGES = {_INTEGER: (INT64_MIN, INT64_MAX), _UNSIGNED: (0, UINT64_MAX)}
_BOOL_TEXT = {True: "true", False: "false"}
Getter = Callable[[Any], tuple[Any, ...]]


def _getter(items: list[Any]) -> Getter:
    """``itemgetter`` that always returns a tuple (it returns a bare item for one key)."""
    if len(items) == 1:
        only = items[0]
        return lambda obj: (obj[only],)
    return operator.itemgetter(*items)


class _Plan(NamedTuple):
    """How to render one record shape: its fields in name order."""

    values: Getter  # the container's values in field-name order
    codes: tuple[int, ...]  # each field's type
    template: str  # 'a=%s,b="%s",c=%si' (names escaped for '%')
    # Per tuple of the values' Python types: how to render them, or None (never here).
    variants: dict[tuple[type, ...], _Variant | None]


class _Variant(NamedTuple):
    """How to render a shape's values when they have these Python types; checked in bulk."""

    numbers: Getter | None  # the float fields' values (a float, or an int)
    booleans: Getter | None  # the boolean fields' values
    strings: Getter | None  # the string fields' values, to check that none needs escaping
    integers: tuple[tuple[int, int, int], ...]  # (index, lowest, highest) of integer fields
    arguments: Getter  # the template's arguments from numbers' reprs + booleans + values
    string_count: int  # string values (each is 2 of the line's quotes)


def _variant(codes: tuple[int, ...], kinds: tuple[type, ...]) -> _Variant | None:
    """The variant for values of these types, or None when one does not fit its field."""
    numbers, booleans, strings, integers = [], [], [], []
    for index, (code, kind) in enumerate(zip(codes, kinds, strict=True)):
        if code == _FLOAT and kind in (float, int):
            numbers.append(index)
        elif code == _STRING and kind is str:
            strings.append(index)
        elif code in _RANGES and kind is int:
            integers.append((index, *_RANGES[code]))
        elif code == _BOOLEAN and kind is bool:
            booleans.append(index)
        else:
            return None  # the general path counts the mismatch (or flattens the object)
    rendered = {index: n for n, index in enumerate(numbers + booleans)}
    offset = len(rendered)
    return _Variant(
        numbers=_getter(numbers) if numbers else None,
        booleans=_getter(booleans) if booleans else None,
        strings=_getter(strings) if strings else None,
        integers=tuple(integers),
        arguments=_getter([rendered.get(i, offset + i) for i in range(len(codes))]),
        string_count=len(strings),
    )


def _variant_for(plan: _Plan, kinds: tuple[type, ...]) -> _Variant | None:
    """The plan's variant for values of these Python types: cached, or made now."""
    variant = plan.variants.get(kinds)
    if variant is None and kinds not in plan.variants:
        if len(plan.variants) >= _CACHE_SIZE:
            plan.variants.clear()
        variant = plan.variants[kinds] = _variant(plan.codes, kinds)
    return variant


# The decoder's C scanner (json.loads' own); typeshed does not declare the attribute.
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _stdlib_loads(data: bytes) -> Any:
    """The standard library's C scanner on text decoded as the reference decoder does.

    ``json.loads`` less its Python layers (a third of its time on a SmartSolar line): a line
    with whitespace around the object raises here and is left to the general path.
    """
    text = data.decode("utf-8")
    try:
        obj, end = _SCAN(text, 0)
    except StopIteration:
        raise ValueError("not a JSON value at column 1") from None
    if end != len(text):
        raise ValueError("extra data after the JSON value")
    return obj


class FastPath:
    """See the module docstring; ``line`` returns None for every line it does not take."""

    def __init__(
        self,
        converter: RecordConverter,
        serializer: LineProtocolSerializer,
        max_future_ns: int,
    ) -> None:
        self._converter = converter
        self._serializer = serializer
        self._types = converter.field_types
        self._max_future_ns = max_future_ns
        # Chosen as load_record chooses: orjson when installed and not ruled out.
        self._loads = convert.accelerated_loads() or _stdlib_loads
        self._timestamp_key = converter.timestamp_key
        fmt = converter.timestamp_format
        self._rfc3339 = fmt in ("auto", "rfc3339")
        self._epoch_unit = "" if fmt == "rfc3339" else fmt
        self._tag_keys = converter.tag_keys
        self._containers = converter.field_containers
        self._container = self._containers[0] if len(self._containers) == 1 else ""
        # Per container name, per record shape (its keys in order): the plan, or None (never).
        self._plans: dict[str, dict[tuple[str, ...], _Plan | None]] = {
            name: {} for name in self._containers
        }
        self._series: dict[tuple[Any, ...], str] = {}
        self._minutes: dict[str, tuple[str, int]] = {}
        # Finite non-zero floats only: 0.0 and -0.0 are equal keys with different reprs.
        self._reprs: dict[float, str] = {}

    # -- per line ----------------------------------------------------------------------------

    def line(self, data: bytes, now_ns: int, clock_sane: bool) -> str | None:
        """The line-protocol line for ``data``, or None: then the general path must take it."""
        found = self._record(data)
        if found is None:
            return None
        obj, container, container_name = found
        ts = self._timestamp(obj.get(self._timestamp_key))
        if ts is None or not INT64_MIN <= ts <= INT64_MAX:
            return None
        floor = self._serializer.time_floor_ns  # read here: the serializer's, as it may change
        if (floor is not None and ts < floor) or (clock_sane and ts > now_ns + self._max_future_ns):
            return None
        prefix = self._prefix(obj)
        if prefix is None:
            return None
        fields = self._fields(container, container_name)
        if fields is None:
            return None
        rendered, strings = fields
        # No key repeated. Every string in the line has two '"' (an escaped one adds a third),
        # so the line has at least twice as many as the keys and string values counted (the
        # top level's and the container's), and exactly that many only when no repeated key's
        # pair was dropped by the decoder, no string hides in a nested value and no string
        # holds an escaped quote.
        strings += len(obj) + tuple(map(type, obj.values())).count(str)
        if data.count(b'"') != 2 * strings:
            return None
        return f"{prefix} {rendered} {ts}"

    def _record(self, data: bytes) -> tuple[dict[str, Any], dict[str, Any], str] | None:
        """The decoded object, its one field container and that container's name."""
        try:
            obj = self._loads(data)
        except (ValueError, RecursionError):  # JSON and UTF-8 errors are ValueErrors
            return None
        if type(obj) is not dict:
            return None
        if self._container:  # the one configured container
            container = obj.get(self._container)
            return (obj, container, self._container) if type(container) is dict else None
        found = [name for name in self._containers if type(obj.get(name)) is dict]
        # None, or two: the general path merges several containers.
        return (obj, obj[found[0]], found[0]) if len(found) == 1 else None

    def _prefix(self, obj: dict[str, Any]) -> str | None:
        """The series prefix for the record's tags, when the serializer cached it as clean."""
        values = tuple(map(obj.get, self._tag_keys))
        try:
            prefix = self._series.get(values)
        except TypeError:  # an array or object as a tag value: the general path decides
            return None
        return prefix if prefix is not None else self._series_prefix(values)

    def _fields(self, container: dict[str, Any], container_name: str) -> tuple[str, int] | None:
        """The rendered fields and the count of strings in the container (keys and values)."""
        keys = tuple(container)
        plan = self._plan_for(container_name, keys)
        if plan is None:
            return None
        fields = plan.values(container)
        variant = _variant_for(plan, tuple(map(type, fields)))
        if variant is None:
            return None
        rendered: tuple[str | None, ...] = ()
        if variant.numbers is not None:
            numbers = variant.numbers(fields)
            rendered = tuple(map(self._reprs.get, numbers))
            if None in rendered:
                rendered = self._render_numbers(numbers)
                if not rendered:
                    return None
        if variant.booleans is not None:
            rendered += tuple(map(_BOOL_TEXT.__getitem__, variant.booleans(fields)))
        if variant.strings is not None and STRING_WORK.search("".join(variant.strings(fields))):
            return None
        for index, lowest, highest in variant.integers:
            if not lowest <= fields[index] <= highest:
                return None
        text = plan.template % variant.arguments(rendered + fields)
        return text, len(keys) + variant.string_count

    def _render_numbers(self, numbers: tuple[Any, ...]) -> tuple[str, ...]:
        """Each number as the general path writes it to a float field; () if one is not here.

        A float is written by its repr; an int as the float it converts to (exact below
        2**53, beyond the general path decides). NaN and the infinities are counted there.
        """
        reprs = self._reprs
        out = []
        for value in numbers:
            text = reprs.get(value)
            if text is None:
                if type(value) is float:
                    if value - value != 0:
                        return ()
                    text = repr(value)
                elif -EXACT_INT < value < EXACT_INT:
                    text = repr(float(value))
                else:
                    return ()
                if value != 0:  # an int key is found by the equal float: the same repr
                    if len(reprs) >= _REPRS_SIZE:
                        reprs.clear()
                    reprs[value] = text
            out.append(text)
        return tuple(out)

    def _timestamp(self, value: Any) -> int | None:
        """Integer ns for a plain RFC 3339 string or an integer epoch, else None."""
        kind = type(value)
        if kind is str:
            match = _AFTER_MINUTE.fullmatch(value, 16) if self._rfc3339 else None
            if match is None:
                return None
            seconds, fraction, offset = match.groups()
            minute = value[:16]
            cached = self._minutes.get(minute)
            if cached is None or cached[0] != offset:
                cached = self._minute(minute, offset)
                if cached is None:
                    return None
            start = cached[1] + int(seconds) * NS
            return start + int(fraction) * _FRACTION_NS[len(fraction)] if fraction else start
        if kind is int and self._epoch_unit:
            try:
                return convert.epoch_to_ns(value, self._epoch_unit)
            except ValueError:  # out of range: the general path counts it
                return None
        return None

    # -- built once per minute, series and record shape --------------------------------------

    def _minute(self, minute: str, offset: str) -> tuple[str, int] | None:
        """The start of ``minute`` at ``offset`` in ns, by the reference parser itself."""
        if not _MINUTE.fullmatch(minute):
            return None
        try:
            start = parse_rfc3339_ns(f"{minute}:00{offset}")
        except ValueError:
            return None
        if len(self._minutes) >= _CACHE_SIZE:
            self._minutes.clear()
        self._minutes[minute] = (offset, start)
        return offset, start

    def _series_prefix(self, values: tuple[Any, ...]) -> str | None:
        """The prefix for these tag values when the serializer cached it as clean."""
        tags: dict[str, str] = {}
        for key, value in zip(self._tag_keys, values, strict=True):
            if type(value) is str:
                tags[key] = value
            elif value is not None:
                return None  # a number as a tag is spelled by the decoder: the general path
        prefix = self._serializer.cached_prefix(self._converter.measurement, tags)
        if prefix is not None:
            # Keyed by the raw values: only str and None get here, and no other decoded JSON
            # value equals a str or None, so a later hit means the same tags.
            if len(self._series) >= _CACHE_SIZE:
                self._series.clear()
            self._series[values] = prefix
        return prefix

    def _plan_for(self, container_name: str, keys: tuple[str, ...]) -> _Plan | None:
        """The plan for this record shape: cached, or made now; None when never here."""
        plans = self._plans[container_name]
        plan = plans.get(keys)
        if plan is None and keys not in plans:
            plan = self._plan(container_name, keys)
        return plan

    def _plan(self, container_name: str, keys: tuple[str, ...]) -> _Plan | None:
        """The plan for a shape once every field has its recorded type (else not cached)."""
        named = []
        for key in keys:
            name = (
                container_name + self._converter.separator + key
                if self._converter.keep_container_prefix
                else key
            )
            field_type = self._types.get(name)
            if field_type is None:
                return None  # the general path records the new field's type first
            named.append((name, key, _CODES[field_type]))
        named.sort()
        names = [name for name, _key, _code in named]
        plan = None
        if names and all(name and not KEY_WORK.search(name) for name in names):
            plan = _Plan(
                values=_getter([key for _name, key, _code in named]),
                codes=tuple(code for _name, _key, code in named),
                template=",".join(
                    name.replace("%", "%%") + "=" + _FORMATS[code] for name, _key, code in named
                ),
                variants={},
            )
        plans = self._plans[container_name]
        if len(plans) >= _CACHE_SIZE:
            plans.clear()
        plans[keys] = plan
        return plan
