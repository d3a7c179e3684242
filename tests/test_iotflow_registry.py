"""The device registry, `bridge-cli devices`, the files derived from it, and the MQTT render."""

from __future__ import annotations

import grp
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from _support import render_yaml
from click.testing import CliRunner
from telegraf_bridge.cli.main import cli
from telegraf_bridge.plugins.iotflow import registry
from telegraf_bridge.plugins.iotflow.registry import Device, Registry, RegistryError


def _devices(args: list[str], reg: Path, *, input_text: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["devices", *args, "--registry", str(reg)], input=input_text)
    return result.exit_code, result.output


def _add(reg: Path, device_id: str, *extra: str) -> str:
    result = CliRunner().invoke(
        cli, ["devices", "add", device_id, "--json", *extra, "--registry", str(reg)]
    )
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["api_key"])


def test_hash_is_mosquittos_own_format_both_ways(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "dev", "s3cret"], check=True)
    theirs = passwd.read_text().strip().split(":", 1)[1]
    assert theirs.startswith("$7$")
    assert registry.verify_key("s3cret", theirs)
    assert not registry.verify_key("s3cret!", theirs)
    ours = registry.hash_key("s3cret")
    assert ours.startswith("$7$101$") and registry.verify_key("s3cret", ours)
    for broken in ("", "$6$x$y", "$7$abc$!!$!!", "$7$0$AAAA$AAAA"):
        assert not registry.verify_key("s3cret", broken)


def test_authenticate_gives_no_hint_which_part_was_wrong() -> None:
    key_a = registry.new_key()[1]
    key_b = registry.new_key()[1]
    reg = Registry()
    for device_id, key in (("a", key_a), ("b", key_b)):
        key_id = key.split("_")[1]
        reg.devices[device_id] = Device(device_id, key_id=key_id, key_hash=registry.hash_key(key))
    assert reg.authenticate(key_a) == reg.devices["a"]
    assert reg.authenticate(key_a, "a") == reg.devices["a"]
    unknown_id = "iot_" + "0" * 16 + key_a[-44:]
    for key, device_id in (
        (key_a, "b"),  # a key of another device
        (key_a[:-1] + ("A" if key_a[-1] != "A" else "B"), None),  # wrong secret
        (unknown_id, None),  # key id of no device
        ("", None),
        ("not a key", None),
        (key_a, "nobody"),  # unknown device
    ):
        assert reg.authenticate(key, device_id) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("devices: [{id: 'a b', key_id: '0123456789abcdef', key_hash: '$7$x'}]", "is invalid"),
        ("devices: [{id: a}]", "key_id/key_hash missing"),
        ("devices: [{id: a, key_id: '0123456789abcdef', key_hash: '$7$x', pin: 1}]", "unknown"),
        (
            "devices: [{id: a, key_id: '0123456789abcdef', key_hash: '$7$x'},"
            " {id: a, key_id: '0123456789abcdee', key_hash: '$7$x'}]",
            "appears twice",
        ),
        ("devices: {a: 1}", "must be a list"),
        (
            "devices: [{id: telegraf-bridge, key_id: '0123456789abcdef', key_hash: '$7$'}]",
            "reserved",
        ),
        (
            "devices: [{id: a, name: \"x\\ny\", key_id: '0123456789abcdef', key_hash: '$7$'}]",
            "control",
        ),
        ("[", "not valid YAML"),
    ],
)
def test_a_broken_registry_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(RegistryError, match=problem):
        registry.parse(text)


def test_add_shows_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    reg_path = tmp_path / "conf" / "devices.yaml"
    key = _add(reg_path, "esp32_001", "--name", "Office Sensor", "--location", "office")
    stored = registry.load(reg_path)
    device = stored.devices["esp32_001"]
    assert device.name == "Office Sensor" and stored.authenticate(key) == device
    for path in (tmp_path / "conf").rglob("*"):
        if path.is_file():
            assert key not in path.read_text(), f"the key leaked into {path}"
    assert stat.S_IMODE(reg_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "conf" / "mqtt_password").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "conf" / "mosquitto" / "passwd").stat().st_mode) == 0o640
    code, listing = _devices(["list"], reg_path)
    assert code == 0 and "esp32_001" in listing and "Office Sensor" in listing
    assert "$7$" not in listing and key not in listing
    listing_json = CliRunner().invoke(
        cli, ["devices", "list", "--json", "--registry", str(reg_path)]
    )
    assert json.loads(listing_json.stdout)["devices"][0]["device_id"] == "esp32_001"


