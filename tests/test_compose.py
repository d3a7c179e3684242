"""The home-server stack (docker-compose.yml, .env.example, deploy/compose/), checked for real.

No Docker engine runs here, so each part is checked by what judges it in production:
- the Compose specification's JSON schema and compose-go's loader (what `docker compose
  config` runs: .env interpolation, profiles, undefined volumes or services);
- the bridge configs through `bridge-cli devices export`, `render-config` and the real
  Telegraf's config check, with the environment the compose file gives the container;
- the Mosquitto config through the real Mosquitto, with the auth files `bridge-cli devices`
  generates, the broker dropping root and reading the password file through its group;
- the Grafana provisioning against the fields Grafana's provisioning documentation requires,
  and every plugin's InfluxQL dashboard mounted into the provider's folder;
- the influxdb-setup one-shot's `bridge-cli setup-influxdb` against the real InfluxDB 2, which
  creates the tiers and the InfluxQL mappings the dashboards query through.
"""

from __future__ import annotations

import copy
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from _support import REPO
from click.testing import CliRunner
from compose_load import harness
from paho.mqtt.enums import CallbackAPIVersion
from rig import InfluxD2, find_mosquitto, free_port, wait_for
from telegraf_bridge.cli.main import cli

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DEPLOY = REPO / "deploy" / "compose"
BRIDGE_CONFIGS = {
    "influxdb2": DEPLOY / "bridge.yaml",
    "influxdb1": DEPLOY / "bridge-influxdb1.yaml",
}
GRAFANA = DEPLOY / "grafana" / "provisioning"
DASHBOARDS = sorted(REPO.glob("plugins/*/dashboards/*-influxql.json"))
# Container paths of deploy/compose/*.yaml and of the Mosquitto config, mapped into tmp_path.
CONTAINER_ROOTS = ("/etc/telegraf-bridge", "/var/lib/telegraf-bridge", "/mosquitto")
SECRET_WORDS = ("TOKEN", "PASSWORD", "SECRET")


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _compose_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def _profiles() -> tuple[str, ...]:
    """The profiles `docker compose` enables with .env.example (its COMPOSE_PROFILES)."""
    return tuple(p for p in _env_example()["COMPOSE_PROFILES"].split(",") if p)


def _loaded(profiles: tuple[str, ...]) -> dict[str, Any]:
    result = harness.load([COMPOSE], env_file=ENV_EXAMPLE, profiles=profiles)
    assert result.returncode == 0, result.stderr
    return result.project


def _map_paths(text: str, root: Path) -> str:
    """Container paths (a root at the start of a path, not inside a URL or a longer path)."""
    for container in CONTAINER_ROOTS:
        text = re.sub(
            rf"(?<![\w./:-]){re.escape(container)}(?=/|$|\s|\")", f"{root}{container}", text
        )
    return text


