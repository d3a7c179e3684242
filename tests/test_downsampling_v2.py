"""The meter tiers really downsample on InfluxDB 2: the Flux tasks setup-influxdb creates run on
the real influxd 2.x and fill the 1m, 5m and 1h buckets with the rows the layout promises.

Runs are triggered through the tasks API (``POST /api/v2/tasks/{id}/runs`` with
``scheduledFor``): inside a run ``now()`` is that time, so a run can cover pulses of the past
without waiting for the scheduler. The first test sends pulses through the whole bundle
(gpio_pulse's simulator, the real Telegraf, the influxdb_v2 output into the raw bucket); the
second writes an hour of raw pulses with known counts three hours ago and runs the three tasks
over it, with two channels of different energy per pulse.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from _support import fast_agent_yaml, render_yaml
from click.testing import CliRunner
from telegraf_bridge.cli.influx_admin._v2_flux import task_name
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.settings import load_settings
from telegraf_bridge.cli.tiers import Layout, layout_from_settings
from telegraf_bridge.plugins.common import format_rfc3339_ns

from telegraf_bridge.testing import InfluxD2, TelegrafProcess, wait_for

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


def _check_row(row: dict[str, str], window_s: int) -> None:
    """energy_wh is the pulses times the channel's Wh; power_w the mean over the window."""
    pulses = int(row["pulses"])
    energy = float(row["energy_wh"])
    assert energy == pytest.approx(pulses * WH[row["PulseType"]]), row
    assert float(row["power_w"]) == pytest.approx(energy * 3600 / window_s), row
    assert set(row) >= {"PulseType", "pulses", "energy_wh", "power_w"}
    assert "bridge_tier" not in row, "the routing tag is not stored"


@pytest.mark.telegraf
def test_pulses_through_the_bundle_fill_the_1m_tier_by_the_real_task(
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
    assert "E! " not in telegraf.log()

    # The run a minute after the last pulse covers them all (lookback 1h).
    _run_task(
        influxd2, org, task_name(layout, layout.tier("1m")), (time.time_ns() // MINUTE + 1) * MINUTE
    )
    rows = _rows(influxd2, org, "PowerLogger_1m")
    assert rows, "rows in the 1m bucket"
    for row in rows:
        _check_row(row, 60)
        assert row["_time"].endswith(":00Z"), "stamped at the window's start"
    totals = {name: sum(int(r["pulses"]) for r in rows if r["PulseType"] == name) for name in WH}
    assert totals == dict.fromkeys(WH, pulses)
    assert _pulses_column_type(influxd2, org, "PowerLogger_1m") == "long"


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