def test_generated_files_follow_the_registry(tmp_path: Path) -> None:
    reg_path = tmp_path / "devices.yaml"
    _add(reg_path, "esp32_001", "--name", "Office", "--type", "environmental")
    _add(reg_path, "esp32_002", "--location", "garage")
    table = json.loads((tmp_path / "devices.tags.json").read_text())
    assert table == {
        "esp32_001": {"device_name": "Office", "device_type": "environmental"},
        "esp32_002": {"location": "garage"},
    }
    users = [line.split(":")[0] for line in (tmp_path / "mosquitto/passwd").read_text().split()]
    assert users == ["telegraf-bridge", "esp32_001", "esp32_002"]
    acl = (tmp_path / "mosquitto/acl").read_text()
    assert "pattern write iotflow/devices/%u/telemetry/+" in acl
    conf = (tmp_path / "mosquitto/iotflow.conf").read_text()
    assert "allow_anonymous false" in conf and f"password_file {tmp_path}/mosquitto/passwd" in conf
    code, out = _devices(["remove", "esp32_001", "--yes"], reg_path)
    assert code == 0, out
    assert "esp32_001" not in (tmp_path / "mosquitto/passwd").read_text()
    assert "esp32_001" not in json.loads((tmp_path / "devices.tags.json").read_text())


def test_rotate_key_revokes_the_old_key(tmp_path: Path) -> None:
    reg_path = tmp_path / "devices.yaml"
    old = _add(reg_path, "esp32_001")
    result = CliRunner().invoke(
        cli, ["devices", "rotate-key", "esp32_001", "--json", "--registry", str(reg_path)]
    )
    assert result.exit_code == 0, result.output
    new = json.loads(result.stdout)["api_key"]
    stored = registry.load(reg_path)
    assert new != old
    assert stored.authenticate(new) is not None and stored.authenticate(old) is None


@pytest.mark.parametrize("group", ["1883", "mosquitto"])
def test_passwd_goes_to_the_broker_group_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: str
) -> None:
    """A container's broker has its own gid (eclipse-mosquitto: 1883): a gid or a name works."""
    monkeypatch.setenv("BRIDGE_MOSQUITTO_GROUP", group)
    reg_path = tmp_path / "devices.yaml"
    result = CliRunner().invoke(cli, ["devices", "add", "esp32_001", "--registry", str(reg_path)])
    assert result.exit_code == 0, result.output
    passwd = (tmp_path / "mosquitto" / "passwd").stat()
    expected = 1883 if group.isdigit() else grp.getgrnam(group).gr_gid
    assert passwd.st_gid == expected, result.output
    assert stat.S_IMODE(passwd.st_mode) == 0o640
    assert "note:" not in result.output


def test_an_unknown_broker_group_is_a_note_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_MOSQUITTO_GROUP", "no-such-group-here")
    reg_path = tmp_path / "devices.yaml"
    result = CliRunner().invoke(cli, ["devices", "add", "esp32_001", "--registry", str(reg_path)])
    assert result.exit_code == 0, result.output
    assert "no 'no-such-group-here' group here" in result.output
    assert "BRIDGE_MOSQUITTO_GROUP" in result.output
    assert (tmp_path / "mosquitto" / "passwd").stat().st_gid == os.getegid()


