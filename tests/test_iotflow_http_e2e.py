"""iotflow HTTP end to end: devices POST telemetry to the plugin under the real Telegraf, into
the real InfluxDB 1.x.

Every request answered 200 must have its points in influxd, with the registry's tags; every
refused one must have none. Requests carry their own timestamps, so each point is its own
(series, time) and the counts compare exactly.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from _iotflow_http_rig import concurrent_posts, make_registry, post, request_bytes
from _support import fast_agent_yaml, render_yaml
from rig import InfluxD1, TelegrafProcess, free_port, wait_for

pytestmark = [pytest.mark.telegraf, pytest.mark.influxd]


def telegraf_conf(tmp_path: Path, registry_path: Path, port: int, url: str, db: str) -> Path:
    """telegraf.conf as `bridge-cli render-config` writes it for an HTTP-only iotflow source."""
    source = {
        "name": "iotflow",
        "plugin": "iotflow",
        "options": {
            "registry": str(registry_path),
            "string_tags": ["room"],
            "time_floor": "2020-01-01T00:00:00Z",
            "http": {"listen": f"127.0.0.1:{port}"},
            "mqtt": {"enabled": False},
        },
    }
    text = (
        fast_agent_yaml(tmp_path)
        + "sources:\n  - "
        + json.dumps(source)
        + f"\nsinks:\n  - {{name: home, type: influxdb_v1, url: '{url}', database: {db}}}\n"
    )
    return render_yaml(text, tmp_path / "out")


def stamp(i: int) -> str:
    return f"2026-03-01T00:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z"


def test_accepted_http_telemetry_lands_in_influxd_with_registry_tags(
    influxd: InfluxD1, telegraf_bin: Path, tmp_path: Path
) -> None:
    db = f"iot_{uuid.uuid4().hex[:8]}"
    keys = make_registry(tmp_path / "devices.yaml")
    port = free_port()
    conf = telegraf_conf(tmp_path, tmp_path / "devices.yaml", port, influxd.url, db)
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg") as telegraf:
        wait_for(
            lambda: "listening on http://127.0.0.1" in telegraf.log(),
            timeout=30,
            what="the plugin's listener",
        )
        accepted = 0
        # The seed's body, with the seed's metadata.location (the registry's wins).
        seed = {
            "data": {"temperature": 24.5, "humidity": 60, "battery_level": 85, "ok": True},
            "type": "environmental",
            "metadata": {"location": "sensor_room_1", "firmware": "1.2.3"},
            "timestamp": stamp(0),
        }
        reply = post(port, seed, key=keys["esp32_001"])
        assert reply.status == 200, reply
        accepted += 1
        batch = {
            "points": [
                {"data": {"value": float(i), "room": "kitchen"}, "timestamp": stamp(1 + i)}
                for i in range(100)
            ]
        }
        reply = post(port, batch, key=keys["esp32_002"], headers={"X-Device-ID": "esp32_002"})
        assert reply.json() == {"status": "ok", "points": 100}
        accepted += 100
        # 300 requests at once, from both devices.
        requests = [
            request_bytes(
                {"data": {"value": float(i)}, "timestamp": stamp(1000 + i)},
                keys["esp32_001" if i % 2 else "esp32_002"],
            )
            for i in range(300)
        ]
        statuses = [status for status, _ in concurrent_posts(port, requests, timeout=60)]
        assert statuses.count(200) == 300, statuses
        accepted += 300
        # Refused requests store nothing.
        assert post(port, seed, key=keys["esp32_002"][:-2] + "xx").status == 401
        assert post(port, {**seed, "device_id": "esp32_002"}, key=keys["esp32_001"]).status == 401
        assert post(port, b'{"data": {"t": NaN}}', key=keys["esp32_001"]).status == 400
        assert post(port, {"data": {"t": 1}, "type": "x y"}, key=keys["esp32_001"]).status == 400

        def stored() -> int:
            return influxd.count("environmental", "temperature", db=db) + influxd.count(
                "telemetry", "value", db=db
            )

        wait_for(lambda: stored() >= accepted, timeout=60, what=f"{accepted} points in influxd")

        def status() -> list[object]:
            series = influxd.query(
                'SELECT last("accepted_points"), last("rejected_requests"), '
                'last("rejected_unauthorized") FROM "iotflow_http_status"',
                db=db,
            )
            return list(series[0]["values"][0][1:]) if series else []

        # The plugin's own counters agree: every accepted point, the four refusals.
        wait_for(lambda: status() == [accepted, 4, 2], timeout=30, what="the status row")
        log = telegraf.log()
    assert stored() == accepted
    (row,) = influxd.rows('SELECT * FROM "environmental"', db=db)
    assert row["device_id"] == "esp32_001"
    assert row["device_name"] == "Office Sensor"
    assert row["device_type"] == "sensor"
    assert row["location"] == "office"
    assert row["firmware"] == "1.2.3"
    assert (row["temperature"], row["humidity"], row["ok"]) == (24.5, 60.0, True)
    assert influxd.field_types("environmental", db=db) == {
        "temperature": "float",
        "humidity": "float",
        "battery_level": "float",
        "ok": "boolean",
    }
    by_device = influxd.query('SELECT count("value") FROM "telemetry" GROUP BY "device_id"', db=db)
    counts = {s["tags"]["device_id"]: s["values"][0][1] for s in by_device}
    assert counts == {"esp32_001": 150, "esp32_002": 250}
    kitchen = influxd.query(
        """SELECT count("value") FROM "telemetry" WHERE "room" = 'kitchen'""", db=db
    )
    assert kitchen[0]["values"][0][1] == 100
    assert "E! " not in log, log
    for key in keys.values():
        assert key not in log
