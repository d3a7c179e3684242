"""Atomic state files: durable writes, rate limiting, and a safe fallback when corrupt."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from telegraf_bridge.plugins.common import StateFile


def test_round_trip_and_no_temp_files_left(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "sub" / "x.json")
    state.save({"offset": 12, "files": {"a": 1}})
    assert StateFile(tmp_path / "sub" / "x.json").load() == {"offset": 12, "files": {"a": 1}}
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.json"]


def test_missing_file_is_no_state(tmp_path: Path) -> None:
    assert StateFile(tmp_path / "none.json").load() is None


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"[1,2]",
        b'{"format": 99, "data": {}}',
        b'{"format": 1, "data": 3}',
        b"\xff\xfe",
    ],
)
def test_corrupt_file_gives_clear_error_and_safe_fallback(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(content)
    with caplog.at_level(logging.ERROR):
        assert StateFile(path).load() is None
    assert "is corrupt" in caplog.text and str(path) in caplog.text
    assert not path.exists(), "the corrupt file is moved aside, not overwritten"
    assert next(p.name for p in tmp_path.iterdir()).startswith("s.json.corrupt-")


def test_save_if_due_is_rate_limited_and_skips_unchanged(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "s.json", min_interval_s=3600)
    assert state.save_if_due({"n": 1}) is True
    assert state.save_if_due({"n": 2}) is False  # too soon
    assert json.loads((tmp_path / "s.json").read_text())["data"] == {"n": 1}
    state.save({"n": 2})  # explicit saves always write (shutdown, before acknowledging)
    assert state.save_if_due({"n": 2}) is False  # unchanged
    assert json.loads((tmp_path / "s.json").read_text())["data"] == {"n": 2}


def test_failed_write_leaves_old_state_intact(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    state = StateFile(path)
    state.save({"n": 1})
    with pytest.raises(TypeError):
        state.save({"n": object()})  # not serialisable: fails before touching the file
    assert StateFile(path).load() == {"n": 1}
