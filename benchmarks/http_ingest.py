"""http_ingest: devices POST telemetry to the iotflow plugin's HTTP listener under the real
Telegraf, into the real InfluxDB 1.x; reports accepted requests/s, latency percentiles and the
points lost (accepted with 200 but not in influxd: must be 0).

The load generator is bounded: ``--concurrency`` client threads, each with one kept-alive
connection, send requests back to back until ``--seconds`` have passed (or ``--requests`` are
sent). Every request carries its own timestamp, so each point is its own (series, time) and
the count in influxd compares exactly. Client, plugin, Telegraf and influxd share this
machine's cores: the rate is a floor for the listener, not its ceiling.

Every 2xx is sent once the request's points are in the plugin's fsynced delivery journal;
concurrent requests share one fsync (group commit). ``--journal-sync`` runs the plugin under
``strace -e trace=fsync,fdatasync`` (stopping it only at those calls) and reports the fsyncs
made during the load: how many requests each one covered and the time spent in them.

Usage: .venv/bin/python benchmarks/http_ingest.py [--seconds 20] [--concurrency 32]
       [--workers 8] [--batch 1] [--devices 10] [--requests N] [--journal-sync]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _bench import REPO, python, strace_command, telegraf_binary, traced_calls
from _footprint import children, cpu_seconds, tree_cpu_seconds
from telegraf_bridge.plugins.iotflow import registry

# The test servers (tests/rig).
sys.path.insert(0, str(REPO / "tests"))
from rig import InfluxD1, TelegrafProcess, free_port, wait_for

ENDPOINT = "/api/v1/devices/telemetry"
BASE = datetime(2026, 3, 1, tzinfo=UTC)
DB = "iot"


def make_registry(path: Path, count: int) -> list[tuple[str, str]]:
    """``count`` devices with fresh keys; returns [(device id, key)]."""
    reg = registry.Registry()
    out = []
    for index in range(count):
        device_id = f"bench_{index:03d}"
        key_id, key = registry.new_key(d.key_id for d in reg.devices.values())
        reg.devices[device_id] = registry.Device(
            id=device_id,
            name=f"Bench device {index}",
            type="sensor",
            location=f"rack {index % 4}",
            key_id=key_id,
            key_hash=registry.hash_key(key),
        )
        out.append((device_id, key))
    registry.save(path, reg)
    return out


def configs(
    tmp: Path, url: str, port: int, workers: int, batch: int, *, trace: Path | None = None
) -> Path:
    plugin = tmp / "iotflow.toml"
    plugin.write_text(
        f"""
signal = "none"
interval = "10s"
state_dir = "{tmp / "state"}"
require_clock_sync = false
registry = "{tmp / "devices.yaml"}"
[http]
listen = "127.0.0.1:{port}"
workers = {workers}
max_points = {max(batch, 1)}
max_body_bytes = {max(65536, batch * 200)}
[mqtt]
enabled = false
"""
    )
    argv = [python(), "-m", "telegraf_bridge.plugins.iotflow", "--config", str(plugin)]
    command = json.dumps(strace_command(argv, trace, "fsync,fdatasync") if trace else argv)
    conf = tmp / "telegraf.conf"
    conf.write_text(
        f"""
[agent]
  interval = "10s"
  flush_interval = "1s"
  metric_batch_size = 5000
  metric_buffer_limit = 2000000
  omit_hostname = true
[[inputs.execd]]
  command = {command}
  signal = "none"
  data_format = "influx"
[[outputs.influxdb]]
  urls = ["{url}"]
  database = "{DB}"
  timeout = "30s"
