"""The meter tiers really downsample on InfluxDB 2: the Flux tasks setup-influxdb creates run on
the real influxd 2.x and fill the 1m, 5m and 1h buckets with the rows the layout promises.

Runs are triggered through the tasks API (``POST /api/v2/tasks/{id}/runs`` with
``scheduledFor``): inside a run ``now()`` is that time, so a run can cover pulses of the past
without waiting for the scheduler. The first test sends pulses through the whole bundle
(gpio_pulse's simulator, the real Telegraf, the influxdb_v2 output into the raw bucket), runs
the three tasks and every query of the InfluxQL dashboard through the DBRP mappings; the
second writes an hour of raw pulses with known counts three hours ago and runs the three tasks
over it, with two channels of different energy per pulse.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from _support import fast_agent_yaml, render_yaml
from click.testing import CliRunner
from rig import InfluxD2, TelegrafProcess, wait_for
from telegraf_bridge.cli.influx.admin._v2_flux import task_name
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.settings import load_settings
from telegraf_bridge.cli.tiers import Layout, layout_from_settings
from telegraf_bridge.plugins.common import format_rfc3339_ns

pytestmark = pytest.mark.influxd2

NS = 1_000_000_000
MINUTE = 60 * NS
HOUR = 3600 * NS
CHANNELS = """
      channels:
        - {name: Import, pin: 20, impulses_per_kwh: 1000}
        - {name: Export, pin: 26, impulses_per_kwh: 800}
"""
WH = {"Import": 1.0, "Export": 1.25}  # 1000 / impulses_per_kwh
DASHBOARDS = Path(__file__).resolve().parents[1] / "plugins" / "gpio_pulse" / "dashboards"


def _bridge_yaml(tmp_path: Path, server: InfluxD2, org: str, sim: str) -> Path:
    """A meter (two channels) into one v2 sink whose bucket is the raw tier."""
    path = tmp_path / "bridge.yaml"
    path.write_text(
        fast_agent_yaml(tmp_path)
        + f"""
sources:
  - name: meter
    plugin: gpio_pulse
    options:
      backend: sim
      window: 2s
      grace: 500ms
{sim}{CHANNELS}
sinks:
  - name: v2
    type: influxdb_v2
    url: {server.url}
    organization: {org}
    bucket: PowerLogger_raw
    token_env: BRIDGE_TEST_TOKEN
