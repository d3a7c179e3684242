"""Command-level behaviour of setup-influxdb, verify and delete-buckets, whatever the sink.

Runs against the InfluxDB 3 fake (fast, no server process): dry runs change nothing, secrets
never reach the output, exit codes, configuration mistakes, the package and Telegraf rows of
verify. The InfluxQL helpers are checked against influxd's re-rendering rules here too.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rig import FakeInfluxV3
from telegraf_bridge.cli.commands import verify
from telegraf_bridge.cli.config_model import sink_from
from telegraf_bridge.cli.influx.admin._influxql import canonical, continuous_queries, scaled
from telegraf_bridge.cli.influx.admin.base import AdminError
from telegraf_bridge.cli.influx.admin.registry import backend_for
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.settings import load_settings
from telegraf_bridge.cli.tiers import layout_from_settings

CANARY = "canary-SECRET-token-7f3a9c2e41"


@pytest.fixture
def fake() -> Iterator[FakeInfluxV3]:
    with FakeInfluxV3(token=CANARY) as server:
        yield server  # type: ignore[misc]


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def _v3_config(tmp_path: Path, fake: FakeInfluxV3, sources: str = "") -> Path:
    return _config(
        tmp_path,
        sources
        + f"""
sinks:
  - name: v3
    type: influxdb_v3
    url: {fake.url}
    database: solar
    token_env: ADMIN_TOKEN
""",
    )


def _run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def test_dry_run_changes_nothing(
    fake: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", CANARY)
    result = _run("setup-influxdb", "--config", str(_v3_config(tmp_path, fake)), "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.count("+ will create") == 4
    assert "Dry run: 4 to create, 0 present; nothing was changed." in result.output
    assert fake.databases == set()
    assert not (tmp_path / "secrets").exists()


@pytest.mark.parametrize("token", [CANARY, CANARY[::-1]], ids=["right-token", "wrong-token"])
def test_no_token_ever_reaches_the_output(
    fake: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", token)
    config = _v3_config(tmp_path, fake)
    outputs = [
        _run("setup-influxdb", "--config", str(config)),
        _run("verify", "--config", str(config)),
        _run("delete-buckets", "--config", str(config), "--yes"),
    ]
    for result in outputs:
        assert CANARY not in result.output and CANARY[::-1] not in result.output
        assert CANARY[8:20] not in result.output and CANARY[::-1][8:20] not in result.output
    if token == CANARY:
        assert [r.exit_code for r in outputs] == [0, 0, 0]
        assert f"token {CANARY[:4]}… from ADMIN_TOKEN" in outputs[1].output
    else:
        assert [r.exit_code for r in outputs] == [1, 1, 1]
        assert "HTTP 401" in outputs[0].output


def test_a_file_sink_has_no_admin(tmp_path: Path) -> None:
    config = _config(
        tmp_path, f"sinks:\n  - name: out\n    type: file\n    path: {tmp_path / 'x.lp'}\n"
    )
    result = _run("setup-influxdb", "--config", str(config), "--sink", "out")
    assert result.exit_code == 1
    assert "file sink" in result.output


def test_configuration_mistakes_exit_1_with_a_next_step(fake: FakeInfluxV3, tmp_path: Path) -> None:
    config = _v3_config(tmp_path, fake)
    missing_env = _run("setup-influxdb", "--config", str(config))
    assert missing_env.exit_code == 1
    assert "ADMIN_TOKEN" in missing_env.output and "Next steps:" in missing_env.output
    unknown = _run("delete-buckets", "--config", str(config), "--sink", "nope")
    assert unknown.exit_code == 1 and "no sink named 'nope'" in unknown.output
    broken = _config(tmp_path, "sinks: [{name: x, type: influxdb_v3}]\n")
    result = _run("verify", "--config", str(broken))
    assert result.exit_code == 1
    assert "✗  config" in result.output and "url is required" in result.output


def test_delete_buckets_without_input_or_yes_refuses(
    fake: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", CANARY)
    config = _v3_config(tmp_path, fake)
    assert _run("setup-influxdb", "--config", str(config)).exit_code == 0
    result = _run("delete-buckets", "--config", str(config), input="")
    assert result.exit_code == 1
    assert "Refusing to delete" in result.output and "--yes" in result.output
    assert len(fake.databases) == 4


def test_verify_rows_for_packages_and_telegraf(
    fake: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", CANARY)
    sources = """
