"""Telegraf's disk buffer for the drain tests: the points, a Telegraf config with the bundle's
buffer settings, and the WAL read directly.

The WAL is tidwall/wal's: a directory per output (named by the output's ID, a hash of its
options) holding segment files named by their first index, each record a uvarint length and
the record's bytes. Records of the compact format (telegraf/patches/0002) start with 0x81, gob
records (Telegraf before the patch) with a byte below 0x80.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from _support import emitter_input
from rig import InfluxD1

GOB_WAL = Path(__file__).resolve().parent / "testdata" / "disk_buffer_gob"
COMPACT_RECORD = 0x81
START_NS = 1_772_323_200_000_000_000  # 2026-03-01T00:00:00Z
DEVICES = ("inv 1", "roof, south=1", "Zürich ☀ a=b")

Row = tuple[int, tuple[tuple[str, str], ...], tuple[tuple[str, Any], ...]]


def points(count: int, measurement: str) -> dict[str, Any]:
    """``count`` points for tests/helpers/emit_points.py: every field type influxd 1.x keeps,
    tags and strings that need escaping, nanosecond timestamps."""
    return {
        "types": {"count": "integer"},
        "points": [
            {
                "measurement": measurement,
                "tags": {"device": DEVICES[i % 3], "phase": str(i % 7)},
                "fields": {
                    "power_w": i * 1.5 + 0.25,
                    "count": i - 100,
                    "note": f'say "hi" {i} \\ ok',
                    "ok": i % 2 == 0,
                },
                "time_ns": START_NS + i * 1_000_000_007,
            }
            for i in range(count)
        ],
    }


def expected_rows(doc: dict[str, Any]) -> set[Row]:
    return {
        (p["time_ns"], tuple(sorted(p["tags"].items())), tuple(sorted(p["fields"].items())))
        for p in doc["points"]
    }


def stored_rows(influxd: InfluxD1, measurement: str, db: str) -> set[Row]:
    rows = influxd.rows(f'SELECT * FROM "{measurement}" GROUP BY *', db=db)
    tags = ("device", "phase")
    return {
        (
            int(row["time"]),
            tuple(sorted((k, str(row[k])) for k in tags)),
            tuple(sorted((k, v) for k, v in row.items() if k not in (*tags, "time"))),
        )
        for row in rows
    }


def idle_input() -> str:
    """An input that produces nothing: Telegraf needs one, the drain tests need no new data."""
    command = json.dumps([sys.executable, "-c", "import sys; sys.stdin.read()"])
    return f"""
[[inputs.execd]]
  alias = "idle"
  command = {command}
  signal = "none"
  data_format = "influx"
"""


def write_points_file(path: Path, doc: dict[str, Any]) -> str:
    """Write ``doc`` for the emitter and return the [[inputs.execd]] block that emits it once."""
    path.write_text(json.dumps(doc), encoding="utf-8")
    return emitter_input(path)


def config(
    buffer: Path, url: str, db: str, inputs: str, *, batch: int, flush_interval: str = "1s"
) -> str:
    """Telegraf with the bundle's buffer settings (disk, synced) and one influxdb output."""
    return f"""
[agent]
  interval = "1s"
  flush_interval = "{flush_interval}"
  metric_batch_size = {batch}
  metric_buffer_limit = 1000000
  omit_hostname = true
  buffer_strategy = "disk"
  buffer_directory = "{buffer}"
  buffer_disk_sync = true
{inputs}
[[outputs.influxdb]]
  urls = ["{url}"]
  database = "{db}"
  timeout = "10s"
"""


def output_wal(buffer: Path) -> Path:
    """The WAL directory of the config's only output."""
    dirs = [d for d in buffer.iterdir() if d.is_dir()]
    assert len(dirs) == 1, f"expected one output WAL in {buffer}, found {dirs}"
    return dirs[0]


def buffered(buffer: Path) -> int:
    """Records in the output's WAL; 0 before Telegraf created it."""
    if not buffer.exists() or not any(buffer.iterdir()):
        return 0
    return len(wal_records(output_wal(buffer)))


def wal_records(directory: Path) -> list[bytes]:
    """Every complete record in the WAL's segment files, oldest first (of a WAL at rest: a
    crash mid-truncation leaves a ``.START`` file that tidwall/wal resolves when it opens)."""
    records = []
    for segment in sorted(p for p in directory.iterdir() if p.name.isdigit()):
        data = segment.read_bytes()
        pos = 0
        while pos < len(data):
            size, shift, complete = 0, 0, False
            while pos < len(data) and not complete:
                byte = data[pos]
                pos += 1
                size |= (byte & 0x7F) << shift
                shift += 7
                complete = byte < 0x80
            if not complete or pos + size > len(data):
                break  # a record still being written
            records.append(data[pos : pos + size])
            pos += size
    return records
