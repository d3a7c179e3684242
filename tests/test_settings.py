"""bridge.yaml validation, environment overrides and the seeds' variable names."""

from __future__ import annotations

from pathlib import Path

import pytest
from telegraf_bridge.cli.settings import InvalidConfig, load_settings

MINIMAL = """
sources:
  - name: demo
    plugin: demo
sinks:
  - name: out
    type: file
    path: /tmp/x.lp
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(InvalidConfig) as info:
        load_settings(None, env or {}, text=text, base_dir=Path.cwd())
    return info.value.problems


def test_minimal_config_gets_every_default() -> None:
    settings = load_settings(None, {}, text=MINIMAL, base_dir=Path.cwd())
    assert settings.agent.buffer_strategy == "disk"
    assert settings.agent.buffer_max_size_mb == 500
    assert settings.sources[0].interval == "10s"
    assert settings.sources[0].signal == "none"
    assert settings.sinks[0].format == "influx"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("agent: {interval: soon}", "agent.interval = 'soon' is invalid: expected a duration"),
        (
            "agent: {buffer_strategy: tape}",
            "agent.buffer_strategy = 'tape' is invalid: expected one of 'disk', 'memory'",
        ),
        (
            "agent: {metric_batch_size: 0}",
            "agent.metric_batch_size = 0 is invalid: expected an integer >= 1",
        ),
        (
            "agent: {omit_hostname: maybe}",
            "agent.omit_hostname = 'maybe' is invalid: expected true or false",
        ),
        ("agent: {intervall: 10s}", "agent.intervall is not a known option; allowed:"),
        (
            "agent: {time_floor: yesterday}",
            "agent.time_floor = 'yesterday' is invalid: expected an RFC 3339 time",
        ),
        (
            "sources: [{name: Demo, plugin: demo}]",
            "sources[0].name = 'Demo' is invalid: expected a name",
        ),
        (
            "sources: [{name: d, plugin: gps}]",
            "sources[0].plugin = 'gps' is invalid: expected one of 'demo'",
        ),
        ("sources: [{plugin: demo}]", "sources[0].name is required"),
        (
            "sinks: [{name: s, type: influxdb_v5}]",
            "sinks[0].type = 'influxdb_v5' is invalid: expected one of 'influxdb_v2'",
        ),
        (
            "sinks: [{name: s, type: influxdb_v1, url: 'ftp://h', database: d}]",
            "sinks[0].url = 'ftp://h' is invalid: expected an http:// or https:// URL",
        ),
        (
            "sinks: [{name: s, type: influxdb_v2, url: 'http://h', organization: o, bucket: b}]",
            "sinks[0]: an InfluxDB v2/Cloud sink needs a token",
        ),
        (
            "sinks: [{name: s, type: influxdb_v3, url: 'http://h', database: d, token_env: A, token_file: /x}]",
            "sinks[0]: set token_env or token_file, not both",
        ),
        (
            "sinks: [{name: s, type: influxdb_v3, url: 'http://h', database: d, token_env: 'A-B'}]",
            "sinks[0].token_env = 'A-B' is invalid: expected an environment variable name",
        ),
        (
            "sinks: [{name: a, type: file, path: /x}, {name: a, type: file, path: /y}]",
            "sinks: name 'a' is used twice",
        ),
        (
            'sinks: [{name: s, type: file, path: "/x\\ny"}]',
            "sinks[0].path = '/x\\ny' is invalid: expected a single line of text",
        ),
        ("flux: {}", "flux is not a known section"),
        ("- a list", "the top level must be a mapping"),
        ("agent: [", "not valid YAML"),
    ],
)
def test_invalid_config_names_key_value_and_allowed(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_all_problems_are_reported_together() -> None:
    found = problems(
        "agent: {interval: x, flush_interval: y}\nsources: [{name: d, plugin: nope}]\n"
        "sinks: [{name: o, type: file, path: /x}]"
    )
    assert len(found) == 3


def test_literal_secrets_are_refused() -> None:
    found = problems(
        "sinks: [{name: s, type: influxdb_v2, url: 'http://h', organization: o, bucket: b, token: abc}]"
    )
    assert any("secrets are never accepted in the config file" in p for p in found)


def test_canonical_environment_overrides() -> None:
    text = (
        MINIMAL
        + """
  - name: cloud
    type: influxdb_v2
    url: https://eu-central-1-1.aws.cloud2.influxdata.com
    organization: o
    bucket: b
    token_env: INFLUX_TOKEN
