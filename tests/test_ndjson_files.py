"""ndjson_tail file tracking: partial lines, rotation, copy-truncate, truncation, re-creation."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest
from telegraf_bridge.plugins.ndjson_tail.files import FileSet
from telegraf_bridge.plugins.ndjson_tail.plugin import NdjsonTail

from telegraf_bridge.testing import plugin_ctx


def lines_of(files: FileSet, now: float | None = None) -> list[str]:
    files.scan()
    out = []
    for key, _ in files.ordered():
        out += [ln.data.decode() for ln in files.read(key, 10_000, now or time.time())]
    return out


def rec(n: int) -> str:
    return f'{{"n": {n}, "pad": "{"x" * 300}"}}\n'


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    f = tmp_path / "a.ndjson"
    f.write_text(rec(1) + '{"n": 2')
    files = FileSet([str(tmp_path / "*.ndjson")], None)
    assert [len(x) for x in lines_of(files)] == [len(rec(1)) - 1]
    with f.open("a") as h:
        h.write("}\n")
    assert lines_of(files) == ['{"n": 2}']


def test_partial_last_line_of_a_complete_file_is_read(tmp_path: Path) -> None:
    old = tmp_path / "a.ndjson"
    old.write_text(rec(1) + '{"n": 2}')
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    (tmp_path / "b.ndjson").write_text(rec(3))
    files = FileSet([str(tmp_path / "*.ndjson")], None, complete_after_s=60)
    got = lines_of(files)
    assert got[1] == '{"n": 2}' and len(got) == 3
    key = next(k for k, p in files.positions.items() if p.path == str(old))
    assert files.positions[key].done


def test_rename_rotation_keeps_position_and_new_file_starts_at_zero(tmp_path: Path) -> None:
    f = tmp_path / "data.ndjson"
    f.write_text(rec(1) + rec(2))
    files = FileSet([str(tmp_path / "data.ndjson*")], None)
    assert len(lines_of(files)) == 2
    with f.open("a") as h:
        h.write(rec(3))
    f.rename(tmp_path / "data.ndjson.1")
    f.write_text(rec(4))
    got = lines_of(files)
    assert [g[:8] for g in got] == ['{"n": 3,', '{"n": 4,']


def test_copy_truncate_reads_the_copy_remainder_then_the_truncated_file(tmp_path: Path) -> None:
    f = tmp_path / "data.ndjson"
    f.write_text(rec(1) + rec(2))
    files = FileSet([str(tmp_path / "data.ndjson*")], None)
    assert len(lines_of(files)) == 2
    with f.open("a") as h:
        h.write(rec(3))
    shutil.copy(f, tmp_path / "data.ndjson.1")
    with f.open("w") as h:
        h.write(rec(4))
    got = sorted(g[:8] for g in lines_of(files))
    assert got == ['{"n": 3,', '{"n": 4,']


def test_truncation_restarts_from_the_beginning(tmp_path: Path) -> None:
    f = tmp_path / "a.ndjson"
    f.write_text(rec(1) + rec(2))
    skipped: list[str] = []
    files = FileSet([str(tmp_path / "*.ndjson")], None, skip=lambda r, w: skipped.append(r))
    lines_of(files)
    f.write_text(rec(9))
    assert [g[:8] for g in lines_of(files)] == ['{"n": 9,']
    assert skipped == ["file_truncated"]


def test_state_round_trip_and_recreated_file_is_recognised(tmp_path: Path) -> None:
    f = tmp_path / "a.ndjson"
    f.write_text(rec(1) + rec(2))
    files = FileSet([str(tmp_path / "*.ndjson")], None)
    lines_of(files)
    saved = files.state()
    with f.open("a") as h:
        h.write(rec(3))
    resumed = FileSet([str(tmp_path / "*.ndjson")], saved)
    assert [g[:8] for g in lines_of(resumed)] == ['{"n": 3,']
    f.unlink()
    f.write_text(rec(7) + rec(8) + rec(9))  # same name, maybe the same inode: different content
    again = FileSet([str(tmp_path / "*.ndjson")], resumed.state())
    assert [g[:8] for g in lines_of(again)] == ['{"n": 7,', '{"n": 8,', '{"n": 9,']


def test_initial_read_offset_modes(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_text(rec(1) + rec(2))
    glob = [str(tmp_path / "*.ndjson")]
    assert len(lines_of(FileSet(glob, None, initial_read_offset="beginning"))) == 2
    at_end = FileSet(glob, None, initial_read_offset="saved-or-end")
    assert lines_of(at_end) == []
    saved = at_end.state()
    with (tmp_path / "a.ndjson").open("a") as h:
        h.write(rec(3))
    assert len(lines_of(FileSet(glob, saved, initial_read_offset="saved-or-end"))) == 1
    assert len(lines_of(FileSet(glob, saved, initial_read_offset="beginning"))) == 3
    assert lines_of(FileSet(glob, saved, initial_read_offset="end")) == []


def test_files_are_read_oldest_first(tmp_path: Path) -> None:
    for day, ts in (("2026-03-02", 200), ("2026-03-01", 100)):
        path = tmp_path / f"data_{day}.ndjson"
        path.write_text(rec(ts))
        os.utime(path, (ts, ts))
    assert [g[:10] for g in lines_of(FileSet([str(tmp_path / "*.ndjson")], None))] == [
        '{"n": 100,',
        '{"n": 200,',
    ]


def test_overlong_last_line_of_a_complete_file_is_reported(tmp_path: Path) -> None:
    old = tmp_path / "a.ndjson"
    old.write_text(rec(1) + '{"blob": "' + "z" * 5000)  # no final newline, too long
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    (tmp_path / "b.ndjson").write_text(rec(2))
    files = FileSet([str(tmp_path / "*.ndjson")], None, max_line_bytes=1024, complete_after_s=60)
    files.scan()
    key = next(k for k, p in files.positions.items() if p.path == str(old))
    got = list(files.read(key, 100, time.time()))
    assert [ln.too_long for ln in got] == [False, True]
    assert files.positions[key].offset == old.stat().st_size and files.positions[key].done


def test_watchdogs_own_stop_race_is_not_logged_as_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """watchdog logs its stop() meeting a pending read at ERROR; Telegraf would show E!."""
    options = {"files": [str(tmp_path / "*.ndjson")], "watch": "inotify"}
    source = NdjsonTail(plugin_ctx("ndjson_tail", options, tmp_path / "state"))
    watchdog_log = logging.getLogger("watchdog.observers.inotify")
    with caplog.at_level(logging.ERROR):
        watchdog_log.error("InotifyEmitter.queue_events() called when the thread is inactive")
        watchdog_log.error("a real watchdog problem")
    source.close()
    assert [r.getMessage() for r in caplog.records] == ["a real watchdog problem"]