"""
    )
    return conf


def stamp(seq: int) -> str:
    """A distinct timestamp per point: one microsecond apart."""
    return (
        (BASE + timedelta(microseconds=seq))
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


class Load:
    """The client threads and what they saw."""

    def __init__(self, port: int, devices: list[tuple[str, str]], batch: int) -> None:
        self.port = port
        self.devices = devices
        self.batch = batch
        self.seq = itertools.count()
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.accepted_points = 0
        self.sent = 0

    def body(self) -> bytes:
        points = []
        for _ in range(self.batch):
            seq = next(self.seq)
            points.append(
                {
                    "data": {"value": float(seq % 1000), "battery_level": 85.0, "ok": True},
                    "type": "bench",
                    "timestamp": stamp(seq),
                }
            )
        doc = points[0] if self.batch == 1 else {"points": points}
        return json.dumps(doc).encode()

    def client(self, index: int, deadline: float, budget: itertools.count[int], limit: int) -> None:
        _device, key = self.devices[index % len(self.devices)]
        headers = {"Content-Type": "application/json", "X-API-Key": key}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        accepted = 0
        try:
            while time.monotonic() < deadline and next(budget) < limit:
                body = self.body()
                start = time.perf_counter()
                try:
                    conn.request("POST", ENDPOINT, body=body, headers=headers)
                    resp = conn.getresponse()
                    answer = resp.read()
                    status = resp.status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    status = 0
                latencies.append(time.perf_counter() - start)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    accepted += json.loads(answer)["points"]
        finally:
            conn.close()
            with self.lock:
                self.latencies += latencies
                for status, n in statuses.items():
                    self.statuses[status] = self.statuses.get(status, 0) + n
                self.accepted_points += accepted
                self.sent += len(latencies)

    def run(self, concurrency: int, seconds: float, limit: int) -> tuple[float, float]:
        """Returns the load's start (epoch seconds) and its duration."""
        deadline = time.monotonic() + seconds
        budget = itertools.count()
        threads = [
            threading.Thread(target=self.client, args=(i, deadline, budget, limit))
            for i in range(concurrency)
        ]
        start = time.monotonic()
        began = time.time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return began, time.monotonic() - start


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def plugin_cpu(telegraf_pid: int) -> float:
    """CPU seconds of the plugin (and strace around it, if any) below Telegraf."""
    return sum(tree_cpu_seconds(pid) for pid in children(telegraf_pid))


