"""The no-loss proof for ndjson_tail: real Telegraf 1.39.3, real InfluxDB 1.x, injected faults.

Every valid line must end up in InfluxDB exactly (count and content); replays may only produce
byte-identical points, which InfluxDB keeps once. `make test` runs the short versions,
`make soak` (BRIDGE_SOAK=1) the long ones.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from pathlib import Path

import pytest
from _ndjson_rig import Rig
from rig import InfluxD1, wait_for

pytestmark = [pytest.mark.telegraf, pytest.mark.influxd, pytest.mark.slow]
SOAK = bool(os.environ.get("BRIDGE_SOAK"))


def _db() -> str:
    return f"nd_{uuid.uuid4().hex[:8]}"


def assert_exact(rig: Rig, influxd: InfluxD1) -> None:
    stored = rig.stored(influxd)
    missing = set(rig.expected) - set(stored)
    extra = set(stored) - set(rig.expected)
    assert not missing, f"{len(missing)} points lost, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected points, e.g. {sorted(extra)[:3]}"
    wrong = [k for k in rig.expected if stored[k] != rig.expected[k]]
    assert not wrong, (
        f"{len(wrong)} points differ, e.g. {wrong[0]}: {stored[wrong[0]]} != {rig.expected[wrong[0]]}"
    )


def test_seven_days_written_while_influxdb_is_down_all_arrive(
    telegraf_bin: Path, tmp_path: Path
) -> None:
    influxd = InfluxD1(tmp_path / "influxd")  # not started: InfluxDB is down
    rig = Rig(tmp_path, telegraf_bin, influxd.url, _db())
    days = 7
    with rig.telegraf() as telegraf:
        rig.write_days(days)
        total = len(rig.expected)
        wait_for(
            lambda: rig.committed_lines() >= total,
            timeout=300,
            what=f"{total} lines read and committed",
        )
        assert rig.buffer_bytes() > 0, "the points wait in Telegraf's disk buffer"
        with influxd:
            wait_for(
                lambda: rig.count(influxd) >= total, timeout=300, what=f"{total} points in influxd"
            )
            assert_exact(rig, influxd)
        assert telegraf.running()


def test_telegraf_sigkilled_at_random_moments_loses_nothing(
    telegraf_bin: Path, tmp_path: Path, influxd: InfluxD1
) -> None:
    rig = Rig(tmp_path, telegraf_bin, influxd.url, _db())
    rng = random.Random(20261123)
    kills = 100 if SOAK else 10
    path = rig.data / "data_2026-03-01.ndjson"
    written = 0
    for round_no in range(kills):
        telegraf = rig.telegraf(f"tg{round_no}").start()
        # A burst, then a kill soon after: lines are in the pipe and in Telegraf's channels.
        burst = rng.randint(300, 2000)
        rig.write(path, written, burst)
        written += burst
        time.sleep(rng.uniform(0.3, 1.2))
        if round_no % 2:
            telegraf.kill()  # SIGKILL Telegraf and its plugin together (a power cut, minus the disk)
        else:
            assert telegraf.proc is not None
            telegraf.proc.kill()  # SIGKILL Telegraf only; the plugin sees stdin close
            telegraf.proc.wait()
            wait_for(lambda: not rig.plugin_pids(), timeout=20, what="the orphaned plugin to exit")
    with rig.telegraf("final"):
        rig.wait_all_stored(influxd)
    assert_exact(rig, influxd)


def test_graceful_restart_while_influxdb_is_down(telegraf_bin: Path, tmp_path: Path) -> None:
    influxd = InfluxD1(tmp_path / "influxd")
    rig = Rig(tmp_path, telegraf_bin, influxd.url, _db())
    rig.write_days(1)
    with rig.telegraf("tg1"):
        wait_for(
            lambda: rig.committed_lines() >= len(rig.expected), timeout=120, what="day 1 committed"
        )
    rig.write_days(1, first_day=1)
    with rig.telegraf("tg2"):
        wait_for(
            lambda: rig.committed_lines() >= len(rig.expected), timeout=120, what="day 2 committed"
        )
        with influxd:
            wait_for(
                lambda: rig.count(influxd) >= len(rig.expected),
                timeout=120,
                what="both days in influxd",
            )
            assert_exact(rig, influxd)


def test_plugin_sigkilled_is_restarted_and_loses_nothing(
    telegraf_bin: Path, tmp_path: Path, influxd: InfluxD1
) -> None:
    rig = Rig(tmp_path, telegraf_bin, influxd.url, _db())
    path = rig.data / "data_2026-03-01.ndjson"
    kills = 30 if SOAK else 4
    with rig.telegraf():
        for n in range(kills):
            rig.write(path, n * 100, 100)
            wait_for(lambda: bool(rig.plugin_pids()), timeout=30, what="the plugin running")
            time.sleep(0.3)
            rig.kill_plugin()
        rig.write(path, kills * 100, 100)
        rig.wait_all_stored(influxd)
    assert_exact(rig, influxd)


def test_rotation_and_truncation_mid_stream(
    telegraf_bin: Path, tmp_path: Path, influxd: InfluxD1
) -> None:
    rig = Rig(tmp_path, telegraf_bin, influxd.url, _db())
    live = rig.data / "data_live.ndjson"
    with rig.telegraf():
        rig.write(live, 0, 200)
        time.sleep(1.0)
        rig.write(live, 200, 50)
        live.rename(rig.data / "data_live.ndjson.1")  # rename rotation
        rig.write(live, 250, 200, mode="w")
        time.sleep(1.0)
        rig.write(live, 450, 50)
        copy = rig.data / "data_live.ndjson.2"
        copy.write_bytes(live.read_bytes())  # copytruncate: copy, then truncate in place
        live.write_text("")
        rig.write(live, 500, 100)
        rig.wait_all_stored(influxd)
    assert_exact(rig, influxd)


def test_buffer_cap_holds_data_at_the_source_and_catches_up(
    telegraf_bin: Path, tmp_path: Path
) -> None:
    influxd = InfluxD1(tmp_path / "influxd")
    rig = Rig(tmp_path, telegraf_bin, influxd.url, _db(), cap_mb=1, batch_lines=200)
    with rig.telegraf() as telegraf:
        rig.write_days(2)
        telegraf.wait_for_log("at its cap of 1 MiB", timeout=120)
        time.sleep(3)
        held = rig.buffer_bytes()
        assert held < 2 * 2**20, f"buffer grew to {held} bytes past its 1 MiB cap"
        assert rig.committed_lines() < len(rig.expected), "the rest waits in the source files"
        with influxd:
            wait_for(
                lambda: rig.count(influxd) >= len(rig.expected),
                timeout=300,
                what="all points after the cap",
            )
            telegraf.wait_for_log("below its cap again", timeout=60)
            assert_exact(rig, influxd)
