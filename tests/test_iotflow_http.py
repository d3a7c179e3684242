"""The iotflow HTTP listener: body -> points mapping, status codes, limits, TLS, concurrency.

Mapping tests call payload.py directly and push the points through the real serializer and
the strict line-protocol reader (injection attempts must never add a point). Status-code
tests run the listener in-process on a loopback port with the plugin's JournaledWriter over a
buffer (what the plugin's stdout would get); a last group runs the plugin as Telegraf would start it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _iotflow_http_rig import (
    ENDPOINT,
    SafeBuffer,
    concurrent_posts,
    make_registry,
    plugin_toml,
    post,
    raw_request,
    request_bytes,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from rig import free_port, wait_for
from telegraf_bridge.plugins.common import LineProtocolSerializer, LineWriter, Point, SkipCounter
from telegraf_bridge.plugins.common._journal import Journal
from telegraf_bridge.plugins.common._journal import _frames as journal_frames
from telegraf_bridge.plugins.common._journaled_writer import JournaledWriter
from telegraf_bridge.plugins.iotflow import payload, registry
from telegraf_bridge.plugins.iotflow.http_listener import (
    ListenerError,
    ListenerSettings,
    TelemetryListener,
    tls_context,
)
from telegraf_bridge.plugins.iotflow.http_stats import REASONS
from telegraf_bridge.plugins.iotflow.registry_watcher import RegistryWatcher

from telegraf_bridge.testing import parse_lines

NS = 1_000_000_000
FLOOR_NS = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
RECEIVED = 1_780_000_000 * NS
TAGS = {"device_id": "esp32_001", "device_name": "Office Sensor", "location": "office"}
RULES = payload.Rules(
    default_type="telemetry",
    string_tags=frozenset({"room"}),
    max_points=10,
    time_floor_ns=FLOOR_NS,
    reserved_types=frozenset({"iotflow_http_status"}),
)


def mapped(doc: Any, rules: payload.Rules = RULES) -> payload.Mapped:
    return payload.to_points(doc, TAGS, rules, RECEIVED)


def one(doc: Any) -> Point:
    points = mapped(doc).points
    assert len(points) == 1
    return points[0]


def refused(doc: Any, reason: str, *words: str) -> str:
    with pytest.raises(payload.PayloadError) as info:
        mapped(doc)
    assert info.value.reason == reason, info.value.message
    for word in words:
        assert word in info.value.message, info.value.message
    return info.value.message


def decode_refused(body: bytes, reason: str) -> str:
    with pytest.raises(payload.PayloadError) as info:
        payload.decode(body)
    assert info.value.reason == reason, info.value.message
    return info.value.message


# -- mapping ----------------------------------------------------------------------------------


def test_the_seed_body_becomes_one_point_with_registry_tags() -> None:
    doc = payload.decode(
        b'{"data": {"temperature": 24.5, "humidity": 60, "battery_level": 85.0},'
        b' "type": "environmental", "metadata": {"location": "sensor_room_1"}}'
    )
    result = mapped(doc)
    (point,) = result.points
    assert point.measurement == "environmental"
    # The registry's location wins over the body's; the body's is dropped and counted.
    assert point.tags == TAGS
    assert result.dropped_keys == 1
    assert point.fields == {"temperature": 24.5, "humidity": 60.0, "battery_level": 85.0}
    assert all(type(v) is float for v in point.fields.values())
    assert point.time_ns == RECEIVED
    assert result.receive_time_points == 1


def test_value_types_follow_the_mqtt_rules() -> None:
    point = one(
        payload.decode(
            b'{"data": {"n": 1, "f": 1.5, "on": true, "off": false, "state": "BULK",'
            b' "room": "lab 1", "gone": null}}'
        )
    )
    assert point.measurement == "telemetry"  # the default type
    assert point.fields == {"n": 1.0, "f": 1.5, "on": True, "off": False, "state": "BULK"}
    assert point.tags == {**TAGS, "room": "lab 1"}  # a declared string tag


def test_nested_values_are_flattened_like_telegrafs_json_parser() -> None:
    point = one(
        payload.decode(b'{"data": {"a": {"b": 1, "c": [2, {"d": true}], "e": {}}, "x": [[3]]}}')
    )
    assert point.fields == {"a_b": 1.0, "a_c_0": 2.0, "a_c_1_d": True, "x_0_0": 3.0}


def test_nesting_and_field_count_are_bounded() -> None:
    deep: Any = 1.0
    for _ in range(payload.MAX_DEPTH):
        deep = {"k": deep}
    refused({"data": {"v": deep}}, "too_deep", "$.data.v.k")
    ok: Any = 1.0
    for _ in range(payload.MAX_DEPTH - 2):
        ok = {"k": ok}
    assert one({"data": {"v": ok}}).fields == {"v" + "_k" * (payload.MAX_DEPTH - 2): 1.0}
    refused({"data": {"a": list(range(payload.MAX_FIELDS + 1))}}, "too_many_fields", "$.data")
    assert len(one({"data": {"a": [1.0] * payload.MAX_FIELDS}}).fields) == payload.MAX_FIELDS
    decode_refused(b"[" * 100_000 + b"]" * 100_000, "too_deep")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b'{"data": {"t": NaN}}', "$.data.t"),
        (b'{"data": {"t": Infinity}}', "$.data.t"),
        (b'{"data": {"a": [1, -Infinity]}}', "$.data.a[1]"),
        (b'{"data": {"t": 1e400}}', "$.data.t"),
        (b'{"data": {"t": -1e999}}', "$.data.t"),
        (b'{"data": {"t": ' + b"9" * 5000 + b"}}", "$.data.t"),
    ],
)
def test_non_finite_and_overflowing_numbers_are_refused_with_their_path(
    body: bytes, path: str
) -> None:
    refused(payload.decode(body), "invalid_value", path)


def test_keys_the_bundle_owns_are_dropped_and_counted() -> None:
    doc = {
        "data": {
            "t": 1,
            "device_id": "evil",
            "device_name": "x",
            "topic": "t",
            "timestamp": "2026-03-01T00:00:00Z",
            "device": {"type": "flattened into device_type"},
        },
        "metadata": {"device_id": "evil", "location": "elsewhere", "room": "a"},
    }
    result = mapped(doc)
    (point,) = result.points
    assert point.tags == {**TAGS, "room": "a"}
    assert point.fields == {"t": 1}
    assert result.dropped_keys == 7
    # The timestamp inside data is not the point's time (the top-level one is).
    assert point.time_ns == RECEIVED


@pytest.mark.parametrize(
    ("doc", "reason", "words"),
    [
        ([], "invalid_body", ["object"]),
        ("x", "invalid_body", ["object"]),
        ({}, "invalid_data", ["$.data is missing"]),
        ({"data": {}}, "invalid_data", ["$.data has no values"]),
        ({"data": {"a": None, "b": {}}}, "invalid_data", ["no values"]),
        ({"data": [1, 2]}, "invalid_data", ["$.data must be an object"]),
        ({"data": {"t": 1}, "extra": 1}, "invalid_body", ['"extra"']),
        ({"data": {"t": 1}, "points": []}, "invalid_body", ['"data"']),
        ({"points": []}, "invalid_body", ["non-empty"]),
        ({"points": {"data": {}}}, "invalid_body", ["$.points"]),
        ({"points": [1]}, "invalid_body", ["$.points[0]"]),
        ({"points": [{"data": {"t": 1}}] * 11}, "too_many_points", ["11", "10"]),
        ({"points": [{"data": {"t": 1}}, {"data": {"t": "x"}, "type": 5}]}, "invalid_type", []),
        ({"data": {"t": 1}, "type": "has space"}, "invalid_type", ["$.type"]),
        ({"data": {"t": 1}, "type": "1abc"}, "invalid_type", []),
        ({"data": {"t": 1}, "type": "a" * 65}, "invalid_type", []),
        ({"data": {"t": 1}, "type": "#comment"}, "invalid_type", []),
        ({"data": {"t": 1}, "type": "iotflow_http_status"}, "invalid_type", []),
        ({"data": {"": 1}}, "invalid_key", ["empty key"]),
        ({"data": {"a\nb": 1}}, "invalid_key", ["control"]),
        ({"data": {"a\ud800": 1}}, "invalid_key", ["control"]),
        ({"data": {"k" * 129: 1}}, "invalid_key", ["longer"]),
        ({"data": {"a_b": 1, "a": {"b": 2}}}, "invalid_key", ["twice"]),
        ({"data": {"s": "x" * 65537}}, "invalid_value", ["$.data.s", "longer"]),
        ({"data": {"s": "bad \udc80"}}, "invalid_value", ["Unicode"]),
        ({"data": {"room": "r" * 257}}, "invalid_value", ["$.data.room"]),
        ({"data": {"t": 1}, "metadata": "lab"}, "invalid_metadata", ["$.metadata"]),
        ({"data": {"t": 1}, "metadata": {"floor": 3}}, "invalid_metadata", ["$.metadata.floor"]),
        ({"data": {"t": 1}, "metadata": {"x": {"y": "z"}}}, "invalid_metadata", ["$.metadata.x"]),
        ({"data": {"t": 1}, "metadata": {"t": "v"}}, "invalid_metadata", ["also a data field"]),
        (
            {"data": {"t": 1, "room": "a"}, "metadata": {"room": "b"}},
            "invalid_metadata",
            ["differs"],
        ),
        (
            {"data": {"t": 1}, "metadata": {f"k{i}": "v" for i in range(33)}},
            "invalid_metadata",
            ["more than 32"],
        ),
        ({"data": {"t": 1}, "timestamp": 1780000000}, "invalid_timestamp", ["$.timestamp"]),
        ({"data": {"t": 1}, "timestamp": "yesterday"}, "invalid_timestamp", ["RFC 3339"]),
        ({"data": {"t": 1}, "timestamp": "2026-03-01T12:00:00"}, "invalid_timestamp", ["offset"]),
        ({"data": {"t": 1}, "timestamp": "2026-13-01T12:00:00Z"}, "invalid_timestamp", []),
        ({"data": {"t": 1}, "timestamp": "9999-12-31T00:00:00Z"}, "invalid_timestamp", ["range"]),
        ({"data": {"t": 1}, "timestamp": "2025-06-01T00:00:00Z"}, "timestamp_before_floor", []),
        (
            {
                "points": [
                    {"data": {"t": 1}},
                    {"data": {"t": 1}, "timestamp": "1970-01-01T00:00:00Z"},
                ]
            },
            "timestamp_before_floor",
            ["$.points[1].timestamp"],
        ),
    ],
)
def test_malformed_bodies_are_refused_naming_the_problem(
    doc: Any, reason: str, words: list[str]
) -> None:
    refused(doc, reason, *words)


def test_decoding_refuses_what_json_loads_would_let_through() -> None:
    assert "twice" in decode_refused(b'{"data": {"t": 1, "t": 2}}', "malformed_json")
    assert "UTF-8" in decode_refused(b'{"data": {"t": "\xff"}}', "malformed_json")
    decode_refused(b"\xef\xbb\xbf{}", "malformed_json")  # a byte-order mark
    decode_refused(b"", "malformed_json")
    decode_refused(b'{"data": {"t": 1}', "malformed_json")
    decode_refused(b"data=1", "malformed_json")
    # UTF-16 is auto-detected by json.loads(bytes); the body must be UTF-8.
    decode_refused('{"data": {"t": 1}}'.encode("utf-16"), "malformed_json")


def test_timestamps_and_receive_time() -> None:
    result = mapped(
        {
            "points": [
                {"data": {"t": 1}, "timestamp": "2026-03-01T12:00:00.123456789+01:00"},
                {"data": {"t": 2}},
                {"data": {"t": 3}},
            ]
        }
    )
    times = [p.time_ns for p in result.points]
    expected = int(datetime(2026, 3, 1, 11, 0, tzinfo=UTC).timestamp()) * NS + 123_456_789
    # Points without their own time get distinct nanoseconds: same series, no overwrite.
    assert times == [expected, RECEIVED, RECEIVED + 1]
    assert result.receive_time_points == 2


def test_a_batch_may_name_its_device_and_each_name_is_reported() -> None:
    doc = {"device_id": "a", "points": [{"data": {"t": 1}, "device_id": "b"}, {"data": {"t": 2}}]}
    assert payload.named_devices(doc) == ["a", "b"]
    assert payload.named_devices({"data": {}, "device_id": 7}) == [7]
    assert payload.named_devices([1]) == []
    assert len(mapped(doc).points) == 2


TRICKY = [
    "a,b",
    "a b",
    "a=b",
    'a"b',
    "a\\",
    "a\\,b",
    "back\\slash",
    "x=1 y=2",
    "emoji ☀ Zürich",
    "quote\"'",
    "tab\tin",
    "line1\nline2 m,t=1 f=1 1",
    "cr\rhere",
    " lead",
    "trail ",
]


def serialise(points: list[Point]) -> tuple[str, SkipCounter]:
    counter = SkipCounter()
    serializer = LineProtocolSerializer(time_floor_ns=FLOOR_NS, counter=counter)
    out = SafeBuffer()
    LineWriter(out, serializer).write_points(points)
    return out.text(), counter


def test_injection_attempts_never_produce_an_extra_point() -> None:
    keys = [k for k in TRICKY if k.isprintable()]  # control characters in keys: a 400 (above)
    data: dict[str, Any] = {k: f"v{i}" for i, k in enumerate(keys)}
    data.update({f"s{i}": value for i, value in enumerate(TRICKY)})
    data.update({"room": 'tag, with=all "kinds" of\\ stuff\nm2 x=1'})
    metadata = {f"m_{k}": v for k, v in zip(keys, reversed(TRICKY), strict=False)}
    text, _ = serialise(mapped({"data": data, "metadata": metadata}).points)
    (parsed,) = parse_lines(text)
    assert text.count("\n") == 1
    assert parsed.measurement == "telemetry"
    # A backslash Telegraf's parser cannot read back becomes U+FF3C (the serializer's rule).
    readable = {k: k.replace("a\\,", "a\uff3c,").removesuffix("\\") for k in keys}
    readable["a\\"] = "a\uff3c"
    assert {readable[k]: parsed.fields[readable[k]] for k in keys} == {
        readable[k]: f"v{i}" for i, k in enumerate(keys)
    }
    for i, value in enumerate(TRICKY):
        # Line breaks in string fields come back as their two-character escapes.
        assert parsed.fields[f"s{i}"] == value.replace("\n", "\\n").replace("\r", "\\r")
    assert parsed.tags["room"] == 'tag, with=all "kinds" of\uff3c stuff\\nm2 x=1'
    assert parsed.tags["device_name"] == "Office Sensor"
    assert len(parsed.tags) == len(TAGS) + 1 + len(metadata)
    assert len(parsed.fields) == len(data) - 1


json_leaf = st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(st.text(max_size=12), json_value, max_size=8),
    metadata=st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4),
)
def test_any_body_is_refused_or_becomes_exactly_its_points(
    data: dict[str, Any], metadata: dict[str, str]
) -> None:
    body = json.dumps({"points": [{"data": data, "metadata": metadata}] * 2}).encode()
    try:
        result = payload.to_points(payload.decode(body), TAGS, RULES, RECEIVED)
    except payload.PayloadError:
        return
    text, counter = serialise(result.points)
    parsed = parse_lines(text)
    assert len(parsed) == 2, text
    assert "point_without_fields_skipped" not in counter.snapshot()
    for point, source in zip(parsed, result.points, strict=True):
        assert point.time_ns == source.time_ns
        assert set(point.tags) >= set(TAGS)
        assert len(point.fields) >= 1


CASES = Path(__file__).resolve().parents[1] / "plugins/iotflow/testdata/http"
CASE_TAGS = {**TAGS, "device_type": "sensor"}
CASE_RECEIVED = 1_772_366_400_500_000_000  # 2026-03-01T12:00:00.5Z


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_testdata_cases(case: str) -> None:
    folder = CASES / case
    body = (folder / "body.json").read_bytes()
    rules = payload.Rules(
        string_tags=frozenset({"room"}),
        time_floor_ns=FLOOR_NS,
        reserved_types=frozenset({"iotflow_http_status"}),
    )
    if (folder / "expected.error").exists():
        reason, message = (folder / "expected.error").read_text().splitlines()
        with pytest.raises(payload.PayloadError) as info:
            payload.to_points(payload.decode(body), CASE_TAGS, rules, CASE_RECEIVED)
        assert (info.value.reason, info.value.message) == (reason, message)
        return
    result = payload.to_points(payload.decode(body), CASE_TAGS, rules, CASE_RECEIVED)
    text, _ = serialise(result.points)
    assert text == (folder / "expected.out").read_text()
    # And what the strict reader (Telegraf's rules) makes of it: one point per line.
    assert len(parse_lines(text)) == text.count("\n") == len(result.points)


# -- the listener, in-process -----------------------------------------------------------------


class Rig:
    """A running listener, its output and its registry."""

    def __init__(self, tmp_path: Path, **overrides: Any) -> None:
        self.registry_path = tmp_path / "devices.yaml"
        self.keys = make_registry(self.registry_path)
        self.out = SafeBuffer()
        self.serializer = LineProtocolSerializer(time_floor_ns=FLOOR_NS, counter=SkipCounter())
        self.writer: Any = overrides.pop("writer", None)
        if self.writer is None:  # the plugin's own: journal (fsynced), then stdout
            self.writer = JournaledWriter(self.out, self.serializer, Journal(tmp_path / "journal"))
            self.writer.open()
        self.clock = overrides.pop("clock_ok", lambda: True)
        self.gone = threading.Event()
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "workers": 4,
            "max_body_bytes": 4096,
            "rules": RULES,
            "read_timeout_s": 5.0,
        }
        values.update(overrides)
        self.watcher = RegistryWatcher(self.registry_path, check_every_s=0.05)
        self.listener = TelemetryListener(
            ListenerSettings(**values),
            self.watcher,
            self.writer,
            clock_ok=self.clock,
            on_output_gone=self.gone.set,
        )
        self.listener.start()
        self.port = self.listener.port

    def post(self, body: Any, key: str | None = "", **kwargs: Any) -> Any:
        if key == "":
            key = self.keys["esp32_001"]
        return post(self.port, body, key=key, **kwargs)

    def points(self) -> list[Any]:
        return parse_lines(self.out.text())

    def rejected(self) -> dict[str, int]:
        snap = self.listener.stats.snapshot()
        return {r: snap[f"rejected_{r}"] for r in REASONS if snap[f"rejected_{r}"]}


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    server = Rig(tmp_path)
    yield server
    server.listener.stop()


BODY = {"data": {"temperature": 24.5}, "type": "environmental"}


def test_a_valid_key_stores_the_point_with_registry_tags(rig: Rig) -> None:
    reply = rig.post(BODY)
    assert reply.status == 200, reply
    assert reply.json() == {"status": "ok", "points": 1}
    (point,) = rig.points()
    assert point.measurement == "environmental"
    assert point.tags == {
        "device_id": "esp32_001",
        "device_name": "Office Sensor",
        "device_type": "sensor",
        "location": "office",
    }
    assert point.fields == {"temperature": 24.5}
    # The second device's name has a comma and an equals sign; its location is empty.
    reply = rig.post(
        {"data": {"t": 1}}, key=rig.keys["esp32_002"], headers={"X-Device-ID": "esp32_002"}
    )
    assert reply.status == 200
    assert rig.points()[1].tags == {
        "device_id": "esp32_002",
        "device_name": "Kitchen, Fridge=1",
        "device_type": "sensor",
    }
    snap = rig.listener.stats.snapshot()
    assert (snap["requests"], snap["accepted_requests"], snap["accepted_points"]) == (2, 2, 2)


def test_testdata_cases_over_http(rig: Rig) -> None:
    expected_lines = 0
    for folder in sorted(p for p in CASES.iterdir() if p.is_dir()):
        reply = rig.post((folder / "body.json").read_bytes())
        if (folder / "expected.error").exists():
            _, message = (folder / "expected.error").read_text().splitlines()
            assert (reply.status, reply.json()) == (400, {"error": message}), folder.name
        else:
            lines = (folder / "expected.out").read_text().count("\n")
            assert reply.json() == {"status": "ok", "points": lines}, folder.name
            expected_lines += lines
    assert len(rig.points()) == expected_lines


def test_a_batch_is_written_whole(rig: Rig) -> None:
    points = [{"data": {"i": i}, "type": "batch", "device_id": "esp32_001"} for i in range(10)]
    reply = rig.post({"points": points})
    assert reply.json() == {"status": "ok", "points": 10}
    assert sorted(p.fields["i"] for p in rig.points()) == [float(i) for i in range(10)]


def test_every_authentication_failure_gets_the_same_401(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good, other = rig.keys["esp32_001"], rig.keys["esp32_002"]
    _, unknown = registry.new_key()  # well-formed, but no device has it
    wrong_secret = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    attempts = {
        "missing key": rig.post(BODY, key=None),
        "empty key": rig.post(BODY, key=" "),
        "garbage key": rig.post(BODY, key="not-a-key"),
        "wrong secret": rig.post(BODY, key=wrong_secret),
        "unknown device": rig.post(BODY, key=unknown),
        "another device's key (header)": rig.post(BODY, headers={"X-Device-ID": "esp32_002"}),
        "another device's key (body)": rig.post({**BODY, "device_id": "esp32_002"}),
        "another device's key (batch)": rig.post(
            {"points": [BODY, {**BODY, "device_id": "esp32_002"}]}
        ),
        "device name of a non-string": rig.post({**BODY, "device_id": 1}),
        "the other key naming this device": rig.post(
            BODY, key=other, headers={"X-Device-ID": "esp32_001"}
        ),
        "a wrong key and a malformed body": rig.post(b"{not json", key=wrong_secret),
    }
    for what, reply in attempts.items():
        assert reply.status == 401, what
        assert reply.body == b'{"error": "unauthorized"}\n', what
    assert rig.points() == []
    assert rig.rejected() == {"unauthorized": len(attempts)}
    # The key is never logged, and a 401 says nothing about which part was wrong.
    for key in (good, other, wrong_secret, unknown):
        assert key not in caplog.text
        assert key[4:20] not in caplog.text


def test_malformed_json_is_a_400_naming_the_problem(rig: Rig) -> None:
    reply = rig.post(b'{"data": {"t": 1,}}')
    assert reply.status == 400
    assert "not JSON" in reply.json()["error"]
    reply = rig.post({"data": {"t": 1}, "metadata": {"floor": 2}})
    assert reply.status == 400
    assert "$.metadata.floor" in reply.json()["error"]
    assert rig.points() == []
    assert rig.rejected() == {"malformed_json": 1, "invalid_metadata": 1}


def test_an_oversized_body_is_refused_before_it_is_read(rig: Rig) -> None:
    key = rig.keys["esp32_001"]
    # Only the headers are sent: the answer must come without the body.
    head = (
        f"POST {ENDPOINT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-API-Key: {key}\r\nContent-Length: 4097\r\n\r\n"
    ).encode()
    answer = raw_request(rig.port, head, timeout=5)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b"4096 bytes" in answer
    # At the limit exactly, it is accepted.
    padded = json.dumps({"data": {"s": ""}})
    body = json.dumps({"data": {"s": "x" * (4096 - len(padded))}}).encode()
    assert len(body) == 4096
    assert rig.post(body).status == 200
    assert rig.rejected() == {"too_large": 1}


def test_length_type_path_and_method_are_checked(rig: Rig) -> None:
    key = rig.keys["esp32_001"]
    no_length = f"POST {ENDPOINT} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n".encode()
    assert raw_request(rig.port, no_length).startswith(b"HTTP/1.1 411 ")
    chunked = (
        f"POST {ENDPOINT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        f"X-API-Key: {key}\r\nContent-Type: application/json\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ).encode()
    assert raw_request(rig.port, chunked).startswith(b"HTTP/1.1 411 ")
    bad_length = f"POST {ENDPOINT} HTTP/1.1\r\nContent-Length: -1\r\n\r\n".encode()
    assert raw_request(rig.port, bad_length).startswith(b"HTTP/1.1 400 ")
    reply = rig.post(b"temperature=1", headers={"Content-Type": "text/plain"})
    assert reply.status == 415
    assert rig.post(BODY, headers={"Content-Type": "application/json; charset=utf-8"}).status == 200
    assert rig.post(BODY, path="/api/v1/devices/telemetry/x").status == 404
    assert rig.post(BODY, path="/").status == 404
    reply = rig.post(None, method="GET")
    assert (reply.status, reply.headers.get("Allow")) == (405, "POST")
    assert rig.post(None, method="GET", path="/metrics").status == 404
    # An HTTP/0.9-style line gets an HTTP/0.9-style answer: the body alone.
    assert raw_request(rig.port, b"NONSENSE\r\n\r\n") == b'{"error": "bad request"}\n'
    assert raw_request(rig.port, b"BREW / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 501 ")
    assert rig.rejected() == {
        "length_required": 2,
        "bad_request_line": 3,
        "unsupported_media_type": 1,
        "not_found": 3,
        "method_not_allowed": 1,
    }
    assert len(rig.points()) == 1


def test_expect_100_continue_only_after_the_headers_passed(rig: Rig) -> None:
    body = json.dumps(BODY).encode()

    def head(key: str) -> bytes:
        return (
            f"POST {ENDPOINT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {key}\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n"
            "Connection: close\r\n\r\n"
        ).encode()

    with socket.create_connection(("127.0.0.1", rig.port), timeout=5) as sock:
        sock.sendall(head(rig.keys["esp32_001"]))
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    # A refused request gets its refusal, not an invitation to send the body.
    assert raw_request(rig.port, head("iot_wrong")).startswith(b"HTTP/1.1 401 ")
    assert len(rig.points()) == 1


def test_keep_alive_serves_several_requests_on_one_connection(rig: Rig) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", rig.port, timeout=5)
    headers = {"Content-Type": "application/json", "X-API-Key": rig.keys["esp32_001"]}
    try:
        for i in range(3):
            conn.request("POST", ENDPOINT, body=json.dumps({"data": {"i": i}}), headers=headers)
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.getheader("Connection") is None
            resp.read()
        sock = conn.sock
        assert sock is not None
    finally:
        conn.close()
    assert len(rig.points()) == 3


def test_a_kept_alive_connection_gives_way_when_others_wait(tmp_path: Path) -> None:
    import http.client

    rig = Rig(tmp_path, workers=1, keepalive_idle_s=5.0)
    try:
        headers = {"Content-Type": "application/json", "X-API-Key": rig.keys["esp32_001"]}
        first = http.client.HTTPConnection("127.0.0.1", rig.port, timeout=10)
        first.request("POST", ENDPOINT, body=json.dumps(BODY), headers=headers)
        resp = first.getresponse()
        resp.read()
        assert (resp.status, resp.getheader("Connection")) == (200, None)
        # A second device connects while the only worker holds the first connection.
        waiting = socket.create_connection(("127.0.0.1", rig.port), timeout=10)
        waiting.sendall(request_bytes({"data": {"t": 2}}, rig.keys["esp32_002"]))
        started = time.monotonic()
        first.request("POST", ENDPOINT, body=json.dumps(BODY), headers=headers)
        resp = first.getresponse()
        resp.read()
        # The answer says the connection closes, so the client does not reuse it.
        assert (resp.status, resp.getheader("Connection")) == (200, "close")
        answer = waiting.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert time.monotonic() - started < 2  # not after the 5 s idle timeout
        waiting.close()
        first.close()
        assert len(rig.points()) == 3
    finally:
        rig.listener.stop()


def test_a_slow_client_is_cut_off_by_the_read_timeout(tmp_path: Path) -> None:
    rig = Rig(tmp_path, read_timeout_s=0.5, workers=1)
    try:
        key = rig.keys["esp32_001"]
        head = (
            f"POST {ENDPOINT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {key}\r\nContent-Length: 100\r\n\r\n" + '{"data":'
        ).encode()
        started = time.monotonic()
        answer = raw_request(rig.port, head, timeout=10)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - started < 5
        # A connection that sends nothing at all frees its (only) worker as well.
        with socket.create_connection(("127.0.0.1", rig.port)):
            time.sleep(0.7)
            assert rig.post(BODY).status == 200
        assert rig.rejected() == {"timeout": 1}
    finally:
        rig.listener.stop()


def test_registry_changes_are_picked_up_and_a_broken_file_keeps_the_last_good_one(
    rig: Rig,
) -> None:
    old = rig.keys["esp32_001"]
    reg = registry.load(rig.registry_path)
    key_id, new = registry.new_key(d.key_id for d in reg.devices.values())
    reg.devices["esp32_001"] = registry.rekeyed(reg.devices["esp32_001"], key_id, new)
    key_id3, key3 = registry.new_key([key_id, *(d.key_id for d in reg.devices.values())])
    reg.devices["esp32_003"] = registry.Device(
        id="esp32_003", name="New", key_id=key_id3, key_hash=registry.hash_key(key3)
    )
    registry.save(rig.registry_path, reg)
    wait_for(lambda: rig.post(BODY, key=key3).status == 200, timeout=5, what="the new device")
    assert rig.post(BODY, key=new).status == 200
    assert rig.post(BODY, key=old).status == 401  # the rotated key stops working
    assert rig.watcher.reloads == 1

    good_text = rig.registry_path.read_text()
    rig.registry_path.write_text(good_text + "\n  - broken: [\n")
    # The file is looked at when requests come (and at each gather), at most every 50 ms here.
    wait_for(
        lambda: rig.post(BODY, key=key3).status == 200 and rig.watcher.reload_errors == 1,
        timeout=5,
        what="the reload error, with the previous registry still serving",
    )
    rig.registry_path.unlink()
    wait_for(
        lambda: rig.post(BODY, key=new).status == 200 and rig.watcher.reload_errors == 2,
        timeout=5,
        what="the missing file, with the previous registry still serving",
    )
    rig.registry_path.write_text("")  # an editor truncating before it writes: not a reload
    time.sleep(0.1)
    assert rig.post(BODY, key=new).status == 200
    assert (rig.watcher.reloads, rig.watcher.reload_errors) == (1, 2)
    rig.registry_path.write_text(good_text)
    wait_for(
        lambda: rig.watcher.current() is not None and rig.watcher.reloads == 2,
        timeout=5,
        what="the repaired file",
    )


def test_a_point_before_the_time_floor_is_a_400_not_a_silent_skip(rig: Rig) -> None:
    reply = rig.post({"data": {"t": 1}, "timestamp": "2024-01-01T12:00:00Z"})
    assert reply.status == 400
    assert "time floor" in reply.json()["error"]
    assert rig.serializer.counter.snapshot() == {}
    assert rig.points() == []


def test_the_receive_time_needs_a_sane_clock(tmp_path: Path) -> None:
    rig = Rig(tmp_path, clock_ok=lambda: False)
    try:
        reply = rig.post(BODY)
        assert (reply.status, reply.headers.get("Retry-After")) == (503, "30")
        stamped = {**BODY, "timestamp": "2026-03-01T00:00:00Z"}
        assert rig.post(stamped).status == 200
        assert rig.rejected() == {"clock_unsynchronised": 1}
        assert len(rig.points()) == 1
    finally:
        rig.listener.stop()


class GoneWriter:
    """A writer that cannot store anything (the journal's disk failed)."""

    holding = False
    output_gone = False

    def write_points(self, points: Any, *, durable: bool = False) -> int:
        raise OSError(28, "No space left on device")


def test_no_2xx_once_telegraf_is_gone(tmp_path: Path) -> None:
    rig = Rig(tmp_path, writer=GoneWriter())
    try:
        assert rig.post(BODY).status == 503
        assert rig.gone.is_set()
        assert rig.post(BODY).status == 503
        assert rig.rejected() == {"output_unavailable": 2}
    finally:
        rig.listener.stop()


def _journaled(tmp_path: Path) -> list[bytes]:
    """The payloads in the journal's segment files, as a new start would find them."""
    return [
        data[start : start + size]
        for segment in sorted((tmp_path / "journal").glob("*.seg"))
        for data in [segment.read_bytes()]
        for _seq, _created, start, size, _meta, _end in journal_frames(data)
        if size
    ]


def test_a_2xx_means_the_points_are_fsynced_in_the_journal(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        fsyncs = rig.writer.journal.stats.fsyncs
        assert rig.post(BODY).status == 200
        assert rig.writer.journal.stats.fsyncs > fsyncs, "no 2xx before an fsync"
        assert not rig.writer.journal.unsynced()
        assert _journaled(tmp_path) == [rig.out.text().encode()]
    finally:
        rig.listener.stop()


def test_when_telegraf_has_gone_an_accepted_request_waits_in_the_journal(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "wb")  # the pipe to a Telegraf that has died
    os.close(read_end)  # Telegraf is gone
    serializer = LineProtocolSerializer(time_floor_ns=FLOOR_NS, counter=SkipCounter())
    writer = JournaledWriter(stream, serializer, Journal(tmp_path / "journal"))
    writer.open()
    rig = Rig(tmp_path, writer=writer)
    try:
        assert rig.post(BODY).status == 200, "fsynced in the journal: stored"
        assert rig.gone.is_set()
        assert rig.post(BODY).status == 503, "nothing accepted until the next start"
        assert len(_journaled(tmp_path)) == 1
    finally:
        rig.listener.stop()
        writer.close()
    again = Journal(tmp_path / "journal")
    assert len(again.open()) == 1, "written again at the next start"


def test_at_the_cap_503_with_retry_after_before_the_body_is_read(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.writer.holding = True  # what the keeper sets at the cap (tests/test_journal.py)
    try:
        body = json.dumps(BODY).encode()
        with socket.create_connection(("127.0.0.1", rig.port), timeout=5) as conn:
            conn.sendall(
                b"POST /api/v1/devices/telemetry HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n"
                + f"X-API-Key: {rig.keys['esp32_001']}\r\n".encode()
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
            )  # headers only: the body is never sent, yet the answer comes at once
            answer = conn.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 503")
        assert "Retry-After: 60" in answer
        assert rig.rejected() == {"buffer_full": 1}
        assert rig.out.text() == ""
    finally:
        rig.listener.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    rig = Rig(tmp_path, tls_cert=str(cert), tls_key=str(key))
    try:
        client = ssl.create_default_context(cafile=str(cert))
        reply = rig.post(BODY, tls=client)
        assert reply.status == 200, reply
        assert len(rig.points()) == 1
        # Plain HTTP on the TLS port: a failed handshake, counted, nothing stored.
        with pytest.raises((ConnectionError, OSError, http_errors())):
            rig.post(BODY)
        wait_for(lambda: rig.rejected() == {"tls_handshake": 1}, timeout=5, what="the count")
        # A client that does not trust the certificate gets no answer either.
        with pytest.raises(ssl.SSLError):
            rig.post(BODY, tls=ssl.create_default_context())
        assert len(rig.points()) == 1
    finally:
        rig.listener.stop()
    context = tls_context(str(cert), str(key))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ListenerError, match="tls_cert"):
        tls_context(str(key), str(key))


def http_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def test_the_port_must_be_free(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ListenerError, match=f"cannot listen on 127.0.0.1:{port}"):
            Rig(tmp_path, port=port)


# -- bad input, in bulk -----------------------------------------------------------------------

BAD_BODIES: list[bytes] = [
    b"",
    b"null",
    b"42",
    b'"text"',
    b"[]",
    b"temperature=24.5",
    b"\x00\x01\x02\xff\xfe",
    b'{"data": {"t": NaN}}',
    b'{"data": {"t": Infinity}}',
    b'{"data": {"t": 1e309}}',
    b'{"data": ' + b'{"a": ' * 20 + b"1" + b"}" * 20 + b"}",
    b"[" * 2000 + b"]" * 2000,
    b'{"data": {"t": 1}, "type": "x y"}',
    b'{"data": {"t": 1}, "type": "m,evil=1 f=1 1\\n"}',
    b'{"data": {"t": "x"}, "metadata": {"a": [1]}}',
    b'{"points": [' + b'{"data": {"t": 1}},' * 10 + b'{"data": {"t": 1}}]}',
    b'{"data": {"t": 1}, "timestamp": "2026-03-01T12:00:00Z\\nevil 1"}',
    b'{"data": {"\\u0000": 1}}',
    b'{"data": {"t": 1}} trailing',
]


def test_bad_input_never_crashes_never_injects_and_is_counted(rig: Rig) -> None:
    for body in BAD_BODIES:
        reply = rig.post(body)
        assert reply.status == 400, (body[:60], reply)
        assert "error" in reply.json()
    huge = b'{"data": {"s": "' + b"x" * 10_000 + b'"}}'
    assert rig.post(huge).status == 413
    assert rig.points() == []
    assert sum(rig.rejected().values()) == len(BAD_BODIES) + 1
    # Still serving.
    assert rig.post(BODY).status == 200


# -- 1,000 concurrent requests ----------------------------------------------------------------


def test_1000_concurrent_requests_are_all_stored_with_bounded_threads(tmp_path: Path) -> None:
    count = 1000
    rig = Rig(tmp_path, workers=8)
    try:
        keys = rig.keys
        requests = []
        for i in range(count):
            device = "esp32_001" if i % 2 else "esp32_002"
            body = {
                "data": {"seq": i},
                "type": "load",
                "timestamp": f"2026-03-01T00:00:00.{i:06d}Z",
            }
            requests.append(request_bytes(body, keys[device]))
        threads = [threading.active_count()]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                threads.append(threading.active_count())
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        try:
            replies = concurrent_posts(rig.port, requests, timeout=60)
        finally:
            stop.set()
            sampler.join()
        elapsed = time.monotonic() - started
        statuses = [status for status, _ in replies]
        assert statuses.count(200) == count, {s: statuses.count(s) for s in set(statuses)}
        seqs = sorted(int(p.fields["seq"]) for p in rig.points())
        assert seqs == list(range(count)), "every accepted request's point, exactly once"
        # No thread per connection: the listener's workers only (plus this test's sampler).
        assert max(threads) <= threads[0] + 1
        print(f"1000 concurrent requests in {elapsed:.2f} s")
    finally:
        rig.listener.stop()


# -- the plugin process -----------------------------------------------------------------------


def start_plugin(tmp_path: Path, toml: str) -> subprocess.Popen[bytes]:
    conf = tmp_path / "iotflow.toml"
    conf.write_text(toml)
    return subprocess.Popen(
        [sys.executable, "-m", "telegraf_bridge.plugins.iotflow", "--config", str(conf)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_the_plugin_process_serves_writes_status_rows_and_stops_on_stdin_eof(
    tmp_path: Path,
) -> None:
    keys = make_registry(tmp_path / "devices.yaml")
    port = free_port()
    proc = start_plugin(tmp_path, plugin_toml(tmp_path / "devices.yaml", port, tmp_path / "st"))
    lines: list[str] = []
    assert proc.stdout is not None and proc.stdin is not None
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: lines.extend(raw.decode() for raw in stdout))
    reader.start()
    try:
        wait_for(lambda: _connectable(port), timeout=15, what="the listener")
        reply = post(port, {"data": {"t": 1.5, "room": "lab"}}, key=keys["esp32_001"])
        assert reply.status == 200, reply
        assert post(port, BODY, key="iot_nope").status == 401
        # The status rows (every 1 s here) count both requests.
        wait_for(
            lambda: any(",requests=2.0 " in line for line in list(lines)),
            timeout=15,
            what="a status row counting both requests",
        )
        proc.stdin.close()  # as Telegraf does on shutdown
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=15)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert proc.returncode == 0, err
    points = parse_lines("".join(lines))
    data = [p for p in points if p.measurement == "telemetry"]
    assert len(data) == 1
    assert data[0].tags["room"] == "lab" and data[0].tags["device_name"] == "Office Sensor"
    status = [p for p in points if p.measurement == "iotflow_http_status"]
    last = status[-1].fields
    assert (last["requests"], last["accepted_points"], last["rejected_unauthorized"]) == (2, 1, 1)
    assert last["registry_devices"] == 2
    assert keys["esp32_001"] not in err
    assert "listening on http://127.0.0.1" in err


def _connectable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("typo = 1", "typo is not a known option"),
        ('tls_cert = "/nonexistent.pem"', "set both tls_cert and tls_key"),
    ],
)
def test_a_bad_config_exits_2_before_listening(tmp_path: Path, extra: str, message: str) -> None:
    make_registry(tmp_path / "devices.yaml")
    toml = plugin_toml(tmp_path / "devices.yaml", free_port(), tmp_path / "st")
    toml = toml.replace("[http]\n", "[http]\n" + extra + "\n") if "tls" in extra else extra + toml
    proc = start_plugin(tmp_path, toml)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert message in err.decode()


def test_a_broken_registry_at_start_exits_2_naming_it(tmp_path: Path) -> None:
    (tmp_path / "devices.yaml").write_text("devices: [\n")
    proc = start_plugin(tmp_path, plugin_toml(tmp_path / "devices.yaml", free_port(), tmp_path))
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert "devices.yaml is not valid YAML" in err.decode()


def test_sigterm_stops_the_plugin_cleanly(tmp_path: Path) -> None:
    make_registry(tmp_path / "devices.yaml")
    port = free_port()
    proc = start_plugin(tmp_path, plugin_toml(tmp_path / "devices.yaml", port, tmp_path / "st"))
    try:
        wait_for(lambda: _connectable(port), timeout=15, what="the listener")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert not _connectable(port)
