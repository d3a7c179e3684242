"""${VAR} in bridge.yaml (issue 15, finding 7) and YAML errors with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.settings import InvalidConfig, load_settings

CONFIG = """
# ${NOT_EXPANDED} in a comment is left alone
sources:
  - name: demo
    plugin: demo
    options:
      site: ${SITE:-roof}
sinks:
  - name: local
    type: influxdb_v1
    url: ${INFLUX_URL}
    database: ${MY_DB}
    retention_policy: $${literal}
  - name: cloud
    type: influxdb_v2
    url: https://eu-central-1-1.aws.cloud2.influxdata.com
    organization: o
    bucket: ${BUCKET:-solar}
    token_env: CLOUD_TOKEN
"""


def load(text: str, env: dict[str, str]) -> object:
    return load_settings(None, env, text=text, base_dir=Path("/"))


def problems(text: str, env: dict[str, str]) -> list[str]:
    with pytest.raises(InvalidConfig) as info:
        load(text, env)
    return info.value.problems


def test_references_expand_with_defaults_and_escape() -> None:
    env = {"INFLUX_URL": "http://127.0.0.1:8086", "MY_DB": "solar_db", "BUCKET": "b"}
    settings = load_settings(None, env, text=CONFIG, base_dir=Path("/"))
    local, cloud = settings.sinks
    assert (local.url, local.database) == ("http://127.0.0.1:8086", "solar_db")
    assert local.retention_policy == "${literal}"
    assert cloud.bucket == "b"
    assert settings.sources[0].options["site"] == "roof"


def test_unset_variable_names_the_key_and_the_variable() -> None:
    found = problems(CONFIG, {"INFLUX_URL": "http://h:8086"})
    assert found == [
        "sinks[0].database: environment variable MY_DB is not set; set it, or give a "
        "default with ${MY_DB:-value}"
    ]


def test_expanded_value_is_validated_like_a_literal() -> None:
    found = problems(CONFIG, {"INFLUX_URL": "nope", "MY_DB": "d"})
    assert found == ["sinks[0].url = 'nope' is invalid: expected an http:// or https:// URL"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    bucket: ${CLOUD_TOKEN}", "sinks[1].bucket: ${CLOUD_TOKEN} would write a secret"),
        ("    bucket: x${API_PASSWORD}", "sinks[1].bucket: ${API_PASSWORD} would write a secret"),
        (
            "    bucket: b\n    insecure_skip_verify: false\n    timeout: ${T",
            "sinks[1].timeout = '${T' has a malformed reference",
        ),
    ],
)
def test_secrets_stay_references(line: str, expected: str) -> None:
    text = CONFIG.replace("    bucket: ${BUCKET:-solar}", line)
    env = {"INFLUX_URL": "http://h:8086", "MY_DB": "d", "CLOUD_TOKEN": "s3cr3t", "T": "5s"}
    found = problems(text, env)
    assert any(expected in p for p in found), found
    assert not any("s3cr3t" in p for p in found)


def test_token_env_holds_a_name_never_a_reference() -> None:
    text = CONFIG.replace("token_env: CLOUD_TOKEN", "token_env: ${CLOUD_TOKEN}")
    found = problems(text, {"INFLUX_URL": "http://h:8086", "MY_DB": "d", "CLOUD_TOKEN": "s"})
    assert found[0] == (
        "sinks[1].token_env = '${CLOUD_TOKEN}': token_env holds the variable's name, which "
        "Telegraf reads at start-up: write it without ${...}, e.g. INFLUX_TOKEN"
    )
    assert not any("'s'" in p for p in found)  # the value was never read


def test_render_config_expands_and_keeps_the_token_a_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(CONFIG)
    for name, value in {
        "INFLUX_URL": "http://127.0.0.1:8086",
        "MY_DB": "solar_db",
        "CLOUD_TOKEN": "s3cr3t",
    }.items():
        monkeypatch.setenv(name, value)
    output = tmp_path / "telegraf.conf"
    result = CliRunner().invoke(
        cli, ["render-config", "--config", str(config), "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    conf = output.read_text()
    assert 'database = "solar_db"' in conf and "${MY_DB}" not in conf
    assert "${CLOUD_TOKEN}" in conf and "s3cr3t" not in conf


def test_yaml_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text("agent:\n  interval: 10s\n  debug: x: y\n")
    output = tmp_path / "telegraf.conf"
    result = CliRunner().invoke(
        cli, ["render-config", "--config", str(config), "--output", str(output)]
    )
    assert result.exit_code != 0
    assert f"{config}:3:11: not valid YAML: mapping values are not allowed here" in result.output
    assert not output.exists()
