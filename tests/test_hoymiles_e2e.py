"""Hoymiles end to end: pymodbus DTU -> plugin under the real Telegraf -> the real InfluxDB 1.x,
the real InfluxDB 2 and the InfluxDB 3 fake (loopback, following the v3 write API), rendered by
bridge-cli; the InfluxQL dashboard runs against both real servers."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _hoymiles_rig import ModbusDtu, Row
from _support import fast_agent_yaml, render_yaml
from rig import FakeInfluxV3, InfluxD1, InfluxD2, TelegrafProcess, wait_for

pytestmark = [pytest.mark.telegraf, pytest.mark.influxd, pytest.mark.influxd2]

V3_TOKEN = "canary-hoymiles-v3"
DASHBOARDS = Path(__file__).resolve().parents[1] / "plugins/hoymiles/dashboards"


def _influxql(query: str, dtu_name: str) -> str:
    """A panel's query as Grafana sends it for the last 24 hours and a 1-minute interval."""
    return (
        query.replace("$timeFilter", "time > now() - 24h")
        .replace("$__interval", "1m")
        .replace("$dtu_name", dtu_name)
    )


def test_dtu_points_reach_influxd_and_v3_exactly(
    influxd: InfluxD1, influxd2: InfluxD2, telegraf_bin: Path, tmp_path: Path
) -> None:
    db = f"hoymiles_{uuid.uuid4().hex[:8]}"
    org = influxd2.new_org("hoymiles")
    token_file = tmp_path / "secrets" / "token"
    token_file.parent.mkdir()
    token_file.write_text(V3_TOKEN)
    rows = [
        Row("116180000001", 1, pv_power=101.5, today=500, total=80_000),
        Row("116180000001", 2, pv_power=99.5, today=490, total=79_000),
        Row("103332416355", 1, pv_current=0.3, temperature=-2.5, total=74_823),
    ]
    with ModbusDtu(rows) as dtu, FakeInfluxV3(token=V3_TOKEN) as v3:
        yaml_text = (
            fast_agent_yaml(tmp_path)
            + f"""
sources:
  - name: roof
    plugin: hoymiles
    interval: 5s
    options:
      host: 127.0.0.1
      port: {dtu.port}
      timeout: 2s
      dtu_name: Roof DTU
sinks:
  - name: influx1
    type: influxdb_v1
    url: {influxd.url}
    database: {db}
  - name: core3
    type: influxdb_v3
    url: {v3.url}
    database: hoymiles
    token_file: {token_file}
  - name: v2
    type: influxdb_v2
    url: {influxd2.url}
    organization: {org}
    bucket: hoymiles
    token_env: BRIDGE_TEST_TOKEN
"""
        )
        conf = render_yaml(yaml_text, tmp_path / "out")
        env = {"BRIDGE_TEST_TOKEN": influxd2.token}
        with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg", env=env) as telegraf:
            wait_for(
                lambda: (
                    influxd.count("dtu", "pv_power", db=db) >= 1
                    and len(v3.accepted_points()) >= 6
                    and influxd2.count("hoymiles", "dtu", "pv_power", org=org) >= 1
                ),
                timeout=60,
                what="one poll in influxd 1.x and 2 and in the v3 fake",
            )
            log = telegraf.log()
    assert "E! " not in log, log
    (dtu_row,) = influxd.rows("SELECT * FROM dtu LIMIT 1", db=db)
    assert dtu_row["dtu_name"] == "Roof DTU" and dtu_row["dtu_serial"] == "11d361600831"
    assert dtu_row["pv_power"] == pytest.approx(211.2)
    assert dtu_row["today_production"] == 500 + 490 + 751
    assert dtu_row["total_production"] == 80_000 + 79_000 + 74_823
    assert dtu_row["alarm_flag"] is False
    assert dtu_row["time"] % (5 * 10**9) == 0, "stamped at the poll window start"
    inverters = influxd.rows('SELECT * FROM inverter GROUP BY "serial_number"', db=db)
    first = {r["serial_number"]: r for r in inverters if r["time"] == dtu_row["time"]}
    assert set(first) == {"116180000001", "103332416355"}
    assert first["103332416355"]["temperature"] == -2.5
    when = int(dtu_row["time"])
    ports = influxd.rows(f"SELECT * FROM port WHERE time = {when} GROUP BY *", db=db)
    assert {(r["serial_number"], r["port_number"]) for r in ports} == {
        ("116180000001", "1"),
        ("116180000001", "2"),
        ("103332416355", "1"),
    }
    mi = next(r for r in ports if r["serial_number"] == "103332416355")
    assert mi["pv_current"] == 0.3 and mi["total_production"] == 74_823
    assert influxd.field_types("port", db=db) == {
        "pv_current": "float",
        "pv_power": "float",
        "pv_voltage": "float",
        "today_production": "integer",
        "total_production": "integer",
    }
    v3_points = v3.accepted_points()
    by_measurement = {p.measurement for p in v3_points}
    assert by_measurement == {"dtu", "inverter", "port"}
    v3_dtu = next(p for p in v3_points if p.measurement == "dtu")
    assert v3_dtu.fields["total_production"] == 233_823
    assert v3_dtu.time_ns == dtu_row["time"]

    # Every InfluxQL panel of the dashboard runs against these points without an error, on 1.x
    # and on 2 (database = the bucket, InfluxDB's own mapping; a read token of the org).
    reader = influxd2.create_token([("read", "hoymiles")], org=org, description="grafana")
    servers: dict[str, Callable[[str], list[dict[str, Any]]]] = {
        "v1": lambda q: influxd.query(q, db=db),
        "v2": lambda q: influxd2.influxql(q, db="hoymiles", token=reader),
    }
    dashboard = json.loads((DASHBOARDS / "hoymiles-influxql.json").read_text())
    variable = dashboard["templating"]["list"][1]["query"]
    for kind, query in servers.items():
        assert ["dtu_name", "Roof DTU"] in [v for s in query(variable) for v in s["values"]], kind
        results = {
            panel["title"]: query(_influxql(panel["targets"][0]["query"], "Roof DTU"))
            for panel in dashboard["panels"]
        }
        power = [v[1] for s in results["Current power"] for v in s["values"] if v[1] is not None]
        assert power and power[0] == pytest.approx(211.2), kind
        temperatures = {s["tags"]["serial_number"] for s in results["Inverter temperature"]}
        assert temperatures == {"116180000001", "103332416355"}, kind
        assert len(results["Port comparison"]) == 3, kind


def test_dashboards_have_the_seed_panels_and_only_known_fields() -> None:
    from telegraf_bridge.plugins.hoymiles.snapshot import FIELD_TYPES

    known = {name for fields in FIELD_TYPES.values() for name in fields}
    known |= {"time", "dtu_name", "dtu_serial", "serial_number", "port_number"}
    for name, key in (("hoymiles-influxql.json", "query"), ("hoymiles-sql.json", "rawSql")):
        dashboard = json.loads((DASHBOARDS / name).read_text())
        titles = [p["title"] for p in dashboard["panels"]]
        assert titles == [
            "Current power",
            "Daily production",
            "Inverter temperature",
            "Port comparison",
        ]
        for panel in dashboard["panels"]:
            query = panel["targets"][0][key]
            measurement = re.search(r'FROM "?(\w+)"?', query)
            assert measurement and measurement.group(1) in FIELD_TYPES, query
            for identifier in re.findall(r'"(\w+)"', query) if key == "query" else []:
                assert identifier in known | {"production", "avg_power", "peak_power"} | set(
                    FIELD_TYPES
                ), (name, identifier)
