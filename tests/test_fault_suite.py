"""The fault suite (issue 16): every plugin under the real Telegraf into the real influxd 1.x,
with the disk buffer on, through a seeded random sequence of Telegraf SIGKILLs, graceful Telegraf
restarts, plugin SIGKILLs, influxd stopped and started again, and the whole process group
SIGKILLed, while data flows. Then influxd is up, everything drains, and the account is exact:

* nothing produced is missing: every data line the plugin wrote to Telegraf (recorded by
  tests/helpers/record_stdout.py, see tests/_fault_rig.py) is stored with the same fields;
  ndjson_tail also every line of its files; iotflow HTTP also every point of every request
  answered 2xx; iotflow MQTT every QoS 1 message the broker PUBACKed;
* a series and timestamp written twice was written with the same bytes;
* gpio_pulse: each window's meter row equals the raw pulses stored in that window, per channel,
  and ``pulses_total`` is consecutive.

`make test` runs each kind of fault once per plugin, in a random order; `make soak`
(BRIDGE_SOAK=1) 25 per plugin, at least 20 of them Telegraf SIGKILLs (120 in all). The seed is ``BRIDGE_FAULT_SEED`` or each test's default and
starts every assertion message.

What cannot be counted exactly, and why: the hoymiles DTU's registers stay constant (a poll of
the same window after a restart then legitimately writes the same bytes; varying them would test
re-polling, not delivery), so its fields check only that what was produced is what is stored.
taptap's timestamps come from the real decoder's clock at decode time, so a replayed bus is not
the same data: the account is of what the plugin produced, not of what the bus carried.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from _fault_rig import (
    ALL_FAULTS,
    PLUGIN_SIGKILL,
    Account,
    FaultRig,
    Key,
    fault_count,
    fault_seed,
    read_record,
)
from _hoymiles_rig import ModbusDtu, Row
from _iotflow_http_rig import make_registry, post
from _ndjson_rig import Rig as NdjsonRig
from _taptap_bus import SAMPLE_GATEWAY, SAMPLE_READINGS, TapBus, taptap_server
from _taptap_rig import taptap_bin
from paho.mqtt.enums import CallbackAPIVersion
from rig import Mosquitto, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.telegraf, pytest.mark.influxd]

FAULTS = fault_count(len(ALL_FAULTS), 25)
TELEGRAF_KILLS = fault_count(1, 20)
EPOCH = datetime(2026, 3, 1, tzinfo=UTC)


def _running(rig: FaultRig, sources_yaml: str, *rps: str) -> None:
    """Render, start influxd (with the database) and Telegraf; wait for the first data."""
    rig.render(sources_yaml)
    rig.influxd.start()
    rig.create_db(*rps)
    rig.start_telegraf()


def _wait_recorded(rig: FaultRig) -> None:
    wait_for(lambda: bool(read_record(rig.record_dir)), timeout=60, what="the plugin's first lines")


def _faults_then_account(
    rig: FaultRig, *, during: Callable[[], None] | None = None
) -> tuple[Account, dict[Key, list[str]]]:
    rig.run_faults(FAULTS, TELEGRAF_KILLS, during=during)
    snapshot, conflicts, _ = rig.produced()
    return rig.drain(snapshot), conflicts


# -- ndjson_tail ------------------------------------------------------------------------------


def test_ndjson_tail_loses_nothing_through_random_faults(
    telegraf_bin: Path, tmp_path: Path
) -> None:
    rig = FaultRig(tmp_path, telegraf_bin, fault_seed(1601))
    files = NdjsonRig(tmp_path / "ndjson", telegraf_bin, rig.influxd.url, rig.db)
    path = files.data / "data_2026-03-01.ndjson"
    written = [0]

    def append() -> None:
        files.write(path, written[0], 10)
        written[0] += 10

    try:
        _running(
            rig,
            f"""
sources:
  - name: solar
    plugin: ndjson_tail
    interval: 200ms
    restart_delay: 200ms
    options:
      files: ["{files.data}/data_*.ndjson"]
      commit_delay: 2s
      state_interval: 1s
      complete_after: 2s
""",
        )
        append()
        _wait_recorded(rig)
        account, conflicts = _faults_then_account(rig, during=append)
        wait_for(
            lambda: files.count(rig.influxd) >= len(files.expected),
            timeout=60,
            what="every file line in influxd",
        )
        stored = files.stored(rig.influxd)
    finally:
        rig.stop_all()
    lost = sorted(set(files.expected) - set(stored))
    assert not lost, rig.say(
        f"{len(lost)} of {len(files.expected)} file lines lost, e.g. {lost[:3]}"
    )
    wrong = [k for k, v in files.expected.items() if stored[k] != v]
    assert not wrong, rig.say(f"{len(wrong)} file lines stored with other values, e.g. {wrong[:3]}")
    rig.assert_exact(account, conflicts)


# -- gpio_pulse -------------------------------------------------------------------------------

WINDOW_NS = 2 * 10**9
GRACE_NS = 500 * 10**6


def test_gpio_pulse_rows_match_raw_pulses_through_random_faults(
    telegraf_bin: Path, tmp_path: Path
) -> None:
    rig = FaultRig(tmp_path, telegraf_bin, fault_seed(1602))
    try:
        _running(
            rig,
            """
