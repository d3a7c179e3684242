"""Plugin options are checked at render time by each plugin's own parser (issue 15, finding 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.settings import InvalidConfig, load_settings

SINK = """
sinks:
  - name: out
    type: file
    path: /tmp/x.lp
"""


def problems(sources: str) -> list[str]:
    with pytest.raises(InvalidConfig) as info:
        load_settings(None, {}, text="sources:\n" + sources + SINK, base_dir=Path("/"))
    return info.value.problems


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "  - {name: s, plugin: ndjson_tail, options: {file: ['/d/*.ndjson']}}",
            "sources[0].options.file is not a known option (did you mean 'files'?)",
        ),
        (
            "  - {name: s, plugin: hoymiles, options: {hots: 192.168.1.5}}",
            "sources[0].options.hots is not a known option (did you mean 'host'?)",
        ),
        (
            "  - {name: s, plugin: hoymiles, options: {host: dtu, port: '502x'}}",
            "sources[0].options.port = '502x' is invalid: expected an integer",
        ),
        (
            "  - {name: s, plugin: hoymiles, options: {host: dtu, port: 70000}}",
            "sources[0].options.port = 70000 is invalid: expected 1..65535",
        ),
        (
            "  - {name: s, plugin: hoymiles, interval: 10s, options: {host: d, transport: wifi}}",
            "too short for the wifi transport",
        ),
        (
            "  - {name: s, plugin: taptap, options: {serial: /dev/ttyUSB0, command: [taptap]}}",
            "sources[0].options: taptap needs exactly one of: serial",
        ),
        (
            "  - {name: s, plugin: demo, options: {devices: 0}}",
            "sources[0].options.devices = 0 is invalid: expected an integer >= 1",
        ),
        (
            "  - {name: s, plugin: gpio_pulse, options: {window: 7s}}",
            "sources[0].options.window = 7s must be whole seconds dividing a day",
        ),
        (
            "  - {name: s, plugin: iotflow, options: {mqtt: {qos: 3}}}",
            "sources[0].options.mqtt.qos = 3 is invalid",
        ),
        (
            "  - {name: s, plugin: demo, options: {debug: 'yes'}}",
            "sources[0].options.debug = 'yes' is invalid: expected true or false",
        ),
        (
            "  - {name: s, plugin: gpio_pulse, options: {tiers: [{window: 7s, tier: t}]}}",
            "sources[0].options.tiers[0].window must be whole seconds dividing a day",
        ),
    ],
)
def test_bad_plugin_option_names_the_key(source: str, expected: str) -> None:
    found = problems(source)
    assert any(expected in p for p in found), found


def test_every_source_and_every_unknown_key_is_reported() -> None:
    found = problems(
        "  - {name: a, plugin: ndjson_tail, options: {file: [x], measuremnt: m}}\n"
        "  - {name: b, plugin: hoymiles, options: {hots: dtu}}\n"
    )
    assert found == [
        "sources[0].options.file is not a known option (did you mean 'files'?); "
        "see the plugin's sample.conf",
        "sources[0].options.measuremnt is not a known option (did you mean 'measurement'?); "
        "see the plugin's sample.conf",
        "sources[1].options.hots is not a known option (did you mean 'host'?); "
        "see the plugin's sample.conf",
    ]


def test_a_disabled_source_is_not_checked() -> None:
    text = "sources:\n  - {name: s, plugin: hoymiles, enabled: false, options: {hots: d}}" + SINK
    assert load_settings(None, {}, text=text, base_dir=Path("/")).active_sources() == []


def test_render_config_writes_nothing_on_a_bad_option(tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text("sources:\n  - {name: s, plugin: hoymiles, options: {hots: dtu}}" + SINK)
    output = tmp_path / "out" / "telegraf.conf"
    result = CliRunner().invoke(
        cli, ["render-config", "--config", str(config), "--output", str(output)]
    )
    assert result.exit_code != 0
    assert "sources[0].options.hots is not a known option (did you mean 'host'?)" in result.output
    assert not (tmp_path / "out").exists()
