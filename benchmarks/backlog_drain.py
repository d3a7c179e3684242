"""backlog_drain: 1,000,000 points waiting in Telegraf's disk buffer drain into the real InfluxDB
1.x once it comes back; compared with influxd's own ceiling, measured in the same run by direct
batched writes of the same points.

Usage: .venv/bin/python benchmarks/backlog_drain.py [--points 1000000] [--batch 5000]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path

from _bench import REPO, START, python, telegraf_binary

# The test servers (tests/rig).
sys.path.insert(0, str(REPO / "tests"))
from rig import InfluxD1, TelegrafProcess, wait_for

HERE = Path(__file__).resolve().parent


def timestamp(index: int) -> int:
    """Nanosecond timestamp of point ``index``: two devices, one point each per second."""
    return (START + index // 2) * 1_000_000_000


def write_points(path: Path, count: int) -> None:
    devices = ("SmartSolar\\ HQ22189Q3QF", "SmartSolar\\ HQ2")
    with path.open("w") as handle:
        for i in range(count):
            ts = timestamp(i)
            handle.write(
                f"smartsolar,device_name={devices[i % 2]} battery_voltage={12 + (i % 200) / 100},"
                f'charge_state="BULK",solar_power={float(i % 400)},'
                f"yield_today={float(i % 5000)} {ts}\n"
            )


def config(agent_sync: bool, url: str, buffer: Path, source: Path, batch: int) -> str:
    command = json.dumps([python(), str(HERE / "_emit_lp.py"), str(source)])
    return f"""
[agent]
  interval = "1s"
  flush_interval = "1s"
  metric_batch_size = {batch}
  metric_buffer_limit = 2000000
  omit_hostname = true
  skip_processors_after_aggregators = true
  buffer_strategy = "disk"
  buffer_directory = "{buffer}"
  buffer_disk_sync = {"true" if agent_sync else "false"}
[[inputs.execd]]
  command = {command}
  signal = "none"
  data_format = "influx"
[[outputs.influxdb]]
  urls = ["{url}"]
  database = "backlog"
  timeout = "30s"
  content_encoding = "identity"
"""


def count(influxd: InfluxD1, db: str) -> int:
    return influxd.count("smartsolar", "battery_voltage", db=db)


def newest_arrived(influxd: InfluxD1, db: str, points: int) -> bool:
    """Whether the points with the newest timestamp are in ``db``: a query over one second."""
    newest = timestamp(points - 1)
    expected = sum(1 for i in range(max(0, points - 2), points) if timestamp(i) == newest)
    query = f'SELECT count("battery_voltage") FROM "smartsolar" WHERE time >= {newest}'  # noqa: S608 - an int this script computed
    try:
        series = influxd.query(query, db=db)
    except (RuntimeError, OSError):
        return False
    return bool(series) and int(series[0]["values"][0][1]) >= expected


def direct_writes(influxd: InfluxD1, source: Path, batch: int) -> float:
    """Seconds to write every line of ``source`` in batches, one request at a time."""
    influxd.query("CREATE DATABASE direct", method="POST")
    conn = http.client.HTTPConnection("127.0.0.1", influxd.http_port, timeout=60)
    lines = source.read_bytes().splitlines(keepends=True)
    start = time.monotonic()
    for first in range(0, len(lines), batch):
        conn.request(
            "POST", "/write?db=direct&precision=ns", body=b"".join(lines[first : first + batch])
        )
        resp = conn.getresponse()
        resp.read()
        if resp.status != 204:
            raise RuntimeError(f"direct write failed: {resp.status}")
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument(
        "--no-sync", action="store_true", help="drain with buffer_disk_sync = false"
    )
    parser.add_argument(
        "--telegraf", type=Path, help="a Telegraf binary to measure instead of the pinned build"
    )
    args = parser.parse_args()
    telegraf = args.telegraf or telegraf_binary()
    with tempfile.TemporaryDirectory(prefix="bench-backlog-") as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / "points.lp"
        write_points(source, args.points)
        empty = tmp / "empty.lp"
        empty.write_text("")
        influxd = InfluxD1(tmp / "influxd")  # not started yet: InfluxDB is down
        buffer = tmp / "buffer"

        fill_conf = tmp / "fill.conf"
        fill_conf.write_text(config(False, influxd.url, buffer, source, args.batch))
        start = time.monotonic()
        with TelegrafProcess(telegraf, fill_conf, tmp / "fill"):
            wait_for(
                lambda: Path(str(source) + ".done").exists(), timeout=1800, what="the backlog read"
            )
            time.sleep(3)  # the last metrics move from Telegraf's channel into the WAL
        wal_mb = sum(p.stat().st_size for p in buffer.rglob("*") if p.is_file()) / 2**20
        print(
            f"filled the disk buffer: {args.points} points, {wal_mb:.0f} MiB WAL, "
            f"{time.monotonic() - start:.1f} s"
        )

        drain_conf = tmp / "drain.conf"
        drain_conf.write_text(config(not args.no_sync, influxd.url, buffer, empty, args.batch))
        with influxd:
            start = time.monotonic()
            with TelegrafProcess(telegraf, drain_conf, tmp / "drain") as drain:
                wait_for(
                    lambda: newest_arrived(influxd, "backlog", args.points),
                    timeout=1800,
                    interval=0.1,
                    what="the newest point in influxd",
                )
                drain_s = time.monotonic() - start
                log = drain.log()
            stored = count(influxd, "backlog")
            print(f"drained {stored} points in {drain_s:.1f} s = {stored / drain_s:,.0f} points/s")
            direct_s = direct_writes(influxd, source, args.batch)
            direct = count(influxd, "direct")
            print(
                f"direct batched writes: {direct} points in {direct_s:.1f} s = "
                f"{direct / direct_s:,.0f} points/s"
            )
    if stored != args.points:
        print(f"error: {stored} points stored, expected {args.points}", file=sys.stderr)
    figures = {
        "benchmark": "backlog_drain",
        "points": args.points,
        "batch": args.batch,
        "wal_mib": round(wal_mb),
        "drain_points_per_s": round(stored / drain_s),
        "direct_points_per_s": round(direct / direct_s),
        "ratio": round((stored / drain_s) / (direct / direct_s), 3),
        "points_stored": stored,
        "telegraf_errors": log.count("E! "),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
