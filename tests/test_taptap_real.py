"""The taptap plugin with the REAL taptap 0.1.1 decoding synthesised RS485 bus bytes.

tests/_taptap_bus.py builds gateway/controller frames per taptap's docs/protocol.md (its framing
reproduces the real capture in taptap's test_data.rs byte for byte) and serves them like a
serial-over-TCP bridge; the plugin runs `taptap observe --tcp HOST` exactly as configured by a
user. taptap 0.1.1 only connects to port 7160, so each server gets its own 127.x.y.z address.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from pathlib import Path

import pytest
from _support import SOAK, fast_agent_yaml, render_yaml
from _taptap_bus import (
    SAMPLE_GATEWAY,
    SAMPLE_READINGS,
    PowerReading,
    TapBus,
    long_address,
    repeat_cycles,
    taptap_server,
)
from _taptap_rig import start_plugin, taptap_bin
from rig import InfluxD1, TelegrafProcess, wait_for

from telegraf_bridge.testing import parse_lines

GW = SAMPLE_GATEWAY  # 4609, the gateway id of taptap's README samples
GW_ADDR = bytes.fromhex("04C05B300002BE16")
NODE_ADDR = long_address("4-9A57A2L")
READINGS = SAMPLE_READINGS


@pytest.fixture(scope="module")
def taptap() -> str:
    return str(taptap_bin())


def _expected(reading: PowerReading) -> dict[str, float | int]:
    """The plugin's fields for what taptap prints for ``reading`` (tigo-ingest's formulas)."""
    printed = reading.expected_fields()
    power = float(printed["voltage_in"]) * float(printed["current"])
    fields: dict[str, float | int] = {
        "voltage_in_v": printed["voltage_in"],
        "voltage_out_v": printed["voltage_out"],
        "current_in_a": printed["current"],
        "power_w": power,
        "duty_cycle": printed["dc_dc_duty_cycle"],
        "temperature_c": printed["temperature"],
        "rssi": printed["rssi"],
    }
    if printed["voltage_out"] != 0:
        fields["current_out_a"] = power / float(printed["voltage_out"])
    return fields


def test_real_taptap_reports_become_exact_points_with_identities(
    tmp_path: Path, taptap: str
) -> None:
    bus = TapBus(
        gateway_addresses={GW: GW_ADDR},
        node_addresses={GW: {116: NODE_ADDR}},
        node_table_layout="taptap-0.1.1",
    )
    with taptap_server(bus.stream(repeat_cycles(READINGS, 2), interval_s=0.2)) as server:
        before = time.time_ns()
        run = start_plugin(tmp_path, {"taptap": taptap, "tcp": server.host})
        run.wait_for(lambda: len(run.points()) == 6)
        after = time.time_ns()
        assert run.stop() == 0
    points = parse_lines("\n".join(run.points()))
    by_node = {p.tags["node_id"]: p for p in points}
    for reading in READINGS:
        point = by_node[str(reading.node_id)]
        assert point.fields == _expected(reading)
        assert point.tags["gateway_id"] == "4609" and point.tags["src"] == "tigo"
        assert point.tags["gateway_addr"] == "04:C0:5B:30:00:02:BE:16"
        assert point.time_ns is not None and before - 10**9 <= point.time_ns <= after
    assert by_node["116"].tags["node_addr"] == "04:C0:5B:40:00:9A:57:A2"
    assert by_node["116"].tags["barcode"] == "4-9A57A2L"
    assert "current_out_a" not in by_node["82"].fields
    assert by_node["82"].fields["temperature_c"] == -7.5
    assert run.log("E!") == [] and run.log("W!") == []


def test_connection_loss_restarts_taptap_with_backoff_and_logs_once(
    tmp_path: Path, taptap: str
) -> None:
    bus = TapBus()
    chunk = bus.cold_start([GW]) + bus.cycle(READINGS[:1])
    # Every connection gets one report, then the "bridge" closes it: taptap exits 0 each time.
    with taptap_server([(0.0, chunk)], after_script="close") as server:
        run = start_plugin(
            tmp_path,
            {
                "taptap": taptap,
                "tcp": server.host,
                "restart_delay": "200ms",
                "restart_backoff_max": "800ms",
                "interval": "20ms",
            },
        )
        assert server.wait_for_connections(5, timeout=20)
        run.wait_for(lambda: len(run.points()) >= 5)
        run.stop()
        times = list(server.connection_times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 0.2, 0.4, 0.8, 0.8 s (+-10 % jitter): backoff capped at restart_backoff_max, no storm.
    assert gaps[0] >= 0.17 and gaps[1] >= 0.34 and min(gaps[2:4]) >= 0.68, gaps
    assert max(gaps[:4]) <= 2.0, gaps
    assert len(run.points()) >= 5
    stopped = [line for line in run.stderr if "taptap stopped" in line]
    assert 1 <= len(stopped) <= len(times), stopped
    assert all(line.startswith("W!") and "exit status 0" in line for line in stopped)


def test_refused_connection_relays_taptaps_error_once(tmp_path: Path, taptap: str) -> None:
    from _taptap_bus import refused_host

    run = start_plugin(
        tmp_path, {"taptap": taptap, "tcp": refused_host(), "restart_delay": "100ms"}
    )
    run.wait_for(lambda: any("Connection refused" in line for line in run.stderr))
    time.sleep(1.0)
    run.stop()
    relayed = [line for line in run.log("E!") if "error opening source" in line]
    assert len(relayed) == 1, run.stderr
    stopped = [line for line in run.stderr if "taptap stopped" in line]
    assert len(stopped) == 1 and "exit status 2" in stopped[0]


@pytest.mark.telegraf
@pytest.mark.influxd
def test_real_taptap_through_telegraf_into_influxd(
    influxd: InfluxD1, telegraf_bin: Path, tmp_path: Path, taptap: str
) -> None:
    db = f"tigo_{uuid.uuid4().hex[:8]}"
    bus = TapBus(gateway_addresses={GW: GW_ADDR})
    cycles = 3
    with taptap_server(bus.stream(repeat_cycles(READINGS, cycles), interval_s=1.1)) as server:
        yaml_text = (
            fast_agent_yaml(tmp_path)
            + f"""
