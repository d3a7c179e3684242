"""bridge-cli healthcheck against the real influxd 1.x and 2.x, the InfluxDB 3 fake, Telegraf-style health
endpoints, a stub systemctl and the real Mosquitto broker."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from _sink_rig import V2_TOKEN, V3_TOKEN, Backend, ago, backend, kinds, make_backend
from click.testing import CliRunner, Result
from paho.mqtt.enums import CallbackAPIVersion
from rig import FakeInfluxV3, InfluxD1, InfluxD2, Mosquitto, free_port
from telegraf_bridge.cli.main import cli

__all__ = ["backend"]  # the parametrised fixture, imported for pytest

pytestmark = pytest.mark.influxd

M = "tigo_power_report"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["healthcheck", *args], env=env, catch_exceptions=False)


def point(minutes_ago: float, fields: str = "rssi=-70i,power_w=120.5", node: str = "1") -> str:
    return f"{M},src=tigo,gateway_id=g1,node_id={node} {fields} {ago(minutes_ago)}"


# -- verdicts on every sink kind -------------------------------------------------------------------


def test_fresh_data_is_ok(backend: Backend, tmp_path: Path) -> None:
    backend.write([point(30), point(1.0)])
    result = run("--config", str(backend.config(tmp_path)))
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert line.startswith(f"OK healthy measurement={M} lag_min=1.0 last_ts_utc=")
    assert len(line.splitlines()) == 1


def test_stale_data_is_crit(backend: Backend, tmp_path: Path) -> None:
    backend.write([point(400), point(300)])
    result = run("--config", str(backend.config(tmp_path)), "--max-lag-min", "240", "--json")
    assert result.exit_code == 2, result.output
    payload = json.loads(result.stdout)
    assert payload["status"] == "CRIT" and payload["reason"] == "stale_data"
    assert payload["lag_min"] == pytest.approx(300, abs=0.2)
    assert payload["last_ts_utc"].endswith("Z") and payload["ts_utc"].endswith("Z")
    assert (
        payload["sink_type"]
        == {"v1": "influxdb_v1", "v2": "influxdb_v2", "v3": "influxdb_v3"}[backend.kind]
    )


def test_missing_measurement_is_no_data(backend: Backend, tmp_path: Path) -> None:
    backend.write([point(1)])
    result = run("--config", str(backend.config(tmp_path)), "--measurement", "dtu")
    assert result.exit_code == 2, result.output
    assert result.stdout.startswith("CRIT no_data measurement=dtu ")
    assert "no point in the last 168h" in result.stdout


def test_data_older_than_the_lookback_is_no_data(backend: Backend, tmp_path: Path) -> None:
    backend.write([point(6 * 60)])
    result = run("--config", str(backend.config(tmp_path)), "--lookback-hours", "5")
    assert result.exit_code == 2
    assert result.stdout.startswith("CRIT no_data ")


def test_field_filter(backend: Backend, tmp_path: Path) -> None:
    # The newest point has no rssi: only the field filter sees rssi going stale.
    backend.write([point(300, "rssi=-70i,power_w=1.5"), point(1, "power_w=2.5")])
    config = str(backend.config(tmp_path))
    assert run("--config", config).exit_code == 0
    stale = run("--config", config, "--field", "rssi")
    assert stale.exit_code == 2 and "CRIT stale_data" in stale.stdout
    assert "field=rssi" in stale.stdout
    fresh = run("--config", config, "--field", "power_w")
    assert fresh.exit_code == 0 and fresh.stdout.startswith("OK healthy")
    missing = run("--config", config, "--field", "temperature_c")
    assert missing.exit_code == 2 and missing.stdout.startswith("CRIT no_data")


def test_names_that_need_quoting_are_queried_safely(backend: Backend, tmp_path: Path) -> None:
    # Quotes, backslashes, spaces, commas and Flux interpolation in names: escaped per
    # language, never an injection (the real influxd is the judge for InfluxQL).
    measurement_lp = 'we"ird\\ m\\,x'  # line protocol: comma and space escaped
    field_lp = "${f}\\ \"q'"
    backend.write([f"{measurement_lp},node_id=1 {field_lp}=1i {ago(2)}"])
    config = str(backend.config(tmp_path))
    result = run("--config", config, "--measurement", 'we"ird m,x', "--field", "${f} \"q'")
    assert result.exit_code == 0, result.output
    assert "lag_min=2.0" in result.stdout
    # An injection attempt is just a measurement name that does not exist.
    evil = {
        "v1": f'{M}" WHERE time > 0 --',
        "v2": f'{M}") |> yield(name: "x',
        "v3": f'{M}" WHERE 1=1 --',
    }[backend.kind]
    result = run("--config", config, "--measurement", evil)
    assert result.exit_code == 2 and "CRIT no_data" in result.stdout


# -- sink problems are errors (exit 1) -------------------------------------------------------------


def test_unreachable_sink_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "b.yaml"
    url = f"http://127.0.0.1:{free_port()}"
    config.write_text(
        f"sinks:\n  - name: gone\n    type: influxdb_v1\n    url: {url}\n    database: x\n"
    )
    result = run("--config", str(config))
    assert result.exit_code == 1
    assert result.stdout.startswith("ERROR sink_unreachable ")
    assert f"cannot reach {url}" in result.stdout


@pytest.mark.parametrize("kind", kinds("v2", "v3"))
def test_wrong_token_is_an_auth_error_and_never_printed(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_backend(kind, request)
    wrong = "not-the-token-0123456789"
    monkeypatch.setenv(next(iter(made.env)), wrong)
    result = run("--config", str(made.config(tmp_path)), "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["status"] == "ERROR" and payload["reason"] == "auth_failed"
    assert "HTTP 401" in payload["detail"]
    assert wrong not in result.output and V2_TOKEN not in result.output
    assert V3_TOKEN not in result.output


@pytest.mark.influxd2
def test_unset_token_variable_is_a_config_error(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    made = make_backend("v2", request)
    result = run("--config", str(made.config(tmp_path)))
    assert result.exit_code == 1
    assert "ERROR config_error" in result.stdout and "TEST_V2_TOKEN" in result.stdout


@pytest.mark.influxd2
def test_unknown_v2_bucket_is_an_error_not_no_data(
    influxd2: InfluxD2, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T", V2_TOKEN)
    config = tmp_path / "b.yaml"
    config.write_text(
        f"sinks:\n  - name: cloud\n    type: influxdb_v2\n    url: {influxd2.url}\n"
        f"    organization: {influxd2.new_org()}\n    bucket: typo\n    token_env: T\n"
    )
    result = run("--config", str(config))
    assert result.exit_code == 1
    assert 'could not find bucket \\"typo\\"' in result.stdout


def test_missing_v1_database_and_v3_database_are_no_data(
    influxd: InfluxD1, fake_v3: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T", V3_TOKEN)
    config = tmp_path / "b.yaml"
    config.write_text(
        f"sinks:\n  - name: old\n    type: influxdb_v1\n    url: {influxd.url}\n"
        "    database: never_written\n"
        f"  - name: core\n    type: influxdb_v3\n    url: {fake_v3.url}\n"
        "    database: never_written\n    token_env: T\n"
    )
    for sink in ("old", "core"):
        result = run("--config", str(config), "--sink", sink)
        assert result.exit_code == 2, result.output
        assert result.stdout.startswith("CRIT no_data ")
        assert "database not found: never_written" in result.stdout


def test_sink_selection_errors_list_the_sinks(tmp_path: Path) -> None:
    config = tmp_path / "b.yaml"
    config.write_text(f"sinks:\n  - name: local\n    type: file\n    path: {tmp_path}/m.out\n")
    result = run("--config", str(config))
    assert result.exit_code == 1
    assert "no enabled InfluxDB sink" in result.stdout and "local (file)" in result.stdout
    result = run("--config", str(config), "--sink", "nope")
    assert result.exit_code == 1 and "no sink named 'nope'; the config has: local" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("sinks: [{name: x, type: influxdb_v9}]\n")
    result = run("--config", str(bad))
    assert result.exit_code == 1 and result.stdout.startswith("ERROR config_error")


def test_seed_environment_without_a_config_file(
    influxd: InfluxD1, request: pytest.FixtureRequest
) -> None:
    made = make_backend("v1", request)
    made.write([point(2)])
    database = made.write_url.split("db=")[1].split("&")[0]
    env = {"INFLUX_URL": influxd.url, "INFLUX_DB": database, "INFLUX_MEASUREMENT": M}
    result = run(env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"OK healthy measurement={M} lag_min=2.0")
    assert "sink=tigo_v1" in result.stdout


# -- the default measurement comes from the config's sources --------------------------------------

_SOURCES = {
    "taptap": "  - {name: tigo, plugin: taptap, options: {serial: /dev/ttyUSB0}}\n",
    "ndjson_tail": "  - {name: solar, plugin: ndjson_tail, options: {files: [/data/*.ndjson]}}\n",
    "hoymiles": "  - {name: dtu, plugin: hoymiles, options: {host: 127.0.0.1}}\n",
    "gpio_pulse": "  - {name: meter, plugin: gpio_pulse, options: {backend: sim, measurement: Pulse}}\n",
    "iotflow": "  - {name: devices, plugin: iotflow, options: {}}\n",
}


@pytest.mark.parametrize(
    ("plugin", "measurement"),
    [("ndjson_tail", "smartsolar"), ("hoymiles", "dtu"), ("gpio_pulse", "Pulse")],
)
def test_default_measurement_is_the_sources(
    request: pytest.FixtureRequest, tmp_path: Path, plugin: str, measurement: str
) -> None:
    made = make_backend("v1", request)
    made.write([point(1), f"{measurement},x=1 v=1i {ago(3)}"])
    config = made.config(tmp_path, "sources:\n" + _SOURCES[plugin])
    result = run("--config", str(config))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"OK healthy measurement={measurement} lag_min=3.0")
    # --measurement still chooses any other.
    chosen = run("--config", str(config), "--measurement", M)
    assert chosen.stdout.startswith(f"OK healthy measurement={M} lag_min=1.0")


def test_several_source_measurements_need_the_option(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    made = make_backend("v1", request)
    made.write([point(1)])
    sources = "sources:\n" + _SOURCES["taptap"] + _SOURCES["ndjson_tail"]
    result = run("--config", str(made.config(tmp_path, sources)))
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("ERROR config_error detail=")
    assert f"{M} (source tigo), smartsolar (source solar)" in result.stdout
    assert "pass --measurement NAME" in result.stdout
    devices = run("--config", str(made.config(tmp_path, "sources:\n" + _SOURCES["iotflow"])))
    assert devices.exit_code == 1
    assert "the measurements its devices name (source devices, iotflow)" in devices.stdout


# -- service checks --------------------------------------------------------------------------------


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Health", (_Health,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def fresh_v1(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    made = make_backend("v1", request)
    made.write([point(1)])
    return made.config(tmp_path)


def test_health_url_200_is_ok_and_503_is_service_not_active(
    health_server: tuple[str, type[_Health]], fresh_v1: Path
) -> None:
    url, handler = health_server
    ok = run("--config", str(fresh_v1), "--health-url", url)
    assert ok.exit_code == 0, ok.output
    assert f"service[{url}]=healthy" in ok.stdout
    handler.status = 503
    down = run("--config", str(fresh_v1), "--health-url", url, "--json")
    assert down.exit_code == 2
    payload = json.loads(down.stdout)
    assert payload["reason"] == "service_not_active"
    assert payload["services"] == {url: "unhealthy (HTTP 503)"}
    assert payload["lag_min"] is not None  # the data was still checked


def test_health_url_with_nothing_listening_is_service_not_active(fresh_v1: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = run("--config", str(fresh_v1), "--health-url", url)
    assert result.exit_code == 2
    assert result.stdout.startswith("CRIT service_not_active ")
    assert "unreachable" in result.stdout


def test_health_url_that_is_not_a_health_endpoint_is_an_error(
    health_server: tuple[str, type[_Health]], fresh_v1: Path
) -> None:
    url, handler = health_server
    handler.status = 404
    result = run("--config", str(fresh_v1), "--health-url", url)
    assert result.exit_code == 1
    assert result.stdout.startswith("ERROR health_check_failed ")


def test_telegraf_health_uses_the_configs_health_listen(
    health_server: tuple[str, type[_Health]], fresh_v1: Path
) -> None:
    url, handler = health_server
    listen = url.removeprefix("http://").rstrip("/")
    config = fresh_v1.read_text()
    fresh_v1.write_text(f"agent:\n  health_listen: {listen}\n{config}")
    handler.status = 503
    result = run("--config", str(fresh_v1), "--telegraf-health")
    assert result.exit_code == 2 and "service_not_active" in result.stdout
    assert f"service[http://{listen}/]=unhealthy" in result.stdout


@pytest.fixture
def fake_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``systemctl`` on PATH that answers is-active from a state file (no systemd here)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    state = tmp_path / "unit-state"
    script = bindir / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        f'state=$(cat "{state}")\n'
        'echo "$state"\n'
        '[ "$state" = active ] && exit 0 || exit 3\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return state


def test_service_state_from_systemctl(fake_systemctl: Path, fresh_v1: Path) -> None:
    fake_systemctl.write_text("active\n")
    ok = run("--config", str(fresh_v1), "--service", "telegraf.service")
    assert ok.exit_code == 0 and "service[telegraf.service]=active" in ok.stdout
    fake_systemctl.write_text("failed\n")
    down = run("--config", str(fresh_v1), "--service", "telegraf.service")
    assert down.exit_code == 2
    assert down.stdout.startswith("CRIT service_not_active ")
    assert "telegraf.service is failed" in down.stdout


# -- MQTT --------------------------------------------------------------------------------------------


def retained(broker: Mosquitto, topic: str) -> dict[str, Any]:
    """Subscribe after the fact: only a retained message can arrive."""
    got = threading.Event()
    messages: list[bytes] = []

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        messages.append(message.payload)
        got.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert got.wait(5), f"no retained message on {topic}"
    finally:
        client.disconnect()
        client.loop_stop()
    return dict(json.loads(messages[0]))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mosquitto") as server:
        yield server


def test_mqtt_publishes_the_verdict_retained(broker: Mosquitto, fresh_v1: Path) -> None:
    result = run(
        "--config",
        str(fresh_v1),
        "--mqtt",
        "--mqtt-port",
        str(broker.port),
        "--mqtt-topic",
        "solar/{measurement}/health",
    )
    assert result.exit_code == 0, result.output
    payload = retained(broker, f"solar/{M}/health")
    assert payload["status"] == "OK" and payload["reason"] == "healthy"
    assert payload["measurement"] == M and payload["sink"] == "influx1"
    assert payload["lag_min"] == pytest.approx(1.0, abs=0.2)
    for key in ("last_ts_utc", "ts_utc", "host", "max_lag_min"):
        assert payload[key]


def test_mqtt_with_the_seeds_variables_publishes_crit(broker: Mosquitto, tmp_path: Path) -> None:
    config = tmp_path / "b.yaml"
    config.write_text(
        f"sinks:\n  - name: gone\n    type: influxdb_v1\n    url: http://127.0.0.1:{free_port()}\n    database: x\n"
    )
    env = {
        "TIGO_HEALTH_MQTT_ENABLED": "1",
        "TIGO_HEALTH_MQTT_HOST": "127.0.0.1",
        "TIGO_HEALTH_MQTT_PORT": str(broker.port),
        "TIGO_HEALTH_MQTT_TOPIC": "tigo/health",
    }
    result = run("--config", str(config), env=env)
    assert result.exit_code == 1  # the sink is unreachable: the check's own error
    payload = retained(broker, "tigo/health")
    assert payload["status"] == "ERROR" and payload["reason"] == "sink_unreachable"


def test_mqtt_broker_down_turns_ok_into_an_error(fresh_v1: Path) -> None:
    result = run("--config", str(fresh_v1), "--mqtt", "--mqtt-port", str(free_port()))
    assert result.exit_code == 1
    assert result.stdout.startswith("OK healthy")
    assert "cannot connect to MQTT broker" in result.stderr


def test_mqtt_broker_refusing_the_login_is_reported(tmp_path: Path, fresh_v1: Path) -> None:
    with Mosquitto(tmp_path / "auth", extra_config="allow_anonymous false\n") as server:
        result = run("--config", str(fresh_v1), "--mqtt", "--mqtt-port", str(server.port))
    assert result.exit_code == 1
    assert "refused the connection" in result.stderr


@pytest.mark.parametrize("command", ["healthcheck", "rssi-report", "serial-ports"])
def test_every_option_is_documented(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    doc = (Path(__file__).resolve().parent.parent / "docs" / "monitoring.md").read_text()
    assert f"bridge-cli {command}" in doc
    for word in result.output.split():
        if word.startswith("--") and len(word) > 3 and word != "--help":
            option = word.rstrip(",.").split("=")[0]
            assert option in doc, f"{command} {option} is not in docs/monitoring.md"


# -- the InfluxDB 3 fake's query API (the v2 fake's: test_fake_v2_differential.py) ---------


def _http(url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str, str]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def test_fake_v3_query_sql_json_and_errors(
    fake_v3: FakeInfluxV3, request: pytest.FixtureRequest
) -> None:
    made = make_backend("v3", request)
    db = made.write_url.split("db=")[1].split("&")[0]
    made.write(
        [f"{M},node_id=a rssi=-70i 1790000000123000000", f"{M} power_w=1.5 1790000001000000000"]
    )
    auth = {"Authorization": f"Bearer {V3_TOKEN}"}
    import urllib.parse

    def get(**params: str) -> tuple[int, str, str]:
        return _http(f"{fake_v3.url}/api/v3/query_sql?{urllib.parse.urlencode(params)}", None, auth)

    sql = f'SELECT time FROM "{M}" WHERE time >= \'2026-09-01T00:00:00Z\' AND "rssi" IS NOT NULL ORDER BY time DESC LIMIT 1'
    status, ctype, text = get(db=db, q=sql, format="json")
    assert status == 200 and ctype.startswith("application/json")
    assert json.loads(text) == [{"time": "2026-09-21T14:13:20.123"}]
    series = f'SELECT "node_id", "power_w" FROM "{M}" WHERE time >= \'2026-09-01T00:00:00Z\' AND "power_w" IS NOT NULL'
    status, ctype, text = get(db=db, q=series, format="jsonl")
    assert ctype == "application/jsonl" and text == '{"power_w":1.5}\n'  # no tag: no column
    assert get(db=db)[0:3:2] == (400, "missing query parameters 'db' and 'q'")
    assert get(db="nope", q=sql)[0] == 404
    assert json.loads(get(db="nope", q=sql)[2]) == {
        "error": "query error: database not found: nope"
    }
    status, _, text = get(db=db, q=sql.replace(M, "dtu"))
    assert (status, text) == (400, "Error during planning: table 'public.iox.dtu' not found")
    status, _, text = get(db=db, q=sql.replace('"rssi"', '"temp"'))
    assert status == 400 and text.startswith('Schema error: No field named "temp".')
    assert get(db=db, q="SELECT * FROM x")[0] == 400
    assert _http(f"{fake_v3.url}/api/v3/query_sql?db={db}&q=x", None, {})[0] == 401
