"""``bridge-cli verify`` checks what the config uses, against the REAL InfluxDB 1.x (influxd).

A taptap-only config gets no PowerLogger tier rows (and no advice to create retention
policies), and its taptap program is the one the source will start: the first word of its
``command`` (seed 004's ``TAPTAP_CMD``), a full path that need not be on PATH.
"""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rig import InfluxD1
from telegraf_bridge.cli.main import cli

pytestmark = pytest.mark.influxd


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def _database(influxd: InfluxD1) -> str:
    db = f"vs_{uuid.uuid4().hex[:8]}"
    influxd.query(f'CREATE DATABASE "{db}"', method="POST")
    return db


def _program(tmp_path: Path) -> Path:
    """An executable outside PATH, where seed 004 users keep taptap."""
    program = tmp_path / "opt" / "taptap" / "bin" / "taptap"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program


def _config(tmp_path: Path, influxd: InfluxD1, db: str, source: str) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        f"sources:\n{source}sinks:\n  - name: tigo\n    type: influxdb_v1\n"
        f"    url: {influxd.url}\n    database: {db}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def no_taptap_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH without taptap (this machine has one in ~/.cargo/bin)."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.mark.usefixtures("no_taptap_on_path")
def test_taptap_only_config_has_no_tier_rows_and_its_command_is_checked(
    influxd: InfluxD1, tmp_path: Path
) -> None:
    program = _program(tmp_path)
    source = (
        f"  - name: tigo\n    plugin: taptap\n"
        f"    options: {{command: [{program}, observe, --serial, /dev/ttyUSB0]}}\n"
    )
    result = _run("verify", "--config", str(_config(tmp_path, influxd, _database(influxd), source)))
    assert result.exit_code == 0, result.output
    assert f"✓  program taptap  {program} (source tigo, options.command" in result.output
    assert "-  tiers" in result.output and "no enabled gpio_pulse source" in result.output
    for wrong in ("PowerLogger", "retention", "✗", "Next steps"):
        assert wrong not in result.output, result.output


@pytest.mark.usefixtures("no_taptap_on_path")
def test_taptap_cmd_variable_with_a_full_path(influxd: InfluxD1, tmp_path: Path) -> None:
    program = _program(tmp_path)
    source = "  - name: tigo\n    plugin: taptap\n"
    config = _config(tmp_path, influxd, _database(influxd), source)
    env = {"TAPTAP_CMD": f"{program} observe --serial /dev/ttyUSB0"}
    result = _run("verify", "--config", str(config), env=env)
    assert result.exit_code == 0, result.output
    assert f"✓  program taptap  {program}" in result.output


@pytest.mark.usefixtures("no_taptap_on_path")
def test_a_missing_taptap_path_names_the_option(influxd: InfluxD1, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "taptap"
    source = f"  - name: tigo\n    plugin: taptap\n    options: {{command: [{missing}, observe]}}\n"
    result = _run("verify", "--config", str(_config(tmp_path, influxd, _database(influxd), source)))
    assert result.exit_code == 1
    assert f"✗  program taptap  {missing} (from options.command (TAPTAP_CMD)) is not an " in (
        result.output
    )
    assert "correct options.command (TAPTAP_CMD)" in result.output
    assert "PowerLogger" not in result.output


def test_a_gpio_pulse_config_still_checks_the_tiers(influxd: InfluxD1, tmp_path: Path) -> None:
    source = "  - name: meter\n    plugin: gpio_pulse\n    options: {backend: sim}\n"
    result = _run("verify", "--config", str(_config(tmp_path, influxd, _database(influxd), source)))
    assert result.exit_code == 1
    assert "✗  tier PowerLogger_raw" in result.output and "4 tiers" in result.output
