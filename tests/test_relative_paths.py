"""Relative paths resolve against the config file's directory, not the current one (finding 12).

The same bridge.yaml run from another directory must find the same tail positions, meter
totals and buffer, so every rendered path is absolute under the config's directory.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.settings import load_settings

CONFIG = """
agent:
  buffer_directory: var/buffer
  state_directory: ./var/state
  logfile: var/telegraf.log
  plugin_config_directory: var/plugins
sources:
  - name: solar
    plugin: ndjson_tail
    options:
      files: ["data/*.ndjson", "/abs/*.ndjson"]
  - name: demo
    plugin: demo
    options:
      ndjson_dir: var/smartsolar
  - name: iot
    plugin: iotflow
    options:
      registry: devices.yaml
      http: {tls_cert: tls/cert.pem, tls_key: tls/key.pem}
      mqtt: {enabled: false}
sinks:
  - name: out
    type: file
    path: var/metrics.lp
  - name: v3
    type: influxdb_v3
    url: http://127.0.0.1:8181
    database: d
    token_file: secrets/influx_token
"""


def render_from(cwd: Path, config: Path, output: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(
        cli, ["render-config", "--config", str(config), "--output", str(output), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    plugins = sorted((config.parent / "var" / "plugins").iterdir())
    return output.read_text() + "".join(p.read_text() for p in plugins)


def test_same_config_from_two_directories_renders_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    config = site / "bridge.yaml"
    config.write_text(CONFIG)
    (site / "devices.yaml").write_text("devices: {}\n")
    (tmp_path / "elsewhere").mkdir()
    output = tmp_path / "out" / "telegraf.conf"
    first = render_from(site, config, output, monkeypatch)
    second = render_from(tmp_path / "elsewhere", config, output, monkeypatch)
    assert first == second
    conf = tomllib.loads(output.read_text())
    assert conf["agent"]["buffer_directory"] == f"{site}/var/buffer"
    assert conf["agent"]["logfile"] == f"{site}/var/telegraf.log"
    assert conf["outputs"]["file"][0]["files"] == [f"{site}/var/metrics.lp"]
    solar = tomllib.loads((site / "var" / "plugins" / "solar.toml").read_text())
    assert solar["files"] == [f"{site}/data/*.ndjson", "/abs/*.ndjson"]
    assert solar["state_dir"] == f"{site}/var/state"
    demo = tomllib.loads((site / "var" / "plugins" / "demo.toml").read_text())
    assert demo["ndjson_dir"] == f"{site}/var/smartsolar"
    iot = tomllib.loads((site / "var" / "plugins" / "iot.toml").read_text())
    assert iot["registry"] == f"{site}/devices.yaml"
    assert iot["http"]["tls_cert"] == f"{site}/tls/cert.pem"


def test_settings_anchor_at_the_config_dir_or_base_dir(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "bridge.yaml"
    config.parent.mkdir()
    config.write_text(CONFIG)
    settings = load_settings(config, {})
    assert settings.agent.state_directory == f"{config.parent}/var/state"
    assert settings.sinks[1].token_file == f"{config.parent}/secrets/influx_token"
    elsewhere = load_settings(config, {}, base_dir=tmp_path / "data")
    assert elsewhere.agent.state_directory == f"{tmp_path}/data/var/state"
    # `python` may be a bare program name, looked up on PATH.
    text = "agent: {python: python3}\n"
    assert load_settings(None, {}, text=text, base_dir=tmp_path).agent.python == "python3"


def test_text_without_a_path_needs_a_base_dir() -> None:
    with pytest.raises(ValueError, match="needs base_dir"):
        load_settings(None, {}, text="agent: {}\n")