"""
    )
    env = {
        "BRIDGE_AGENT_INTERVAL": "30s",
        "BRIDGE_AGENT_DEBUG": "true",
        "BRIDGE_SINK_CLOUD_BUCKET": "other",
        "BRIDGE_SOURCE_DEMO_ENABLED": "false",
    }
    settings = load_settings(None, env, text=text, base_dir=Path.cwd())
    assert settings.agent.interval == "30s"
    assert settings.agent.debug is True
    assert settings.sinks[1].bucket == "other"
    assert settings.active_sources() == []


def test_bad_environment_value_is_reported_like_a_file_value() -> None:
    assert any(
        "agent.metric_batch_size = 'many' is invalid" in p
        for p in problems(MINIMAL, {"BRIDGE_AGENT_METRIC_BATCH_SIZE": "many"})
    )


def test_seed_000_smartsolar_cloud_variables() -> None:
    env = {"INFLUX_TOKEN": "secret-000", "INFLUX_ORG": "solar-org", "INFLUX_BUCKET": "smartsolar"}
    settings = load_settings(None, env, text=MINIMAL, base_dir=Path.cwd())
    sink = settings.sinks[-1]
    assert sink.type == "influxdb_v2" and sink.name == "influx_cloud"
    assert sink.url == "https://us-east-1-1.aws.cloud2.influxdata.com"
    assert sink.organization == "solar-org" and sink.token_env == "INFLUX_TOKEN"


def test_seed_000_overrides_an_existing_v2_sink() -> None:
    text = (
        MINIMAL
        + """
  - name: cloud
    type: influxdb_v2
    url: https://us-west-2-1.aws.cloud2.influxdata.com
    organization: o
    bucket: b
    token_env: MY_TOKEN