def journal_syncs(trace: Path, start: float, end: float, accepted: int) -> dict[str, Any]:
    """The plugin's fsyncs between ``start`` and ``end`` (from :func:`strace_command`), against
    the ``accepted`` requests: how well group commit shares them."""
    durations = [c.seconds for c in traced_calls(trace, start, end) if "sync" in c.name]
    busy = sum(durations)
    return {
        "fsyncs": len(durations),
        "requests_per_fsync": round(accepted / len(durations), 2) if durations else None,
        "fsync_ms_mean": round(1000 * busy / len(durations), 3) if durations else 0.0,
        "fsync_ms_p99": round(1000 * percentile(durations, 0.99), 3),
        # One journal fsyncs at a time, so this is the share of the load spent syncing.
        "fsync_share": round(busy / (end - start), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the load runs")
    parser.add_argument("--concurrency", type=int, default=32, help="client connections")
    parser.add_argument("--workers", type=int, default=8, help="the listener's http.workers")
    parser.add_argument("--batch", type=int, default=1, help="points per request")
    parser.add_argument("--devices", type=int, default=10, help="registered devices")
    parser.add_argument("--requests", type=int, default=10**9, help="stop after this many")
    parser.add_argument(
        "--journal-sync",
        action="store_true",
        help="count the journal's fsyncs during the load (runs the plugin under strace)",
    )
    args = parser.parse_args()
    binary = telegraf_binary()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp_name:
        tmp = Path(tmp_name)
        devices = make_registry(tmp / "devices.yaml", args.devices)
        port = free_port()
        with InfluxD1(tmp / "influxd") as influxd:
            trace = tmp / "plugin.strace" if args.journal_sync else None
            conf = configs(tmp, influxd.url, port, args.workers, args.batch, trace=trace)
            with TelegrafProcess(binary, conf, tmp / "tg") as telegraf:
                wait_for(
                    lambda: "listening on http://" in telegraf.log(),
                    timeout=60,
                    what="the iotflow listener",
                )
                load = Load(port, devices, args.batch)
                assert telegraf.proc is not None
                tg_pid = telegraf.proc.pid
                cpu_before = (cpu_seconds(tg_pid), plugin_cpu(tg_pid))
                began, elapsed = load.run(args.concurrency, args.seconds, args.requests)
                cpu = (cpu_seconds(tg_pid) - cpu_before[0], plugin_cpu(tg_pid) - cpu_before[1])
                accepted = load.statuses.get(200, 0)
                print(
                    f"sent {load.sent} requests in {elapsed:.1f} s from {args.concurrency} "
                    f"connections: {accepted} accepted ({load.accepted_points} points), "
                    f"statuses {dict(sorted(load.statuses.items()))}",
                    flush=True,
                )
                drain_start = time.monotonic()
                try:
                    wait_for(
                        lambda: influxd.count("bench", "value", db=DB) >= load.accepted_points,
                        timeout=120,
                        interval=0.5,
                        what=f"{load.accepted_points} points in influxd",
                    )
                except TimeoutError as exc:
                    print(f"warning: {exc}", flush=True)
                drain_s = time.monotonic() - drain_start
                stored = influxd.count("bench", "value", db=DB)
                log = telegraf.log()
            # Telegraf has stopped the plugin: strace has written its trace.
            accepted = load.statuses.get(200, 0)
            syncs = journal_syncs(trace, began, began + elapsed, accepted) if trace else {}
    rate = accepted / elapsed if elapsed else 0.0
    p50 = percentile(load.latencies, 0.50) * 1000
    p99 = percentile(load.latencies, 0.99) * 1000
    lost = load.accepted_points - stored
    print(
        f"accepted {rate:,.0f} requests/s ({rate * args.batch:,.0f} points/s); latency p50 "
        f"{p50:.2f} ms, p99 {p99:.2f} ms; in influxd {stored}/{load.accepted_points} points "
        f"({drain_s:.1f} s after the load), lost {lost}",
        flush=True,
    )
    for line in [line for line in log.splitlines() if "E! " in line][:5]:
        print(f"Telegraf logged: {line}", flush=True)
    per_request = [round(1000 * c / accepted, 3) if accepted else 0.0 for c in cpu]
    print(
        f"CPU during the load: plugin {cpu[1]:.1f} s ({per_request[1]} ms per accepted "
        f"request), Telegraf {cpu[0]:.1f} s ({per_request[0]} ms), of {elapsed:.1f} s on "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    if syncs:
        print(
            f"journal: {syncs['fsyncs']} fsyncs during the load, "
            f"{syncs['requests_per_fsync']} requests each; {syncs['fsync_ms_mean']} ms per "
            f"fsync (p99 {syncs['fsync_ms_p99']} ms), {syncs['fsync_share']:.0%} of the time "
            "with an fsync in progress",
            flush=True,
        )
    print(
        json.dumps(
            {
                "benchmark": "http_ingest",
                "seconds": round(elapsed, 2),
                "concurrency": args.concurrency,
                "workers": args.workers,
                "batch": args.batch,
                "requests_sent": load.sent,
                "accepted_requests": accepted,
                "accepted_requests_per_s": round(rate, 1),
                "accepted_points_per_s": round(rate * args.batch, 1),
                "p50_latency_ms": round(p50, 2),
                "p99_latency_ms": round(p99, 2),
                "non_2xx": load.sent - accepted,
                "points_accepted": load.accepted_points,
                "points_in_influxd": stored,
                "points_lost": lost,
                "telegraf_errors": log.count("E! "),
                "plugin_cpu_ms_per_request": per_request[1],
                "telegraf_cpu_ms_per_request": per_request[0],
                **({"journal_sync": syncs} if syncs else {}),
            }
        )
    )


if __name__ == "__main__":
    main()
