"""MQTT device telemetry end to end: real Mosquitto (with the generated password file, ACL
and config snippet), real Telegraf (the rendered mqtt_consumer and processors), real influxd 1.x.

Devices publish with paho-mqtt as themselves (user = device id, password = API key), so the
broker's authentication and ACL are the ones `bridge-cli devices` generated.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from _support import fast_agent_yaml, render_yaml
from paho.mqtt.enums import CallbackAPIVersion
from rig import InfluxD1, Mosquitto, TelegrafProcess, free_port, wait_for
from telegraf_bridge.cli import iotflow_files
from telegraf_bridge.plugins.common import Section
from telegraf_bridge.plugins.iotflow import options as iotflow_options
from telegraf_bridge.plugins.iotflow import registry
from telegraf_bridge.plugins.iotflow.registry import Device, Registry

pytestmark = [pytest.mark.telegraf, pytest.mark.influxd]

DEVICES = {
    "esp32_001": ("Office Sensor", "environmental", "office"),
    "esp32_002": ("Garage, North", "power", "garage"),
}


@dataclass
class Rig:
    """A broker, a Telegraf and a database, wired as a home server would be."""

    broker: Mosquitto
    telegraf: TelegrafProcess
    influxd: InfluxD1
    db: str
    keys: dict[str, str]

    def client(self, device_id: str, *, password: str | None = None) -> mqtt.Client:
        """A connected device (persistent session, so QoS 1 survives reconnects)."""
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{device_id}-{uuid.uuid4().hex[:6]}",
            clean_session=False,
        )
        client.username_pw_set(device_id, password or self.keys[device_id])
        client.reconnect_delay_set(min_delay=1, max_delay=2)
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", self.broker.port, keepalive=10)
        client.loop_start()
        wait_for(client.is_connected, timeout=10, what=f"{device_id} connected")
        return client

    def count(self, measurement: str, where: str = "") -> int:
        series = self.influxd.query(f'SELECT count(*) FROM "{measurement}" {where}', db=self.db)
        if not series:
            return 0
        row = series[0]["values"][0]
        return int(max(v for v in row[1:] if v is not None))

    def rows(self, measurement: str) -> list[dict[str, object]]:
        return self.influxd.rows(f'SELECT * FROM "{measurement}"', db=self.db)


def _options(tmp_path: Path, port: int, **mqtt_options: object) -> dict[str, object]:
    return {
        "registry": str(tmp_path / "reg" / "devices.yaml"),
        "string_tags": ["sensor_type"],
        "http": {"enabled": False},
        "mqtt": {
            "servers": [f"tcp://127.0.0.1:{port}"],
            "broker_port": port,
            "broker_bind": "127.0.0.1",
            **mqtt_options,
        },
    }


@pytest.fixture
def rig(tmp_path: Path, influxd: InfluxD1, telegraf_bin: Path) -> Iterator[Rig]:
    with _rig(tmp_path, influxd, telegraf_bin) as made:
        yield made


@contextlib.contextmanager
def _rig(
    tmp_path: Path, influxd: InfluxD1, telegraf_bin: Path, **mqtt_options: object
) -> Iterator[Rig]:
    port = free_port()
    raw = _options(tmp_path, port, **mqtt_options)
    opts = iotflow_options.parse(Section(raw, "iotflow"))
    reg = Registry()
    keys = {}
    for device_id, (name, kind, location) in DEVICES.items():
        key_id, key = registry.new_key()
        keys[device_id] = key
        reg.devices[device_id] = Device(
            device_id, name, kind, location, key_id, registry.hash_key(key)
        )
    iotflow_files.regenerate(opts, reg)
    registry.save(opts.registry, reg)
    snippet = (opts.mosquitto_dir / "iotflow.conf").read_text()
    broker = Mosquitto(tmp_path / "broker", extra_config=snippet, port=port, persistence=True)
    db = f"iot_{uuid.uuid4().hex[:8]}"
    if influxd.proc is not None:  # a sink that is down gets its database when it comes up
        influxd.query(f'CREATE DATABASE "{db}"', method="POST")
    source = {"name": "iotflow", "plugin": "iotflow", "options": raw}
    yaml_text = (
        fast_agent_yaml(tmp_path)
        + "sources:\n  - "
        + json.dumps(source)
        + f"\nsinks:\n  - name: home\n    type: influxdb_v1\n    url: {influxd.url}\n"
        f"    database: {db}\n"
    )
    conf = render_yaml(yaml_text, tmp_path / "out")
    with broker, TelegrafProcess(telegraf_bin, conf, tmp_path / "tg") as telegraf:
        telegraf.wait_for_log("Connected", timeout=30)
        yield Rig(broker, telegraf, influxd, db, keys)


def _publish(client: mqtt.Client, topic: str, payload: object) -> None:
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    info = client.publish(topic, body, qos=1)
    info.wait_for_publish(timeout=10)


def test_points_arrive_with_registry_tags_and_payload_types(rig: Rig) -> None:
    one, two = rig.client("esp32_001"), rig.client("esp32_002")
    _publish(
        one,
        "iotflow/devices/esp32_001/telemetry/environmental",
        {
            "temperature": 25,
            "humidity": 60.5,
            "ok": True,
            "state": "idle",
            "sensor_type": "dht22",
            "location": "spoofed",
            "timestamp": "2026-01-01T12:00:00Z",
        },
    )
    _publish(two, "iotflow/devices/esp32_002/telemetry/power", {"power_w": 1200.5})
    wait_for(lambda: rig.count("power") == 1, timeout=30, what="esp32_002's point")
    wait_for(lambda: rig.count("environmental") == 1, timeout=30, what="esp32_001's point")
    (env,) = rig.rows("environmental")
    assert env["time"] == 1_767_268_800_000_000_000  # the payload's 2026-01-01T12:00:00Z
    assert env["device_id"] == "esp32_001" and env["device_name"] == "Office Sensor"
    assert env["device_type"] == "environmental"
    assert env["location"] == "office", "the registry's tags win over a payload key"
    assert env["sensor_type"] == "dht22"  # a declared string key became a tag
    assert env["topic"] == "iotflow/devices/esp32_001/telemetry/environmental"
    assert (env["temperature"], env["humidity"], env["ok"], env["state"]) == (
        25,
        60.5,
        True,
        "idle",
    )
    types = rig.influxd.field_types("environmental", db=rig.db)
    assert types == {
        "temperature": "float",
        "humidity": "float",
        "ok": "boolean",
        "state": "string",
    }
    (power,) = rig.rows("power")
    assert power["device_name"] == "Garage, North" and power["location"] == "garage"
    one.disconnect()
    two.disconnect()


def test_a_device_cannot_publish_as_another_or_without_its_key(rig: Rig) -> None:
    one = rig.client("esp32_001")
    _publish(one, "iotflow/devices/esp32_002/telemetry/power", {"power_w": 666})
    _publish(one, "iotflow/devices/esp32_001/telemetry/marker", {"n": 1})
    wait_for(lambda: rig.count("marker") == 1, timeout=30, what="the marker")
    assert rig.count("power") == 0, "the broker must refuse a publish under another device"
    refused = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="intruder")
    refused.username_pw_set("esp32_002", rig.keys["esp32_001"])
    assert refused.connect("127.0.0.1", rig.broker.port) == 0
    results: list[object] = []
    refused.on_connect = lambda *args: results.append(args[3])
    refused.loop_start()
    wait_for(lambda: bool(results), timeout=10, what="CONNACK")
    refused.loop_stop()
    assert getattr(results[0], "is_failure", True), "another device's key must not log in"
    one.disconnect()


def test_bad_payloads_and_topics_are_counted_never_injected(rig: Rig) -> None:
    one = rig.client("esp32_001")
    bad = ["not json", '{"t": NaN}', "[1, 2]", "42", '{"t": 1']
    for payload in bad:
        _publish(one, "iotflow/devices/esp32_001/telemetry/bad", payload)
    _publish(one, "iotflow/devices/esp32_001/telemetry/nested", {"a": {"b": {"c": 1}}, "n": 2})
    _publish(one, "iotflow/devices/esp32_001/telemetry/temp, x=1 é", {"t": 1})
    _publish(one, "iotflow/devices/esp32_001/telemetry/a=b", {"t": 2})
    _publish(one, "iotflow/devices/esp32_001,evil=1/telemetry/inj", {"t": 3})
    _publish(one, "iotflow/devices/esp32_001 x/telemetry/inj", {"t": 4})
    huge = json.dumps({"blob": "x" * 100_000})
    subprocess.run(
        [
            "mosquitto_pub",
            "-p",
            str(rig.broker.port),
            "-u",
            "esp32_001",
            "-P",
            rig.keys["esp32_001"],
            "-q",
            "1",
            "-t",
            "iotflow/devices/esp32_001/telemetry/huge",
            "-m",
            huge,
        ],
        capture_output=True,
        timeout=20,
        check=False,
    )
    _publish(one, "iotflow/devices/esp32_001/telemetry/marker", {"n": 1})
    wait_for(lambda: rig.count("marker") == 1, timeout=30, what="the marker")
    measurements = {
        v[0] for s in rig.influxd.query("SHOW MEASUREMENTS", db=rig.db) for v in s["values"]
    }
    assert measurements == {"nested", "temp, x=1 é", "a=b", "marker"}
    (nested,) = rig.rows("nested")
    assert (nested["a_b_c"], nested["n"]) == (1, 2)  # flattened like Telegraf's json parser
    (odd,) = rig.rows("temp, x=1 é")
    assert odd["topic"] == "iotflow/devices/esp32_001/telemetry/temp, x=1 é"
    assert set(odd) == {"time", "device_id", "device_name", "device_type", "location", "topic", "t"}
    errors = [
        line
        for line in rig.telegraf.log().splitlines()
        if "E! [inputs.mqtt_consumer::iotflow-mqtt] Error in plugin" in line
        and "not connected" not in line
    ]
    assert len(errors) == len(bad), "every unparsable payload is counted in Telegraf's errors"
    one.disconnect()


def test_a_broker_restart_mid_stream_loses_no_qos1_message(rig: Rig) -> None:
    total = 300
    one = rig.client("esp32_001")
    published: list[mqtt.MQTTMessageInfo] = []
    acked: set[int] = set()
    one.on_publish = lambda _client, _userdata, mid, *_: acked.add(mid)

    def publish_all() -> None:
        for seq in range(total):
            stamp = f"2026-01-01T12:00:{seq // 100:02d}.{seq % 100:02d}0Z"
            body = json.dumps({"seq": seq, "timestamp": stamp})
            published.append(one.publish("iotflow/devices/esp32_001/telemetry/seq", body, qos=1))
            time.sleep(0.01)

    sender = threading.Thread(target=publish_all)
    sender.start()
    wait_for(lambda: len(published) >= total // 3, timeout=30, what="a third published")
    rig.broker.restart()
    sender.join(60)
    # A publish while the broker is down returns "not connected" but stays queued in paho
    # and goes out on reconnect; on_publish fires on the broker's PUBACK.
    wait_for(lambda: {i.mid for i in published} <= acked, timeout=60, what="all PUBACKs")
    wait_for(lambda: rig.count("seq") >= total, timeout=90, what=f"{total} points in influxd")
    seqs = sorted(int(r["seq"]) for r in rig.rows("seq"))  # type: ignore[call-overload]
    assert seqs == list(range(total))
    one.disconnect()


def test_while_the_sink_is_down_telegraf_acknowledges_nothing_and_the_broker_keeps_it(
    tmp_path: Path, telegraf_bin: Path
) -> None:
    """MQTT's rule at the disk-buffer cap: Telegraf acknowledges a message only once the sink
    stored it, so while InfluxDB is down it holds no more than the broker's in-flight window
    (Mosquitto's max_inflight_messages, 20) or max_undelivered_messages, whichever is smaller:
    its disk buffer does not grow with the backlog, and the broker keeps the rest."""
    influxd = InfluxD1(tmp_path / "influxd")  # not started: the sink is down
    window, total = 20, 300
    with _rig(tmp_path, influxd, telegraf_bin) as rig:
        one = rig.client("esp32_001")

        def publish(first: int, count: int) -> None:
            for seq in range(first, first + count):
                stamp = f"2026-01-01T12:{seq // 60:02d}:{seq % 60:02d}Z"
                body = {"seq": seq, "timestamp": stamp}
                _publish(one, "iotflow/devices/esp32_001/telemetry/seq", body)

        def buffered() -> int:
            return sum(p.stat().st_size for p in (tmp_path / "buffer").rglob("*") if p.is_file())

        publish(0, window)
        wait_for(lambda: buffered() > 0, timeout=30, what="the first messages in the buffer")
        time.sleep(3)
        with_window = buffered()
        publish(window, total - window)  # every one PUBACKed by the broker
        time.sleep(3)
        assert buffered() <= with_window * 1.5, (
            f"the buffer grew from {with_window} to {buffered()} bytes with the backlog"
        )
        with influxd:
            influxd.query(f'CREATE DATABASE "{rig.db}"', method="POST")
            wait_for(lambda: rig.count("seq") >= total, timeout=120, what=f"{total} points")
            seqs = sorted(int(r["seq"]) for r in rig.rows("seq"))  # type: ignore[call-overload]
        assert seqs == list(range(total))
        one.disconnect()