sources:
  - name: meter
    plugin: gpio_pulse
    options: {backend: gpiod}
  - name: dtu
    plugin: hoymiles
    options: {host: 127.0.0.1}
"""
    config = _v3_config(tmp_path, fake, sources)
    monkeypatch.setattr(verify, "_importable", lambda module: module != "gpiod")
    fake_telegraf = tmp_path / "telegraf"
    fake_telegraf.write_text("#!/bin/sh\necho 'Telegraf 1.0.0 (git: x)'\n")
    fake_telegraf.chmod(fake_telegraf.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("TELEGRAF_BIN", str(fake_telegraf))
    result = _run("verify", "--config", str(config))
    assert result.exit_code == 1
    assert "✗  python package gpiod" in result.output
    assert "telegraf-bridge[gpio]" in result.output
    assert "✓  python package hoymiles_modbus" in result.output
    assert "✗  telegraf" in result.output and "1.0.0" in result.output
    assert "make setup" in result.output


def test_verify_needs_no_package_for_the_sim_backend(
    fake: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", CANARY)
    sources = "sources:\n  - {name: meter, plugin: gpio_pulse, options: {backend: sim}}\n"
    result = _run("verify", "--config", str(_v3_config(tmp_path, fake, sources)))
    assert "need no extra package" in result.output


def test_registry_picks_backends_lazily_and_names_missing_secrets(tmp_path: Path) -> None:
    v2 = {
        "name": "cloud",
        "type": "influxdb_v2",
        "url": "http://127.0.0.1:9",
        "organization": "o",
        "bucket": "b",
        "token_env": "T",
        "token_file": "",
        "timeout": "5s",
    }
    assert backend_for(sink_from(v2), {"T": "x" * 20}).kind == "influxdb_v2"
    v1 = {
        "name": "old",
        "type": "influxdb_v1",
        "url": "http://127.0.0.1:9",
        "database": "d",
        "username": "admin",
        "password_env": "PW",
    }
    with pytest.raises(AdminError, match="PW"):
        backend_for(sink_from(v1), {})


def test_scaled_constants_survive_influxd_three_decimal_rendering() -> None:
    assert scaled("c", 1000 / 600) == "c * 5.0 / 3.0"
    assert scaled("c", 1.25) == "c * 5.0 / 4.0"
    assert scaled("c", 60.0) == "c * 60.0"


def test_canonical_matches_influxd_rendering_of_the_wanted_cq(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        {},
        text="sources:\n  - {name: m, plugin: gpio_pulse, options: {impulses_per_kwh: 600}}\n"
        "sinks:\n  - {name: out, type: file, path: /tmp/m.lp}\n",
        base_dir=tmp_path,
    )
    (cq,) = [
        q for q in continuous_queries(layout_from_settings(settings), "power") if q.tier.key == "1m"
    ]
    # What influxd 1.8 stores for it (quotes dropped, 3 decimals, durations re-spelled).
    rendered = (
        "CREATE CONTINUOUS QUERY PowerLogger_1m_cq ON power RESAMPLE EVERY 1m FOR 1h BEGIN "
        "SELECT count(Pulse) AS pulses, count(Pulse) * 5.000 / 3.000 AS energy_wh, "
        "count(Pulse) * 100.000 AS power_w INTO power.PowerLogger_1m.PowerPulse FROM "
        "power.PowerLogger_raw.PowerPulse GROUP BY time(1m), PulseType END"
    )
    assert canonical(rendered) == canonical(cq.statement)
    assert canonical(rendered.replace("5.000", "5.001")) != canonical(cq.statement)
