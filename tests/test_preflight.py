"""Preflight against real servers: influxd 1.x with authentication, influxd 2.x (token, missing
bucket), a refused port, a busy health port with the real Telegraf; InfluxDB 3 against the
loopback fake (no server can be obtained). check-config and run's preflight against the real
influxd 2 are in test_influxd2_e2e.py."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support import fast_agent_yaml
from click.testing import CliRunner
from rig import FakeInfluxV3, InfluxD1, InfluxD2, TelegrafProcess, free_port, wait_for
from telegraf_bridge.cli import preflight as pf
from telegraf_bridge.cli import render
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.settings import Settings, load_settings

ADMIN = ("admin", "admin-secret-pw")


@pytest.fixture(scope="module")
def influxd_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxD1]:
    """influxd 1.x with auth-enabled = true, an admin, a database and a writer user."""
    with InfluxD1(tmp_path_factory.mktemp("influxd-auth"), auth_enabled=True, admin=ADMIN) as srv:
        srv.query("CREATE DATABASE solar", method="POST")
        srv.query("CREATE USER writer WITH PASSWORD 'right-pw'", method="POST")
        srv.query("GRANT ALL ON solar TO writer", method="POST")
        yield srv


# A config with sources needs a sink; a local file asks nothing of the network.
_FILE_SINK = "sinks:\n  - {name: local, type: file, path: out.lp}\n"


def _settings(tmp_path: Path, sinks: str, env: dict[str, str] | None = None) -> Settings:
    text = fast_agent_yaml(tmp_path) + "sources:\n  - name: demo\n    plugin: demo\n" + sinks
    return load_settings(None, env or {}, text=text, base_dir=Path.cwd())


def _v1(url: str) -> str:
    return f"""
sinks:
  - name: home
    type: influxdb_v1
    url: {url}
    database: solar
    username: writer
    password_env: HOME_PW
"""


def _sink_finding(findings: list[pf.Finding]) -> pf.Finding:
    (found,) = [f for f in findings if f.subject.startswith("sink ")]
    return found


def test_v1_with_auth_accepts_the_right_password(influxd_auth: InfluxD1, tmp_path: Path) -> None:
    env = {"HOME_PW": "right-pw"}
    found = _sink_finding(pf.preflight(_settings(tmp_path, _v1(influxd_auth.url)), env=env))
    assert found.level == "ok", found
    assert "credentials accepted" in found.message


def test_v1_with_auth_fails_on_a_wrong_password_naming_401_and_the_fix(
    influxd_auth: InfluxD1, tmp_path: Path
) -> None:
    env = {"HOME_PW": "wrong-pw"}
    findings = pf.preflight(_settings(tmp_path, _v1(influxd_auth.url)), env=env)
    found = _sink_finding(findings)
    assert (found.level, found.code) == ("fail", "sink_auth_failed"), found
    assert "HTTP 401" in found.message
    assert "$HOME_PW" in found.fix and "writer" in found.fix
    assert pf.has_failures(findings)
    lines: list[str] = []
    pf.print_findings(findings, lines.append)
    assert "wrong-pw" not in "\n".join(lines)
    assert any(line.startswith("preflight fail  sink home (influxdb_v1)") for line in lines)


def test_v1_database_missing_is_a_warning(influxd_auth: InfluxD1, tmp_path: Path) -> None:
    sinks = _v1(influxd_auth.url).replace("database: solar", "database: nowhere")
    found = _sink_finding(pf.preflight(_settings(tmp_path, sinks), env={"HOME_PW": "right-pw"}))
    assert (found.level, found.code) == ("warn", "sink_database_missing"), found
    assert "'nowhere'" in found.message


def test_refused_connection_is_a_quick_warning_because_telegraf_buffers(tmp_path: Path) -> None:
    started = time.monotonic()
    found = _sink_finding(
        pf.preflight(
            _settings(tmp_path, _v1(f"http://127.0.0.1:{free_port()}")), env={"HOME_PW": "x"}
        )
    )
    assert (found.level, found.code) == ("warn", "sink_unreachable"), found
    assert "Connection refused" in found.message
    assert "sinks.home.url" in found.fix
    assert time.monotonic() - started < 5


def test_unset_password_variable_fails_naming_it(tmp_path: Path) -> None:
    found = _sink_finding(pf.preflight(_settings(tmp_path, _v1("http://127.0.0.1:1")), env={}))
    assert (found.level, found.code) == ("fail", "sink_config"), found
    assert "HOME_PW" in found.message and "export HOME_PW" in found.fix


def _v2(
    url: str,
    *,
    credential: str = "token_env: CLOUD_TOKEN",
    bucket: str = "solar",
    org: str = "test-org",
) -> str:
    return f"""
