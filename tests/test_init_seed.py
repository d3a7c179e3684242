"""``bridge-cli init --seed NNN``: each seed's sources and sinks, its variables as ${...}.

The validation tests load the written file with the seed's variables set, through the
``${VAR}``/``${VAR:-default}`` expansion of ``load_settings``, and render it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from telegraf_bridge.cli import render
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.seed_templates import SEEDS
from telegraf_bridge.cli.settings import load_settings

CANARY = "SECRET-canary-7f3a"
# The seed's variables, as a user following its README would have them.
SEED_ENV = {
    "000": {"INFLUX_TOKEN": CANARY, "INFLUX_ORG": "my-org"},
    "001": {
        "INFLUXDB_ENABLED": "true",
        "INFLUXDB_HOST": "http://127.0.0.1:8181",
        "INFLUXDB_TOKEN": CANARY,
        "DTU_HOST": "192.168.1.50",
    },
    "002": {"INFLUXDB_TOKEN": CANARY},
    "003": {"INFLUX_HOST": "http://127.0.0.1:8086", "INFLUX_ORG": "home", "INFLUX_TOKEN": CANARY},
    "004": {"TAPTAP_CMD": "/opt/taptap/bin/taptap observe --serial /dev/ttyUSB0"},
}
# (plugin of the source, type of the sink, a line the rendered telegraf.conf holds)
EXPECTED = {
    "000": (
        "ndjson_tail",
        "influxdb_v2",
        'urls = ["https://us-east-1-1.aws.cloud2.influxdata.com"]',
    ),
    "001": ("hoymiles", "influxdb_v3", 'database = "hoymiles"'),
    "002": ("iotflow", "influxdb_v2", 'bucket = "telemetry"'),
    "003": ("gpio_pulse", "influxdb_v2", 'organization = "home"'),
    "004": ("taptap", "influxdb_v1", 'database = "bms"'),
}


def _init(*args: str) -> Result:
    return CliRunner().invoke(cli, ["init", *args])


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_each_seed_validates_with_its_variables_and_renders(seed: str, tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    assert _init("--seed", seed, str(path)).exit_code == 0
    text = path.read_text()
    assert "${" in text, "the seed's variables are references, not values"
    settings = load_settings(path, SEED_ENV[seed])
    plugin, sink_type, line = EXPECTED[seed]
    assert [s.plugin for s in settings.active_sources()] == [plugin]
    assert [s.type for s in settings.active_sinks()] == [sink_type]
    rendered = render.render(settings, tmp_path / "telegraf.conf", config_source=str(path))
    assert line in rendered.telegraf_conf
    assert CANARY not in rendered.telegraf_conf, "tokens stay references"


def test_seed_000_reads_the_seeds_cloud_variables(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    assert _init("--seed", "000", str(path)).exit_code == 0
    text = path.read_text()
    assert "url: ${INFLUX_URL:-https://us-east-1-1.aws.cloud2.influxdata.com}" in text
    assert "organization: ${INFLUX_ORG}" in text and "token_env: INFLUX_TOKEN" in text
    env = {**SEED_ENV["000"], "INFLUX_URL": "https://eu-central-1-1.aws.cloud2.influxdata.com"}
    sink = load_settings(path, env).active_sinks()[0]
    assert sink.url == env["INFLUX_URL"] and sink.organization == "my-org"
    assert sink.bucket == "smartsolar" and sink.token_env == "INFLUX_TOKEN"


@pytest.mark.parametrize(
    ("seed", "steps"),
    [
        ("000", ["export INFLUX_TOKEN=... INFLUX_ORG=...", "migrate-ndjson --config {p}"]),
        ("001", ["export INFLUXDB_ENABLED=true INFLUXDB_HOST=... INFLUXDB_TOKEN=... DTU_HOST=..."]),
        ("002", ["export INFLUXDB_TOKEN=...", "bridge-cli devices add --config {p} DEVICE_ID"]),
        ("003", ["export INFLUX_HOST=...", "bridge-cli setup-influxdb --config {p}"]),
        ("004", ["export TAPTAP_CMD=..."]),
    ],
)
def test_init_prints_the_next_steps(seed: str, steps: list[str], tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    result = _init("--seed", seed, str(path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {path} for seed {seed} (")
    for step in [*steps, "bridge-cli check-config --config {p}", "bridge-cli run --config {p}"]:
        assert step.format(p=path) in result.output
    lines = result.output.splitlines()
    check = next(i for i, x in enumerate(lines) if "check-config" in x)
    run = next(i for i, x in enumerate(lines) if "bridge-cli run" in x)
    assert check < run
    assert f"docs/seeds/{seed}-" in result.output


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text("mine\n")
    refused = _init("--seed", "004", str(path))
    assert refused.exit_code == 1
    assert "already exists; use --force to overwrite it" in refused.output
    assert path.read_text() == "mine\n"
    forced = _init("--seed", "004", "--force", str(path))
    assert forced.exit_code == 0 and "plugin: taptap" in path.read_text()


def test_unknown_seed_and_missing_directory_are_refused(tmp_path: Path) -> None:
    unknown = _init("--seed", "005", str(tmp_path / "b.yaml"))
    assert unknown.exit_code == 2 and "'005' is not one of '000', '001', '002', '003', '004'" in (
        unknown.output
    )
    missing = _init("--seed", "000", str(tmp_path / "nope" / "b.yaml"))
    assert missing.exit_code == 1 and "does not exist; create it first" in missing.output
    assert list(tmp_path.iterdir()) == []


def test_plain_init_is_still_the_demo_starter(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    assert _init(str(path)).exit_code == 0
    assert "plugin: demo" in path.read_text()


def test_help_names_every_seed() -> None:
    result = _init("--help")
    assert result.exit_code == 0
    for words in ("--seed [000|001|002|003|004]", "SmartSolar", "PowerLogger", "${VAR}"):
        assert words in " ".join(result.output.split())
