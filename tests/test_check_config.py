"""Every example passes `bridge-cli check-config`, which runs the real Telegraf."""

from __future__ import annotations

from pathlib import Path

import pytest
from _support import EXAMPLES
from click.testing import CliRunner
from rig import free_port
from telegraf_bridge.cli import render
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.settings import load_settings

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


def _seed000_yaml(tmp_path: Path) -> Path:
    """ndjson_tail over seed 000's own sample record (2025) and a 2026 one, floor 2026."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.ndjson").write_text(
        '{"timestamp":"2025-05-25T23:13:07.914587+00:00","device_name":"x",'
        '"parsed_data":{"v":1}}\n'
        '{"timestamp":"2026-02-25T23:13:07+00:00","device_name":"x","parsed_data":{"v":2}}\n'
    )
    path = tmp_path / "bridge.yaml"
    path.write_text(
        f"""
agent:
  interval: 1s
  require_clock_sync: false
  health_listen: ""
  time_floor: "2026-01-01T00:00:00Z"
  state_directory: {tmp_path / "state"}
  buffer_directory: {tmp_path / "buffer"}
sources:
  - name: smartsolar
    plugin: ndjson_tail
    options:
      files: ["{data}/*.ndjson"]
sinks:
  - name: local
    type: file
    path: {tmp_path / "out.lp"}
"""
    )
    return path


def test_config_option_renders_and_test_shows_points_and_every_skip_with_its_fix(
    tmp_path: Path,
) -> None:
    bridge_yaml = _seed000_yaml(tmp_path)
    result = CliRunner().invoke(cli, ["check-config", "--config", str(bridge_yaml), "--test"])
    assert result.exit_code == 0, result.output
    assert "config check: OK" in result.output
    assert "> smartsolar,device_name=x v=2 1772061187000000000" in result.output
    assert "  smartsolar (ndjson_tail): 1 point(s), 1 skipped" in result.output
    assert "1 x timestamp_before_floor: " in result.output
    assert "test run: OK" not in result.output
    assert "1 record(s) skipped (timestamp_before_floor: set agent.time_floor" in result.output
    assert not (tmp_path / "state").exists(), "a check must not touch the live state directory"
    strict = CliRunner().invoke(cli, ["check-config", "--config", str(bridge_yaml), "--strict"])
    assert strict.exit_code == 3, strict.output


def test_bridge_yaml_given_positionally_suggests_config(tmp_path: Path) -> None:
    bridge_yaml = _seed000_yaml(tmp_path)
    result = CliRunner().invoke(cli, ["check-config", str(bridge_yaml)])
    assert result.exit_code == 1
    assert f"run `bridge-cli check-config --config {bridge_yaml}`" in result.output
    assert "TOML" not in result.output and "config check failed" not in result.output
    both = CliRunner().invoke(cli, ["check-config", str(bridge_yaml), "--config", str(bridge_yaml)])
    assert both.exit_code == 2 and "either" in both.output
    neither = CliRunner().invoke(cli, ["check-config"])
    assert neither.exit_code == 2 and "--config bridge.yaml" in neither.output
