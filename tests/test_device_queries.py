"""bridge-cli query latest|range and delete-data on the real influxd 1.x and 2.x, and the v3 fake.

Values, tags, types and time order of the answers, the --measurement filter, --limit, the
--json shape and relative times; delete-data removes exactly the device's points in the
window (other devices and points outside it survive) after a confirmation that can be refused,
is refused without a terminal, and is refused outright on InfluxDB 3. Device IDs full of
quotes and backslashes neither break nor widen any query or delete.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _device_rig import DEVICE, NASTY, OTHER, run_delete, run_query, seed
from _sink_rig import Backend, backend, kinds, make_backend
from click.testing import CliRunner, Result
from rig import FakeInfluxV3
from telegraf_bridge.cli.commands import delete_data, query
from telegraf_bridge.cli.influx.annotated_csv import typed_annotated_csv
from telegraf_bridge.cli.influx.devices.times import Window, parse_time_arg, validate_name
from telegraf_bridge.cli.influx.flux import flux_string
from telegraf_bridge.cli.influx.influxql import influxql_ident, influxql_string
from telegraf_bridge.cli.influx.sql import sql_string
from telegraf_bridge.plugins.common import format_rfc3339_ns

__all__ = ["backend"]

pytestmark = pytest.mark.influxd

T = format_rfc3339_ns


def _doc(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _times(backend: Backend, tmp_path: Path, *args: str) -> list[str]:
    doc = _doc(run_query(backend, tmp_path, "range", "--json", *args))
    return [p["time"] for p in doc["points"]]


# -- query latest ----------------------------------------------------------------------------------


def test_latest_is_the_newest_value_of_every_field(backend: Backend, tmp_path: Path) -> None:
    s = seed(backend)
    doc = _doc(run_query(backend, tmp_path, "latest", "--device", DEVICE, "--json"))
    assert doc["device_id"] == DEVICE and doc["sink_type"] == f"influxdb_{backend.kind}"
    values = {(v["measurement"], v["field"]): (v["value"], v["time"]) for v in doc["values"]}
    assert values == {
        ("environmental", "temperature"): (25.5, T(s.env_10)),
        ("environmental", "humidity"): (57.0, T(s.env_10)),
        ("environmental", "rssi"): (-66, T(s.env_10)),
        # absent from the newest point: the value and time of the point before
        ("environmental", "battery_level"): (84.0, T(s.env_30)),
        ("status", "firmware"): ("1.2.3", T(s.status_20)),
        ("status", "online"): (True, T(s.status_20)),
    }
    assert doc["count"] == 6
    # Typed as written, whatever the sink: floats stay floats (v1's JSON writes 57.0 as 57),
    # the integer field an int, the boolean a bool.
    typed = {(v["measurement"], v["field"]): v["value"] for v in doc["values"]}
    assert isinstance(typed[("environmental", "humidity")], float)
    assert type(typed[("environmental", "rssi")]) is int
    assert typed[("status", "online")] is True


def test_latest_measurement_filter_and_table(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    doc = _doc(
        run_query(
            backend, tmp_path, "latest", "--device", DEVICE, "--measurement", "status", "--json"
        )
    )
    assert {v["field"] for v in doc["values"]} == {"firmware", "online"}
    assert doc["measurement"] == "status"
    result = run_query(backend, tmp_path, "latest", "--device", DEVICE)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["MEASUREMENT", "FIELD", "VALUE", "TIME", "AGE"]
    row = next(line.split() for line in lines if " temperature " in line)
    assert row[:3] == ["environmental", "temperature", "25.5"] and row[4] == "10m"
    assert any(line.split()[:3] == ["status", "online", "true"] for line in lines)


def test_latest_start_bounds_the_lookback(backend: Backend, tmp_path: Path) -> None:
    s = seed(backend)
    doc = _doc(
        run_query(backend, tmp_path, "latest", "--device", DEVICE, "--start", "-15m", "--json")
    )
    # Only the point 10 minutes ago is in the window: no battery_level, no status.
    assert {(v["field"], v["time"]) for v in doc["values"]} == {
        ("temperature", T(s.env_10)),
        ("humidity", T(s.env_10)),
        ("rssi", T(s.env_10)),
    }


def test_latest_unknown_device_is_count_zero(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    doc = _doc(run_query(backend, tmp_path, "latest", "--device", "esp32_999", "--json"))
    assert doc["count"] == 0 and doc["values"] == []
    result = run_query(backend, tmp_path, "latest", "--device", "esp32_999")
    assert result.exit_code == 0
    assert "No data for device 'esp32_999'" in result.output


# -- query range -----------------------------------------------------------------------------------


def test_range_points_in_time_order_with_tags_and_fields(backend: Backend, tmp_path: Path) -> None:
    s = seed(backend)
    doc = _doc(
        run_query(backend, tmp_path, "range", "--device", DEVICE, "--start", "-1h", "--json")
    )
    assert doc["count"] == 4 and doc["truncated"] is False and doc["limit"] == 1000
    assert set(doc) >= {"device_id", "sink", "sink_type", "start", "stop", "points"}
    tags = {
        "device_id": DEVICE,
        "device_name": "Office Sensor",
        "device_type": "sensor",
        "location": "office",
    }
    assert doc["points"] == [
        {
            "time": T(s.env_50),
            "measurement": "environmental",
            "tags": tags,
            "fields": {"battery_level": 85.0, "humidity": 60.0, "rssi": -70, "temperature": 24.5},
        },
        {
            "time": T(s.env_30),
            "measurement": "environmental",
            "tags": tags,
            "fields": {"battery_level": 84.0, "humidity": 58.0, "rssi": -67, "temperature": 25.0},
        },
        {
            "time": T(s.status_20),
            "measurement": "status",
            "tags": tags,
            "fields": {"firmware": "1.2.3", "online": True},
        },
        {
            "time": T(s.env_10),
            "measurement": "environmental",
            "tags": tags,
            "fields": {"humidity": 57.0, "rssi": -66, "temperature": 25.5},
        },
    ]


def test_range_filters_limit_and_relative_times(backend: Backend, tmp_path: Path) -> None:
    s = seed(backend)
    args = ("--device", DEVICE)
    assert _times(backend, tmp_path, *args, "--start", "-15m") == [T(s.env_10)]
    assert _times(backend, tmp_path, *args, "--start", "-3h", "--stop", "-25m") == [
        T(s.old_120),
        T(s.env_50),
        T(s.env_30),
    ]
    assert _times(backend, tmp_path, *args, "--measurement", "status") == [T(s.status_20)]
    # RFC 3339 bounds: start included, stop excluded.
    assert _times(backend, tmp_path, *args, "--start", T(s.env_30), "--stop", T(s.env_10)) == [
        T(s.env_30),
        T(s.status_20),
    ]
    limited = run_query(backend, tmp_path, "range", *args, "--limit", "2", "--json")
    doc = _doc(limited)
    assert [p["time"] for p in doc["points"]] == [T(s.env_50), T(s.env_30)]
    assert doc["truncated"] is True and doc["count"] == 2
    assert "Showing the first 2 points" in limited.stderr


def test_range_table_output(backend: Backend, tmp_path: Path) -> None:
    s = seed(backend)
    result = run_query(backend, tmp_path, "range", "--device", DEVICE, "--limit", "3")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(f"3 points of device '{DEVICE}' in ")
    title = "environmental (device_name=Office Sensor, device_type=sensor, location=office): "
    assert title + "2 points" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("time"))
    assert header.split() == ["time", "battery_level", "humidity", "rssi", "temperature"]
    row = next(line.split() for line in out.splitlines() if T(s.env_50) in line)
    assert row == [T(s.env_50), "85", "60", "-70", "24.5"]
    assert "status (device_name=Office Sensor" in out and "1.2.3" in out
    assert "Showing the first 3 points; the window holds more" in out


def test_range_unknown_device_is_count_zero(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    doc = _doc(run_query(backend, tmp_path, "range", "--device", "esp32_999", "--json"))
    assert doc["count"] == 0 and doc["points"] == [] and doc["truncated"] is False
    result = run_query(backend, tmp_path, "range", "--device", "esp32_999")
    assert result.exit_code == 0
    assert "No points for device 'esp32_999'" in result.output


def test_v3_database_never_written_is_no_data(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_backend("v3", request)
    monkeypatch.setenv("TEST_V3_TOKEN", made.env["TEST_V3_TOKEN"])
    doc = _doc(run_query(made, tmp_path, "range", "--device", DEVICE, "--json"))
    assert doc["count"] == 0 and "database not found" in doc["note"]


# -- injection -------------------------------------------------------------------------------------


def test_quotes_and_backslashes_in_device_ids(backend: Backend, tmp_path: Path) -> None:
    s = seed(backend)
    doc = _doc(run_query(backend, tmp_path, "range", "--device", NASTY, "--json"))
    assert [(p["time"], p["tags"]["device_id"]) for p in doc["points"]] == [(T(s.nasty_15), NASTY)]
    latest = _doc(run_query(backend, tmp_path, "latest", "--device", NASTY, "--json"))
    assert [(v["field"], v["value"]) for v in latest["values"]] == [("temperature", 1.0)]
    # Attempts to widen the filter match nothing (and break nothing) in every language.
    for attempt in (
        "x' OR 'a'='a",
        f"{DEVICE}' OR time > 0 --",
        f'{DEVICE}" or r._measurement != "',
        f"{DEVICE}\\",
        f'{DEVICE}") or true or ("',
        "${x}",
        f"{DEVICE}'; DROP TABLE environmental; --",
    ):
        for command in ("range", "latest"):
            result = run_query(backend, tmp_path, command, "--device", attempt, "--json")
            assert _doc(result)["count"] == 0, (attempt, command)


@pytest.mark.parametrize("bad", ["", "   ", "esp32\n001", "esp32\x00", "a\rb", "\x1b[2J"])
def test_device_must_be_printable(tmp_path: Path, bad: str) -> None:
    """Refused while parsing the options, before any sink is contacted."""
    config = ["--config", str(tmp_path / "never-read.yaml")]
    for command in ("range", "latest"):
        result = CliRunner().invoke(query.command, [command, *config, "--device", bad])
        assert result.exit_code == 2, result.output
        assert "the device ID must not" in result.output
    result = CliRunner().invoke(
        delete_data.command, [*config, "--device", bad, "--start", "-1h", "--stop", "now"]
    )
    assert result.exit_code == 2 and "the device ID must not" in result.output
    result = CliRunner().invoke(
        query.command, ["range", *config, "--device", DEVICE, "--measurement", bad]
    )
    assert result.exit_code == 2 and "the measurement must not" in result.output


def test_bad_times_are_usage_errors(tmp_path: Path) -> None:
    config = ["--config", str(tmp_path / "never-read.yaml")]
    result = CliRunner().invoke(
        query.command, ["range", *config, "--device", DEVICE, "--start", "yesterday"]
    )
    assert result.exit_code == 2 and "'yesterday' is not a time" in result.output
    result = CliRunner().invoke(
        delete_data.command,
        [*config, "--device", DEVICE, "--start", "-1h", "--stop", "-2h", "--yes"],
    )
    assert result.exit_code == 2 and "must be after the start" in result.output
    result = CliRunner().invoke(delete_data.command, [*config, "--device", DEVICE])
    assert result.exit_code == 2 and "Missing option '--start'" in result.output


# -- delete-data -----------------------------------------------------------------------------------


@pytest.fixture(params=kinds("v1", "v2"))
def deletable(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """The sinks that can delete points (InfluxDB 3 refuses: test_v3_delete_is_refused)."""
    made = make_backend(request.param, request)
    for key, value in made.env.items():
        monkeypatch.setenv(key, value)
    return made


def test_delete_removes_exactly_the_devices_points_in_the_window(
    deletable: Backend, tmp_path: Path
) -> None:
    s = seed(deletable)
    result = run_delete(
        deletable, tmp_path, "--device", DEVICE, "--start", "-40m", "--stop", "-15m", "--yes"
    )
    assert result.exit_code == 0, result.output
    assert f": 2 points of device '{DEVICE}' from " in result.output
    assert f"Deleted 2 points of device '{DEVICE}' from sink" in result.output
    assert "none remain" in result.output
    if deletable.kind == "v1":
        assert "every retention policy" in result.output
    # Outside the window (50 and 120 minutes ago, 10 minutes ago) and other devices survive.
    assert _times(deletable, tmp_path, "--device", DEVICE, "--start", "-3h") == [
        T(s.old_120),
        T(s.env_50),
        T(s.env_10),
    ]
    assert _times(deletable, tmp_path, "--device", OTHER) == [T(s.other_5)]
    assert _times(deletable, tmp_path, "--device", NASTY) == [T(s.nasty_15)]


def test_delete_bounds_and_measurement(deletable: Backend, tmp_path: Path) -> None:
    s = seed(deletable)
    # Start included, stop excluded, to the nanosecond (v2's server stop is inclusive).
    result = run_delete(
        deletable,
        tmp_path,
        "--device",
        DEVICE,
        "--measurement",
        "environmental",
        "--start",
        T(s.env_30),
        "--stop",
        T(s.env_10),
        "--yes",
    )
    assert result.exit_code == 0, result.output
    assert "Deleted 1 point of device" in result.output
    assert _times(deletable, tmp_path, "--device", DEVICE, "--start", "-3h") == [
        T(s.old_120),
        T(s.env_50),
        T(s.status_20),  # in the window, but another measurement
        T(s.env_10),  # exactly at the stop: kept
    ]


def test_delete_asks_and_a_no_deletes_nothing(
    deletable: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(deletable)
    monkeypatch.setattr(delete_data, "_interactive", lambda: True)
    args = ("--device", DEVICE, "--start", "-1h", "--stop", "now")
    result = run_delete(deletable, tmp_path, *args, input="n\n")
    assert result.exit_code == 1
    assert "Delete these 4 points? This cannot be undone [y/N]" in result.output
    assert "Aborted: nothing was deleted." in result.stderr
    assert len(_times(deletable, tmp_path, "--device", DEVICE)) == 4

    result = run_delete(deletable, tmp_path, *args, input="y\n")
    assert result.exit_code == 0, result.output
    assert "Deleted 4 points" in result.output
    assert _times(deletable, tmp_path, "--device", DEVICE) == []


def test_delete_without_a_terminal_needs_yes(deletable: Backend, tmp_path: Path) -> None:
    seed(deletable)
    # CliRunner's stdin is no terminal; even a piped "y" must not delete.
    result = run_delete(
        deletable, tmp_path, "--device", DEVICE, "--start", "-1h", "--stop", "now", input="y\n"
    )
    assert result.exit_code == 1
    assert "standard input is not a terminal" in result.output and "--yes" in result.output
    assert len(_times(deletable, tmp_path, "--device", DEVICE)) == 4


def test_delete_nothing_to_delete(deletable: Backend, tmp_path: Path) -> None:
    seed(deletable)
    result = run_delete(
        deletable, tmp_path, "--device", "esp32_999", "--start", "-1h", "--stop", "now"
    )
    assert result.exit_code == 0, result.output
    assert "0 points of device 'esp32_999'" in result.output
    assert "Nothing to delete." in result.output


def test_delete_injection_attempts_delete_nothing(deletable: Backend, tmp_path: Path) -> None:
    s = seed(deletable)
    for attempt in (
        "x' OR 'a'='a",
        f'{OTHER}" AND device_id="{DEVICE}',
        'x" OR device_id!="x',
        f"{DEVICE}\\",
    ):
        result = run_delete(
            deletable, tmp_path, "--device", attempt, "--start", "-3h", "--stop", "now", "--yes"
        )
        assert result.exit_code == 0, (attempt, result.output)
        assert "Nothing to delete." in result.output
    assert len(_times(deletable, tmp_path, "--device", DEVICE, "--start", "-3h")) == 5
    # The device whose ID is all special characters is deleted, and only it.
    result = run_delete(
        deletable, tmp_path, "--device", NASTY, "--start", "-3h", "--stop", "now", "--yes"
    )
    assert result.exit_code == 0, result.output
    assert "Deleted 1 point" in result.output
    assert _times(deletable, tmp_path, "--device", NASTY) == []
    assert _times(deletable, tmp_path, "--device", OTHER) == [T(s.other_5)]
    assert len(_times(deletable, tmp_path, "--device", DEVICE, "--start", "-3h")) == 5


def test_v3_delete_is_refused(
    request: pytest.FixtureRequest,
    fake_v3: FakeInfluxV3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = make_backend("v3", request)
    monkeypatch.setenv("TEST_V3_TOKEN", made.env["TEST_V3_TOKEN"])
    seed(made)
    stored = len(fake_v3.accepted_points())
    result = run_delete(
        made, tmp_path, "--device", DEVICE, "--start", "-1h", "--stop", "now", "--yes"
    )
    assert result.exit_code == 1
    assert "InfluxDB 3 (Core and Enterprise) cannot delete points" in result.output
    assert "retention period" in result.output and "Nothing was deleted" in result.output
    assert len(fake_v3.accepted_points()) == stored
    assert len(_times(made, tmp_path, "--device", DEVICE)) == 4


@pytest.mark.influxd2
def test_delete_confirmed_on_a_real_terminal(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No monkeypatching: the command runs in its own process with a pty as stdin."""
    made = make_backend("v2", request)
    monkeypatch.setenv("TEST_V2_TOKEN", made.env["TEST_V2_TOKEN"])
    seed(made)
    master, slave = pty.openpty()
    code = "from telegraf_bridge.cli.commands.delete_data import command; command()"
    args = ["--config", str(made.config(tmp_path)), "--device", DEVICE]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args, "--start", "-1h", "--stop", "now"],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    os.close(slave)
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            # The prompt goes to stdout; the pty only carries the answer.
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                assert proc.stdout is not None
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
        assert b"Delete these 4 points? This cannot be undone [y/N]" in seen, seen
        os.write(master, b"y\n")
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (seen + out, err)
    assert b"Deleted 4 points" in seen + out
    assert _times(made, tmp_path, "--device", DEVICE) == []


