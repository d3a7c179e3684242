"""Every example passes `bridge-cli check-config`, which runs the real Telegraf."""

from __future__ import annotations

from pathlib import Path

import pytest
from _support import EXAMPLES
from click.testing import CliRunner
from telegraf_bridge.cli import render
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.settings import load_settings

from telegraf_bridge.testing import free_port

pytestmark = pytest.mark.telegraf


def _render(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    token_file = tmp_path / "secrets" / "influxdb_token"
    token_file.parent.mkdir()
    token_file.write_text("file-token")
    env = {
        "INFLUX_TOKEN": "env-token",
        "BRIDGE_AGENT_STATE_DIRECTORY": str(tmp_path / "state"),
        "BRIDGE_AGENT_BUFFER_DIRECTORY": str(tmp_path / "buffer"),
        "BRIDGE_AGENT_HEALTH_LISTEN": f"127.0.0.1:{free_port()}",
        "BRIDGE_AGENT_REQUIRE_CLOCK_SYNC": "false",
        "BRIDGE_SINK_INFLUXDB3_TOKEN_FILE": str(token_file),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # relative paths in the examples (./var/...) stay in tmp_path
    output = tmp_path / "out" / "telegraf.conf"
    settings = load_settings(EXAMPLES / f"{name}.yaml")
    render.write(render.render(settings, output), output)
    return output


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.yaml")))
def test_every_example_is_accepted_by_real_telegraf(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = _render(name, tmp_path, monkeypatch)
    result = CliRunner().invoke(cli, ["check-config", str(conf), "--test-wait", "2"])
    assert result.exit_code == 0, result.output
    assert "config check: OK" in result.output
    assert "test run: OK" in result.output
    points = int(result.output.split("test run: OK, ")[1].split(" ")[0])
    if "plugin: demo" in (EXAMPLES / f"{name}.yaml").read_text():
        assert points >= 1, result.output  # the demo source always has data
    assert not (tmp_path / "state").exists(), "a check must not touch the live state directory"


def test_token_file_with_trailing_newline_is_caught_before_telegraf_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = _render("influxdb3", tmp_path, monkeypatch)
    (tmp_path / "secrets" / "influxdb_token").write_text("file-token\n")  # as `echo` writes it
    result = CliRunner().invoke(cli, ["check-config", str(conf)])
    assert result.exit_code == 1
    assert "has leading/trailing whitespace or a newline" in result.output
    assert "file-token" not in result.output


def test_broken_config_is_rejected_with_telegrafs_reason(tmp_path: Path) -> None:
    conf = tmp_path / "telegraf.conf"
    conf.write_text('[[outputs.influxdb_v2]]\n  urls = ["http://127.0.0.1:1"]\n  bukket = "x"\n')
    result = CliRunner().invoke(cli, ["check-config", str(conf)])
    assert result.exit_code == 1
    assert "bukket" in result.output
    assert "Telegraf rejects" in result.output


def test_plugin_not_in_the_custom_build_is_rejected(tmp_path: Path) -> None:
    conf = tmp_path / "telegraf.conf"
    conf.write_text("[[inputs.cpu]]\n[[outputs.file]]\n")
    result = CliRunner().invoke(cli, ["check-config", str(conf)])
    assert result.exit_code == 1, result.output


def test_telegraf_path_reports_the_pinned_version(telegraf_bin: Path) -> None:
    result = CliRunner().invoke(cli, ["telegraf-path", "--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"{telegraf_bin} 1.39.3"


def test_telegraf_path_explains_a_bad_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAF_BIN", "/nonexistent/telegraf")
    result = CliRunner().invoke(cli, ["telegraf-path"])
    assert result.exit_code == 1
    assert "TELEGRAF_BIN=/nonexistent/telegraf is not an executable file" in result.output
