"""The plugins' status files (skips, holds, points) and the CLI's reader and reason table."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

from _support import REPO
from rig import wait_for
from telegraf_bridge.cli import schema
from telegraf_bridge.cli import source_status as ss
from telegraf_bridge.cli.config_model import SourceConfig, build
from telegraf_bridge.plugins.common import (
    ClockGuard,
    LineProtocolSerializer,
    LineWriter,
    Point,
    SkipCounter,
)
from telegraf_bridge.plugins.common._status import StatusReporter
from telegraf_bridge.plugins.iotflow.http_stats import REASONS as IOTFLOW_REASONS

# Every way the plugins name a skip reason with a literal: the shim's counter, the plugins' own
# skip helpers, and the exceptions whose ``reason`` is counted.
_COUNTED = re.compile(
    r"(?:counter\.count|_skip|_on_skip|RecordError|BadLine|PayloadError)\(\s*\"([a-z_]+)\""
    r"|problems\.append\(\(\s*\"([a-z_]+)\"",
    re.S,
)


def _counted_reasons() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "plugins").rglob("*.py"):
        for match in _COUNTED.finditer(path.read_text(encoding="utf-8")):
            found.add(match[1] or match[2])
    return found | set(IOTFLOW_REASONS)


def test_every_reason_a_plugin_counts_has_a_meaning_and_a_fix() -> None:
    reasons = _counted_reasons()
    # The collector really finds the reasons of the shim and of several plugins.
    assert {"timestamp_before_floor", "field_type_mismatch", "line_too_long"} <= reasons
    assert {"lifetime_counter_regression", "invalid_report", "malformed_json"} <= reasons
    missing = sorted(reasons - set(ss.REASONS))
    assert not missing, f"add these to cli/source_status.REASONS: {missing}"
    assert "agent.time_floor" in ss.REASONS["timestamp_before_floor"].fix


def test_unknown_reason_is_still_shown() -> None:
    status = ss.SourceStatus("x", "x", Path("x"), skips={"brand_new": 2})
    assert status.skip_lines() == ["2 x brand_new: skipped (brand_new); see Telegraf's log"]


def _reporter(tmp_path: Path, guard: ClockGuard | None = None) -> StatusReporter:
    counter = SkipCounter()
    serializer = LineProtocolSerializer(time_floor_ns=10**18, counter=counter)
    writer = LineWriter(io.BytesIO(), serializer)
    return StatusReporter(
        ss.status_path(tmp_path, "demo", "pv"),
        plugin="demo",
        instance="pv",
        counter=counter,
        writer=writer,
        guard=guard,
    )


def test_no_write_while_only_points_change_then_one_per_change(tmp_path: Path) -> None:
    reporter = _reporter(tmp_path)
    path = ss.status_path(tmp_path, "demo", "pv")
    reporter.writer.write_points([Point("m", {}, {"v": 1.0}, 2 * 10**18)])
    assert not reporter.check()
    assert not path.exists(), "points alone must not cost an SD-card write"
    reporter.writer.write_points([Point("m", {}, {"v": 1.0}, 1)])  # before the floor
    assert reporter.check()
    assert not reporter.check(), "unchanged skips are not written again"
    status = ss.read_status(path)
    assert status is not None
    assert status.skips == {"timestamp_before_floor": 1}
    assert (status.points, status.exited, status.alive()) == (1, False, True)
    reporter.close()
    final = ss.read_status(path)
    assert final is not None and final.exited and not final.alive()
    assert reporter.writes == 2


def test_clock_hold_is_reported(tmp_path: Path) -> None:
    guard = ClockGuard(floor_ns=0, require_sync=True, probe=lambda: False)
    reporter = _reporter(tmp_path, guard)
    assert not guard.is_sane()
    assert reporter.check()
    status = ss.read_status(ss.status_path(tmp_path, "demo", "pv"))
    assert status is not None and status.held is not None
    assert "unsynchronised" in status.held


def _plugin(name: str, conf: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", f"telegraf_bridge.plugins.{name}", "--config", str(conf)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_real_plugin_reports_its_skips_live_and_its_points_at_exit(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.ndjson").write_text(
        '{"timestamp":"1999-05-25T23:13:07+00:00","parsed_data":{"v":1}}\n'
        '{"timestamp":"2025-05-25T23:13:07.914587+00:00","parsed_data":{"v":2}}\n'
        "not json\n"
    )
    state = tmp_path / "state"
    conf = tmp_path / "ndjson.toml"
    conf.write_text(
        f'files = ["{data}/*.ndjson"]\ninterval = "200ms"\nstate_dir = "{state}"\n'
        'instance = "smartsolar"\ntime_floor = "2000-01-01T00:00:00Z"\n'
        "require_clock_sync = false\n"
    )
    proc = _plugin("ndjson_tail", conf)
    path = ss.status_path(state, "ndjson_tail", "smartsolar")
    try:
        wait_for(path.exists, timeout=15, what="the status file")
        live = ss.read_status(path)
        assert live is not None and live.alive() and live.pid == proc.pid
        assert live.skips == {"timestamp_before_floor": 1, "invalid_json": 1}
    finally:
        out, _ = proc.communicate(timeout=30)  # closes stdin, as Telegraf does at shutdown
    final = ss.read_status(path)
    assert final is not None and final.exited
    assert final.points == out.count(b"\n") == 1
    source = build(SourceConfig, {"name": "smartsolar", "plugin": "ndjson_tail"}, schema.SOURCE)
    statuses = ss.source_statuses(state, [source])
    lines = statuses["smartsolar"].skip_lines()
    assert lines[1].startswith("1 x timestamp_before_floor: ")
    assert "agent.time_floor" in lines[1]


def test_healthy_plugin_writes_its_status_once_at_exit(tmp_path: Path) -> None:
    state = tmp_path / "state"
    conf = tmp_path / "demo.toml"
    conf.write_text(f'interval = "100ms"\nstate_dir = "{state}"\nrequire_clock_sync = false\n')
    proc = _plugin("demo", conf)
    path = ss.status_path(state, "demo", "demo")
    time.sleep(6)  # longer than the status interval
    assert not path.exists(), "nothing skipped or held: no status write while running"
    out, _ = proc.communicate(timeout=30)
    final = ss.read_status(path)
    assert final is not None and final.exited and final.skips == {}
    assert final.points == out.count(b"\n") > 0


def test_journal_drops_at_the_cap_reach_the_console_as_skips(tmp_path: Path) -> None:
    """A live source at the cap keeps its newest data and drops the oldest: the status says so."""
    state, buffer = tmp_path / "state", tmp_path / "buffer"
    buffer.mkdir()
    (buffer / "wal").write_bytes(b"\0" * 2**20)  # Telegraf's buffer already at the 1 MiB cap
    conf = tmp_path / "demo.toml"
    conf.write_text(
        f'interval = "20ms"\nstate_dir = "{state}"\nrequire_clock_sync = false\n'
        f'buffer_directory = "{buffer}"\nbuffer_max_size_mb = 1\n'
    )
    proc = _plugin("demo", conf)
    path = ss.status_path(state, "demo", "demo")
    try:
        wait_for(
            lambda: (
                (s := ss.read_status(path)) is not None
                and s.skips.get("journal_dropped_at_cap", 0) > 0
            ),
            timeout=20,
            what="journal drops in the status file",
        )
    finally:
        out, _ = proc.communicate(timeout=30)
    assert out == b"", "at the cap nothing is handed to Telegraf"
    final = ss.read_status(path)
    assert final is not None and final.exited
    (line,) = final.skip_lines()
    assert "journal_dropped_at_cap" in line and "agent.buffer_max_size_mb" in line
    assert (state / "demo-demo.journal").is_dir(), "the newest data waits in the journal"
