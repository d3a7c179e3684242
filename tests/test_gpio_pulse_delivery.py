"""gpio_pulse through an outage: pulses captured while InfluxDB is down wait in Telegraf's disk
buffer, survive a graceful restart of Telegraf and the plugin, and arrive exactly once; the
persisted totals continue across the restart instead of starting again at zero.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from _support import SOAK, fast_agent_yaml, render_yaml
from rig import InfluxD1, TelegrafProcess, wait_for

pytestmark = [pytest.mark.telegraf, pytest.mark.influxd, pytest.mark.slow]

PULSES = 600 if SOAK else 60  # per channel and run, at 30 pulses/s


def _counts(influxd: InfluxD1, query: str, db: str) -> dict[str, int]:
    try:
        series = influxd.query(query, db=db)
    except (RuntimeError, OSError):
        return {}
    return {s["tags"]["PulseType"]: int(s["values"][0][1]) for s in series if s["values"]}


def test_pulses_during_an_outage_and_a_restart_all_arrive_once(
    telegraf_bin: Path, tmp_path: Path
) -> None:
    influxd = InfluxD1(tmp_path / "influxd")
    db = f"gp_{uuid.uuid4().hex[:8]}"
    # The tier must exist before Telegraf writes to it: InfluxDB answers a write to a missing
    # retention policy (or v2 bucket) with an error Telegraf drops the batch on. That is what
    # `bridge-cli setup-influxdb` is for; here the RP is made by hand, then InfluxDB goes down.
    with influxd:
        influxd.query(f'CREATE DATABASE "{db}"', method="POST")
        influxd.query(
            f'CREATE RETENTION POLICY "PowerLogger_raw" ON "{db}" DURATION 30d REPLICATION 1',
            method="POST",
        )
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
  - name: home
    type: influxdb_v1
    url: {influxd.url}
    database: {db}
"""
    )
    conf = render_yaml(yaml_text, tmp_path / "out")
    buffer = tmp_path / "buffer"

    def buffered() -> int:
        return sum(f.stat().st_size for f in buffer.rglob("*") if f.is_file())

    seconds = PULSES / 30
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg1"):
        wait_for(lambda: buffered() > 0, timeout=30, what="points in the disk buffer")
        wait_for((tmp_path / "state").exists, timeout=30, what="the plugin's state file")
        time.sleep(seconds + 3)  # every pulse of the first run generated and written out
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg2") as telegraf:
        time.sleep(seconds + 3)
        with influxd:
            raw = (
                f'SELECT count("Pulse") FROM "{db}"."PowerLogger_raw"."PowerPulse" '
                'GROUP BY "PulseType"'
            )
            want = dict.fromkeys(("Import", "Export", "Generate"), 2 * PULSES)
            wait_for(
                lambda: _counts(influxd, raw, db) == want,
                timeout=120,
                what=f"{2 * PULSES} pulses per channel in influxd",
            )
            totals = (
                f'SELECT max("pulses_total") FROM "{db}"."PowerLogger_raw"."PowerMeter" '
                'GROUP BY "PulseType"'
            )
            wait_for(
                lambda: _counts(influxd, totals, db) == want,
                timeout=60,
                what="totals continued across the restart",
            )
        log = telegraf.log()
    assert "E! [telegraf_bridge" not in log, log
