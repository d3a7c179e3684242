"""taptap end to end: observe lines -> plugin under the real Telegraf -> the real InfluxDB 1.x.

The bytes come from the stand-in (tests/helpers/fake_observe.py replaying the README samples,
whose expected line protocol is given), so the values in influxd can be compared exactly; the
real decoder's own end-to-end run is in test_taptap_real.py. Every InfluxQL panel of the
dashboard then runs against the stored points, and against the same points in the real
InfluxDB 2.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _support import fast_agent_yaml, render_yaml
from _taptap_rig import EXPECTED, SAMPLES, fake_observe
from rig import InfluxD1, InfluxD2, TelegrafProcess, wait_for

from telegraf_bridge.testing import ParsedPoint, parse_lines

DASHBOARDS = Path(__file__).resolve().parents[1] / "plugins/taptap/dashboards"
WINDOW = "time >= '2024-08-24T14:00:00Z' AND time < '2024-08-24T15:00:00Z'"


def _influxql(query: str) -> str:
    """A panel's query as Grafana sends it for the samples' hour, All optimisers selected."""
    return (
        query.replace("$timeFilter", WINDOW)
        .replace("$__interval", "1m")
        .replace("$gateway_id", ".*")
        .replace("$node_id", ".*")
    )


@pytest.mark.telegraf
@pytest.mark.influxd
def test_reports_reach_influxd_exactly_and_every_panel_runs(
    influxd: InfluxD1, telegraf_bin: Path, tmp_path: Path
) -> None:
    db = f"tigo_{uuid.uuid4().hex[:8]}"
    command = json.dumps(fake_observe(str(SAMPLES), "--hold", "600"))
    yaml_text = (
        fast_agent_yaml(tmp_path)
        + f"""
sources:
  - name: tigo
    plugin: taptap
    options:
      command: {command}
      status_interval: 1s
sinks:
  - name: bms
    type: influxdb_v1
    url: {influxd.url}
    database: {db}
"""
    )
    conf = render_yaml(yaml_text, tmp_path / "out")
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg") as telegraf:
        wait_for(
            lambda: (
                influxd.count("tigo_power_report", "power_w", db=db) == 8
                and influxd.count("taptap_status", "reports", db=db) >= 1
            ),
            timeout=60,
            what="the 8 sample reports and a status point in influxd",
        )
        log = telegraf.log()
    assert "E! " not in log, log

    stored = influxd.rows("SELECT * FROM tigo_power_report GROUP BY *", db=db)
    expected = parse_lines("\n".join(EXPECTED.read_text().splitlines()))
    assert len(stored) == len(expected) == 8
    by_key = {(r["node_id"], r["time"]): r for r in stored}
    for point in expected:
        row = by_key[(point.tags["node_id"], point.time_ns)]
        assert row["gateway_id"] == "4609" and row["src"] == "tigo"
        for key, value in point.fields.items():
            assert row[key] == value, (key, row)
    assert influxd.field_types("tigo_power_report", db=db) == {
        "current_in_a": "float",
        "current_out_a": "float",
        "duty_cycle": "float",
        "power_w": "float",
        "rssi": "integer",
        "temperature_c": "float",
        "voltage_in_v": "float",
        "voltage_out_v": "float",
    }

    _every_panel_runs(lambda q: influxd.query(q, db=db), expected)


@pytest.mark.influxd2
def test_every_panel_runs_on_influxdb2_through_the_bucket_mapping(influxd2: InfluxD2) -> None:
    """The same dashboard on InfluxDB 2: database = the bucket (InfluxDB's own mapping of a
    bucket), a read token of the organization, over the line protocol the plugin writes (the
    test above proves it writes exactly that)."""
    org = influxd2.new_org("tigo")
    influxd2.write("tigo", EXPECTED.read_text(), org=org)
    token = influxd2.create_token([("read", "tigo")], org=org, description="grafana")
    expected = parse_lines("\n".join(EXPECTED.read_text().splitlines()))
    _every_panel_runs(lambda q: influxd2.influxql(q, db="tigo", token=token), expected)


def _every_panel_runs(
    query: Callable[[str], list[dict[str, Any]]], expected: list[ParsedPoint]
) -> None:
    """Every query of the InfluxQL dashboard, with the answers the sample reports give."""
    dashboard = json.loads((DASHBOARDS / "taptap-influxql.json").read_text())
    gateways = query(dashboard["templating"]["list"][1]["query"])
    assert [v[1] for s in gateways for v in s["values"]] == ["4609"]
    nodes = query(_influxql(dashboard["templating"]["list"][2]["query"]))
    assert sorted(v[1] for s in nodes for v in s["values"]) == ["116", "121", "19", "82"]
    results = {}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            results[(panel["title"], target["refId"])] = query(_influxql(target["query"]))
    total = results[("Tigo Total Power (1-min mean per optimiser, summed)", "A")]
    per_minute = {v[0]: v[1] for s in total for v in s["values"] if v[1] is not None}
    first_minute = sum(p.fields["power_w"] for p in expected if p.time_ns == 1724509001686961000)
    minute = 1724509001686961000 // 60_000_000_000 * 60_000_000_000
    assert per_minute[minute] == pytest.approx(first_minute)
    counts = results[("Reports Per Node (count/min)", "A")]
    assert {s["tags"]["node_id"] for s in counts} == {"116", "121", "19", "82"}
    for key in (("RSSI per optimiser", "A"), ("Voltage per optimiser (in / out)", "B")):
        assert len(results[key]) == 4, key


def test_dashboards_have_the_seed_panels_and_both_languages() -> None:
    titles = None
    for name in ("taptap-influxql.json", "taptap-sql.json"):
        dashboard = json.loads((DASHBOARDS / name).read_text())
        names = [v["name"] for v in dashboard["templating"]["list"]]
        assert names == ["datasource", "gateway_id", "node_id"]
        panel_titles = [p["title"] for p in dashboard["panels"]]
        assert titles is None or panel_titles == titles
        titles = panel_titles
        text = json.dumps(dashboard["panels"])
        for field in ("power_w", "voltage_in_v", "voltage_out_v", "temperature_c", "rssi"):
            assert field in text
    assert titles is not None
    assert "Tigo Total Power RAW SUM (debug)" in titles
    assert "Reports Per Node (count/min)" in titles