def _uncommented(text: str) -> str:
    """The lines that are not comments (comments are not interpolated by compose or Grafana)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


# -- the Compose specification ------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    assert harness.schema_errors(_compose_doc()) == []


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d["services"]["bridge"].update(restart=["always"]), "is not of type"),
        (lambda d: d["services"]["mosquitto"].update(helthcheck={}), "helthcheck"),
        (
            lambda d: d["services"]["grafana"]["depends_on"]["influxdb"].pop("condition"),
            "condition",
        ),
        (lambda d: d["volumes"].update({"bad name!": None}), "bad name!"),
    ],
)
def test_schema_validation_catches_a_broken_copy(
    mutate: Callable[[dict[str, Any]], Any], problem: str
) -> None:
    doc = copy.deepcopy(_compose_doc())
    mutate(doc)
    errors = harness.schema_errors(doc)
    assert errors and any(problem in e for e in errors), errors


@pytest.mark.parametrize("profiles", [(), ("influxdb2",), ("influxdb1",)])
def test_compose_go_loads_the_stack_for_each_profile(profiles: tuple[str, ...]) -> None:
    result = harness.load([COMPOSE], env_file=ENV_EXAMPLE, profiles=profiles)
    assert result.returncode == 0, result.stderr
    assert "not set" not in result.stderr, result.stderr  # every ${VAR} has a value
    services = set(result.project["services"])
    databases = {"influxdb2": {"influxdb", "influxdb-setup"}, "influxdb1": {"influxdb1"}}
    expected = {"bridge", "devices", "mosquitto", "grafana"}
    for profile in profiles:
        expected |= databases[profile] | {"influxdb-setup"}
    assert services == expected
    env = _env_example()
    bridge = result.project["services"]["bridge"]
    assert bridge["environment"]["BRIDGE_SINK_INFLUXDB2_ORGANIZATION"] == env["INFLUXDB_ORG"]
    published = {
        p["published"] for s in result.project["services"].values() for p in s.get("ports", [])
    }
    wanted = {env[k] for k in ("GRAFANA_PORT", "MQTT_PORT", "IOTFLOW_HTTP_PORT")}
    assert wanted <= published
    for name, service in result.project["services"].items():
        assert service.get("restart") in ("unless-stopped", "no"), name
        assert "healthcheck" in service, f"{name} declares no health check"
        for mount in service.get("volumes", []):
            if mount["type"] == "bind":  # a typo in a mounted path fails here, not at `up`
                assert Path(mount["source"]).exists(), f"{name}: {mount['source']}"


def test_compose_go_loads_with_the_profiles_env_example_selects() -> None:
    assert _profiles() == ("influxdb2",)
    project = _loaded(_profiles())
    setup = project["services"]["influxdb-setup"]
    assert setup["depends_on"]["influxdb"]["condition"] == "service_healthy"
    bridge = project["services"]["bridge"]
    assert bridge["depends_on"]["devices"]["condition"] == "service_completed_successfully"
    assert bridge["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    mosquitto = project["services"]["mosquitto"]
    assert mosquitto["depends_on"]["devices"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("- bridge-data:/var/lib/telegraf-bridge", "- brige-data:/var/lib", "undefined volume"),
        (
            "      mosquitto:\n        condition: service_healthy",
            "      mosquito:\n        condition: service_healthy",
            "undefined service",
        ),
        ('"${MQTT_PORT}:1883"', '"${MQTT_PORT}:1883x"', "1883x"),
        (
            "      interval: 10s\n      timeout: 5s\n      retries: 6",
            "      interval: 10 seconds\n      timeout: 5s\n      retries: 6",
            "10 seconds",
        ),
    ],
)
def test_compose_go_rejects_a_broken_copy(tmp_path: Path, old: str, new: str, problem: str) -> None:
    text = COMPOSE.read_text()
    assert old in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    result = harness.load([broken], env_file=ENV_EXAMPLE, profiles=_profiles(), workdir=REPO)
    assert result.returncode != 0, f"compose-go accepted a copy with {new!r}"
    assert problem in result.stderr, result.stderr


def test_compose_go_names_a_variable_missing_from_the_env_file(tmp_path: Path) -> None:
    env = tmp_path / "partial.env"
    env.write_text(
        "".join(
            line + "\n"
            for line in ENV_EXAMPLE.read_text().splitlines()
            if not line.startswith("GRAFANA_PORT=")
        )
    )
    result = harness.load([COMPOSE], env_file=env, profiles=_profiles())
    assert "GRAFANA_PORT" in result.stderr, result.stderr


# -- .env.example ---------------------------------------------------------------------------------


def test_env_example_and_the_compose_file_name_the_same_variables() -> None:
    text = _uncommented(COMPOSE.read_text()).replace("$$", "")  # $$: a literal $
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    assert "$" not in re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", "", text), "bare $VAR in compose"
    documented = set(_env_example())
    compose_settings = {k for k in documented if k.startswith("COMPOSE_")}  # read by compose
    assert used == documented - compose_settings
    for line in ENV_EXAMPLE.read_text().splitlines():
        if re.match(r"^[A-Z0-9_]+=", line):
            at = ENV_EXAMPLE.read_text().splitlines().index(line)
            above = ENV_EXAMPLE.read_text().splitlines()[at - 1]
            assert above.startswith("#") or re.match(r"^[A-Z0-9_]+=", above), (
                f"{line.split('=')[0]} is not documented by a comment above its group"
            )


def test_no_secret_is_written_in_the_compose_file_or_env_example() -> None:
    for key, value in _env_example().items():
        if any(word in key for word in SECRET_WORDS):
            assert value.startswith("change-me"), f"{key} in .env.example must be a placeholder"
    doc = _compose_doc()
    for name, service in doc["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in SECRET_WORDS):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", str(value)), f"{name}.{key} = {value}"


def test_every_variable_the_bridge_configs_read_is_in_env_example_and_passed_on() -> None:
    project = _loaded(_profiles())
    documented = set(_env_example())
    for config in BRIDGE_CONFIGS.values():
        doc = yaml.safe_load(config.read_text())
        names = {s[k] for s in doc["sinks"] for k in ("token_env", "password_env") if k in s}
        assert names, config
        for name in names:
            assert name in documented, f"{config.name}: {name} is not in .env.example"
            for service in ("bridge", "influxdb-setup"):
                env = project["services"][service]["environment"]
                assert env.get(name) == _env_example()[name], f"{service} lacks {name}"


# -- the bridge configs -------------------------------------------------------------------------


@pytest.mark.telegraf
@pytest.mark.parametrize("profile", sorted(BRIDGE_CONFIGS))
def test_bridge_config_renders_and_passes_telegrafs_config_check(
    profile: str, tmp_path: Path
) -> None:
    """As in the stack: `devices export` (the devices service) first, then the bridge's render."""
    env = {k: str(v) for k, v in _loaded((profile,))["services"]["bridge"]["environment"].items()}
    env["BRIDGE_MOSQUITTO_GROUP"] = str(os.getegid())  # the broker's 1883 may not exist here
    config = tmp_path / "bridge.yaml"
    config.write_text(_map_paths(BRIDGE_CONFIGS[profile].read_text(), tmp_path))
    runner = CliRunner()
    export = runner.invoke(cli, ["devices", "export", "--config", str(config)], env=env)
    assert export.exit_code == 0, export.output
    assert (tmp_path / "etc/telegraf-bridge/iotflow/mosquitto/iotflow.conf").exists()
    output = tmp_path / "out" / "telegraf.conf"
    rendered = runner.invoke(
        cli, ["render-config", "--config", str(config), "--output", str(output)], env=env
    )
    assert rendered.exit_code == 0, rendered.output
    conf = output.read_text()
    values = _env_example()
    if profile == "influxdb2":
        assert 'urls = ["http://influxdb:8086"]' in conf
        assert f'organization = "{values["INFLUXDB_ORG"]}"' in conf
        assert f'bucket = "{values["INFLUXDB_BUCKET"]}"' in conf
        assert 'token = "${INFLUXDB_TOKEN}"' in conf
    else:
        assert 'urls = ["http://influxdb1:8086"]' in conf
        assert f'database = "{values["INFLUXDB1_DB"]}"' in conf
        assert 'password = "${INFLUXDB1_ADMIN_PASSWORD}"' in conf
    assert 'servers = ["tcp://mosquitto:1883"]' in conf
    for key, value in values.items():
        if any(word in key for word in SECRET_WORDS):
            assert value not in conf, f"the value of {key} leaked into telegraf.conf"
    checked = runner.invoke(cli, ["check-config", "--skip-test", str(output)], env=env)
    assert checked.exit_code == 0, checked.output
    assert "config check: OK" in checked.output


