"""gpio_pulse end to end: the sim backend under the real Telegraf into the real InfluxDB 1.x.

The simulator knows how many real pulses it generated (bounce edges come on top); every one of
them must be in influxd, in the raw tier's retention policy, and the plugin's window rows must
add up to the same count. A second run routes the plugin's own tier rows to InfluxDB 3
databases (the v3 fake: no InfluxDB 3 server can be installed here).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from _support import fast_agent_yaml, render_yaml
from rig import FakeInfluxV3, InfluxD1, TelegrafProcess, wait_for

pytestmark = [pytest.mark.telegraf]

DASHBOARDS = Path(__file__).resolve().parents[1] / "plugins/gpio_pulse/dashboards"
PULSES = 120  # per channel; at 20/s with bounce this is about 6 s of pulses
SOURCE = f"""
sources:
  - name: meter
    plugin: gpio_pulse
    options:
      backend: sim
      window: 5s
      grace: 1s
      sim: {{rate: 20, jitter: 0.3, bounce: 0.3, seed: 3, limit: {PULSES}, scale: [1.0, 0.5, 1.5]}}
"""


def _sum(influxd: InfluxD1, query: str, db: str) -> dict[str, float]:
    return {
        s["tags"]["PulseType"]: s["values"][0][1]
        for s in influxd.query(query, db=db)
        if s["values"]
    }


@pytest.mark.influxd
def test_every_generated_pulse_is_in_influxd_in_the_raw_tier(
    influxd: InfluxD1, telegraf_bin: Path, tmp_path: Path
) -> None:
    db = f"power_{uuid.uuid4().hex[:8]}"
    influxd.query(f'CREATE DATABASE "{db}"', method="POST")
    for rp in ("PowerLogger_raw", "PowerLogger_1m", "PowerLogger_1h"):
        influxd.query(
            f'CREATE RETENTION POLICY "{rp}" ON "{db}" DURATION 30d REPLICATION 1', method="POST"
        )
    # The plugin's own tier rows (as with an InfluxDB 3 sink), with short windows, so the
    # dashboard's tier panels have data without waiting for continuous queries.
    tiers = (
        '      tiers: [{window: "5s", tier: "PowerLogger_1m"}, '
        '{window: "10s", tier: "PowerLogger_1h"}]\n'
    )
    yaml_text = (
        fast_agent_yaml(tmp_path)
        + SOURCE
        + tiers
        + f"""
sinks:
  - name: home
    type: influxdb_v1
    url: {influxd.url}
    database: {db}
"""
    )
    conf = render_yaml(yaml_text, tmp_path / "out")
    raw = f'SELECT count("Pulse") FROM "{db}"."PowerLogger_raw"."PowerPulse" GROUP BY "PulseType"'
    meter = (
        f'SELECT sum("pulses"), max("pulses_total") FROM "{db}"."PowerLogger_raw"."PowerMeter" '
        'GROUP BY "PulseType"'
    )
    want = {"Import": PULSES, "Export": PULSES, "Generate": PULSES}
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg") as telegraf:
        wait_for(lambda: _sum(influxd, raw, db) == want, timeout=90, what="every raw pulse")
        wait_for(lambda: _sum(influxd, meter, db) == want, timeout=60, what="the window rows")
        log = telegraf.log()
    assert "E! " not in log, log
    totals = {s["tags"]["PulseType"]: s["values"][0][2] for s in influxd.query(meter, db=db)}
    assert totals == want

    def field_types(measurement: str) -> dict[str, str]:
        q = f'SHOW FIELD KEYS FROM "{db}"."PowerLogger_raw"."{measurement}"'
        return {v[0]: v[1] for s in influxd.query(q, db=db) for v in s["values"]}

    assert field_types("PowerPulse") == {"Pulse": "integer"}
    assert field_types("PowerMeter") == {
        "energy_total_wh": "float",
        "energy_wh": "float",
        "power_w": "float",
        "pulses": "integer",
        "pulses_total": "integer",
    }
    # Nothing went to the database's default policy: the route tag was honoured and dropped.
    assert influxd.query('SELECT count(*) FROM "PowerPulse"', db=db) == []
    keys = influxd.query(f'SHOW TAG KEYS FROM "{db}"."PowerLogger_raw"."PowerPulse"', db=db)
    assert [v[0] for s in keys for v in s["values"]] == ["PulseType"]
    tier = f'SELECT sum("pulses") FROM "{db}"."PowerLogger_1m"."PowerPulse" GROUP BY "PulseType"'
    assert _sum(influxd, tier, db) == want

    dashboard = json.loads((DASHBOARDS / "gpio_pulse-influxql.json").read_text())
    constants = {
        v["name"]: v["query"] for v in dashboard["templating"]["list"] if v["type"] == "constant"
    }

    def influxql(query: str) -> str:
        for name, value in constants.items():
            query = query.replace(f"${name}", value)
        return (
            query.replace("$timeFilter", "time > now() - 1h")
            .replace("$__interval", "10s")
            .replace("$PulseType", ".*")
        )

    channels = influxd.query(influxql(dashboard["templating"]["list"][-1]["query"]), db=db)
    assert sorted(v[1] for s in channels for v in s["values"]) == ["Export", "Generate", "Import"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            series = influxd.query(influxql(target["query"]), db=db)
            assert {s["tags"]["PulseType"] for s in series} == set(want), panel["title"]


def test_with_an_influxdb3_sink_the_plugin_writes_each_tier_to_its_database(
    fake_v3: FakeInfluxV3, telegraf_bin: Path, tmp_path: Path
) -> None:
    sinks = f"""
