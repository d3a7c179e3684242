"""Telegraf's disk buffer under the carried patches (telegraf/patches/0002-0005), real Telegraf
into the real influxd 1.x:

* a WAL written by Telegraf before the compact record format (gob records; the testdata is
  made by tests/testdata/disk_buffer_gob/make_wal.py) drains after the upgrade, every point
  with its values;
* a WAL in the compact format survives a Telegraf SIGKILL mid-drain with no point lost;
* new records are compact (not gob) and the WAL's segment files stay small (each drained batch
  rewrites the rest of the first segment);
* a backlog is written as Telegraf starts, not a flush interval later.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from _disk_buffer import (
    COMPACT_RECORD,
    GOB_WAL,
    buffered,
    config,
    expected_rows,
    idle_input,
    output_wal,
    points,
    stored_rows,
    wal_records,
    write_points_file,
)
from rig import InfluxD1, TelegrafProcess, wait_for

pytestmark = [pytest.mark.telegraf, pytest.mark.influxd]

SEGMENT_LIMIT = 1 << 20  # telegraf/patches/0003


def _count(influxd: InfluxD1, measurement: str, db: str) -> int:
    return influxd.count(measurement, "power_w", db=db)


def _gob_backlog(
    influxd: InfluxD1, telegraf_bin: Path, tmp_path: Path, *, flush_interval: str = "1s"
) -> tuple[Path, Path, str]:
    """A Telegraf config whose output's WAL holds the committed gob records: (config, WAL, db).

    The WAL directory is named by the output's ID (a hash of its options, the URL's port
    included): a first start creates it, then it gets the old segments.
    """
    db = f"gobwal_{uuid.uuid4().hex[:8]}"
    buffer = tmp_path / "buffer"
    conf = tmp_path / "telegraf.conf"
    conf.write_text(
        config(buffer, influxd.url, db, idle_input(), batch=50, flush_interval=flush_interval)
    )
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "first"):
        wait_for(lambda: buffer.exists() and any(buffer.iterdir()), what="the output's WAL")
    wal = output_wal(buffer)
    assert wal_records(wal) == []
    shutil.rmtree(wal)
    shutil.copytree(GOB_WAL / "wal", wal)
    return conf, wal, db


def test_wal_written_before_the_compact_format_drains_exactly(
    influxd: InfluxD1, telegraf_bin: Path, tmp_path: Path
) -> None:
    doc = json.loads((GOB_WAL / "points.json").read_text(encoding="utf-8"))
    old = wal_records(GOB_WAL / "wal")
    assert len(old) == len(doc["points"]) == 200
    assert all(r[0] < 0x80 for r in old), "the testdata holds gob records"

    conf, wal, db = _gob_backlog(influxd, telegraf_bin, tmp_path)
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "drain") as telegraf:
        wait_for(
            lambda: _count(influxd, "gobwal", db) >= 200, timeout=60, what="200 points in influxd"
        )
        wait_for(lambda: wal_records(wal) == [], what="the WAL drained")
        log = telegraf.log()
    assert stored_rows(influxd, "gobwal", db) == expected_rows(doc)
    assert "E! " not in log and "panic" not in log, log[-3000:]


def test_a_backlog_is_written_at_start_not_a_flush_interval_later(
    influxd: InfluxD1, telegraf_bin: Path, tmp_path: Path
) -> None:
    """telegraf/patches/0005: after a restart the buffer drains at once (the bundle's
    flush_interval is 10 s; a minute here, so that waiting for it cannot pass)."""
    conf, _, db = _gob_backlog(influxd, telegraf_bin, tmp_path, flush_interval="1m")
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "drain"):
        wait_for(
            lambda: _count(influxd, "gobwal", db) >= 200,
            timeout=20,
            what="the backlog in influxd before the first flush interval",
        )


def test_compact_wal_survives_a_sigkill_mid_drain(telegraf_bin: Path, tmp_path: Path) -> None:
    count = 50_000
    doc = points(count, "compact")
    influxd = InfluxD1(tmp_path / "influxd")  # not started: the backlog builds up
    buffer = tmp_path / "buffer"
    inputs = write_points_file(tmp_path / "points.json", doc)
    fill = tmp_path / "fill.conf"
    fill.write_text(config(buffer, influxd.url, "compact", inputs, batch=100))
    with TelegrafProcess(telegraf_bin, fill, tmp_path / "fill"):
        wait_for(lambda: buffered(buffer) == count, timeout=120, what=f"{count} records in the WAL")
    wal = output_wal(buffer)
    records = wal_records(wal)
    assert len(records) == count
    assert all(r[0] == COMPACT_RECORD for r in records), (
        "every new record is compact (0x81), none a gob stream"
    )
    assert sum(map(len, records)) / count < 150, "a record is a third of a gob record's size"
    segments = [p.stat().st_size for p in wal.iterdir()]
    assert len(segments) > 3
    assert max(segments) <= SEGMENT_LIMIT + 1024

    # The drain runs the same config without the emitter (same output, same WAL).
    drain = tmp_path / "drain.conf"
    drain.write_text(config(buffer, influxd.url, "compact", idle_input(), batch=100))
    with influxd:
        with TelegrafProcess(telegraf_bin, drain, tmp_path / "drain-1") as killed:
            wait_for(
                lambda: _count(influxd, "compact", "compact") >= count // 5,
                timeout=60,
                interval=0.02,
                what="a fifth of the points in influxd",
            )
            killed.kill()
        stored_at_kill = _count(influxd, "compact", "compact")
        assert stored_at_kill < count, "Telegraf was killed mid-drain"

        with TelegrafProcess(telegraf_bin, drain, tmp_path / "drain-2") as telegraf:
            wait_for(
                lambda: _count(influxd, "compact", "compact") >= count,
                timeout=120,
                what=f"{count} points in influxd",
            )
            log = telegraf.log()
        assert stored_rows(influxd, "compact", "compact") == expected_rows(doc)
    assert "panic" not in log, log[-3000:]
