"""Rendering: golden files per example, no secret ever written, modes and atomicity."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import jinja2
import pytest
from _support import EXAMPLES, GOLDEN
from click.testing import CliRunner
from telegraf_bridge.cli import render
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.settings import load_settings
from telegraf_bridge.cli.toml_values import raw_string, toml_value

CANARY = "CANARY-7f3a9-token-value"
SECRET_VARS = ("INFLUX_TOKEN", "INFLUXDB_TOKEN", "MY_PASSWORD")


def _render_example(name: str, out_dir: Path, env: dict[str, str]) -> Path:
    settings = load_settings(EXAMPLES / f"{name}.yaml", env)
    output = out_dir / "telegraf.conf"
    render.write(render.render(settings, output, config_source=f"examples/{name}.yaml"), output)
    return output


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.yaml")))
def test_example_matches_golden_file(name: str, tmp_path: Path) -> None:
    env = {"BRIDGE_AGENT_PYTHON": "/usr/bin/python3"}
    output = _render_example(name, tmp_path / "out", env)
    # Relative paths in the example resolve against its own directory.
    text = output.read_text().replace(str(tmp_path), "<TMP>").replace(str(EXAMPLES), "<EXAMPLES>")
    golden = GOLDEN / f"{name}.conf"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"rendered {name} differs from {golden}; see the diff above"


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.yaml")))
def test_no_rendered_file_contains_a_token(name: str, tmp_path: Path) -> None:
    env = dict.fromkeys(SECRET_VARS, CANARY)
    env |= {"INFLUXDB_HOST": "https://h3", "INFLUXDB_ENABLED": "true"}
    env |= {"INFLUX_HOST": "http://h2", "INFLUX_ORG": "o"}
    out = tmp_path / "out"
    _render_example(name, out, env)
    files = list(out.rglob("*"))
    assert files
    for path in files:
        if path.is_file():
            assert CANARY not in path.read_text(), f"token value leaked into {path}"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_render_config_cli_writes_references_only(tmp_path: Path) -> None:
    output = tmp_path / "telegraf.conf"
    result = CliRunner().invoke(
        cli,
        ["render-config", "--config", str(EXAMPLES / "cloud.yaml"), "--output", str(output)],
        env={"INFLUX_TOKEN": CANARY},
    )
    assert result.exit_code == 0, result.output
    text = output.read_text()
    assert 'token = "${INFLUX_TOKEN}"' in text
    assert CANARY not in text and CANARY not in result.output


def test_invalid_config_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bridge.yaml"
    bad.write_text("agent: {interval: never}\nsinks: [{name: x, type: file}]\n")
    output = tmp_path / "telegraf.conf"
    result = CliRunner().invoke(
        cli, ["render-config", "--config", str(bad), "--output", str(output)]
    )
    assert result.exit_code == 1
    assert "agent.interval = 'never' is invalid" in result.output
    assert "sinks[0].path is required" in result.output
    assert list(tmp_path.iterdir()) == [bad]


def test_dollar_in_values_cannot_pull_in_environment_variables() -> None:
    assert toml_value("a${HOME}b") == '"a$${HOME}b"'
    assert raw_string("${INFLUX_TOKEN}") == '"${INFLUX_TOKEN}"'
    assert toml_value('q"uote\\\n\x00') == '"q\\"uote\\\\\\n\\u0000"'


def test_token_file_becomes_a_secret_store_reference(tmp_path: Path) -> None:
    text = """
sinks:
  - name: v3
    type: influxdb_v3
    url: http://127.0.0.1:8181
    database: db
    token_file: /run/secrets/influxdb_token
"""
    settings = load_settings(None, {}, text=text, base_dir=Path.cwd())
    conf = render.render(settings, tmp_path / "t.conf").telegraf_conf
    assert '[[secretstores.docker]]\n  id = "tokenfile_v3"\n  path = "/run/secrets"' in conf
    assert 'token = "@{tokenfile_v3:influxdb_token}"' in conf


def test_token_file_with_unusable_name_is_a_clear_error(tmp_path: Path) -> None:
    text = """
sinks: [{name: v3, type: influxdb_v3, url: "http://h", database: d, token_file: /x/my-token.txt}]
"""
    settings = load_settings(None, {}, text=text, base_dir=Path.cwd())
    with pytest.raises(Exception, match="letters, digits and '_' only"):
        render.render(settings, tmp_path / "t.conf")


def test_templates_cannot_interpolate_unescaped_values(tmp_path: Path) -> None:
    env = render.environment()
    with pytest.raises(jinja2.TemplateError, match="without \\|toml"):
        env.from_string("bucket = {{ value }}").render(value='x" injected = "y')
