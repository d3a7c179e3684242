"""ndjson_tail test cases as folders (plugins/ndjson_tail/testdata/<case>/): input.ndjson,
plugin.toml, expected.out (line protocol) and expected_skips.json. Adding a case is adding a
folder; UPDATE_GOLDEN=1 writes the expected files for review."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _support import REPO

CASES = REPO / "plugins" / "ndjson_tail" / "testdata"


def run_plugin(
    data_dir: Path, state_dir: Path, extra: str = "", *args: str, accel: bool = True
) -> subprocess.CompletedProcess[str]:
    conf = data_dir.parent / "plugin.toml"
    conf.write_text(
        f'files = ["{data_dir}/*.ndjson"]\nstate_dir = "{state_dir}"\n'
        'require_clock_sync = false\ntime_floor = "2020-01-01T00:00:00Z"\ncommit_delay = "0s"\n'
        + extra
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "telegraf_bridge.plugins.ndjson_tail",
            "--config",
            str(conf),
            "--once",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **({} if accel else {"TELEGRAF_BRIDGE_NO_ACCEL": "1"})},
    )


def skip_counts(stderr: str) -> dict[str, int]:
    match = re.search(r"skip/sanitise counts at exit: (\{.*\})", stderr)
    return json.loads(match.group(1).replace("'", '"')) if match else {}


@pytest.mark.parametrize("accel", [True, False], ids=["orjson", "stdlib"])
@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_case(case: str, accel: bool, tmp_path: Path) -> None:
    folder = CASES / case
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(folder / "input.ndjson", data / "data_2026-03-01.ndjson")
    result = run_plugin(data, tmp_path / "state", (folder / "plugin.toml").read_text(), accel=accel)
    assert result.returncode == 0, result.stderr
    skips = skip_counts(result.stderr)
    if os.environ.get("UPDATE_GOLDEN"):
        (folder / "expected.out").write_text(result.stdout)
        (folder / "expected_skips.json").write_text(
            json.dumps(skips, indent=1, sort_keys=True) + "\n"
        )
    assert result.stdout == (folder / "expected.out").read_text()
    assert skips == json.loads((folder / "expected_skips.json").read_text())
    for line in result.stderr.splitlines():
        assert line[:3] in ("W! ", "I! ", "E! ", "D! "), f"unprefixed stderr line: {line!r}"
        assert len(line) <= 1000


def test_every_skip_names_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(CASES / "bad_input" / "input.ndjson", data / "data_2026-03-01.ndjson")
    result = run_plugin(data, tmp_path / "state")
    for reason, line_no in [
        ("invalid_json", 2),
        ("invalid_utf8", 3),
        ("empty_line", 4),
        ("not_an_object", 5),
        ("duplicate_json_key", 11),
        ("missing_timestamp", 15),
    ]:
        assert re.search(
            rf"{reason} \(occurrence \d+\): \S+data_2026-03-01.ndjson:{line_no}\b", result.stderr
        ), reason


def test_a_10_mb_line_is_skipped_without_losing_the_next(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    good = '{"timestamp":"2026-03-01T00:00:00Z","device_name":"d","parsed_data":{"v":1.0}}\n'
    with (data / "big.ndjson").open("w") as handle:
        handle.write(
            '{"timestamp":"2026-03-01T00:00:00Z","parsed_data":{"blob":"'
            + "x" * (10 * 2**20)
            + '"}}\n'
        )
        handle.write(good)
    result = run_plugin(data, tmp_path / "state")
    assert result.returncode == 0
    assert result.stdout.startswith("smartsolar,device_name=d v=1.0 ")
    assert skip_counts(result.stderr) == {"line_too_long": 1}
    assert "big.ndjson:1" in result.stderr
