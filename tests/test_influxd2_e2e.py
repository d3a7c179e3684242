"""The v2 path against a real InfluxDB 2.x (influxd v2.7.12 built by `make influxdb2`).

Telegraf's influxdb_v2 output (what the server stores of tricky points, types included), the v2
preflight (check-config and run), `run`'s written count against what the bucket holds, and
setup-influxdb + verify through the CLI. The admin cases are in test_admin_v2.py, the
downsampling tasks in test_downsampling_v2.py, an outage in test_delivery_v2.py. Each test
works in its own organization of the shared server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from _support import (
    TRICKY_EXPECTED,
    TRICKY_POINTS,
    emitter_input,
    fast_agent_yaml,
    render_yaml,
)
from click.testing import CliRunner
from rig import InfluxD2, TelegrafProcess, wait_for
from rig.influxd2 import ALL_TIME_STOP
from telegraf_bridge.cli.influx.admin._v2_flux import task_name
from telegraf_bridge.cli.influx.admin.v2 import token_file
from telegraf_bridge.cli.influx.annotated_csv import typed_annotated_csv
from telegraf_bridge.cli.influx.flux import flux_string
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.settings import load_settings
from telegraf_bridge.cli.tiers import layout_from_settings
from telegraf_bridge.plugins.common import format_rfc3339_ns

pytestmark = [pytest.mark.influxd2]

CLI = [sys.executable, "-m", "telegraf_bridge.cli.main"]
DAY = 86400
SEED_RETENTIONS = {
    "PowerLogger_raw": 30 * DAY,
    "PowerLogger_1m": 90 * DAY,
    "PowerLogger_5m": 365 * DAY,
    "PowerLogger_1h": 0,
}


def _org(server: InfluxD2, bucket: str | None = "solar") -> str:
    """A fresh organization (with ``bucket`` in it) so tests on the shared server stay apart."""
    org = f"t-{uuid.uuid4().hex[:10]}"
    server.create_org(org)
    if bucket:
        server.create_bucket(bucket, org=org)
    return org


def _bridge_yaml(
    tmp_path: Path, server: InfluxD2, org: str, *, bucket: str = "solar", sources: str = ""
) -> Path:
    """A bridge.yaml: the demo (plus ``sources``) into one v2 sink, its token by token_env."""
    path = tmp_path / "bridge.yaml"
    path.write_text(
        fast_agent_yaml(tmp_path)
        + f"""
sources:
  - name: demo
    plugin: demo
    interval: 1s
{sources}
sinks:
  - name: v2
    type: influxdb_v2
    url: {server.url}
    organization: {org}
    bucket: {bucket}
    content_encoding: gzip
    token_env: BRIDGE_TEST_TOKEN
""",
        encoding="utf-8",
    )
    return path


def _cli(
    args: list[str], cwd: Path, token: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env={**os.environ, "BRIDGE_TEST_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- Telegraf's influxdb_v2 output -------------------------------------------------------------


@pytest.mark.telegraf
def test_telegrafs_v2_output_writes_the_demo_into_the_bucket(
    influxd2: InfluxD2, telegraf_bin: Path, tmp_path: Path
) -> None:
    org = _org(influxd2)
    config = _bridge_yaml(tmp_path, influxd2, org)
    rendered = tmp_path / "out" / "telegraf.conf"
    result = _cli(
        ["render-config", "--config", str(config), "--output", str(rendered)],
        tmp_path,
        influxd2.token,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    conf = rendered.read_text()
    assert "[[outputs.influxdb_v2]]" in conf and 'content_encoding = "gzip"' in conf
    assert "${BRIDGE_TEST_TOKEN}" in conf and influxd2.token not in conf, "the token by reference"

    env = {"BRIDGE_TEST_TOKEN": influxd2.token}
    with TelegrafProcess(telegraf_bin, rendered, tmp_path / "tg", env=env) as telegraf:
        wait_for(
            lambda: influxd2.count("solar", "demo", "power_w", org=org) >= 4,
            timeout=60,
            what="4 demo points in the v2 bucket",
        )
        assert telegraf.running()
    log = telegraf.log()
    assert "E! " not in log
    rows = influxd2.query(
        'from(bucket: "solar") |> range(start: 0) |> filter(fn: (r) => r._measurement == "demo")'
        ' |> filter(fn: (r) => r._field == "energy_wh")',
        org=org,
    )
    assert rows and {row["site"] for row in rows} == {"demo"}


@pytest.mark.telegraf
def test_tricky_points_are_stored_exactly_with_their_types(
    influxd2: InfluxD2, telegraf_bin: Path, tmp_path: Path
) -> None:
    """Escaping, unicode, a newline in a string, unsigned and 2**62 integers, booleans: what
    the real server stores and answers is what was sent (the fake only sees the request)."""
    bucket = "so${HOME}lar"  # a '$' must reach the server literally ($${HOME} in bridge.yaml)
    org = influxd2.new_org(bucket)
    points_file = tmp_path / "points.json"
    points_file.write_text(json.dumps(TRICKY_POINTS))
    yaml_text = (
        fast_agent_yaml(tmp_path)
        + f"""
