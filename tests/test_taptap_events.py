"""taptap observe lines -> tigo_power_report lines: both formats, identities, bad input.

The expected line protocol of the README samples comes from ../shared/fixtures/taptap (copied
to plugins/taptap/testdata): tigo-ingest's mapping with exact nanosecond timestamps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _support import REPO
from telegraf_bridge.plugins.common import LineProtocolSerializer, SkipCounter, parse_rfc3339_ns
from telegraf_bridge.plugins.taptap.events import (
    BadLine,
    PowerReport,
    parse_line,
)
from telegraf_bridge.plugins.taptap.identity import (
    Identities,
    NodeIdentity,
    barcode_of,
    parse_address,
)
from telegraf_bridge.plugins.taptap.points import (
    REPORT_FIELD_TYPES,
    learn_identities,
    report_point,
)

from telegraf_bridge.testing import parse_lines as parse_line_protocol

TESTDATA = REPO / "plugins" / "taptap" / "testdata"
SAMPLES = (TESTDATA / "observe_v0.1.1_readme.jsonl").read_text().splitlines()
EXPECTED = (TESTDATA / "tigo_ingest_expected_from_readme.lp").read_text().splitlines()


def serialise(lines: list[str], identities: Identities | None = None) -> list[str]:
    ids = identities or Identities()
    serializer = LineProtocolSerializer(field_types=REPORT_FIELD_TYPES, counter=SkipCounter())
    out = []
    for raw in lines:
        event = parse_line(raw)
        learn_identities(event, ids)
        if not isinstance(event, PowerReport):
            continue
        line = serializer.line(report_point(event, ids, "tigo_power_report"))
        assert line is not None
        out.append(line)
    return out


def to_newer_format(line: str) -> str:
    """The same report as unreleased taptap prints it: event_type and flat ids."""
    doc = json.loads(line)
    flat = {"event_type": "power_report", "gateway": doc["gateway"]["id"]}
    flat["node"] = doc["node"]["id"]
    for key in ("timestamp", "voltage_in", "voltage_out", "current", "dc_dc_duty_cycle"):
        flat[key] = doc[key]
    flat["temperature"] = doc["temperature"]
    flat["rssi"] = doc["rssi"]
    return json.dumps(flat)


def test_readme_samples_give_the_expected_line_protocol_byte_for_byte() -> None:
    assert serialise(SAMPLES) == EXPECTED


def test_newer_format_gives_the_same_points() -> None:
    assert serialise([to_newer_format(line) for line in SAMPLES]) == EXPECTED


def test_timestamps_are_exact_to_the_nanosecond() -> None:
    assert parse_rfc3339_ns("2024-08-24T09:16:41.686961-05:00") == 1724509001686961000
    assert parse_rfc3339_ns("2024-08-24T14:16:41.686961123Z") == 1724509001686961123
    assert parse_rfc3339_ns("2024-08-24T16:16:41+02:00") == 1724509001000000000
    # A tenth fractional digit is finer than a nanosecond: dropped, never rounded into a carry.
    assert parse_rfc3339_ns("2024-08-24T14:16:41.9999999999Z") == 1724509001999999999
    # tigo-ingest's float path would have written ...960896: we do not.
    assert parse_line(SAMPLES[0]).time_ns == 1724509001686961000  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text", ["2024-08-24", "2024-13-01T00:00:00Z", "2024-08-24T09:16:41.123", "x"]
)
def test_bad_timestamps_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339_ns(text)


def test_barcode_matches_taptaps_published_vectors() -> None:
    # Vectors from taptap's barcode.rs tests (address -> label, check characters L, V, W).
    assert barcode_of(bytes.fromhex("04C05B40009A57A2")) == "4-9A57A2L"
    assert barcode_of(bytes.fromhex("04C05B400079AC16")) == "4-79AC16V"
    assert barcode_of(bytes.fromhex("04C05B400079AB99")) == "4-79AB99W"
    assert barcode_of(bytes.fromhex("0102030405060708")) is None


def test_released_format_identities_become_tags_and_a_barcode_is_derived() -> None:
    doc = json.loads(SAMPLES[0])
    doc["gateway"]["address"] = [4, 192, 91, 48, 0, 2, 190, 22]
    doc["node"]["address"] = [4, 192, 91, 64, 0, 154, 87, 162]
    (line,) = serialise([json.dumps(doc)])
    point = parse_line_protocol(line)[0]
    assert point.tags == {
        "src": "tigo",
        "gateway_id": "4609",
        "node_id": "116",
        "gateway_addr": "04:C0:5B:30:00:02:BE:16",
        "node_addr": "04:C0:5B:40:00:9A:57:A2",
        "barcode": "4-9A57A2L",
    }


def test_infrastructure_report_tags_later_reports_of_the_newer_format() -> None:
    infra = {
        "event_type": "infrastructure_report",
        "gateways": {"4609": {"address": "04:C0:5B:30:00:02:BE:16", "version": "Mgate G8.59"}},
        "nodes": {
            "4609": {
                "116": {"address": "04:C0:5B:40:00:9A:57:A2", "barcode": "4-9A57A2L"},
                "82": {"address": "04:C0:5B:40:00:79:AC:16", "barcode": "4-79AC16V"},
            }
        },
    }
    ids = Identities()
    lines = serialise([json.dumps(infra), to_newer_format(SAMPLES[0])], ids)
    point = parse_line_protocol(lines[0])[0]
    assert point.tags["barcode"] == "4-9A57A2L"
    assert point.tags["node_addr"] == "04:C0:5B:40:00:9A:57:A2"
    assert point.tags["gateway_addr"] == "04:C0:5B:30:00:02:BE:16"
    # A node without a known identity gets no identity tags (node 19 is not in the table).
    unknown = serialise([to_newer_format(SAMPLES[4])], ids)
    assert "barcode" not in parse_line_protocol(unknown[0])[0].tags
    # A new, complete table replaces the old one: node 82 leaves, node 116 stays.
    infra["nodes"] = {"4609": {"116": infra["nodes"]["4609"]["116"]}}  # type: ignore[index]
    serialise([json.dumps(infra)], ids)
    assert set(ids.nodes) == {(4609, 116)}


def test_identities_survive_a_round_trip_through_the_state_file_form() -> None:
    ids = Identities()
    ids.learn_gateway(4609, "04:C0:5B:30:00:02:BE:16")
    ids.learn_node(4609, 116, "04:C0:5B:40:00:9A:57:A2", "4-9A57A2L")
    ids.learn_node(4610, 7, "01:02:03:04:05:06:07:08", None)
    again = Identities.from_json(json.loads(json.dumps(ids.to_json())))
    assert again.gateways == ids.gateways
    assert again.nodes == ids.nodes
    broken = Identities.from_json({"gateways": {"x": 1}, "nodes": {"1/2": "nope", "a/b": {}}})
    assert broken.gateways == {} and broken.nodes == {}


def test_voltage_out_zero_omits_current_out_and_negative_temperature_is_kept() -> None:
    doc = json.loads(SAMPLES[0])
    doc["voltage_out"] = 0.0
    doc["temperature"] = -12.3
    (line,) = serialise([json.dumps(doc)])
    point = parse_line_protocol(line)[0]
    assert "current_out_a" not in point.fields
    assert point.fields["temperature_c"] == -12.3
    assert point.fields["rssi"] == 132 and isinstance(point.fields["rssi"], int)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json at all", "not_json"),
        ('{"gateway":{"id":4609},"node":{"id":116},"timestamp":"2024-08-24T09:1', "not_json"),
        ("[1, 2, 3]", "not_json"),
        ('{"event_type":"topology_report","gateway":1}', "unknown_event_type"),
        ('{"gateway":{"id":4609},"node":{"id":116}}', "invalid_report"),
        (SAMPLES[0].replace('"voltage_in":30.6,', ""), "invalid_report"),
        (SAMPLES[0].replace("30.6", '"30.6"'), "invalid_report"),
        (SAMPLES[0].replace("30.6", "NaN"), "invalid_report"),
        (SAMPLES[0].replace("30.6", "1e999"), "invalid_report"),
        (SAMPLES[0].replace('"rssi":132', '"rssi":-1'), "invalid_report"),
        (SAMPLES[0].replace('"rssi":132', '"rssi":13.5'), "invalid_report"),
        (SAMPLES[0].replace('"id":4609', '"id":"4609"'), "invalid_report"),
        (SAMPLES[0].replace('"id":116', '"id":70000'), "invalid_report"),
        (SAMPLES[0].replace("2024-08-24T09:16:41.686961-05:00", "yesterday"), "invalid_timestamp"),
        (
            '{"event_type":"infrastructure_report","gateways":[],"nodes":{}}',
            "invalid_infrastructure",
        ),
        (
            '{"event_type":"infrastructure_report","gateways":{"g":{}},"nodes":{}}',
            "invalid_infrastructure",
        ),
        ("[" * 100_000, "not_json"),
    ],
)
def test_bad_lines_raise_a_counted_reason(line: str, reason: str) -> None:
    with pytest.raises(BadLine) as caught:
        parse_line(line)
    assert caught.value.reason == reason


def test_injection_through_ids_or_barcodes_is_impossible() -> None:
    doc = json.loads(SAMPLES[0])
    doc["node"]["barcode"] = "4-X\nevil,src=x value=1 1"
    doc["node"]["address"] = [4, 192, 91, 64, 0, 154, 87, 162]
    (line,) = serialise([json.dumps(doc)])
    assert "\n" not in line
    (point,) = parse_line_protocol(line)
    assert point.measurement == "tigo_power_report"
    assert point.tags["barcode"] == "4-X\\nevil,src=x value=1 1"


def test_addresses_in_both_notations() -> None:
    assert parse_address([4, 192, 91, 48, 0, 2, 190, 22]) == bytes.fromhex("04C05B300002BE16")
    assert parse_address("04:C0:5B:30:00:02:BE:16") == bytes.fromhex("04C05B300002BE16")
    for bad in ([4, 192], [4, 192, 91, 48, 0, 2, 190, 256], "04:C0", "zz:C0:5B:30:00:02:BE:16", 7):
        assert parse_address(bad) is None


def test_identity_is_per_gateway(tmp_path: Path) -> None:
    ids = Identities()
    ids.learn_node(1, 5, "AA:00:00:00:00:00:00:01", None)
    ids.learn_node(2, 5, "BB:00:00:00:00:00:00:02", None)
    assert ids.tags(1, 5)["node_addr"] != ids.tags(2, 5)["node_addr"]
    assert ids.nodes[(1, 5)] == NodeIdentity("AA:00:00:00:00:00:00:01", None)