sinks:
  - name: cloud
    type: influxdb_v2
    url: {url}
    organization: {org}
    bucket: {bucket}
    {credential}
"""


@pytest.mark.influxd2
def test_v2_token_accepted_wrong_token_missing_bucket(influxd2: InfluxD2, tmp_path: Path) -> None:
    org = influxd2.new_org("solar")
    good = {"CLOUD_TOKEN": influxd2.token}
    found = _sink_finding(pf.preflight(_settings(tmp_path, _v2(influxd2.url, org=org)), env=good))
    assert found.level == "ok", found
    bad = {"CLOUD_TOKEN": "not-the-token"}
    found = _sink_finding(pf.preflight(_settings(tmp_path, _v2(influxd2.url, org=org)), env=bad))
    assert (found.level, found.code) == ("fail", "sink_auth_failed"), found
    assert "HTTP 401" in found.message and "$CLOUD_TOKEN" in found.fix
    assert "not-the-token" not in found.line()
    missing = _v2(influxd2.url, bucket="nope", org=org)
    found = _sink_finding(pf.preflight(_settings(tmp_path, missing), env=good))
    assert (found.level, found.code) == ("warn", "sink_bucket_missing"), found


def test_v2_unset_token_variable_and_unreadable_token_file(tmp_path: Path) -> None:
    found = _sink_finding(pf.preflight(_settings(tmp_path, _v2("http://127.0.0.1:1")), env={}))
    assert (found.level, found.code) == ("fail", "sink_config"), found
    assert "CLOUD_TOKEN" in found.message and "export CLOUD_TOKEN" in found.fix
    token_file = tmp_path / "missing-token"
    sinks = _v2("http://127.0.0.1:1", credential=f"token_file: {token_file}")
    found = _sink_finding(pf.preflight(_settings(tmp_path, sinks), env={}))
    assert (found.level, found.code) == ("fail", "sink_config"), found
    assert str(token_file) in found.message and str(token_file) in found.fix


def test_v3_token_accepted_and_refused(fake_v3: FakeInfluxV3, tmp_path: Path) -> None:
    sinks = f"""
sinks:
  - name: v3
    type: influxdb_v3
    url: {fake_v3.url}
    database: solar
    token_env: V3_TOKEN