sinks:
  - name: v2
    type: influxdb_v2
    url: {influxd2.url}
    organization: {org}
    bucket: {json.dumps(bucket.replace("${", "$${"))}
    token_env: BRIDGE_TEST_TOKEN
"""
    )
    conf = render_yaml(yaml_text, tmp_path / "out")
    conf.write_text(conf.read_text() + emitter_input(points_file))
    env = {"BRIDGE_TEST_TOKEN": influxd2.token}
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg", env=env) as telegraf:
        wait_for(
            lambda: influxd2.count(bucket, "e2e", "power_w", org=org) == 3,
            timeout=60,
            what="3 points in the v2 bucket",
        )
    assert "E! " not in telegraf.log()
    reply = influxd2.request(
        "POST",
        "/api/v2/query",
        params={"org": org},
        body={
            "query": f"from(bucket: {flux_string(bucket)})"
            f" |> range(start: 0, stop: {ALL_TIME_STOP})"
            ' |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
            ' |> drop(columns: ["_start", "_stop", "_measurement", "result", "table"])',
            "type": "flux",
            "dialect": {"annotations": ["datatype", "group", "default"], "header": True},
        },
        accept="application/csv",
    )
    assert reply.status == 200, reply
    rows = list(typed_annotated_csv(reply.body.decode().splitlines(keepends=True)))
    got = {r["device"]: ({"site": r["site"], "device": r["device"]}, r, r["_time"]) for r in rows}
    for (tags, fields), point in zip(TRICKY_EXPECTED, TRICKY_POINTS["points"], strict=True):
        stored_tags, record, stamp = got[tags["device"]]
        assert stored_tags == tags
        assert {k: record[k] for k in fields} == fields, record
        assert all(type(record[k]) is type(v) for k, v in fields.items()), record
        assert stamp == format_rfc3339_ns(point["time_ns"])


# -- the v2 preflight: check-config and run ----------------------------------------------------


@pytest.mark.telegraf
def test_check_config_ok_with_the_token_fails_on_a_wrong_one_warns_on_a_missing_bucket(
    influxd2: InfluxD2, tmp_path: Path
) -> None:
    org = _org(influxd2)
    config = _bridge_yaml(tmp_path, influxd2, org)
    ok = _cli(
        ["check-config", "--config", str(config), "--test-wait", "1"], tmp_path, influxd2.token
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "preflight ok    sink v2 (influxdb_v2)" in ok.stdout

    wrong = "not-the-token-0123456789"
    bad = _cli(["check-config", "--config", str(config)], tmp_path, wrong)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "preflight fail  sink v2 (influxdb_v2)" in bad.stdout
    assert "HTTP 401" in bad.stdout and "$BRIDGE_TEST_TOKEN" in bad.stdout
    assert wrong not in bad.stdout + bad.stderr

    missing = _bridge_yaml(tmp_path, influxd2, org, bucket="nope")
    warned = _cli(
        ["check-config", "--config", str(missing), "--test-wait", "1"], tmp_path, influxd2.token
    )
    assert "preflight warn  sink v2 (influxdb_v2)" in warned.stdout, warned.stdout + warned.stderr
    assert "'nope'" in warned.stdout

    (tmp_path / "elsewhere").mkdir()
    unknown = _bridge_yaml(tmp_path / "elsewhere", influxd2, "no-such-org")
    refused = _cli(["check-config", "--config", str(unknown)], tmp_path, influxd2.token)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "does not know organization 'no-such-org'" in refused.stdout


@pytest.mark.telegraf
def test_run_into_the_real_v2_writes_what_it_counts(influxd2: InfluxD2, tmp_path: Path) -> None:
    org = _org(influxd2)
    config = _bridge_yaml(tmp_path, influxd2, org)
    proc = _cli(
        ["run", "--config", str(config), "--duration", "6", "--json"], tmp_path, influxd2.token
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    (sink,) = summary["sinks"]
    assert sink["written"] == influxd2.count("solar", "demo", "power_w", org=org) > 0
    assert sink["dropped"] == 0
    assert not summary["problems"]


def test_run_with_a_wrong_token_refuses_before_start(influxd2: InfluxD2, tmp_path: Path) -> None:
    org = _org(influxd2)
    config = _bridge_yaml(tmp_path, influxd2, org)
    proc = _cli(["run", "--config", str(config), "--duration", "6"], tmp_path, "wrong-token-42")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "401" in proc.stdout and "BRIDGE_TEST_TOKEN" in proc.stdout
    assert "wrong-token-42" not in proc.stdout + proc.stderr
    assert "preflight failed" in proc.stderr
    assert not (tmp_path / "var" / "telegraf.log").exists(), "Telegraf must not have started"
    assert influxd2.count("solar", "demo", "power_w", org=org) == 0


@pytest.mark.telegraf
def test_run_with_a_wrong_token_and_no_preflight_says_never_accepted_and_exits_1(
    influxd2: InfluxD2, tmp_path: Path
) -> None:
    """Unlike the v1 output (which drops a batch refused with 401), Telegraf's v2 output keeps it
    buffered: the real server shows nothing dropped, everything held, and run failing loudly."""
    org = _org(influxd2)
    config = _bridge_yaml(tmp_path, influxd2, org)
    proc = _cli(
        ["run", "--config", str(config), "--duration", "6", "--json", "--no-preflight"],
        tmp_path,
        "wrong-token-42",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "(401 Unauthorized)" in proc.stderr
    assert "FAILED: sink 'v2' never accepted a write" in proc.stderr
    assert "token_env/token_file" in proc.stderr
    assert "wrong-token-42" not in proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    (sink,) = summary["sinks"]
    assert (sink["written"], sink["dropped"]) == (0, 0)
    assert sink["buffered"] > 0
    assert summary["sources"][0]["points"] > 0
    assert summary["problems"]
    assert influxd2.count("solar", "demo", "power_w", org=org) == 0


# -- setup-influxdb and verify -----------------------------------------------------------------


@pytest.mark.telegraf  # verify checks the Telegraf binary too
def test_setup_influxdb_creates_the_tiers_and_verify_passes(
    influxd2: InfluxD2, tmp_path: Path
) -> None:
    org = _org(influxd2, bucket=None)
    meter = "  - {name: meter, plugin: gpio_pulse, options: {backend: sim}}"
    config = _bridge_yaml(tmp_path, influxd2, org, bucket="PowerLogger_raw", sources=meter)
    env = {"BRIDGE_TEST_TOKEN": influxd2.token}
    secrets = tmp_path / "secrets"
    before = CliRunner().invoke(cli, ["verify", "--config", str(config)], env=env)
    assert before.exit_code == 1, before.output

    setup = CliRunner().invoke(
        cli, ["setup-influxdb", "--config", str(config), "--secrets-dir", str(secrets)], env=env
    )
    assert setup.exit_code == 0, setup.output
    assert influxd2.token not in setup.output

    buckets = influxd2.buckets(org)
    retention = {
        name: sum(r["everySeconds"] for r in buckets[name]["retentionRules"])
        for name in SEED_RETENTIONS
    }
    assert retention == SEED_RETENTIONS

    layout = layout_from_settings(load_settings(config, env))
    tasks = influxd2.request("GET", "/api/v2/tasks", params={"org": org}).json()["tasks"]
    by_name = {t["name"]: t for t in tasks}
    for tier in layout.aggregates:
        task = by_name[task_name(layout, tier)]
        assert task["status"] == "active"
        assert task["every"] == tier.key

    writer = token_file(secrets, "v2", "writer").read_text()
    reader = token_file(secrets, "v2", "reader").read_text()
    wrote = influxd2.request(
        "POST",
        "/api/v2/write",
        params={"org": org, "bucket": "PowerLogger_raw"},
        data=b"pulses,channel=1 count=1i",
        token=writer,
        content_type="text/plain",
    )
    assert wrote.status == 204, wrote
    refused = influxd2.request(
        "POST",
        "/api/v2/write",
        params={"org": org, "bucket": "PowerLogger_1h"},
        data=b"pulses,channel=1 count=1i",
        token=writer,
        content_type="text/plain",
    )
    assert refused.status in (401, 403, 404), refused
    assert (
        influxd2.request("GET", "/api/v2/buckets", params={"org": org}, token=reader).status == 200
    )

    again = CliRunner().invoke(
        cli, ["setup-influxdb", "--config", str(config), "--secrets-dir", str(secrets)], env=env
    )
    assert again.exit_code == 0, again.output
    assert influxd2.buckets(org).keys() == buckets.keys(), "a second run creates nothing"
    tasks = influxd2.request("GET", "/api/v2/tasks", params={"org": org}).json()["tasks"]
    assert len(tasks) == len(layout.aggregates)

    after = CliRunner().invoke(cli, ["verify", "--config", str(config)], env=env)
    assert after.exit_code == 0, after.output
    assert "✗" not in after.output
