"""`bridge-cli run` tells the truth: real Telegraf, real influxd, the user's console and exit code.

Each test is one of issue 15's findings: a sink refusing every write (401), a sink never
reachable, an unset credential, seed variables that must not turn the demo into a write to a
real database, and stops (SIGHUP, a closed stdout, `run` killed) that must never leave Telegraf
running, plus the lock that keeps a second `run` off the same directories.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rig import InfluxD1, free_port
from telegraf_bridge.cli.run_tally import RunTally
from telegraf_bridge.cli.telegraf_log import parse_line

from telegraf_bridge.testing import parse_lines

RUN = [sys.executable, "-m", "telegraf_bridge.cli.main", "run"]


def _config(tmp_path: Path, sink: str, *, sources: str = "") -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        f"""
agent:
  flush_interval: 1s
  buffer_directory: ./var/buffer
  state_directory: ./var/state
  require_clock_sync: false
  health_listen: ""
sources:
  - name: demo
    plugin: demo
    interval: 1s
{sources}
sinks:
{sink}
""",
        encoding="utf-8",
    )
    return path


def _run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        RUN + args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _telegrafs_for(marker: Path) -> list[int]:
    """Pids of Telegraf processes whose command line names ``marker`` (our rendered config)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(str(marker).encode() in arg for arg in argv) and b"--strict-env-handling" in argv:
            stat = (entry / "stat").read_text()
            if ") Z " not in stat:  # a zombie has already exited
                pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def influxd_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxD1]:
    """A real InfluxDB 1.x with authentication on."""
    with InfluxD1(tmp_path_factory.mktemp("influxd-auth"), auth_enabled=True) as server:
        yield server


# -- the tally, from Telegraf's own log lines ---------------------------------------------------


def test_a_v1_batch_after_will_be_dropped_counts_as_dropped_not_written() -> None:
    tally = RunTally({"influx": "influxdb_v1"}, {})
    for raw in (
        "2026-12-07T06:00:01Z D! [outputs.influxdb::influx] Wrote batch of 3 metrics in 1ms",
        "2026-12-07T06:00:02Z E! [outputs.influxdb::influx] E! [outputs.influxdb] Failed to "
        "write metric (will be dropped: 401 Unauthorized): authorization failed",
        "2026-12-07T06:00:02Z D! [outputs.influxdb::influx] Wrote batch of 5 metrics in 1ms",
        "2026-12-07T06:00:03Z D! [outputs.influxdb::influx] Buffer fullness: 2 / 100 metrics",
    ):
        line = parse_line(raw)
        assert line is not None
        tally.feed_log(line)
    sink = tally.sinks["influx"]
    assert (sink.total_written, sink.total_dropped, sink.buffered, sink.errors) == (3, 5, 2, 1)
    assert "401" in tally.problems()[0]


def test_an_error_of_a_hosted_source_counts_for_that_source() -> None:
    """With agent.plugin_host the input is the host; the line names its source (real format)."""
    tally = RunTally({}, {"typo": "demo", "pv": "demo"})
    line = parse_line(
        "2026-12-07T13:15:22Z E! [inputs.execd::_plugin_host] [telegraf_bridge.host:typo] "
        "source typo (plugin demo): cannot start: demo.devcies is not a known option"
    )
    assert line is not None
    tally.feed_log(line)
    assert (tally.sources["typo"].errors, tally.sources["pv"].errors) == (1, 0)


# -- finding 1: a sink that refuses or cannot be reached is never "OK" -------------------------


def _auth_sink(server: InfluxD1, database: str) -> str:
    return f"""  - name: influx
    type: influxdb_v1
    url: {server.url}
    database: {database}
    username: admin
    password_env: BRIDGE_TEST_PW"""