sources:
  - name: meter
    plugin: gpio_pulse
    restart_delay: 200ms
    options:
      backend: sim
      window: 2s
      grace: 500ms
      sim: {rate: 20, jitter: 0.2, seed: 5}
""",
            "PowerLogger_raw",
        )
        _wait_recorded(rig)
        account, conflicts = _faults_then_account(rig)
        snapshot_ns = time.time_ns()
        rows, raw = _meter_rows_and_raw(rig)
    finally:
        rig.stop_all()
    rig.assert_exact(account, conflicts)
    _assert_rows_equal_raw(rig, account, rows, raw, snapshot_ns)


def _meter_rows_and_raw(
    rig: FaultRig,
) -> tuple[dict[tuple[str, int], dict[str, Any]], dict[tuple[str, int], int]]:
    """Stored meter rows and stored raw pulse counts, by (channel, window start)."""
    stored = rig.stored([("PowerLogger_raw", "PowerMeter"), ("PowerLogger_raw", "PowerPulse")])
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    raw: dict[tuple[str, int], int] = defaultdict(int)
    for (measurement, tags, when), fields in stored.items():
        channel = dict(tags)["PulseType"]
        if measurement == "PowerMeter":
            rows[(channel, when)] = fields
        else:
            raw[(channel, when - when % WINDOW_NS)] += 1
    return rows, dict(raw)


def _assert_rows_equal_raw(
    rig: FaultRig,
    account: Account,
    rows: dict[tuple[str, int], dict[str, Any]],
    raw: dict[tuple[str, int], int],
    snapshot_ns: int,
) -> None:
    # Windows closed before the snapshot: their row was due, and all their pulses produced.
    produced_windows = {
        (dict(k[1])["PulseType"], k[2] - k[2] % WINDOW_NS)
        for k in account.produced
        if k[0] in ("PowerMeter", "PowerPulse")
    }
    closed = {w for w in produced_windows if w[1] + WINDOW_NS + GRACE_NS + 2 * 10**9 < snapshot_ns}
    assert closed, rig.say("no closed window to compare")
    no_row = sorted(w for w in closed if w not in rows and raw.get(w, 0))
    assert not no_row, rig.say(
        f"{len(no_row)} of {len(closed)} closed windows have raw pulses but no meter row, e.g."
        f" {[(w, raw[w]) for w in no_row[:3]]}"
    )
    unequal = sorted(
        (w, rows[w]["pulses"], raw.get(w, 0))
        for w in closed
        if w in rows and rows[w]["pulses"] != raw.get(w, 0)
    )
    assert not unequal, rig.say(
        f"{len(unequal)} of {len(closed)} closed windows: meter row != raw pulses stored"
        f" (row short: {sum(1 for u in unequal if u[1] < u[2])}, raw short:"
        f" {sum(1 for u in unequal if u[1] > u[2])}), e.g. (window, row, raw) {unequal[:3]}"
    )
    for channel in {w[0] for w in rows}:
        series = sorted((when, f) for (c, when), f in rows.items() if c == channel)
        total = 0
        for when, fields in series:
            assert fields["pulses_total"] == total + fields["pulses"], rig.say(
                f"{channel}: pulses_total {fields['pulses_total']} at {when} is not the previous"
                f" {total} + this window's {fields['pulses']}"
            )
            total = fields["pulses_total"]


# -- taptap -----------------------------------------------------------------------------------

GW = SAMPLE_GATEWAY
READINGS = SAMPLE_READINGS


@pytest.fixture(scope="module")
def taptap() -> str:
    """Looked up before isolated_env points the cache into tmp_path (else it is rebuilt)."""
    return str(taptap_bin())


def test_taptap_loses_nothing_through_random_faults(
    telegraf_bin: Path, tmp_path: Path, taptap: str
) -> None:
    rig = FaultRig(tmp_path, telegraf_bin, fault_seed(1603))
    bus = TapBus()
    lock = threading.Lock()

    def connection(_index: int) -> Iterator[tuple[float, bytes]]:
        """Each taptap run joins a bus that keeps running: a cold start, then endless cycles."""
        with lock:
            first = bus.cold_start([GW]) + bus.cycle(READINGS)
        yield 0.0, first
        while True:
            with lock:
                chunk = bus.cycle(READINGS)
            yield 0.2, chunk

    with taptap_server(connection) as server:
        try:
            _running(
                rig,
                f"""