# -- Mosquitto --------------------------------------------------------------------------------------


def _broker_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.fail("no mosquitto user: `make setup` installs Debian's mosquitto package")


def _process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


class Broker:
    """The stack's Mosquitto config, run by the real broker with its container paths in root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.health_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "mosquitto.log"

    def prepare(self, group: str) -> dict[str, str]:
        """Register a device as `docker compose run --rm devices add` does; returns its key."""
        env = {"BRIDGE_MOSQUITTO_GROUP": group}
        result = CliRunner().invoke(
            cli,
            [
                "devices",
                "add",
                "esp32_001",
                "--json",
                "--config",
                str(DEPLOY / "bridge.yaml"),
                "--registry",
                str(self.root / "etc/telegraf-bridge/iotflow/devices.yaml"),
            ],
            env=env,
        )
        assert result.exit_code == 0, result.output
        generated = self.root / "etc/telegraf-bridge/iotflow/mosquitto/iotflow.conf"
        text = generated.read_text()
        assert "listener 1883\n" in text
        # Loopback only here; in the container the listener serves the LAN.
        generated.write_text(text.replace("listener 1883\n", f"listener {self.port} 127.0.0.1\n"))
        config = self.root / "mosquitto/config"
        config.mkdir(parents=True)
        (self.root / "mosquitto/data").mkdir()
        shutil.chown(self.root / "mosquitto/data", user="mosquitto")
        main = (DEPLOY / "mosquitto/mosquitto.conf").read_text()
        assert "listener 1880 127.0.0.1" in main
        main = main.replace("listener 1880 ", f"listener {self.health_port} ")
        (config / "mosquitto.conf").write_text(_map_paths(main, self.root))
        shutil.copy(DEPLOY / "mosquitto/health.acl", config / "health.acl")
        return {"esp32_001": json.loads(result.stdout)["api_key"]}

    def start(self) -> subprocess.Popen[bytes]:
        binary = find_mosquitto()
        assert binary, "mosquitto is not installed: run `make setup`"
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.root / "mosquitto/config/mosquitto.conf")],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        return self.proc

    def listening(self) -> bool:
        """Both listeners accept connections (its log is block-buffered: no use for this)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"mosquitto exited: {self.log.read_text()}")
        for port in (self.port, self.health_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def broker_root() -> Iterator[Path]:
    """A directory the broker's own user can traverse (pytest's tmp_path is 0700 root's)."""
    root = Path(tempfile.mkdtemp(prefix="compose-mosquitto-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _connect(port: int, user: str | None, password: str | None) -> tuple[mqtt.Client, list[Any]]:
    codes: list[Any] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{time.monotonic_ns()}")
    if user is not None:
        client.username_pw_set(user, password)
    client.on_connect = lambda _c, _u, _f, reason, _p: codes.append(reason)
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    wait_for(lambda: bool(codes), timeout=10, what="CONNACK")
    return client, codes


def test_real_mosquitto_runs_the_stacks_config_with_generated_auth(broker_root: Path) -> None:
    user = _broker_user()
    broker = Broker(broker_root)
    keys = broker.prepare("mosquitto")
    passwd = broker_root / "etc/telegraf-bridge/iotflow/mosquitto/passwd"
    assert passwd.stat().st_gid == user.pw_gid and stat.S_IMODE(passwd.stat().st_mode) == 0o640
    proc = broker.start()
    try:
        wait_for(broker.listening, timeout=15, what="mosquitto's two listeners")
        assert proc.poll() is None, broker.log.read_text()
        # It dropped root for its own user, and still read the 0640 password file: the group.
        assert _process_uid(proc.pid) == user.pw_uid
        # The compose file's health check, on the health listener.
        health = _compose_doc()["services"]["mosquitto"]["healthcheck"]["test"][1:]
        health = [a.replace("$$", "$") for a in health]
        health[health.index("-p") + 1] = str(broker.health_port)
        probe = subprocess.run(health, capture_output=True, text=True, timeout=20, check=False)
        assert probe.returncode == 0, probe.stderr + broker.log.read_text()

        service_password = (broker_root / "etc/telegraf-bridge/iotflow/mqtt_password").read_text()
        telegraf, codes = _connect(broker.port, "telegraf-bridge", service_password)
        assert not codes[0].is_failure, codes
        received: list[str] = []
        telegraf.on_message = lambda _c, _u, msg: received.append(msg.topic)
        telegraf.subscribe("iotflow/devices/+/telemetry/+", qos=1)
        time.sleep(0.5)

        device, codes = _connect(broker.port, "esp32_001", keys["esp32_001"])
        assert not codes[0].is_failure, codes
        device.publish(
            "iotflow/devices/esp32_001/telemetry/env", '{"t": 1}', qos=1
        ).wait_for_publish(5)
        device.publish(
            "iotflow/devices/esp32_999/telemetry/env", '{"t": 2}', qos=1
        ).wait_for_publish(5)
        anonymous_health, codes = _connect(broker.health_port, None, None)
        assert not codes[0].is_failure  # the health listener admits anonymous clients ...
        anonymous_health.publish("iotflow/devices/esp32_001/telemetry/env", "x", qos=1)
        # ... but its ACL lets them publish nothing, and the device only under its own id.
        wait_for(lambda: len(received) >= 1, timeout=10, what="telemetry at Telegraf's account")
        time.sleep(1.0)
        assert received == ["iotflow/devices/esp32_001/telemetry/env"]

        for user_name, password in ((None, None), ("esp32_001", "wrong"), ("nobody", "x")):
            client, codes = _connect(broker.port, user_name, password)
            assert codes[0].is_failure, f"{user_name} was admitted on the devices' listener"
            client.loop_stop()
        for client in (telegraf, device, anonymous_health):
            client.loop_stop()
            client.disconnect()
    finally:
        broker.stop()


def test_real_mosquitto_refuses_a_password_file_of_another_group(broker_root: Path) -> None:
    """The control: without the broker's group on passwd, the broker cannot start."""
    _broker_user()
    broker = Broker(broker_root)
    broker.prepare("root")
    proc = broker.start()
    try:
        proc.wait(timeout=15)
    finally:
        broker.stop()
    assert proc.returncode != 0
    assert "Unable to open pwfile" in broker.log.read_text()


# -- Grafana ------------------------------------------------------------------------------------------


def _grafana_yaml(kind: str) -> dict[str, Any]:
    files = sorted((GRAFANA / kind).glob("*.yaml"))
    assert len(files) == 1, files
    doc: dict[str, Any] = yaml.safe_load(files[0].read_text())
    return doc


def test_grafana_datasource_provisioning_has_the_fields_grafana_requires() -> None:
    doc = _grafana_yaml("datasources")
    assert doc["apiVersion"] == 1
    sources = doc["datasources"]
    for source in sources:
        # Grafana's provisioning reference: name, type and access are required.
        for key in ("name", "type", "access", "uid", "url"):
            assert source.get(key), f"{source.get('name')}: {key} missing"
        assert source["access"] == "proxy"
    assert len({s["uid"] for s in sources}) == len(sources)
    assert [s["name"] for s in sources if s.get("isDefault")] == ["InfluxDB"]
    by_uid = {s["uid"]: s for s in sources}
    influxql_v2 = by_uid["influxdb-v2"]
    assert influxql_v2["type"] == "influxdb" and "version" not in influxql_v2["jsonData"]
    assert influxql_v2["jsonData"]["dbName"] == "${INFLUXDB_BUCKET}"
    assert influxql_v2["jsonData"]["httpHeaderName1"] == "Authorization"
    assert influxql_v2["secureJsonData"]["httpHeaderValue1"] == "Token ${INFLUXDB_TOKEN}"
    flux = by_uid["influxdb-v2-flux"]
    assert flux["jsonData"]["version"] == "Flux"
    assert flux["jsonData"]["organization"] and flux["jsonData"]["defaultBucket"]
    assert flux["secureJsonData"]["token"] == "${INFLUXDB_TOKEN}"
    v1 = by_uid["influxdb-v1"]
    assert v1["jsonData"]["dbName"] and v1["user"] and v1["secureJsonData"]["password"]
    hosts = {s["url"].split("//")[1].split(":")[0] for s in sources}
    assert hosts <= set(_compose_doc()["services"])
    # Secrets only as ${VAR}, and every ${VAR} is in Grafana's environment in the stack.
    grafana_env = _loaded(_profiles())["services"]["grafana"]["environment"]
    text = _uncommented((GRAFANA / "datasources" / "influxdb.yaml").read_text())
    for name in re.findall(r"\$\{([A-Z0-9_]+)\}", text):
        assert name in grafana_env, f"Grafana's container has no {name}"
    for source in sources:
        for value in (source.get("secureJsonData") or {}).values():
            assert re.search(r"\$\{[A-Z0-9_]+\}", value), f"{source['name']}: a literal secret"


def test_every_plugin_influxql_dashboard_is_provisioned() -> None:
    assert len(DASHBOARDS) >= 4, DASHBOARDS
    providers = _grafana_yaml("dashboards")
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["name"] and provider["type"] == "file"
    folder = Path(provider["options"]["path"])
    grafana = _loaded(_profiles())["services"]["grafana"]
    mounted = {
        Path(m["source"]): Path(m["target"]) for m in grafana["volumes"] if m["type"] == "bind"
    }
    assert mounted[GRAFANA] == Path("/etc/grafana/provisioning")
    defaults = [s for s in _grafana_yaml("datasources")["datasources"] if s.get("isDefault")]
    for dashboard in DASHBOARDS:
        assert mounted.get(dashboard) == folder / dashboard.name, f"{dashboard} not provisioned"
        doc = json.loads(dashboard.read_text())
        variables = {v["name"]: v for v in doc["templating"]["list"]}
        # The dashboards pick their source through ${datasource}: the default one must fit.
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == defaults[0]["type"]
    extra = [
        t for t in mounted.values() if t.parent == folder and not t.name.endswith("-influxql.json")
    ]
    assert extra == [], "only InfluxQL dashboards fit the provisioned InfluxQL sources"


# -- influxdb-setup: the tiers and their InfluxQL mappings ------------------------------------------


def _setup_command() -> str:
    """What the influxdb-setup one-shot runs (its entrypoint's ``sh -c`` script)."""
    entrypoint = _loaded(_profiles())["services"]["influxdb-setup"]["entrypoint"]
    assert entrypoint[:2] == ["/bin/sh", "-c"], entrypoint
    return str(entrypoint[2])


@pytest.mark.influxd2
def test_influxdb_setup_maps_every_tier_for_the_influxql_dashboards(
    influxd2: InfluxD2, tmp_path: Path
) -> None:
    """The one-shot's command against the real InfluxDB 2, with the compose bridge.yaml."""
    command = _setup_command()
    assert command.split() == [
        "bridge-cli",
        "setup-influxdb",
        "--secrets-dir",
        "/var/lib/telegraf-bridge-secrets",
    ], "setup-influxdb alone: it creates the InfluxQL mappings too"
    values = _env_example()
    bucket = "telemetry"
    org = influxd2.new_org(bucket)
    config = tmp_path / "bridge.yaml"
    text = _map_paths((DEPLOY / "bridge.yaml").read_text(), tmp_path)
    assert "organization: home" in text and f"bucket: {bucket}" in text
    assert values["INFLUXDB_BUCKET"] == bucket, "the bucket InfluxDB's own setup creates"
    text = text.replace("http://influxdb:8086", influxd2.url).replace(
        "organization: home", "organization: " + org
    )
    config.write_text(text)
    env = {"INFLUXDB_TOKEN": influxd2.token, "BRIDGE_CONFIG": str(config)}
    secrets = tmp_path / "secrets"
    args = [*command.split()[1:3], str(secrets)]
    setup = CliRunner().invoke(cli, args, env=env)
    assert setup.exit_code == 0, setup.output
    assert influxd2.token not in setup.output
    # Every tier answers InfluxQL as a retention policy of the sink's database, with the reader
    # token the Grafana of a real install would hold.
    reader = (secrets / "influxdb2_reader_token").read_text()
    tiers = ("PowerLogger_raw", "PowerLogger_1m", "PowerLogger_5m", "PowerLogger_1h")
    now = time.time_ns()
    for tier in tiers:
        influxd2.write(tier, f"PowerPulse,PulseType=Import pulses=1i {now}", org=org)
        reply = influxd2.request(
            "GET",
            "/query",
            params={"db": bucket, "q": f'SELECT count("pulses") FROM "{tier}"."PowerPulse"'},
            token=reader,
        )
        assert reply.status == 200, reply
        assert reply.json()["results"][0]["series"][0]["values"][0][1] == 1, (tier, reply)
    # Idempotent: the one-shot runs at every `up`.
    again = CliRunner().invoke(cli, args, env=env)
    assert again.exit_code == 0 and "0 created" in again.output, again.output


def test_the_influxdb1_variant_runs_the_same_one_shot() -> None:
    """The InfluxDB 1.x profile runs the same command: setup-influxdb maps nothing there."""
    assert not (DEPLOY / "influxdb" / "dbrp.py").exists(), "retired: setup-influxdb maps"
    assert "dbrp" not in COMPOSE.read_text()
