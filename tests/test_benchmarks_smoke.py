"""The benchmarks run end to end (tiny sizes) and end with one JSON object, so their full
runs in docs/benchmarks.md stay reproducible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _support import REPO

pytestmark = pytest.mark.telegraf


@pytest.mark.parametrize(
    ("script", "args", "keys"),
    [
        (
            "ndjson_throughput.py",
            ["--lines", "2000"],
            {"ours_lines_per_s", "telegraf_tail_json_v2_lines_per_s", "ratio"},
        ),
        (
            "ndjson_throughput.py",
            ["--lines", "2000", "--repeat", "1", "--no-accel"],
            {"ours_cpu_s", "telegraf_tail_cpu_s", "cpu_ratio", "accel"},
        ),
        (
            "gpio_pulse_rate.py",
            ["--rates", "300", "--seconds", "1"],
            {"max_rate_zero_loss_pulses_per_s", "plugin_cpu_us_per_pulse_at_max"},
        ),
        (
            "http_ingest.py",
            ["--seconds", "2", "--concurrency", "8", "--workers", "4"],
            {"accepted_requests_per_s", "p99_latency_ms", "points_lost"},
        ),
        (
            "backlog_drain.py",
            ["--points", "5000", "--batch", "1000"],
            {"drain_points_per_s", "direct_points_per_s", "ratio"},
        ),
    ],
)
def test_benchmark_prints_its_figures_as_json_last(
    script: str, args: list[str], keys: set[str], telegraf_bin: Path
) -> None:
    # The benchmarks build Telegraf through telegraf/build.sh: reuse the real build cache.
    env = {**os.environ, "TELEGRAF_BRIDGE_CACHE": str(telegraf_bin.parents[2])}
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert keys <= set(figures)
    assert figures.get("ratio", 1) > 0
    if script == "gpio_pulse_rate.py":
        assert figures["max_rate_zero_loss_pulses_per_s"] == 300, figures
    if script == "http_ingest.py":
        assert figures["accepted_requests"] > 0, figures
        assert figures["non_2xx"] == 0, figures
        assert figures["points_lost"] == 0, figures
    if "--no-accel" in args:
        assert figures["accel"] == "stdlib json", figures
    if "identical_points" in figures:
        assert figures["identical_points"] == 2000, "both pipelines must produce the same points"
    if "points_stored" in figures:
        assert figures["points_stored"] == 5000


def _edge_footprint(
    telegraf_bin: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """An 8 s edge_footprint run on the cached Telegraf build: the process and its figures."""
    env = {**os.environ, "TELEGRAF_BRIDGE_CACHE": str(telegraf_bin.parents[2])}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "edge_footprint.py"),
            *("--seconds", "8", "--no-build-armv6", *extra),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=REPO,
        env=env,
    )
    return result, json.loads(result.stdout.strip().splitlines()[-1])


def test_edge_footprint_measures_every_plugin_and_reports_json_last(telegraf_bin: Path) -> None:
    # Memory targets are the machine's verdict, not the code's: exit 1 on a missed target is
    # the benchmark's contract, so the status is checked against the figures it printed.
    result, figures = _edge_footprint(telegraf_bin)
    assert {
        "telegraf_binary_bytes_amd64",
        "telegraf_binary_bytes_armv6",
        "bundle_pss_peak_mib",
        "telegraf",
        "plugins",
        "points",
        "targets_met",
    } <= set(figures), figures
    assert figures["all_plugins_wrote"], figures["points"]
    assert figures["telegraf_errors"] == 0, result.stdout[-3000:]
    assert all(n > 0 for n in figures["points"].values()), figures["points"]
    assert {"demo", "gpio_pulse", "ndjson_tail", "hoymiles", "taptap", "iotflow"} <= set(
        figures["plugins"]
    ), "every plugin process is found under Telegraf and measured"
    assert figures["plugins"]["taptap/taptap"]["pss_peak_mib"] > 0, "taptap's decoder too"
    for name in ("telegraf", *figures["plugins"]):
        process = figures["telegraf"] if name == "telegraf" else figures["plugins"][name]
        assert 0 < process["pss_peak_mib"] <= process["rss_peak_mib"], (name, process)
        assert process["restarts"] == 0, (name, process)
    assert figures["binaries"]["amd64"]["stripped"] and not figures["binaries"]["amd64"]["dwarf"]
    assert figures["target_results"]["telegraf_binary_le_30mb"], figures["binaries"]
    assert result.returncode == (0 if figures["targets_met"] else 1), result.stdout[-3000:]


def test_edge_footprint_host_runs_every_source_in_one_process(telegraf_bin: Path) -> None:
    result, figures = _edge_footprint(telegraf_bin, "--host")
    assert figures["host"] is True
    assert figures["all_plugins_wrote"], figures["points"]
    assert all(n > 0 for n in figures["points"].values()), figures["points"]
    assert figures["telegraf_errors"] == 0, result.stdout[-3000:]
    assert set(figures["plugins"]) == {"host", "host/taptap"}, "one Python process"
    assert figures["plugins"]["host"]["restarts"] == 0
    assert result.returncode == (0 if figures["targets_met"] else 1), result.stdout[-3000:]


def test_http_ingest_journal_sync_counts_the_fsyncs_behind_the_durable_acks(
    telegraf_bin: Path,
) -> None:
    # One connection: every 2xx waits for its own fsync, so there is about one per request.
    env = {**os.environ, "TELEGRAF_BRIDGE_CACHE": str(telegraf_bin.parents[2])}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "http_ingest.py"),
            *("--seconds", "30", "--requests", "100", "--concurrency", "1", "--journal-sync"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["accepted_requests"] == 100, figures
    assert figures["points_lost"] == 0, figures
    syncs = figures["journal_sync"]
    assert 100 <= syncs["fsyncs"] <= 2 * 100, syncs  # the file's, and the directory's at start
    assert 0.5 <= syncs["requests_per_fsync"] <= 1.0, syncs
    assert syncs["fsync_ms_mean"] > 0, syncs


def test_journal_sd_card_measures_every_plugin_and_reports_json_last() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "journal_sd_card.py"),
            *("--minutes", "0.1", "--warmup", "5"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    rows = figures["plugins"]
    assert set(rows) == {"ndjson_tail", "gpio_pulse", "taptap", "hoymiles", "iotflow"}
    assert all(row["exit_status"] == 0 for row in rows.values()), rows
    # hoymiles polls once a minute: its first poll falls in the warm-up, not the window.
    for name in ("ndjson_tail", "gpio_pulse", "taptap", "iotflow"):
        assert rows[name]["points_per_h"] > 0, (name, rows[name])
    assert rows["ndjson_tail"]["journal_status"] is None, "ndjson_tail keeps no journal"
    assert rows["ndjson_tail"]["journal_bytes_per_h"] == 0
    for name in ("gpio_pulse", "taptap", "iotflow"):
        row = rows[name]
        assert row["journal_bytes_per_h"] > 0 and row["journal_fsyncs_per_h"] > 0, (name, row)
        assert row["journal_status"] is not None and row["journal_status"]["dropped"] == 0
    assert figures["device_failures"] == {}, figures