"""
    found = _sink_finding(
        pf.preflight(_settings(tmp_path, sinks), env={"V3_TOKEN": "canary-v3-token"})
    )
    assert found.level == "ok", found
    found = _sink_finding(pf.preflight(_settings(tmp_path, sinks), env={"V3_TOKEN": "wrong"}))
    assert (found.level, found.code) == ("fail", "sink_auth_failed"), found


def test_clock_unsynchronised_and_required_is_a_warning_with_the_option(tmp_path: Path) -> None:
    settings = _settings(tmp_path, _FILE_SINK)
    settings.agent = dataclasses.replace(settings.agent, require_clock_sync=True)
    found = pf.check_clock(settings, probe=lambda: False)
    assert (found.level, found.code) == ("warn", "clock_unsynchronised")
    assert "agent.require_clock_sync: false" in found.fix
    settings.agent = dataclasses.replace(settings.agent, require_clock_sync=False)
    assert pf.check_clock(settings, probe=lambda: False).level == "ok"
    assert pf.check_clock(settings, probe=lambda: True).level == "ok"


def test_clock_before_the_floor_is_a_warning(tmp_path: Path) -> None:
    found = pf.check_clock(_settings(tmp_path, _FILE_SINK), probe=lambda: True, now_ns=lambda: 0)
    assert (found.level, found.code) == ("warn", "clock_before_floor")
    assert "1970-01-01" in found.message and "agent.time_floor" in found.fix


@pytest.mark.telegraf
def test_busy_health_port_is_named_and_the_fallback_keeps_data_flowing(
    tmp_path: Path, telegraf_bin: Path
) -> None:
    port = free_port()
    out = tmp_path / "metrics.lp"
    sinks = f"sinks:\n  - name: local\n    type: file\n    path: {out}\n"
    settings = _settings(tmp_path, sinks)
    settings.agent = dataclasses.replace(settings.agent, health_listen=f"127.0.0.1:{port}")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        findings = pf.preflight(settings, env={})
        (found,) = [f for f in findings if f.subject == "health port"]
        assert (found.level, found.code) == ("warn", pf.HEALTH_BUSY), found
        assert f"port {port} is in use by " in found.message and "pid" in found.message
        assert "agent.health_listen" in found.fix

        # Without the fallback Telegraf stops entirely (finding 10) ...
        conf = tmp_path / "full" / "telegraf.conf"
        render.write(render.render(settings, conf), conf)
        with TelegrafProcess(telegraf_bin, conf, tmp_path / "full") as telegraf:
            wait_for(lambda: not telegraf.running(), timeout=30, what="Telegraf to give up")
        assert not out.exists() or not out.read_text()

        # ... with it, the same sources and sinks run and data flows.
        fallback = pf.health_fallback(settings, findings)
        assert fallback.agent.health_listen == ""
        assert settings.agent.health_listen == f"127.0.0.1:{port}", "caller's copy untouched"
        conf = tmp_path / "fallback" / "telegraf.conf"
        render.write(render.render(fallback, conf), conf)
        with TelegrafProcess(telegraf_bin, conf, tmp_path / "fallback") as telegraf:
            wait_for(
                lambda: out.exists() and "demo" in out.read_text(),
                timeout=30,
                what="demo points in the file sink",
            )
            assert telegraf.running()


def test_free_health_port_is_ok_and_no_fallback(tmp_path: Path) -> None:
    settings = _settings(tmp_path, _FILE_SINK)
    settings.agent = dataclasses.replace(settings.agent, health_listen=f"127.0.0.1:{free_port()}")
    findings = [pf.check_health_port(settings.agent.health_listen)]
    assert findings[0] is not None and findings[0].level == "ok"
    assert pf.health_fallback(settings, [f for f in findings if f]) is settings


@pytest.mark.telegraf
def test_check_config_fails_on_refused_credentials_in_both_conventions(
    influxd_auth: InfluxD1, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME_PW", "wrong-pw")
    bridge_yaml = tmp_path / "bridge.yaml"
    bridge_yaml.write_text(
        fast_agent_yaml(tmp_path)
        + "sources:\n  - name: demo\n    plugin: demo\n"
        + _v1(influxd_auth.url)
    )
    rendered = tmp_path / "out" / "telegraf.conf"
    settings = load_settings(bridge_yaml)
    render.write(render.render(settings, rendered), rendered)
    for args in (["--config", str(bridge_yaml)], [str(rendered)]):
        result = CliRunner().invoke(cli, ["check-config", *args])
        assert result.exit_code == 1, result.output
        assert "preflight fail  sink home (influxdb_v1)" in result.output
        assert "HTTP 401" in result.output and "$HOME_PW" in result.output
        assert "wrong-pw" not in result.output
        assert "test run" not in result.output
    monkeypatch.setenv("HOME_PW", "right-pw")
    result = CliRunner().invoke(cli, ["check-config", str(rendered), "--test-wait", "1"])
    assert result.exit_code == 0, result.output
    assert "preflight ok    sink home (influxdb_v1)" in result.output
