"""ndjson_tail's fused fast path writes exactly what the general path writes, byte for byte.

Each corpus is fed, line by line and in order (field types are learned along the way), to two
pipelines built from the same options: one with the fast path, one general only. Their lines,
skip counts, logged skips (each naming file:line) and learned field types must be equal, with
orjson and with the standard library's decoder. The corpora: the plugin's test cases, the
benchmark's SmartSolar lines, a generated hostile corpus and a Hypothesis-driven one.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import tomllib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from _support import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegraf_bridge.plugins.common import LineProtocolSerializer, Section, SkipCounter
from telegraf_bridge.plugins.ndjson_tail import convert, options
from telegraf_bridge.plugins.ndjson_tail.fastpath import FastPath
from telegraf_bridge.plugins.ndjson_tail.files import Line
from telegraf_bridge.plugins.ndjson_tail.records import RecordLines

sys.path.insert(0, str(REPO / "benchmarks"))
from _bench import smartsolar_line

CASES = REPO / "plugins" / "ndjson_tail" / "testdata"
NOW_NS = 1_772_366_400 * 10**9  # 2026-03-01T12:00:00Z
FLOOR_NS = 1_577_836_800 * 10**9  # 2020-01-01T00:00:00Z


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class Pipeline:
    """One source's line pipeline as the plugin builds it, with its own skip log."""

    def __init__(self, conf: dict[str, Any], *, fast: bool, name: str) -> None:
        opts = options.parse(Section({"files": ["x"], **conf}, "ndjson_tail"))
        self.converter = convert.converter_from_options(opts)
        self.converter.field_types.update(opts.field_types)
        logger = logging.getLogger(f"test.ndjson_fastpath.{name}")
        logger.propagate = False
        logger.handlers[:] = [handler := _Collect()]
        self.log = handler
        self.serializer = LineProtocolSerializer(
            field_types=self.converter.field_types,
            time_floor_ns=FLOOR_NS,
            counter=SkipCounter(logger),
        )
        max_future_ns = round(opts.max_future_s * 10**9)
        self.records = RecordLines(self.converter, self.serializer, max_future_ns, fast=fast)

    def feed(self, lines: Sequence[bytes], clock_sane: bool) -> list[str | None]:
        return [
            self.records.line(Line("/data/x.ndjson", number, data), NOW_NS, clock_sane)
            for number, data in enumerate(lines, 1)
        ]


def assert_same(lines: Sequence[bytes], conf: dict[str, Any] | None = None) -> int:
    """Both paths agree on ``lines``; returns how many lines the fast path took itself."""
    taken = 0
    for clock_sane in (True, False):
        fast = Pipeline(conf or {}, fast=True, name="fast")
        general = Pipeline(conf or {}, fast=False, name="general")
        assert fast.feed(lines, clock_sane) == general.feed(lines, clock_sane)
        assert fast.serializer.counter.snapshot() == general.serializer.counter.snapshot()
        assert fast.log.messages == general.log.messages
        assert fast.converter.field_types == general.converter.field_types
        if clock_sane:
            # Counted separately: the fast path's own takes, on a warmed-up copy.
            probe = FastPath(fast.converter, fast.serializer, fast.records.max_future_ns)
            taken = sum(probe.line(data, NOW_NS, clock_sane) is not None for data in lines)
    return taken