sources:
  - name: tigo
    plugin: taptap
    restart_delay: 200ms
    options:
      taptap: {json.dumps(taptap)}
      tcp: {server.host}
      restart_delay: 200ms
""",
            )
            _wait_recorded(rig)
            account, conflicts = _faults_then_account(rig)
        finally:
            rig.stop_all()
    rig.assert_exact(account, conflicts)


# -- hoymiles ---------------------------------------------------------------------------------


def test_hoymiles_loses_nothing_through_random_faults(telegraf_bin: Path, tmp_path: Path) -> None:
    # The modbus transport polls at most every 5 s: longer gaps, so faults fall between polls
    # and inside them.
    rig = FaultRig(tmp_path, telegraf_bin, fault_seed(1604), gap_s=(2.0, 6.0))
    rows = [
        Row("116180000001", 1, pv_power=101.5, today=500, total=80_000),
        Row("116180000001", 2, pv_power=99.5, today=490, total=79_000),
        Row("103332416355", 1, pv_current=0.3, temperature=-2.5, total=74_823),
    ]
    with ModbusDtu(rows) as dtu:
        try:
            _running(
                rig,
                f"""
sources:
  - name: roof
    plugin: hoymiles
    interval: 5s
    restart_delay: 200ms
    options:
      host: 127.0.0.1
      port: {dtu.port}
      timeout: 2s
      dtu_name: Roof DTU