@pytest.mark.influxd
def test_preflight_stops_run_before_a_refused_credential_loses_a_point(
    tmp_path: Path, influxd_auth: InfluxD1
) -> None:
    config = _config(tmp_path, _auth_sink(influxd_auth, "refused"))
    proc = _run(["--config", str(config), "--duration", "6"], tmp_path, {"BRIDGE_TEST_PW": "wrong"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "401" in proc.stdout
    assert "BRIDGE_TEST_PW" in proc.stdout, "the fix names the variable"
    assert "wrong" not in proc.stdout + proc.stderr, "never a secret on the console"
    assert "preflight failed" in proc.stderr
    assert not (tmp_path / "var" / "telegraf.log").exists(), "Telegraf must not have started"


@pytest.mark.telegraf
@pytest.mark.influxd
def test_a_credential_refused_while_running_says_dropped_and_exits_1(
    tmp_path: Path, influxd_auth: InfluxD1
) -> None:
    """As when a token is revoked mid-run: Telegraf's v1 output drops the batches it is refused."""
    config = _config(tmp_path, _auth_sink(influxd_auth, "refused"))
    proc = _run(
        ["--config", str(config), "--duration", "6", "--json", "--no-preflight"],
        tmp_path,
        {"BRIDGE_TEST_PW": "wrong-password"},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "401 Unauthorized" in proc.stderr
    assert "FAILED: sink 'influx' dropped" in proc.stderr
    assert "username/password_env" in proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    (influx,) = summary["sinks"]
    assert influx["written"] == 0
    assert influx["dropped"] > 0
    assert summary["sources"][0]["points"] > 0
    assert summary["problems"]
    databases = influxd_auth.query("SHOW DATABASES")
    assert ["refused"] not in (databases[0].get("values") or [] if databases else [])


@pytest.mark.telegraf
@pytest.mark.influxd
def test_run_with_the_right_credential_writes_and_counts_exactly(
    tmp_path: Path, influxd_auth: InfluxD1
) -> None:
    config = _config(tmp_path, _auth_sink(influxd_auth, "accepted"))
    proc = _run(
        ["--config", str(config), "--duration", "5", "--json"],
        tmp_path,
        {"BRIDGE_TEST_PW": influxd_auth.admin[1]},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    (influx,) = summary["sinks"]
    stored = influxd_auth.query("SELECT count(*) FROM demo", db="accepted")
    count = max(stored[0]["values"][0][1:])
    assert influx["written"] == count > 0
    assert influx["dropped"] == 0
    assert not summary["problems"]


@pytest.mark.telegraf
def test_run_against_a_closed_port_says_never_accepted_and_exits_1(tmp_path: Path) -> None:
    sink = f"""  - name: influx
    type: influxdb_v1
    url: http://127.0.0.1:{free_port()}
    database: nowhere"""
    proc = _run(["--config", str(_config(tmp_path, sink)), "--duration", "5"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "preflight warn" in proc.stdout, "an outage is a warning: Telegraf buffers"
    assert "never accepted a write" in proc.stdout
    assert "connection refused" in proc.stdout
    assert "0 point(s) written" in proc.stdout


def test_run_with_an_unset_credential_refuses_to_start(tmp_path: Path) -> None:
    sink = """  - name: cloud
    type: influxdb_v2
    url: https://eu-central-1-1.aws.cloud2.influxdata.com
    organization: org
    bucket: b
    token_env: BRIDGE_TEST_UNSET_TOKEN"""
    proc = _run(["--config", str(_config(tmp_path, sink)), "--duration", "5"], tmp_path)
    assert proc.returncode == 1
    assert "BRIDGE_TEST_UNSET_TOKEN referenced by the config but not set" in proc.stderr
    assert not (tmp_path / "var" / "telegraf.log").exists(), "Telegraf must not have started"


@pytest.mark.telegraf
def test_a_clock_hold_is_shown_and_is_not_ok(tmp_path: Path) -> None:
    """A floor in the future is what a Pi without a clock looks like to the plugins."""
    sink = """  - name: local
    type: file
    path: ./var/out.lp"""
    config = _config(tmp_path, sink)
    config.write_text(
        config.read_text().replace("agent:\n", "agent:\n  time_floor: 2100-01-01T00:00:00Z\n")
    )
    proc = _run(["--config", str(config), "--duration", "6"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "preflight warn" in proc.stdout
    assert "source demo (demo): 0 point(s); held: system clock reads" in proc.stdout
    assert "source 'demo' is holding its data" in proc.stdout
    assert "require_clock_sync" in proc.stdout


@pytest.mark.telegraf
def test_skipped_records_reach_runs_console_with_count_and_fix(tmp_path: Path) -> None:
    data = tmp_path / "ndjson"
    data.mkdir()
    records = [
        '{"timestamp":"1999-05-25T23:13:07.914587+00:00","parsed_data":{"p":1}}',
        '{"timestamp":"2025-05-25T23:13:07.914587+00:00","parsed_data":{"p":2}}',
        "not json",
    ]
    (data / "a.ndjson").write_text("\n".join(records) + "\n")
    source = f"""  - name: solar
    plugin: ndjson_tail
    interval: 1s
    options:
      files: ["{data}/*.ndjson"]
      commit_delay: 1s"""
    sink = """  - name: local
    type: file
    path: ./var/out.lp"""
    proc = _run(
        ["--config", str(_config(tmp_path, sink, sources=source)), "--duration", "6", "--json"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    solar = next(s for s in summary["sources"] if s["name"] == "solar")
    assert solar["skips"] == {"timestamp_before_floor": 1, "invalid_json": 1}
    assert "skipped 1 x timestamp_before_floor" in proc.stderr
    assert "agent.time_floor" in proc.stderr


# -- finding 3: the demo never writes to a database configured from the environment ------------


@pytest.mark.influxd
def test_run_without_config_and_seed_variables_refuses_and_writes_nothing(
    tmp_path: Path, influxd: InfluxD1
) -> None:
    env = {
        "INFLUXDB_HOST": influxd.url,
        "INFLUXDB_DATABASE": "seed001_users_db",
        "INFLUXDB_ENABLED": "true",
    }
    proc = _run(["--duration", "4"], tmp_path, env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "bridge-cli init --seed 001" in proc.stderr
    assert "INFLUXDB_HOST" in proc.stderr
    databases = influxd.query("SHOW DATABASES")
    names = [row[0] for row in (databases[0].get("values") or [] if databases else [])]
    assert "seed001_users_db" not in names
    assert "PowerLogger_raw" not in names


@pytest.mark.telegraf
def test_run_without_config_writes_only_local_files(tmp_path: Path) -> None:
    proc = _run(["--duration", "6"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    conf = (tmp_path / "var" / "telegraf.conf").read_text()
    assert "outputs.influxdb" not in conf
    written = parse_lines((tmp_path / "var" / "metrics.lp").read_text())
    # Counted from Telegraf's own log, it must equal what the file holds.
    reported = int(proc.stdout.rsplit("stopped", 1)[1].split("; ")[1].split(" ")[0])
    assert reported == len(written) > 0
    assert "sink local (file): " in proc.stdout


# -- finding 4: every way `run` ends stops Telegraf gracefully --------------------------------


def _start(tmp_path: Path, stdout: int | None = subprocess.PIPE) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*RUN, "--duration", "0"],
        cwd=tmp_path,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for_telegraf(conf: Path, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = _telegrafs_for(conf)
        if pids and (conf.parent / "metrics.lp").exists():
            return pids
        time.sleep(0.2)
    raise AssertionError("Telegraf did not start writing")


def _gone(conf: Path, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _telegrafs_for(conf):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.telegraf
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_to_run_stops_telegraf_gracefully(tmp_path: Path, sig: int) -> None:
    proc = _start(tmp_path)
    conf = tmp_path / "var" / "telegraf.conf"
    try:
        _wait_for_telegraf(conf)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _gone(conf, timeout=5), "Telegraf outlived `run`"
    assert f"stopped (received {signal.Signals(sig).name})" in out.decode()
    assert (tmp_path / "var" / "state" / "demo-demo.state.json").exists(), "state saved"
    assert proc.returncode == 0


@pytest.mark.telegraf
def test_a_closed_stdout_stops_telegraf_gracefully(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    conf = tmp_path / "var" / "telegraf.conf"
    try:
        _wait_for_telegraf(conf)
        assert proc.stdout is not None
        proc.stdout.readline()
        proc.stdout.close()  # as `run | head -1` does
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _gone(conf, timeout=5), "Telegraf outlived `run`"
    assert (tmp_path / "var" / "state" / "demo-demo.state.json").exists(), "state saved"


@pytest.mark.telegraf
def test_telegraf_stops_when_run_is_killed(tmp_path: Path) -> None:
    proc = _start(tmp_path, stdout=subprocess.DEVNULL)
    conf = tmp_path / "var" / "telegraf.conf"
    try:
        _wait_for_telegraf(conf)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _gone(conf), "Telegraf kept running after `run` was SIGKILLed"
    log = (tmp_path / "var" / "telegraf.log").read_text()
    assert "Stopping running outputs" in log, "Telegraf's shutdown must run to its end"


# -- one Telegraf per buffer and state directory ------------------------------------------------


@pytest.mark.telegraf
def test_a_second_run_on_the_same_directories_refuses(tmp_path: Path) -> None:
    first = _start(tmp_path, stdout=subprocess.DEVNULL)
    conf = tmp_path / "var" / "telegraf.conf"
    try:
        pids = _wait_for_telegraf(conf)
        second = _run(["--duration", "3", "--workdir", "var2"], tmp_path)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "in use by another Telegraf of this bundle" in second.stderr
        assert f"pid {pids[0]}" in second.stderr
        assert not (tmp_path / "var2" / "telegraf.log").exists()
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=90)
    assert _gone(conf, timeout=5)