""",
        encoding="utf-8",
    )
    return path


def _setup(server: InfluxD2, config: Path, tmp_path: Path) -> Layout:
    env = {"BRIDGE_TEST_TOKEN": server.token}
    result = CliRunner().invoke(
        cli,
        ["setup-influxdb", "--config", str(config), "--secrets-dir", str(tmp_path / "secrets")],
        env=env,
    )
    assert result.exit_code == 0, result.output
    return layout_from_settings(load_settings(config, env))


def _run_task(server: InfluxD2, org: str, name: str, scheduled_for_ns: int) -> None:
    """One run of the task ``name`` with ``now()`` = ``scheduled_for_ns``; fails with its log."""
    tasks = server.request("GET", "/api/v2/tasks", params={"org": org, "name": name}).json()
    (task,) = tasks["tasks"]
    when = format_rfc3339_ns(scheduled_for_ns)
    started = server.request(
        "POST", f"/api/v2/tasks/{task['id']}/runs", body={"scheduledFor": when}
    )
    assert started.status == 201, started
    path = f"/api/v2/tasks/{task['id']}/runs/{started.json()['id']}"
    run: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    while run.get("status") not in ("success", "failed", "canceled"):
        assert time.monotonic() < deadline, f"the run of {name} did not finish: {run}"
        time.sleep(0.2)
        run = server.request("GET", path).json()
    assert run["status"] == "success", server.request("GET", path + "/logs").body.decode()


def _rows(server: InfluxD2, org: str, bucket: str) -> list[dict[str, str]]:
    """Every PowerPulse row of ``bucket``, one per time and PulseType, fields as columns."""
    return server.query(
        f'from(bucket: "{bucket}") |> range(start: 0)'
        ' |> filter(fn: (r) => r._measurement == "PowerPulse")'
        ' |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
        ' |> group() |> sort(columns: ["_time", "PulseType"])',
        org=org,
    )


def _pulses_column_type(server: InfluxD2, org: str, bucket: str) -> str:
    """The Flux type of the ``pulses`` field in ``bucket`` (``long`` for an integer)."""
    reply = server.request(
        "POST",
        "/api/v2/query",
        params={"org": org},
        body={
            "query": f'from(bucket: "{bucket}") |> range(start: 0)'
            ' |> filter(fn: (r) => r._field == "pulses") |> limit(n: 1)',
            "type": "flux",
            "dialect": {"annotations": ["datatype"], "header": True},
        },
        accept="application/csv",
    )
    datatypes, header = reply.body.decode().splitlines()[:2]
    return dict(zip(header.split(","), datatypes.split(","), strict=True))["_value"]


def _panels() -> tuple[dict[str, Any], dict[str, str]]:
    """The gpio_pulse InfluxQL dashboard, and its constants (the tier names) by variable."""
    dashboard = json.loads((DASHBOARDS / "gpio_pulse-influxql.json").read_text())
    constants = {
        v["name"]: v["query"] for v in dashboard["templating"]["list"] if v["type"] == "constant"
    }
    return dashboard, constants


def _panel_queries() -> dict[str, str]:
    """Each query of the dashboard by panel title (the variable's as ``PulseType variable``)."""
    dashboard, _ = _panels()
    queries = {"PulseType variable": dashboard["templating"]["list"][-1]["query"]}
    return queries | {p["title"]: p["targets"][0]["query"] for p in dashboard["panels"]}


QUERIES = _panel_queries()


def _dashboard(server: InfluxD2, token: str, time_filter: str) -> dict[str, set[str]]:
    """The PulseType tags each query of the dashboard answers with, by panel title.

    Sent as Grafana sends them, through the DBRP mappings of the sink's database.
    """
    _, constants = _panels()

    def run(query: str) -> list[dict[str, Any]]:
        for name, value in constants.items():
            query = query.replace(f"${name}", value)
        query = (
            query.replace("$timeFilter", time_filter)
            .replace("$__interval", "2s")  # the meter window of these tests
            .replace("$PulseType", ".*")
        )
        return server.influxql(query, db="PowerLogger_raw", token=token)

    answers = {}
    for title, query in QUERIES.items():
        series = run(query)
        if query.startswith("SHOW TAG VALUES"):
            answers[title] = {v[1] for s in series for v in s["values"]}
        else:
            answers[title] = {s["tags"]["PulseType"] for s in series}
    return answers


def _check_row(row: dict[str, str], window_s: int) -> None:
    """energy_wh is the pulses times the channel's Wh; power_w the mean over the window."""
    pulses = int(row["pulses"])
    energy = float(row["energy_wh"])
    assert energy == pytest.approx(pulses * WH[row["PulseType"]]), row
    assert float(row["power_w"]) == pytest.approx(energy * 3600 / window_s), row
    assert set(row) >= {"PulseType", "pulses", "energy_wh", "power_w"}
    assert "bridge_tier" not in row, "the routing tag is not stored"


@pytest.mark.telegraf
def test_pulses_through_the_bundle_fill_every_tier_and_the_influxql_dashboard(
    influxd2: InfluxD2, telegraf_bin: Path, tmp_path: Path
) -> None:
    pulses = 45  # per channel, at 30 pulses/s
    org = influxd2.new_org(None)
    config = _bridge_yaml(
        tmp_path, influxd2, org, "      sim: {rate: 30, jitter: 0.2, seed: 3, limit: 45}\n"
    )
    layout = _setup(influxd2, config, tmp_path)
    conf = render_yaml(config.read_text(), tmp_path / "out")
    raw = (
        'from(bucket: "PowerLogger_raw") |> range(start: 0)'
        ' |> filter(fn: (r) => r._measurement == "PowerPulse" and r._field == "Pulse")'
        ' |> group(columns: ["PulseType"]) |> count()'
    )
    env = {"BRIDGE_TEST_TOKEN": influxd2.token}
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg", env=env) as telegraf:
        wait_for(
            lambda: (
                {r["PulseType"]: int(r["_value"]) for r in influxd2.query(raw, org=org)}
                == dict.fromkeys(WH, pulses)
            ),
            timeout=90,
            what=f"{pulses} raw pulses per channel in the raw bucket",
        )
        # Two status rows per channel: the dashboard's capture-health panel shows differences.
        wait_for(
            lambda: influxd2.count("PowerLogger_raw", "gpio_pulse_status", "bounces", org=org) >= 4,
            timeout=30,
            what="two windows of status rows",
        )
    assert "E! " not in telegraf.log()

    # A run for a time still to come waits for it (the scheduler starts a run once its
    # scheduledFor has passed): the minute after the last pulse, once it has begun, covers them.
    boundary = (time.time_ns() // MINUTE + 1) * MINUTE
    time.sleep(max(0.0, (boundary - time.time_ns()) / NS) + 0.5)
    _run_task(influxd2, org, task_name(layout, layout.tier("1m")), boundary)
    rows = _rows(influxd2, org, "PowerLogger_1m")
    assert rows, "rows in the 1m bucket"
    for row in rows:
        _check_row(row, 60)
        assert row["_time"].endswith(":00Z"), "stamped at the window's start"
    totals = {name: sum(int(r["pulses"]) for r in rows if r["PulseType"] == name) for name in WH}
    assert totals == dict.fromkeys(WH, pulses)
    assert _pulses_column_type(influxd2, org, "PowerLogger_1m") == "long"

    # Every panel of the InfluxQL dashboard answers through the mappings setup created, with
    # the reader token Grafana gets.
    reader = (tmp_path / "secrets" / "v2_reader_token").read_text()
    answers = _dashboard(influxd2, reader, "time > now() - 1h")
    # The 1h tier is not computed here (its next run is up to an hour away): the other test
    # checks its panel.
    assert answers == {t: set() if "$tier_1h" in q else set(WH) for t, q in QUERIES.items()}


def test_the_5m_and_1h_tasks_sum_the_finer_tier(influxd2: InfluxD2, tmp_path: Path) -> None:
    org = influxd2.new_org(None)
    layout = _setup(influxd2, _bridge_yaml(tmp_path, influxd2, org, ""), tmp_path)
    hour = (time.time_ns() // HOUR - 3) * HOUR  # a whole hour, three hours ago
    # In 5-minute window k: k+1 Import pulses (in its first minute), one Export pulse (in its
    # second minute).
    lines = []
    for k in range(12):
        start = hour + k * 5 * MINUTE
        lines += [f"PowerPulse,PulseType=Import Pulse=1i {start + i * NS}" for i in range(k + 1)]
        lines.append(f"PowerPulse,PulseType=Export Pulse=1i {start + MINUTE + 7 * NS}")
    # A pulse of the next hour: no window of the hour may count it.
    lines.append(f"PowerPulse,PulseType=Import Pulse=1i {hour + HOUR + 30 * NS}")
    influxd2.write("PowerLogger_raw", "\n".join(lines), org=org)

    end = hour + HOUR
    for key in ("1m", "5m", "1h"):
        _run_task(influxd2, org, task_name(layout, layout.tier(key)), end)

    one = _rows(influxd2, org, "PowerLogger_1m")
    assert len(one) == 24
    for row in one:
        _check_row(row, 60)

    five = _rows(influxd2, org, "PowerLogger_5m")
    for row in five:
        _check_row(row, 300)
    got = {(r["_time"], r["PulseType"]): int(r["pulses"]) for r in five}
    want = {}
    for k in range(12):
        start = format_rfc3339_ns(hour + k * 5 * MINUTE)
        want[(start, "Import")] = k + 1
        want[(start, "Export")] = 1
    assert got == want
    assert _pulses_column_type(influxd2, org, "PowerLogger_5m") == "long"

    hourly = _rows(influxd2, org, "PowerLogger_1h")
    start = format_rfc3339_ns(hour)
    assert [(r["_time"], r["PulseType"], int(r["pulses"])) for r in hourly] == [
        (start, "Export", 12),
        (start, "Import", 78),  # 1 + 2 + ... + 12
    ]
    for row in hourly:
        _check_row(row, 3600)
    assert _pulses_column_type(influxd2, org, "PowerLogger_1h") == "long"

    # The dashboard's queries of the meter tiers answer through the mappings (the raw
    # PowerMeter and status rows come only from the plugin: the other test has them).
    reader = (tmp_path / "secrets" / "v2_reader_token").read_text()
    answers = _dashboard(influxd2, reader, f"time >= {hour}")
    plugin_only = ("PowerMeter", "gpio_pulse_status")
    assert answers == {
        t: set() if any(m in q for m in plugin_only) else set(WH) for t, q in QUERIES.items()
    }
    assert any("$tier_1h" in q for q in QUERIES.values())