sinks:
  - name: core
    type: influxdb_v3
    url: {fake_v3.url}
    database: other
    token_env: TEST_V3_TOKEN
"""
    default = render_yaml(fast_agent_yaml(tmp_path) + SOURCE + sinks, tmp_path / "default")
    plugin_conf = (default.with_name("telegraf.plugins") / "meter.toml").read_text()
    assert 'tier = "PowerLogger_1m"' in plugin_conf and 'tier = "PowerLogger_1h"' in plugin_conf

    def tier_sums() -> dict[str, int]:
        sums: dict[str, int] = {}
        for _, point in fake_v3.stored("PowerLogger_1m"):
            name = point.tags["PulseType"]
            sums[name] = sums.get(name, 0) + int(point.fields["pulses"])
        return sums

    # Shorter tier windows than the rendered 1m/5m/1h, so the test need not wait a minute.
    fast_tiers = '      tiers: [{window: "5s", tier: "PowerLogger_1m"}]\n'
    conf = render_yaml(fast_agent_yaml(tmp_path) + SOURCE + fast_tiers + sinks, tmp_path / "out")

    def raw_count() -> int:
        return sum(1 for _, p in fake_v3.stored("PowerLogger_raw") if p.measurement == "PowerPulse")

    with TelegrafProcess(
        telegraf_bin, conf, tmp_path / "tg", env={"TEST_V3_TOKEN": "canary-v3-token"}
    ) as telegraf:
        wait_for(lambda: raw_count() == 3 * PULSES, timeout=90, what="every raw pulse")
        want = {"Import": PULSES, "Export": PULSES, "Generate": PULSES}
        wait_for(lambda: tier_sums() == want, timeout=60, what="the tier rows in PowerLogger_1m")
        log = telegraf.log()
    assert "E! " not in log, log
    for _, point in fake_v3.stored("PowerLogger_raw"):
        assert "bridge_tier" not in point.tags
    assert fake_v3.stored("other") == []


def test_both_dashboards_have_the_same_panels_and_the_sql_one_a_datasource_per_tier() -> None:
    influxql = json.loads((DASHBOARDS / "gpio_pulse-influxql.json").read_text())
    sql = json.loads((DASHBOARDS / "gpio_pulse-sql.json").read_text())
    assert [p["title"] for p in influxql["panels"]] == [p["title"] for p in sql["panels"]]
    tiers = {v["name"] for v in sql["templating"]["list"] if v["type"] == "datasource"}
    assert tiers == {"ds_raw", "ds_1m", "ds_1h"}
    for panel in sql["panels"]:
        assert panel["datasource"]["uid"].strip("${}") in tiers
        for target in panel["targets"]:
            assert "$__timeFilter(time)" in target["rawSql"]
            assert "${PulseType:singlequote}" in target["rawSql"]