"""
    )
    env = {
        "INFLUX_TOKEN": "t",
        "INFLUX_ORG": "o",
        "INFLUX_URL": "https://eu-central-1-1.aws.cloud2.influxdata.com",
    }
    settings = load_settings(None, env, text=text, base_dir=Path.cwd())
    assert [s.name for s in settings.sinks] == ["out", "cloud"]
    assert settings.sinks[1].url.startswith("https://eu-central-1")
    assert settings.sinks[1].token_env == "INFLUX_TOKEN"


def test_seed_001_hoymiles_v3_with_token_file_and_enabled_flag() -> None:
    env = {
        "INFLUXDB_ENABLED": "true",
        "INFLUXDB_HOST": "https://influx3.example",
        "INFLUXDB_TOKEN_FILE": "/run/secrets/influxdb_token",
    }
    sink = load_settings(None, env, text=MINIMAL, base_dir=Path.cwd()).sinks[-1]
    assert (sink.type, sink.url, sink.database) == (
        "influxdb_v3",
        "https://influx3.example",
        "hoymiles",
    )
    assert sink.token_file == "/run/secrets/influxdb_token" and sink.token_env == ""
    assert sink.enabled is True


def test_seed_001_disabled_when_enabled_flag_is_not_true() -> None:
    env = {"INFLUXDB_ENABLED": "false", "INFLUXDB_HOST": "https://h", "INFLUXDB_TOKEN": "x"}
    settings = load_settings(None, env, text=MINIMAL, base_dir=Path.cwd())
    assert settings.sinks[-1].enabled is False
    assert any("disabled" in n for n in settings.notes)


def test_seed_002_iotflow_variables() -> None:
    env = {
        "INFLUXDB_URL": "http://localhost:8086",
        "INFLUXDB_TOKEN": "t",
        "INFLUXDB_ORG": "iotflow",
    }
    sink = load_settings(None, env, text=MINIMAL, base_dir=Path.cwd()).sinks[-1]
    assert (sink.type, sink.bucket, sink.token_env) == (
        "influxdb_v2",
        "telemetry",
        "INFLUXDB_TOKEN",
    )


def test_seed_003_powerlogger_variables() -> None:
    env = {"INFLUX_HOST": "http://pi:8086", "INFLUX_ORG": "home", "INFLUX_TOKEN": "t"}
    settings = load_settings(None, env, text=MINIMAL, base_dir=Path.cwd())
    assert [s.name for s in settings.sinks] == ["out", "powerlogger"]
    assert settings.sinks[-1].bucket == "PowerLogger_raw"


def test_seed_004_tigo_v1_variables() -> None:
    env = {"INFLUX_URL": "http://127.0.0.1:8086", "INFLUX_DB": "bms", "INFLUX_RP": ""}
    sink = load_settings(None, env, text=MINIMAL, base_dir=Path.cwd()).sinks[-1]
    assert (sink.type, sink.database, sink.retention_policy) == ("influxdb_v1", "bms", "")


def test_partial_seed_variables_are_reported_not_guessed() -> None:
    settings = load_settings(None, {"INFLUX_TOKEN": "t"}, text=MINIMAL, base_dir=Path.cwd())
    assert [s.name for s in settings.sinks] == ["out"]
    assert settings.notes == [
        "INFLUX_TOKEN set but INFLUX_ORG not: seed 000 SmartSolar variables ignored"
    ]


def test_incomplete_sink_from_environment_says_where_it_came_from() -> None:
    found = problems(MINIMAL, {"INFLUX_TOKEN": "t", "INFLUX_ORG": "o", "INFLUX_URL": "nope"})
    assert found == [
        "sinks[1] (added from the seed 000 SmartSolar environment variables).url = 'nope' is "
        "invalid: expected an http:// or https:// URL"
    ]


def test_seed_001_dtu_variables_configure_a_hoymiles_source() -> None:
    env = {
        "DTU_HOST": "192.168.1.100",
        "DTU_PORT": "502",
        "MODBUS_UNIT_ID": "3",
        "QUERY_PERIOD": "90",
        "COMM_TIMEOUT": "3",
        "DTU_NAME": "Roof",
    }
    settings = load_settings(None, env, text=MINIMAL, base_dir=Path.cwd())
    (source,) = [s for s in settings.sources if s.plugin == "hoymiles"]
    assert source.options == {
        "host": "192.168.1.100",
        "port": 502,
        "unit_id": 3,
        "timeout": "3s",
        "dtu_name": "Roof",
    }
    assert source.interval == "90s"


def test_hoymiles_source_defaults_to_a_60s_interval() -> None:
    text = MINIMAL.replace(
        "name: demo\n    plugin: demo", "name: dtu\n    plugin: hoymiles\n    options: {host: dtu}"
    )
    (source,) = load_settings(None, {}, text=text, base_dir=Path.cwd()).sources
    assert source.interval == "60s"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"DTU_HOST": "dtu", "DTU_PORT": "xyz"},
            "DTU_PORT='xyz' is invalid: expected an integer",
        ),
        (
            {"DTU_HOST": "dtu", "QUERY_PERIOD": "abc"},
            "QUERY_PERIOD='abc' is invalid: expected a number of seconds, e.g. 60",
        ),
        (
            {"DTU_HOST": "dtu", "COMM_TIMEOUT": "nan"},
            "COMM_TIMEOUT='nan' is invalid: expected a number of seconds",
        ),
        (
            {"INFLUXDB_HOST": "https://h", "INFLUXDB_TOKEN": "t", "INFLUXDB_ENABLED": "maybe"},
            "INFLUXDB_ENABLED='maybe' is invalid: expected true or false",
        ),
        (
            {"TAPTAP_CMD": "taptap observe --serial '/dev/x"},
            'TAPTAP_CMD="taptap observe --serial \'/dev/x" is invalid: expected a command line',
        ),
    ],
)
def test_malformed_seed_variable_is_an_error(env: dict[str, str], expected: str) -> None:
    found = problems(MINIMAL, env)
    assert any(expected in p for p in found), found


def test_seed_004_tigo_ingest_env_configures_a_taptap_source_and_a_v1_sink() -> None:
    env = {
        "TAPTAP_CMD": "/home/pi/.cargo/bin/taptap observe --serial '/dev/serial/by-id/usb-FTDI x'",
        "INFLUX_MEASUREMENT": "tigo_power_report",
        "INFLUX_URL": "http://127.0.0.1:8086",
        "INFLUX_DB": "bms",
        "INFLUX_RP": "autogen",
    }
    settings = load_settings(None, env, text=MINIMAL, base_dir=Path.cwd())
    (source,) = [s for s in settings.sources if s.plugin == "taptap"]
    assert source.options == {
        "command": [
            "/home/pi/.cargo/bin/taptap",
            "observe",
            "--serial",
            "/dev/serial/by-id/usb-FTDI x",
        ],
        "measurement": "tigo_power_report",
    }
    (sink,) = [s for s in settings.sinks if s.type == "influxdb_v1"]
    assert (sink.database, sink.retention_policy) == ("bms", "autogen")


CLOUD_000 = {
    "INFLUX_TOKEN": "t",
    "INFLUX_ORG": "solar",
    "INFLUX_URL": "https://eu-central-1-1.aws.cloud2.influxdata.com",
}


def test_seed_000_cloud_with_seed_004_database_is_a_conflict_naming_both() -> None:
    (found,) = problems(MINIMAL, {**CLOUD_000, "INFLUX_DB": "bms"})
    assert found.startswith(
        "conflicting seed variables: seed 004 tigo-ingest (INFLUX_DB, INFLUX_URL) and "
        "seed 000 SmartSolar (INFLUX_ORG, INFLUX_TOKEN, INFLUX_URL) both read INFLUX_URL"
    )
    assert "bridge.yaml" in found and "unset one seed's variables" in found


def test_seeds_001_and_002_share_their_token_variable() -> None:
    env = {
        "INFLUXDB_HOST": "https://h3",
        "INFLUXDB_ENABLED": "true",
        "INFLUXDB_URL": "http://h2:8086",
        "INFLUXDB_ORG": "o",
        "INFLUXDB_TOKEN": "t",
    }
    (found,) = problems(MINIMAL, env)
    assert "seed 001 Hoymiles S-Miles" in found and "seed 002 IoTFlow" in found
    assert "both read INFLUXDB_TOKEN" in found


def test_seed_003_takes_the_shared_variables_but_000_only_ones_conflict() -> None:
    env = {"INFLUX_HOST": "http://pi:8086", "INFLUX_ORG": "home", "INFLUX_TOKEN": "t"}
    assert [s.name for s in load_settings(None, env, text=MINIMAL, base_dir=Path.cwd()).sinks] == [
        "out",
        "powerlogger",
    ]
    (found,) = problems(MINIMAL, {**env, "INFLUX_BUCKET": "solar"})
    assert found.startswith(
        "conflicting seed variables: INFLUX_BUCKET (seed 000 SmartSolar) set with INFLUX_HOST"
    )


def test_two_seed_sinks_of_one_type_never_share_a_sink() -> None:
    env = {
        "INFLUX_HOST": "http://pi:8086",
        "INFLUX_ORG": "home",
        "INFLUX_TOKEN": "t",
        "INFLUXDB_URL": "http://iot:8086",
        "INFLUXDB_ORG": "iot",
        "INFLUXDB_TOKEN": "t2",
    }
    sinks = load_settings(None, env, text=MINIMAL, base_dir=Path.cwd()).sinks
    assert [(s.name, s.url, s.token_env) for s in sinks[1:]] == [
        ("powerlogger", "http://pi:8086", "INFLUX_TOKEN"),
        ("iotflow", "http://iot:8086", "INFLUXDB_TOKEN"),
    ]
    with_v2 = MINIMAL + (
        "  - {name: mine, type: influxdb_v2, url: 'http://h', organization: o, bucket: b, "
        "token_env: T}\n"
    )
    (found,) = problems(with_v2, env)
    assert "would all configure the first influxdb_v2 sink of the file" in found


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"INFLUX_ORG": "o"}, "INFLUX_ORG set but INFLUX_TOKEN not: the seed 000"),
        ({"INFLUX_HOST": "http://h"}, "INFLUX_HOST set but INFLUX_ORG not: the seed 003"),
        ({"INFLUXDB_URL": "http://h"}, "INFLUXDB_URL set but INFLUXDB_ORG not: the seed 002"),
        ({"INFLUX_RP": "autogen"}, "INFLUX_RP set but INFLUX_DB not: the seed 004"),
        ({"INFLUXDB_ENABLED": "true"}, "INFLUXDB_ENABLED set but INFLUXDB_HOST not"),
    ],
)
def test_partial_seed_group_is_an_error(env: dict[str, str], expected: str) -> None:
    found = problems(MINIMAL, env)
    assert any(p.startswith(expected) for p in found), found


def test_sources_without_an_enabled_sink_fail_naming_the_fix() -> None:
    text = MINIMAL.replace("path: /tmp/x.lp", "path: /tmp/x.lp\n    enabled: false")
    (found,) = problems(text)
    assert found.startswith("no enabled sink:") and "`type: file`" in found
    env = {"DTU_HOST": "dtu", "INFLUXDB_HOST": "https://h", "INFLUXDB_ENABLED": "false"}
    assert any(p.startswith("no enabled sink:") for p in problems("", env))


def test_an_unquoted_time_floor_is_the_time_it_says() -> None:
    """YAML types `2025-05-25T00:00:00Z` as a timestamp; it must not be refused as "not a string"."""
    settings = load_settings(
        None,
        env={},
        text="agent: {time_floor: 2025-05-25T00:00:00Z}\nsinks: [{name: f, type: file, path: x}]\n",
        base_dir=Path("/tmp"),
    )
    assert settings.agent.time_floor == "2025-05-25T00:00:00Z"
