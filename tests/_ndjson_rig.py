"""A rig for ndjson_tail delivery tests: SmartSolar-shaped files, the real Telegraf, and an
exact comparison of what InfluxDB 1.x holds against what was written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _support import render_yaml
from rig import InfluxD1, TelegrafProcess, wait_for

STATES = ("OFF", "BULK", "ABSORPTION", "FLOAT")
DEVICES = (
    ("SmartSolar HQ22189Q3QF", "DF:C9:B0:6E:3F:EF"),
    ("SmartSolar HQ2, roof=south", "AA:BB:CC:DD:EE:FF"),
)
START = 1_772_323_200  # 2026-03-01T00:00:00Z


@dataclass
class Rig:
    tmp: Path
    telegraf_bin: Path
    influx_url: str
    db: str
    commit_delay: str = "2s"
    cap_mb: int = 500
    glob: str = "data_*.ndjson*"
    batch_lines: int = 1000
    expected: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = self.tmp / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.buffer = self.tmp / "buffer"
        yaml_text = f"""
agent:
  interval: 1s
  flush_interval: 500ms
  metric_batch_size: 1000
  buffer_strategy: disk
  buffer_directory: {self.buffer}
  buffer_max_size_mb: {self.cap_mb}
  state_directory: {self.tmp / "state"}
  require_clock_sync: false
  health_listen: ""
  time_floor: "2020-01-01T00:00:00Z"
sources:
  - name: solar
    plugin: ndjson_tail
    interval: 200ms
    restart_delay: 1s
    options:
      files: ["{self.data}/{self.glob}"]
      commit_delay: "{self.commit_delay}"
      state_interval: 1s
      complete_after: 2s
      batch_lines: {self.batch_lines}
sinks:
  - name: influx1
    type: influxdb_v1
    url: {self.influx_url}
    database: {self.db}
    timeout: 2s
"""
        self.conf = render_yaml(yaml_text, self.tmp / "out")
        self.state_file = self.tmp / "state" / "ndjson_tail-solar.state.json"

    def telegraf(self, name: str = "tg") -> TelegrafProcess:
        return TelegrafProcess(self.telegraf_bin, self.conf, self.tmp / name)

    def record(self, index: int, device: int) -> tuple[str, tuple[str, int], dict[str, Any]]:
        ts = START + index * 60
        name, address = DEVICES[device]
        fields = {
            "battery_voltage": round(12.0 + (index % 200) / 100, 2),
            "battery_charging_current": round((index % 70) / 10, 1),
            "solar_power": float(index % 400),
            "yield_today": float((index % 1440) * 10),
            "charge_state": STATES[index % 4],
            "charger_error": "NO_ERROR",
        }
        stamp = datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")
        line = json.dumps(
            {
                "timestamp": stamp,
                "device_name": name,
                "device_address": address,
                "parsed_data": fields,
            }
        )
        return line, (name, ts * 1_000_000_000), fields

    def write(self, path: Path, first: int, count: int, *, mode: str = "a") -> None:
        """Append records first..first+count-1 for every device, one line at a time."""
        with path.open(mode) as handle:
            for index in range(first, first + count):
                for device in range(len(DEVICES)):
                    line, key, fields = self.record(index, device)
                    handle.write(line + "\n")
                    self.expected[key] = fields

    def write_days(self, days: int, *, first_day: int = 0) -> None:
        """SmartSolar's rate (one record a minute per device), one file per day."""
        for day in range(first_day, first_day + days):
            date = datetime.fromtimestamp(START + day * 86400, UTC).date().isoformat()
            self.write(self.data / f"data_{date}.ndjson", day * 1440, 1440)

    def stored(self, influxd: InfluxD1) -> dict[tuple[str, int], dict[str, Any]]:
        try:
            rows = influxd.rows('SELECT * FROM smartsolar GROUP BY "device_name"', db=self.db)
        except Exception:
            return {}
        fields = (
            "battery_voltage",
            "battery_charging_current",
            "solar_power",
            "yield_today",
            "charge_state",
            "charger_error",
        )
        return {(r["device_name"], r["time"]): {k: r[k] for k in fields} for r in rows}

    def count(self, influxd: InfluxD1) -> int:
        return influxd.count("smartsolar", "battery_voltage", db=self.db)

    def wait_all_stored(self, influxd: InfluxD1, timeout: float = 120) -> None:
        """Wait until influxd holds every expected point, then a little longer for extras."""
        wait_for(
            lambda: self.count(influxd) >= len(self.expected),
            timeout=timeout,
            what=f"{len(self.expected)} points in influxd",
        )
        time.sleep(1.5)  # a replayed or injected extra point would arrive now

    def plugin_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-f", f"ndjson_tail --config {self.tmp}"],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(p) for p in out.stdout.split()]

    def kill_plugin(self) -> int:
        pids = self.plugin_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return len(pids)

    def committed_lines(self) -> int:
        try:
            doc = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return 0
        return sum(max(0, p["line"]) for p in doc["data"]["files"].values())

    def buffer_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.buffer.rglob("*") if p.is_file())
