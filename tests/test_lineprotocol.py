"""The serializer: escaping, declared types, and counted skips (no injection, no conflicts)."""

from __future__ import annotations

import math

import pytest
from telegraf_bridge.plugins.common import FieldType, LineProtocolSerializer, Point, SkipCounter

from telegraf_bridge.testing import parse_line

T = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z


def ser(**types: FieldType) -> LineProtocolSerializer:
    return LineProtocolSerializer(field_types=types, counter=SkipCounter())


def test_basic_point_sorted_and_typed() -> None:
    s = ser(count=FieldType.INTEGER, total=FieldType.UNSIGNED)
    line = s.line(
        Point("m", {"b": "2", "a": "1"}, {"v": 1, "count": 3, "total": 7, "ok": True, "s": "x"}, T)
    )
    assert line == f'm,a=1,b=2 count=3i,ok=true,s="x",total=7u,v=1.0 {T}'


def test_undeclared_numbers_are_floats_so_types_never_conflict() -> None:
    s = ser()
    first = s.line(Point("m", {}, {"v": 1}, T))
    second = s.line(Point("m", {}, {"v": 1.5}, T))
    assert first is not None and second is not None
    assert first.split(" ")[1] == "v=1.0"
    assert second.split(" ")[1] == "v=1.5"


def test_bool_is_checked_before_int() -> None:
    s = ser(flag=FieldType.INTEGER)
    assert s.line(Point("m", {}, {"flag": True, "x": 1.0}, T)) == f"m x=1.0 {T}"
    assert s.counter.snapshot() == {"field_type_mismatch": 1}


def test_integer_declared_field_accepts_integral_float_only() -> None:
    s = ser(n=FieldType.INTEGER)
    assert s.line(Point("m", {}, {"n": 5.0}, T)) == f"m n=5i {T}"
    assert s.line(Point("m", {}, {"n": 5.5, "y": 1.0}, T)) == f"m y=1.0 {T}"
    assert s.counter.snapshot()["field_type_mismatch"] == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_fields_dropped_and_counted(bad: float) -> None:
    s = ser()
    assert s.line(Point("m", {}, {"bad": bad, "good": 2.0}, T)) == f"m good=2.0 {T}"
    assert s.counter.snapshot() == {"nonfinite_field_dropped": 1}


def test_point_with_no_valid_field_is_skipped_and_counted() -> None:
    s = ser()
    assert s.line(Point("m", {}, {"bad": math.nan}, T)) is None
    assert s.counter.snapshot() == {"nonfinite_field_dropped": 1, "point_without_fields_skipped": 1}


def test_integer_range_checked() -> None:
    s = ser(n=FieldType.INTEGER, u=FieldType.UNSIGNED)
    assert s.line(Point("m", {}, {"n": 2**63, "u": -1, "ok": 1.0}, T)) == f"m ok=1.0 {T}"
    assert s.counter.snapshot() == {"integer_out_of_range": 1, "unsigned_out_of_range": 1}


@pytest.mark.parametrize(
    ("tags", "fields"),
    [
        ({"t": "a b,c=d"}, {"f": 1.0}),
        ({"t k,=": "v"}, {"f k,=": 'q"uo\\te'}),
        ({"t": "back\\slash"}, {"f": "ends with backslash\\"}),
        ({"t": "a\\\\b"}, {"f": '\\"'}),
        ({"t": "ünïcødé ☀"}, {"ƒ": "日本語"}),
    ],
)
def test_escaping_round_trips(tags: dict[str, str], fields: dict[str, str | float]) -> None:
    s = ser()
    line = s.line(Point("me as,ure", tags, fields, T))
    assert line is not None
    parsed = parse_line(line)
    assert parsed.measurement == "me as,ure"
    assert parsed.tags == tags
    assert parsed.fields == fields
    assert parsed.time_ns == T


@pytest.mark.parametrize("text", ["a\nb", "a\rb", "a\r\nb", "\n", "line1\nmeas,t=x f=1 0"])
def test_newlines_never_reach_the_output(text: str) -> None:
    s = ser()
    line = s.line(Point("m", {"t": text}, {"s": text}, T))
    assert line is not None
    assert "\n" not in line and "\r" not in line
    parsed = parse_line(line)
    assert parsed.tags["t"] == text.replace("\r", "\\r").replace("\n", "\\n")
    assert parsed.fields["s"] == text.replace("\r", "\\r").replace("\n", "\\n")
    assert s.counter.snapshot()["control_characters_escaped"] == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("end\\", "end\uff3c"),
        ("a\\,b", "a\uff3c,b"),
        ("a\\ b", "a\uff3c b"),
        ("a\\=b", "a\uff3c=b"),
        ('a\\"b', 'a\uff3c"b'),
        ("a\\b", "a\\b"),
    ],
)
def test_backslashes_the_parser_cannot_read_back_are_replaced(text: str, expected: str) -> None:
    s = ser()
    line = s.line(Point("m", {"t": text}, {"f": 1.0}, T))
    assert line is not None
    assert parse_line(line).tags == {"t": expected}
    replaced = s.counter.snapshot().get("unrepresentable_backslash_replaced", 0)
    assert replaced == (0 if text == expected else 1)


def test_surrogates_replaced_and_counted() -> None:
    s = ser()
    line = s.line(Point("m", {"t": "a\ud800b"}, {"f": 1.0}, T))
    assert line is not None
    line.encode("utf-8")
    assert s.counter.snapshot()["invalid_unicode_replaced"] == 1


def test_empty_tag_values_and_keys_dropped() -> None:
    s = ser()
    assert s.line(Point("m", {"a": "", "": "x", "b": "1"}, {"f": 1.0}, T)) == f"m,b=1 f=1.0 {T}"
    assert s.counter.total() == 2


@pytest.mark.parametrize("name", ["", "#comment"])
def test_invalid_measurement_skipped(name: str) -> None:
    s = ser()
    assert s.line(Point(name, {}, {"f": 1.0}, T)) is None
    assert s.counter.snapshot() == {"invalid_measurement": 1}


def test_timestamp_floor_and_type() -> None:
    s = LineProtocolSerializer(time_floor_ns=T, counter=SkipCounter())
    assert s.line(Point("m", {}, {"f": 1.0}, T - 1)) is None
    assert s.line(Point("m", {}, {"f": 1.0}, T)) is not None
    assert s.line(Point("m", {}, {"f": 1.0}, 1.5e18)) is None  # type: ignore[arg-type]
    assert s.line(Point("m", {}, {"f": 1.0}, True)) is None
    assert s.counter.snapshot() == {"timestamp_before_floor": 1, "invalid_timestamp": 2}


def test_skip_counter_logs_first_and_powers_of_ten(caplog: pytest.LogCaptureFixture) -> None:
    counter = SkipCounter()
    for _ in range(100):
        counter.count("reason", "detail")
    logged = [r for r in caplog.records if "reason" in r.getMessage()]
    assert [r.getMessage().split("occurrence ")[1].split(")")[0] for r in logged] == [
        "1",
        "10",
        "100",
    ]
    assert counter.snapshot() == {"reason": 100}


def test_worth_logging_between_agrees_with_worth_logging_for_bulk_counts() -> None:
    from telegraf_bridge.plugins.common import worth_logging, worth_logging_between

    for before in range(0, 130):
        for now in range(before, 1200, 7):
            expected = any(worth_logging(n) for n in range(before + 1, now + 1))
            assert worth_logging_between(before, now) is expected, (before, now)
