"""The default time floor refuses clockless timestamps only, never real history (issue 15, 2).

Seed 000's README shows a 2025 record; a user following it with the defaults must see it in
InfluxDB, through the real Telegraf and a real InfluxDB 1.x.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from _support import REPO, fast_agent_yaml, render_yaml
from rig import InfluxD1, TelegrafProcess, wait_for
from telegraf_bridge.plugins.common._clock import DEFAULT_TIME_FLOOR, parse_time_floor

RECORD = REPO / "plugins" / "ndjson_tail" / "testdata" / "seed_000_readme.ndjson"
# 2025-05-25T23:13:07.914587Z, the seed 000 README's sample record.
RECORD_NS = 1_748_214_787_914_587_000


def test_default_floor_keeps_history_and_refuses_1970() -> None:
    floor = parse_time_floor(DEFAULT_TIME_FLOOR)
    assert floor < RECORD_NS
    assert floor > 86_400 * 365 * 10**9  # a clock that reads 1970 stays below it


@pytest.mark.telegraf
@pytest.mark.influxd
def test_seed_000_readme_record_arrives_with_defaults(
    influxd: InfluxD1, telegraf_bin: Path, tmp_path: Path
) -> None:
    db = f"floor_{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(RECORD, data / "data_2025-05-25.ndjson")
    # No time_floor anywhere and only the one option ndjson_tail requires.
    yaml_text = (
        fast_agent_yaml(tmp_path)
        + f"""
sources:
  - name: smartsolar
    plugin: ndjson_tail
    options:
      files: ["{data}/*.ndjson"]
sinks:
  - name: influx1
    type: influxdb_v1
    url: {influxd.url}
    database: {db}
"""
    )
    conf = render_yaml(yaml_text, tmp_path / "out")
    assert "time_floor" not in yaml_text
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg") as telegraf:
        wait_for(
            lambda: influxd.count("smartsolar", "battery_voltage", db=db) >= 1,
            timeout=60,
            what="the seed 000 README record in influxd",
        )
        assert "timestamp_before_floor" not in telegraf.log()
    (row,) = influxd.rows("SELECT * FROM smartsolar", db=db)
    assert row["time"] == RECORD_NS
    assert row["device_name"] == "SmartSolar HQ22189Q3QF"
    assert row["battery_voltage"] == 12.34