sources:
  - name: tigo
    plugin: taptap
    options:
      taptap: {json.dumps(taptap)}
      tcp: {server.host}
sinks:
  - name: bms
    type: influxdb_v1
    url: {influxd.url}
    database: {db}
"""
        )
        conf = render_yaml(yaml_text, tmp_path / "out")
        with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg") as telegraf:
            wait_for(
                lambda: influxd.count("tigo_power_report", "power_w", db=db) == 3 * cycles,
                timeout=60,
                what="every decoded report in influxd",
            )
            log = telegraf.log()
    assert "E! " not in log, log
    rows = influxd.rows("SELECT * FROM tigo_power_report WHERE \"node_id\" = '121'", db=db)
    assert len(rows) == cycles
    expected = _expected(READINGS[2])
    for row in rows:
        assert row["gateway_addr"] == "04:C0:5B:30:00:02:BE:16"
        for key, value in expected.items():
            assert row[key] == value, key


@pytest.mark.slow
def test_repeated_bridge_disconnects_lose_and_duplicate_nothing(
    tmp_path: Path, taptap: str
) -> None:
    """A serial-over-TCP bridge that drops the connection every 20 bus cycles.

    Each connection continues the bus where the last one stopped (a shared stream), ending with
    a clean close, so every report is delivered to some taptap run: the plugin must restart
    taptap each time and write each report exactly once. `make test` runs 60 cycles,
    `make soak` (BRIDGE_SOAK=1) 600.
    """
    cycles = 600 if SOAK else 60
    per_connection = 20
    bus = TapBus()
    stream = bus.stream(repeat_cycles(READINGS, cycles), interval_s=0.03)

    def next_script(_index: int) -> list[tuple[float, bytes]]:
        chunks = list(itertools.islice(stream, per_connection))
        if _index > 0 and chunks:
            # A new taptap has no slot clock yet: give it the empty poll it needs first.
            chunks.insert(0, (0.0, bus.receive_exchange(GW)))
        return chunks

    with taptap_server(next_script, after_script="close") as server:
        run = start_plugin(
            tmp_path,
            {
                "taptap": taptap,
                "tcp": server.host,
                "restart_delay": "100ms",
                "stable_after": "300ms",
                "interval": "20ms",
            },
        )
        run.wait_for(lambda: len(run.points()) >= 3 * cycles, timeout=60 + cycles * 0.1)
        time.sleep(0.3)
        run.stop()
        connections = server.connections
    points = parse_lines("\n".join(run.points()))
    keys = [(p.tags["node_id"], p.time_ns) for p in points]
    assert len(keys) == len(set(keys)) == 3 * cycles, "each report exactly once"
    assert connections >= cycles // per_connection
    for point in points:
        reading = next(r for r in READINGS if str(r.node_id) == point.tags["node_id"])
        assert point.fields == _expected(reading)