@pytest.fixture(params=["orjson", "stdlib"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with orjson (when installed) and with the standard library's decoder."""
    if request.param == "stdlib":
        monkeypatch.setattr(convert, "_orjson", None)  # as TELEGRAF_BRIDGE_NO_ACCEL=1 does
    elif convert.accelerated_loads() is None:
        pytest.skip("orjson is not installed")
    return str(request.param)


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_the_plugin_cases_come_out_the_same(case: str, decoder: str) -> None:
    folder = CASES / case
    conf = tomllib.loads((folder / "plugin.toml").read_text())
    lines = (folder / "input.ndjson").read_bytes().split(b"\n")
    # Twice: the second pass finds every field typed and every series cached.
    assert_same(lines + lines, conf)


def test_the_fast_path_takes_plain_smartsolar_lines(decoder: str) -> None:
    lines = [smartsolar_line(index).encode() for index in range(2000)]
    real = (CASES / "smartsolar_fixture" / "input.ndjson").read_bytes().split(b"\n")[:1]
    # Once every field is typed and every series cached, it takes all of them (the real
    # line holds integers for float fields and an integer field, model_id).
    assert assert_same(lines + real * 3) == len(lines) + 3


_T = b'"timestamp":"2026-03-01T12:00:00Z"'
EDGE_LINES = [
    # A repeated key whose dropped quotes are made up by escaped ones: only the general
    # path's decoder names the repeat.
    b"{"
    + _T
    + b',"device_name":"d","device_name":"d","raw_data":"\\"\\"\\"\\"","parsed_data":{"v":1.0}}',
    b"{" + _T + b',"device_name":"d","parsed_data":{"v":1.0,"v":"\\"\\"\\"\\""}}',
    b"{" + _T + b',"device_name":"d","parsed_data":{"v":1.0},"parsed_data":{"v":2.0}}',
    b"{" + _T + b',"device_name":"d","parsed_data":{"v":1.0},"x":["a","b"],"x":1}',
    b"{" + _T + b',"device_name":"d","parsed_data":{"v":1.0},"x":{"k":[]},"x":{}}',
    b"{" + _T + b' ,"device_name" :"d","parsed_data":{"v" :1.0, "v":2.0}}',
    # Numbers beyond a float, or beyond the decoder's digits.
    b"{" + _T + b',"device_name":"d","parsed_data":{"v":1' + b"0" * 400 + b',"w":1.5}}',
    b"{" + _T + b',"device_name":"d","parsed_data":{"v":-1' + b"0" * 400 + b',"w":1.5}}',
    b"{" + _T + b',"device_name":"d","parsed_data":{"v":1' + b"0" * 5000 + b"}}",
    b"{" + _T + b',"device_name":"d","parsed_data":{"v":9007199254740993,"w":1e400}}',
    b"{" + _T + b',"device_name":"d","parsed_data":{"v":-0.0,"w":0,"x":-0}}',
    b"{" + _T + b',"device_name":"d","parsed_data":{"v":0.0,"w":-1e-400,"x":1e-400}}',
    # Timestamps that are numbers but no instant.
    b'{"timestamp":"INF","device_name":"d","parsed_data":{"v":1.0}}',
    b'{"timestamp":"-Infinity","device_name":"d","parsed_data":{"v":1.0}}',
    b'{"timestamp":"sNaN","device_name":"d","parsed_data":{"v":1.0}}',
    b'{"timestamp":1e999999999,"device_name":"d","parsed_data":{"v":1.0}}',
    b'{"timestamp":"-1e999999999","device_name":"d","parsed_data":{"v":1.0}}',
    b'{"timestamp":' + b"9" * 40 + b',"device_name":"d","parsed_data":{"v":1.0}}',
    # Plain ones in between, so the fast path is warm for the next edge.
    b"{" + _T + b',"device_name":"d","parsed_data":{"v":1.0,"w":2.5,"x":3}}',
] * 2


_TYPED = b'{"timestamp":"2026-03-01T12:00:00Z","device_name":"d","parsed_data":{"v":1.5,%s}}'
# Declared integer (model_id, by default), unsigned and boolean fields, at and past their
# ranges, and values that equal a bool (1 == True) without being one.
TYPED_LINES = [
    _TYPED % f'"model_id":{model_id},"count":{count},"flag":{flag}'.encode()
    for model_id, count, flag in [
        (1, 1, "true"),
        (2**63 - 1, 2**64 - 1, "false"),
        (2**63, 0, "true"),
        (-(2**63), -1, "true"),
        (-(2**63) - 1, 2**64, "false"),
        (1.0, 1, "true"),
        (2, 2.0, "false"),
        ('"3"', 3, "true"),
        (4, 4, "1"),
        (5, 5, "0"),
        (6, 6, "1.0"),
        (7, 7, '"true"'),
        (8, 8, "null"),
        (9, 9, "false"),
    ]
]


def test_crafted_edges_come_out_the_same(decoder: str) -> None:
    assert_same(EDGE_LINES)
    typed = {"field_types": {"count": "unsigned", "flag": "boolean"}}
    assert assert_same(TYPED_LINES * 2, typed) > 0


ODD_VALUES: list[Any] = [
    0, -0, 0.0, -0.0, 1, -1, 2**53 - 1, 2**53, 2**53 + 1, -(2**53), 2**63 - 1, 2**63,
    2**64, -(2**63) - 1, 10**30, 1e308, 1e-320, 1.5, True, False, None, "", "x", "a\nb",
    'q"q', "back\\slash", "tab\there", "ü€😀", "\ud800", [], [1, "x"], {}, {"n": 1.0},
    {"n": {"m": "deep"}}, "12.5",
]  # fmt: skip
ODD_RAW = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1.0e1", "12.50", "-0.0",
           "1E+2", "123456789012345678901234567890", "0.1000000000000000055511151231257827"]  # fmt: skip
ODD_KEYS = ["", " ", "a b", "a,b", "a=b", "é", "%s", "{0}", "#", "a\\", "x\ty", "solar_power"]
ODD_TIMES: list[Any] = [
    "2026-03-01T12:00:00Z", "2026-03-01T12:00:00z", "2026-03-01 12:00:00Z",
    "2026-03-01t12:00:00Z", "2026-03-01T12:00:00.123456789Z", "2026-03-01T12:00:00.1234567891Z",
    "2026-03-01T12:00:00+0000", "2026-03-01T23:59:59-12:00", "2026-03-01T12:00:60Z",
    "2026-03-01T24:00:00Z", "2026-02-30T12:00:00Z", "2026-03-01T12:00:00", " 2026-03-01T12:00:00Z",
    "2026-03-01T12:00:00Z ", "\u0662\u0660\u0662\u0666-03-01T12:00:00Z", "2026-03-01T12:00:0\u0660Z", "2026-03-01T12:60:00Z",
    "2026-03-01T12:00:00+99:00", "1969-12-31T23:59:59Z", "2019-12-31T23:59:59.999999999Z",
    "2026-03-02T12:00:00.000000001Z", "2027-03-01T12:00:00Z", "9999-12-31T23:59:59Z",
    1772366400, 1772366400000, 17723664000000000000, -1, 0, True, None, 1.5e9, "1772366400",
    "", [], {}, "INF", "NaN", "1e999", float("inf"), float("nan"), 10**40,
]  # fmt: skip


def _drop_a_key(record: dict[str, Any], rng: random.Random) -> None:
    del record[rng.choice(list(record))]


def _fallback_container(record: dict[str, Any], rng: random.Random) -> None:
    record["readings"] = {"u": "v"}
    if rng.random() < 0.5:
        del record["parsed_data"]


# Each changes a plain record in one way: its values, keys or timestamp ...
RECORD_CHANGES: list[Callable[[dict[str, Any], random.Random], None]] = [
    lambda r, rng: r["parsed_data"].__setitem__(
        rng.choice([*r["parsed_data"], "new_field"]), rng.choice(ODD_VALUES)
    ),
    lambda r, rng: r.__setitem__("timestamp", rng.choice(ODD_TIMES)),
    lambda r, rng: r["parsed_data"].__setitem__(rng.choice(ODD_KEYS), rng.choice([1.5, "s", 3])),
    lambda r, rng: r.__setitem__(
        rng.choice(["device_name", "device_address"]), rng.choice(ODD_VALUES)
    ),
    lambda r, rng: r.__setitem__(rng.choice(["raw_data", "extra"]), rng.choice(ODD_VALUES)),
    _drop_a_key,
    _fallback_container,
]
# ... or its text: a number no Python float round-trips to, a repeated key (at the top or in
# the container), whitespace where a compact writer has none, or no longer one object.
TEXT_CHANGES: list[Callable[[str, random.Random], str]] = [
    lambda t, rng: t.replace('"solar_power": ', f'"solar_power": {rng.choice(ODD_RAW)}, "x": ', 1),
    lambda t, _rng: t.replace('{"battery', '{"battery_voltage": 1.0, "battery', 1),
    lambda t, _rng: t.replace('{"timestamp"', '{"device_name": "dup", "timestamp"', 1),
    lambda t, rng: t.replace(": ", rng.choice([":", " : ", ":\t", ":  "])),
    lambda t, rng: rng.choice([t[:-1], t + "x", "[" + t + "]", t + " ", "\ufeff" + t]),
    lambda t, _rng: t.replace(", ", ","),
]


def _hostile_lines(seed: int) -> Iterator[bytes]:
    """Lines near the fast path's edges: each differs from a plain record in one way."""
    rng = random.Random(seed)
    base = smartsolar_line(7)
    for _ in range(1500):
        record = json.loads(base)
        change = rng.randrange(len(RECORD_CHANGES) + len(TEXT_CHANGES) + 1)  # +1: unchanged
        if change < len(RECORD_CHANGES):
            RECORD_CHANGES[change](record, rng)
        text = json.dumps(record, ensure_ascii=rng.random() < 0.2, allow_nan=True)
        if len(RECORD_CHANGES) <= change < len(RECORD_CHANGES) + len(TEXT_CHANGES):
            text = TEXT_CHANGES[change - len(RECORD_CHANGES)](text, rng)
        data = text.encode("utf-8", "surrogatepass")
        if rng.random() < 0.02:
            data = data.replace(b"S", b"\xff", 1)  # not UTF-8
        yield data


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_hostile_corpus_comes_out_the_same(seed: int, decoder: str) -> None:
    lines = list(_hostile_lines(seed))
    assert_same(lines)
    assert_same(lines, {"keep_container_prefix": True, "separator": "%"})
    assert_same(lines, {"timestamp_format": "rfc3339", "tag_keys": ["device_name", "raw_data"]})
    assert_same(
        lines,
        {
            "field_containers": ["parsed_data", "readings"],
            "fallback": "raw",
            "timestamp_format": "unix",
            "max_future": "1h",
            "field_types": {"battery_voltage": "string", "yield_today": "unsigned", "x": "boolean"},
        },
    )


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
)
_keys = st.sampled_from(["v", "w", "charge_state", "a b", "x=1", "", "é", "%"]) | st.text(
    max_size=3
)
_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_keys, inner, max_size=2),
    max_leaves=4,
)
_times = st.sampled_from(
    ["2026-03-01T12:00:00Z", "2026-03-01T12:00:00.5+01:00", "2026-03-01T12:34:56.123456789-00:30"]
) | st.integers(min_value=-(2**64), max_value=2**64) | st.text(max_size=30) | st.none()  # fmt: skip
_records = st.fixed_dictionaries(
    {
        "timestamp": _times,
        "device_name": st.sampled_from(["d1", "d 2", ""]) | _json_scalars,
        "parsed_data": st.dictionaries(_keys, _values, max_size=5),
    },
    optional={"raw_data": _values, "device_address": st.sampled_from(["a", "b"])},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            _records, st.sampled_from([(",", ":"), (", ", ": "), (",", " :")]), st.booleans()
        ),
        min_size=1,
        max_size=12,
    )
)
def test_generated_records_come_out_the_same(records: list[Any]) -> None:
    lines = [
        json.dumps(record, separators=separators, ensure_ascii=ascii_only).encode(
            "utf-8", "surrogatepass"
        )
        for record, separators, ascii_only in records
    ]
    for accel in (convert._orjson, None):
        saved = convert._orjson
        convert._orjson = accel
        try:
            # Each record twice: the second time it finds its fields typed and series cached.
            assert_same([line for line in lines for _ in (0, 1)])
        finally:
            convert._orjson = saved
