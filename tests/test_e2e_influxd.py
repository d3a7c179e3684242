"""End to end with real components: plugin -> real Telegraf -> real InfluxDB 1.x -> query."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from _support import TRICKY_EXPECTED, TRICKY_POINTS, emitter_input, fast_agent_yaml, render_yaml
from rig import InfluxD1, TelegrafProcess, wait_for
from telegraf_bridge.plugins.demo.plugin import power_at

pytestmark = [pytest.mark.telegraf, pytest.mark.influxd]


def test_demo_points_reach_influxd_exactly(
    influxd: InfluxD1, telegraf_bin: Path, tmp_path: Path
) -> None:
    db = f"e2e_{uuid.uuid4().hex[:8]}"
    yaml_text = (
        fast_agent_yaml(tmp_path)
        + f"""
sources:
  - name: demo
    plugin: demo
    interval: 1s
    options:
      devices: 2
      peak_power_w: 5000.0
sinks:
  - name: influx1
    type: influxdb_v1
    url: {influxd.url}
    database: {db}
"""
    )
    conf = render_yaml(yaml_text, tmp_path / "out")
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg") as telegraf:
        wait_for(
            lambda: influxd.count("demo", "power_w", db=db) >= 6,
            timeout=60,
            what="6 demo points in influxd",
        )
        assert telegraf.running()
    rows = influxd.rows('SELECT * FROM demo GROUP BY "device"', db=db)
    assert len(rows) >= 6
    for row in rows:
        index = int(row["device"].split("-")[1]) - 1
        assert row["site"] == "demo"
        assert row["power_w"] == pytest.approx(power_at(row["time"], 5000.0, index), abs=1e-9)
        assert row["state"] == ("producing" if row["power_w"] > 0 else "idle")
        assert row["online"] is True
        assert row["time"] % 1_000_000_000 == 0, "window-start timestamps, integer ns"
    assert influxd.field_types("demo", db=db) == {
        "energy_wh": "integer",
        "online": "boolean",
        "power_w": "float",
        "state": "string",
    }
    assert "E! " not in telegraf.log()


def test_tricky_values_are_stored_exactly_with_no_injection(
    influxd: InfluxD1, telegraf_bin: Path, tmp_path: Path
) -> None:
    db = f"tricky_{uuid.uuid4().hex[:8]}"
    doc = json.loads(json.dumps(TRICKY_POINTS))
    doc["types"].pop("total")  # InfluxDB 1.x has no unsigned type
    for point in doc["points"]:
        point["fields"].pop("total")
    points_file = tmp_path / "points.json"
    points_file.write_text(json.dumps(doc))
    yaml_text = (
        fast_agent_yaml(tmp_path)
        + f"""
sinks:
  - name: influx1
    type: influxdb_v1
    url: {influxd.url}
    database: {db}
"""
    )
    conf = render_yaml(yaml_text, tmp_path / "out")
    conf.write_text(conf.read_text() + emitter_input(points_file))
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg"):
        wait_for(
            lambda: influxd.count("e2e", "power_w", db=db) >= 3,
            timeout=60,
            what="3 tricky points in influxd",
        )
    rows = influxd.rows('SELECT * FROM e2e GROUP BY "site", "device"', db=db)
    got = {
        r["device"]: (
            {"site": r["site"], "device": r["device"]},
            {k: r[k] for k in ("power_w", "count", "ok", "note")},
        )
        for r in rows
    }
    want = {
        tags["device"]: (tags, {k: v for k, v in fields.items() if k != "total"})
        for tags, fields in TRICKY_EXPECTED
    }
    assert len(rows) == 3, "no extra point was injected by the newline in a string field"
    assert got == want
    assert len(influxd.rows("SELECT * FROM e2e WHERE power_w = 666", db=db)) == 0
