"""Meter pulses through an InfluxDB 2 outage: captured while the server is down, they wait in
Telegraf's disk buffer, survive a graceful restart of Telegraf and the plugin, and drain into
the real influxd 2 once it comes up, each exactly once (the v1 twin: test_gpio_pulse_delivery).

The server here is the test's own (not the session's): it is not running at all while the
pulses are generated, then starts and is onboarded with the sink's organization and bucket.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _support import SOAK, fast_agent_yaml, render_yaml
from rig import InfluxD2, TelegrafProcess, wait_for

pytestmark = [pytest.mark.telegraf, pytest.mark.influxd2, pytest.mark.slow]

PULSES = 600 if SOAK else 60  # per channel and run, at 30 pulses/s
CHANNELS = ("Import", "Export", "Generate")


def _counts(server: InfluxD2, measurement: str, field: str, fn: str) -> dict[str, int]:
    flux = (
        'from(bucket: "PowerLogger_raw") |> range(start: 0)'
        f' |> filter(fn: (r) => r._measurement == "{measurement}" and r._field == "{field}")'
        f' |> group(columns: ["PulseType"]) |> {fn}'
    )
    try:
        return {r["PulseType"]: int(r["_value"]) for r in server.query(flux)}
    except (RuntimeError, OSError):
        return {}


def test_pulses_during_an_outage_and_a_restart_drain_into_v2_once(
    influxd2_bin: str, telegraf_bin: Path, tmp_path: Path
) -> None:
    server = InfluxD2(tmp_path / "influxd2", binary=influxd2_bin, bucket="PowerLogger_raw")
    yaml_text = (
        fast_agent_yaml(tmp_path)
        + f"""
sources:
  - name: meter
    plugin: gpio_pulse
    options:
      backend: sim
      window: 2s
      grace: 500ms
      sim: {{rate: 30, jitter: 0.2, bounce: 0.2, seed: 5, limit: {PULSES}}}
sinks:
  - name: v2
    type: influxdb_v2
    url: {server.url}
    organization: {server.org}
    bucket: PowerLogger_raw
    token_env: BRIDGE_TEST_TOKEN
"""
    )
    conf = render_yaml(yaml_text, tmp_path / "out")
    env = {"BRIDGE_TEST_TOKEN": server.token}
    buffer = tmp_path / "buffer"

    def buffered() -> int:
        return sum(f.stat().st_size for f in buffer.rglob("*") if f.is_file())

    seconds = PULSES / 30
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg1", env=env):
        wait_for(lambda: buffered() > 0, timeout=30, what="points in the disk buffer")
        wait_for((tmp_path / "state").exists, timeout=30, what="the plugin's state file")
        time.sleep(seconds + 3)  # every pulse of the first run generated and buffered
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg2", env=env) as telegraf:
        time.sleep(seconds + 3)
        with server:  # InfluxDB 2 comes up only now
            want = dict.fromkeys(CHANNELS, 2 * PULSES)
            wait_for(
                lambda: _counts(server, "PowerPulse", "Pulse", "count()") == want,
                timeout=120,
                what=f"{2 * PULSES} pulses per channel in influxd 2",
            )
            wait_for(
                lambda: _counts(server, "PowerMeter", "pulses_total", "max()") == want,
                timeout=60,
                what="totals continued across the restart",
            )
        log = telegraf.log()
    assert "E! [telegraf_bridge" not in log, log
