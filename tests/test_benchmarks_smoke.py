"""The benchmarks run end to end (tiny sizes) and end with one JSON object, so their full
runs in docs/benchmarks.md stay reproducible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    if "identical_points" in figures:
        assert figures["identical_points"] == 2000, "both pipelines must produce the same points"
    if "points_stored" in figures:
        assert figures["points_stored"] == 5000