def test_bad_requests_are_refused_clearly(tmp_path: Path) -> None:
    reg_path = tmp_path / "devices.yaml"
    _add(reg_path, "esp32_001")
    assert _devices(["add", "esp32_001"], reg_path) == (
        1,
        "Error: device 'esp32_001' is already registered; use rotate-key for a new key\n",
    )
    code, out = _devices(["add", "iotflow/devices/#"], reg_path)
    assert code == 1 and "is invalid" in out
    code, out = _devices(["add", "x", "--name", "a\tb"], reg_path)
    assert code == 1 and "control characters" in out
    code, out = _devices(["remove", "nobody", "--yes"], reg_path)
    assert code == 1 and "no device 'nobody'" in out
    code, out = _devices(["remove", "esp32_001"], reg_path, input_text="n\n")
    assert code == 1 and "esp32_001" in registry.load(reg_path).devices
    code, out = _devices(["remove", "esp32_001"], reg_path)  # no input at all: refuse
    assert code == 1 and "--yes" in out
    code, out = _devices(["rotate-key", "nobody"], reg_path)
    assert code == 1
    result = CliRunner().invoke(cli, ["devices", "list"])
    assert result.exit_code == 1 and "--registry" in result.output


def _iotflow_yaml(tmp_path: Path, options: str) -> str:
    return f"""
agent:
  buffer_strategy: memory
  state_directory: {tmp_path / "state"}
  health_listen: ""
sources:
  - name: devices
    plugin: iotflow
    options:
      registry: {tmp_path / "reg" / "devices.yaml"}
{options}
sinks:
  - name: out
    type: file
    path: {tmp_path / "out.lp"}
"""


def test_render_mqtt_consumer_with_tracking_and_registry_tags(tmp_path: Path) -> None:
    _add(tmp_path / "reg" / "devices.yaml", "esp32_001", "--name", "Office")
    text = _iotflow_yaml(
        tmp_path,
        "      string_tags: [sensor_type]\n      http: {enabled: false}\n"
        "      mqtt: {servers: ['tcp://10.0.0.2:1883']}\n",
    )
    conf = render_yaml(text, tmp_path / "out").read_text()
    assert "[[inputs.execd]]" not in conf  # HTTP disabled: no plugin process
    for line in (
        'servers = ["tcp://10.0.0.2:1883"]',
        'topics = ["iotflow/devices/+/telemetry/+"]',
        "qos = 1",
        "persistent_session = true",
        'password = "@{sourcefile_devices:mqtt_password}"',
        'tag_keys = ["sensor_type"]',
        'measurement = "_/_/_/_/measurement"',
        'tags = "_/_/device_id/_/_"',
        f'files = ["{tmp_path}/reg/devices.tags.json"]',
        'key = "{{.Tag \\"device_id\\"}}"',
        'topic = ["iotflow/devices/*"]',
    ):
        assert line in conf, line
    assert "Office" not in conf  # the tags live in the lookup file, not the config
    table = json.loads((tmp_path / "reg" / "devices.tags.json").read_text())
    assert table == {"esp32_001": {"device_name": "Office"}}


def test_render_password_from_env_and_options_validated(tmp_path: Path) -> None:
    text = _iotflow_yaml(
        tmp_path, "      http: {enabled: false}\n      mqtt: {password_env: MQTT_PW}\n"
    )
    conf = render_yaml(text, tmp_path / "out").read_text()
    assert 'password = "${MQTT_PW}"' in conf
    for options, problem in (
        ("      http: {enabled: false}\n      mqtt: {enabled: false}\n", "both http and mqtt"),
        ("      mqtt: {qos: 3}\n", "qos"),
        ("      string_tags: [device_id]\n", "string_tags"),
        ("      http: {listen: 'nowhere'}\n", "listen"),
        ("      mqtt: {servers: ['localhost']}\n", "servers"),
        (
            "      mqtt: {sevrers: []}\n",
            r"mqtt\.sevrers is not a known option \(did you mean 'servers'\?\)",
        ),
    ):
        with pytest.raises(Exception, match=problem):
            render_yaml(_iotflow_yaml(tmp_path, options), tmp_path / "bad")


@pytest.mark.telegraf
def test_rendered_mqtt_config_passes_telegrafs_config_check(tmp_path: Path) -> None:
    _add(tmp_path / "reg" / "devices.yaml", "esp32_001")
    text = _iotflow_yaml(tmp_path, "      http: {enabled: false}\n")
    conf = render_yaml(text, tmp_path / "out")
    result = CliRunner().invoke(cli, ["check-config", str(conf), "--skip-test"])
    assert result.exit_code == 0, result.output