# -- helpers ---------------------------------------------------------------------------------------


def test_time_arguments() -> None:
    now = 1_700_000_000_000_000_000
    assert parse_time_arg("now", now) == now == parse_time_arg("now()", now)
    assert parse_time_arg("-1h", now) == now - 3600 * 10**9
    assert parse_time_arg("-1h30m", now) == now - 5400 * 10**9
    assert parse_time_arg("-7d", now) == now - 7 * 86400 * 10**9
    assert parse_time_arg("-2w", now) == now - 14 * 86400 * 10**9
    assert parse_time_arg("-500ms", now) == now - 500_000_000
    assert parse_time_arg("2024-01-01", now) == 1_704_067_200 * 10**9
    assert parse_time_arg("2024-01-01T01:00:00+01:00", now) == 1_704_067_200 * 10**9
    assert parse_time_arg("2024-01-01T00:00:00.000000001Z", now) == 1_704_067_200 * 10**9 + 1
    for bad in ("1h", "-1y", "-h", "2024-01-01T00:00:00", "tomorrow", ""):
        with pytest.raises(ValueError, match="is not a time"):
            parse_time_arg(bad, now)
    with pytest.raises(ValueError, match="must be after"):
        Window(now, now)


def test_validation_and_quoting_helpers() -> None:
    assert validate_name(NASTY, "the device ID") == NASTY
    assert validate_name("Büro Sensor", "x") == "Büro Sensor"
    with pytest.raises(ValueError, match="control characters"):
        validate_name("a\tb", "the device ID")
    assert influxql_string(NASTY) == "'o\\'b\"r\\\\n'"
    assert influxql_ident(NASTY) == '"o\'b\\"r\\\\n"'
    assert flux_string(NASTY) == '"o\'b\\"r\\\\n"'
    assert sql_string(NASTY) == "'o''b\"r\\n'"


def test_typed_annotated_csv() -> None:
    lines = [
        "#datatype,string,long,dateTime:RFC3339,double,string,string",
        "#group,false,false,false,false,true,true",
        "#default,_result,,,,,",
        ",result,table,_time,_value,_field,location",
        ",,0,2024-01-01T00:00:00Z,1.5,t,office",
        "",
        "#datatype,string,long,dateTime:RFC3339,string,string",
        "#group,false,false,false,false,true",
        "#default,_result,,,,",
        ",result,table,_time,_value,_field",
        ',,1,2024-01-01T00:00:00Z,"12",s',
        "",
        "#datatype,string,long,dateTime:RFC3339,boolean,long,string",
        "#group,false,false,false,false,false,true",
        "#default,_result,,,,,",
        ",result,table,_time,_value,n,_field",
        ",,2,2024-01-01T00:00:00Z,true,,b",
    ]
    records = list(typed_annotated_csv(lines))
    assert [r["_value"] for r in records] == [1.5, "12", True]
    assert records[0]["location"] == "office" and records[0]["result"] == "_result"
    assert "n" not in records[2]  # an empty long cell is a null