""",
            )
            _wait_recorded(rig)
            account, conflicts = _faults_then_account(rig)
        finally:
            rig.stop_all()
    rig.assert_exact(account, conflicts)


# -- iotflow HTTP -----------------------------------------------------------------------------


class HttpDevice:
    """A device posting batches with its own timestamps; it keeps a batch until answered 2xx
    (then it may delete its copy: those points must be stored) and retries it otherwise."""

    def __init__(self, port: int, device_id: str, key: str, offset_ms: int) -> None:
        self.port = port
        self.device_id = device_id
        self.key = key
        self.offset_ms = offset_ms
        self.acked: list[int] = []  # timestamps (ns) of points answered 2xx
        self.refused = 0
        self.pause_s = 0.005
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        seq = 0
        while not self.stop.is_set():
            stamps = [
                EPOCH + timedelta(milliseconds=self.offset_ms + 10 * (seq * 5 + i))
                for i in range(5)
            ]
            body = {
                "points": [
                    {"data": {"value": float(seq * 5 + i)}, "timestamp": s.isoformat()}
                    for i, s in enumerate(stamps)
                ]
            }
            try:
                reply = post(self.port, body, key=self.key, timeout=5)
                ok = 200 <= reply.status < 300
            except OSError:
                ok = False
            self.stop.wait(self.pause_s)
            if ok:
                self.acked += [int(s.timestamp()) * 10**9 + s.microsecond * 1000 for s in stamps]
                seq += 1
            else:
                self.refused += 1
                self.stop.wait(0.2)  # retry the same batch, as a device does


def test_iotflow_http_every_2xx_is_stored_through_random_faults(
    telegraf_bin: Path, tmp_path: Path
) -> None:
    rig = FaultRig(tmp_path, telegraf_bin, fault_seed(1605))
    keys = make_registry(tmp_path / "devices.yaml")
    port = free_port()
    source = {
        "name": "iotflow",
        "plugin": "iotflow",
        "restart_delay": "200ms",
        "options": {
            "registry": str(tmp_path / "devices.yaml"),
            "http": {"listen": f"127.0.0.1:{port}"},
            "mqtt": {"enabled": False},
        },
    }
    devices = [
        HttpDevice(port, device_id, key, offset_ms=n)
        for n, (device_id, key) in enumerate(sorted(keys.items()))
    ]
    try:
        _running(rig, "sources:\n  - " + json.dumps(source) + "\n")
        for device in devices:
            device.thread.start()
        wait_for(lambda: all(d.acked for d in devices), timeout=60, what="the first 2xx")
        rig.run_faults(FAULTS, TELEGRAF_KILLS)
        for device in devices:
            device.stop.set()
            device.thread.join(10)
        snapshot, conflicts, _ = rig.produced()
        account = rig.drain(snapshot)
        stored = {(dict(k[1])["device_id"], k[2]) for k in rig.stored([(None, "telemetry")])}
    finally:
        for device in devices:
            device.stop.set()
        rig.stop_all()
    acked = {(d.device_id, t) for d in devices for t in d.acked}
    lost = sorted(acked - stored)
    runs = sum(
        1
        for i, k in enumerate(lost)
        if i == 0 or lost[i - 1][0] != k[0] or k[1] - lost[i - 1][1] > 10**7
    )
    print(f"[fault suite] iotflow HTTP: {len(acked)} points acked, {len(lost)} lost in {runs} runs")
    assert not lost, rig.say(
        f"{len(lost)} of {len(acked)} points answered 2xx are not in InfluxDB ({runs} runs of"
        f" consecutive requests), e.g. {lost[:3]}"
    )
    rig.assert_exact(account, conflicts)


# -- iotflow MQTT -----------------------------------------------------------------------------


def test_iotflow_mqtt_every_puback_is_stored_through_random_faults(
    telegraf_bin: Path, tmp_path: Path
) -> None:
    from telegraf_bridge.cli import iotflow_files
    from telegraf_bridge.plugins.common import Section
    from telegraf_bridge.plugins.iotflow import options as iotflow_options
    from telegraf_bridge.plugins.iotflow import registry

    # No execd plugin here: Telegraf's mqtt_consumer reads the broker itself.
    rig = FaultRig(
        tmp_path,
        telegraf_bin,
        fault_seed(1606),
        faults=tuple(f for f in ALL_FAULTS if f != PLUGIN_SIGKILL),
    )
    port = free_port()
    raw = {
        "registry": str(tmp_path / "reg" / "devices.yaml"),
        "http": {"enabled": False},
        "mqtt": {
            "servers": [f"tcp://127.0.0.1:{port}"],
            "broker_port": port,
            "broker_bind": "127.0.0.1",
        },
    }
    opts = iotflow_options.parse(Section(raw, "iotflow"))
    reg = registry.Registry()
    key_id, key = registry.new_key()
    reg.devices["esp32_001"] = registry.Device(
        "esp32_001", "Office Sensor", "environmental", "office", key_id, registry.hash_key(key)
    )
    iotflow_files.regenerate(opts, reg)
    registry.save(opts.registry, reg)
    broker = Mosquitto(
        tmp_path / "broker",
        extra_config=(opts.mosquitto_dir / "iotflow.conf").read_text(),
        port=port,
        persistence=True,
    )
    # mid -> the message's timestamp; PUBACKed mids. No lock around publish(): paho calls
    # on_publish from its network thread while publish() may hold paho's own locks.
    sent: dict[int, int] = {}
    acked_mids: set[int] = set()

    def on_publish(_c: object, _u: object, mid: int, _rc: object, _p: object) -> None:
        acked_mids.add(mid)

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="esp32_001-fault", clean_session=False
    )
    client.username_pw_set("esp32_001", key)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    seq = [0]

    def publish() -> None:
        for _ in range(3):
            when = EPOCH + timedelta(milliseconds=10 * seq[0])
            body = json.dumps({"value": float(seq[0]), "timestamp": when.isoformat()})
            info = client.publish("iotflow/devices/esp32_001/telemetry/environmental", body, qos=1)
            sent[info.mid] = int(when.timestamp()) * 10**9 + when.microsecond * 1000
            seq[0] += 1

    with broker:
        try:
            _running(
                rig,
                "sources:\n  - "
                + json.dumps({"name": "iotflow", "plugin": "iotflow", "options": raw})
                + "\n",
            )
            rig.telegraf.wait_for_log("Connected", timeout=30)  # type: ignore[union-attr]
            client.connect("127.0.0.1", port, keepalive=10)
            client.loop_start()
            wait_for(client.is_connected, timeout=10, what="the device connected")
            publish()
            wait_for(lambda: bool(acked_mids), timeout=30, what="the first PUBACK")
            rig.run_faults(FAULTS, TELEGRAF_KILLS, during=publish)
            wait_for(lambda: len(acked_mids) == len(sent), timeout=30, what="every PUBACK")
            want = {sent[mid] for mid in acked_mids}

            def stored() -> set[int]:
                return {k[2] for k in rig.stored([(None, "environmental")])}

            deadline = time.monotonic() + 30
            while not want <= stored() and time.monotonic() < deadline:
                rig.sleep(1)
            have = stored()
        finally:
            client.loop_stop()
            client.disconnect()
            rig.stop_all()
    lost = sorted(want - have)
    print(f"[fault suite] iotflow MQTT: {len(want)} messages PUBACKed, {len(lost)} lost")
    assert want, rig.say("no message was acknowledged")
    rig.assert_no_crash()
    assert not lost, rig.say(
        f"{len(lost)} of {len(want)} PUBACKed messages are not in InfluxDB, e.g. {lost[:3]}"
    )
