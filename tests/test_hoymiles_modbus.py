"""Hoymiles over Modbus TCP: a real pymodbus server, polled through the real hoymiles_modbus.

Registers are laid out as a DTU-Pro lays them out; the first test serves the exact bytes
transcribed from hoymiles_modbus' own tests (testdata/hoymiles_modbus_register_vectors.json).
"""

from __future__ import annotations

import json
import logging
import struct
import time
from decimal import Decimal
from pathlib import Path

import pytest
from _hoymiles_rig import FakeClock, ModbusDtu, RawPeer, Row, gather, make_ctx, start_source
from _support import SOAK
from rig import free_port
from telegraf_bridge.plugins.common import ConfigError, Point
from telegraf_bridge.plugins.hoymiles.modbus import ModbusTransport
from telegraf_bridge.plugins.hoymiles.plugin import HoymilesSource
from telegraf_bridge.plugins.hoymiles.transport import PollError

ROOT = Path(__file__).resolve().parents[1]
VECTORS = json.loads(
    (ROOT / "plugins/hoymiles/testdata/hoymiles_modbus_register_vectors.json").read_text()
)
WINDOW_NS = 1_763_899_980 * 10**9  # a multiple of 60 s: the poll window of FakeClock's start


def _source(dtu_port: int, tmp_path: Path, clock: FakeClock, **options: object) -> HoymilesSource:
    opts = {"host": "127.0.0.1", "port": dtu_port, "timeout": "1s", "dtu_name": "Roof", **options}
    return start_source(opts, tmp_path, clock)


def _by(points: list[Point], measurement: str) -> list[Point]:
    return [p for p in points if p.measurement == measurement]


def test_register_vector_decodes_field_by_field(tmp_path: Path) -> None:
    block = bytes.fromhex(VECTORS["inverter_row"]["register_block_hex"])
    registers = list(struct.unpack(">20H", block))
    expected = VECTORS["inverter_row"]["expected"]
    with ModbusDtu([registers], serial=VECTORS["dtu_serial"]["expected"]) as dtu:
        snapshot = ModbusTransport("127.0.0.1", dtu.port, 1, 2.0).poll()
    assert snapshot.dtu_serial == "11d361600831"
    (port,) = snapshot.ports
    (inverter,) = snapshot.inverters
    assert port.serial_number == expected["serial_number"] == inverter.serial_number
    assert port.port_number == expected["port_number"]
    for name in ("pv_voltage", "pv_current", "pv_power"):
        assert getattr(port, name) == float(Decimal(expected[name])), name
    assert port.today_production == expected["today_production"]
    assert port.total_production == expected["total_production"]
    for name in ("grid_voltage", "grid_frequency", "temperature"):
        assert getattr(inverter, name) == float(Decimal(expected[name])), name
    for name in ("operating_status", "alarm_code", "alarm_count", "link_status"):
        assert getattr(inverter, name) == expected[name], name


def test_plant_example_gives_the_libraries_totals(tmp_path: Path) -> None:
    rows = [
        Row(
            serial=inv["serial_number"],
            port=inv["port_number"],
            pv_voltage=float(inv["pv_voltage"]),
            pv_current=float(inv["pv_current"]),
            grid_voltage=float(inv["grid_voltage"]),
            grid_frequency=float(inv["grid_frequency"]),
            pv_power=float(inv["pv_power"]),
            today=inv["today_production"],
            total=inv["total_production"],
            temperature=float(inv["temperature"]),
            status=inv["operating_status"],
            alarm_code=inv["alarm_code"],
            alarm_count=inv["alarm_count"],
            link=inv["link_status"],
        )
        for inv in VECTORS["plant_example"]["inverters_expected"]
    ]
    plant = VECTORS["plant_example"]["plant_expected"]
    clock = FakeClock()
    with ModbusDtu(rows, serial=plant["dtu"]) as dtu:
        points = gather(_source(dtu.port, tmp_path, clock))
    (dtu_point,) = _by(points, "dtu")
    assert dtu_point.tags == {"dtu_name": "Roof", "dtu_serial": plant["dtu"]}
    assert dtu_point.fields == {
        "pv_power": 20.1,
        "today_production": plant["today_production"],
        "total_production": plant["total_production"],
        "alarm_flag": plant["alarm_flag"],
        "inverters_online": 2,
    }
    assert len(_by(points, "inverter")) == 2
    assert len(_by(points, "port")) == 2
    assert {p.time_ns for p in points} == {WINDOW_NS}


def test_mi_and_hm_series_current_scaling(tmp_path: Path) -> None:
    rows = [Row("103332416355", 1, pv_current=5.6), Row("116180123456", 1, pv_current=5.67)]
    with ModbusDtu(rows) as dtu:
        snapshot = ModbusTransport("127.0.0.1", dtu.port, 1, 2.0).poll()
    currents = {p.serial_number: p.pv_current for p in snapshot.ports}
    assert currents == {"103332416355": 5.6, "116180123456": 5.67}


def test_four_port_inverter_is_one_inverter_point_and_four_port_points(tmp_path: Path) -> None:
    serial = "116180999999"
    rows = [
        Row(serial, n, pv_power=100.0 + n, today=1000 + n, total=50_000 + n) for n in range(1, 5)
    ]
    clock = FakeClock()
    with ModbusDtu(rows) as dtu:
        points = gather(_source(dtu.port, tmp_path, clock))
    (inverter,) = _by(points, "inverter")
    assert inverter.tags == {"serial_number": serial, "dtu_name": "Roof"}
    ports = _by(points, "port")
    assert sorted(p.tags["port_number"] for p in ports) == ["1", "2", "3", "4"]
    (dtu_point,) = _by(points, "dtu")
    assert dtu_point.fields["pv_power"] == pytest.approx(410.0)
    assert dtu_point.fields["today_production"] == 4010
    assert dtu_point.fields["total_production"] == 200_010


def test_link_status_zero_inverter_is_not_written_nor_summed(tmp_path: Path) -> None:
    rows = [
        Row("116180000001", 1, pv_power=50.0, today=100, total=1000),
        Row("116180000002", 1, pv_power=0.0, today=0, total=9999, link=0, alarm_code=7),
    ]
    clock = FakeClock()
    with ModbusDtu(rows) as dtu:
        points = gather(_source(dtu.port, tmp_path, clock))
    assert {p.tags["serial_number"] for p in _by(points, "inverter")} == {"116180000001"}
    assert {p.tags["serial_number"] for p in _by(points, "port")} == {"116180000001"}
    (dtu_point,) = _by(points, "dtu")
    assert dtu_point.fields["total_production"] == 1000
    assert dtu_point.fields["alarm_flag"] is False
    assert dtu_point.fields["inverters_online"] == 1


def test_scan_stops_at_the_terminator_row(tmp_path: Path) -> None:
    with ModbusDtu([Row("116180000001", 1)], after=(Row("116180000002", 1),)) as dtu:
        snapshot = ModbusTransport("127.0.0.1", dtu.port, 1, 2.0).poll()
    assert [p.serial_number for p in snapshot.ports] == ["116180000001"]


def test_negative_temperature_and_alarm(tmp_path: Path) -> None:
    rows = [Row("116180000001", 1, temperature=-12.5, alarm_code=4, alarm_count=2)]
    clock = FakeClock()
    with ModbusDtu(rows) as dtu:
        points = gather(_source(dtu.port, tmp_path, clock))
    (inverter,) = _by(points, "inverter")
    assert inverter.fields["temperature"] == -12.5
    assert inverter.fields["alarm_code"] == 4
    (dtu_point,) = _by(points, "dtu")
    assert dtu_point.fields["alarm_flag"] is True


def test_serialised_line_types(tmp_path: Path) -> None:
    clock = FakeClock()
    with ModbusDtu([Row("116180000001", 2)]) as dtu:
        ctx = make_ctx({"host": "127.0.0.1", "port": dtu.port, "dtu_name": "Roof"}, tmp_path)
        source = HoymilesSource(ctx, monotonic=clock.monotonic, wall_ns=clock.wall_ns)
        (port,) = _by(gather(source), "port")
    assert ctx.serializer.line(port) == (
        "port,dtu_name=Roof,port_number=2,serial_number=116180000001 pv_current=0.2,"
        "pv_power=10.2,pv_voltage=35.0,today_production=751i,total_production=74823i "
        f"{WINDOW_NS}"
    )


# ---------------------------------------------------------------------------------------------
# Faults


def test_dtu_away_for_a_night_logs_twice_and_backs_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    dtu = ModbusDtu([Row("116180000001", 1)]).start()
    try:
        source = _source(dtu.port, tmp_path, clock)
        assert gather(source)
        dtu.stop()  # switched off: the port refuses connections
        caplog.set_level(logging.INFO)
        attempts = 0
        for _ in range(200):  # 200 minutes of night, one gather per minute
            clock.advance(60)
            before = source.failed_polls
            assert gather(source) == []
            attempts += source.failed_polls - before
        # Backoff: 60 s doubling to the 900 s cap -> far fewer than 200 connection attempts.
        assert 10 <= attempts <= 30, attempts
        warnings = [r for r in caplog.records if "does not answer" in r.getMessage()]
        assert len(warnings) == 1
        assert warnings[0].levelno == logging.WARNING
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], "no library error line per failed poll"
        port = dtu.port
        dtu = ModbusDtu([Row("116180000001", 1, total=74900)])
        dtu.port = port
        dtu.start()
        for _ in range(20):
            clock.advance(60)
            points = gather(source)
            if points:
                break
        assert points, "polling resumed within the backoff cap"
        recovered = [r for r in caplog.records if "answers again" in r.getMessage()]
        assert len(recovered) == 1
    finally:
        dtu.stop()


@pytest.mark.parametrize("behaviour", ["hang", "partial", "garbage", "close"])
def test_misbehaving_peer_is_a_failed_poll_not_a_crash(tmp_path: Path, behaviour: str) -> None:
    clock = FakeClock()
    with RawPeer(behaviour) as peer:
        source = _source(peer.port, tmp_path, clock, timeout="0.5s")
        started = time.monotonic()
        assert gather(source) == []
        assert time.monotonic() - started < 5, "bounded by the request timeout"
        assert source.failed_polls == 1
        assert peer.connections >= 1


def test_refused_connection_is_a_poll_error() -> None:
    transport = ModbusTransport("127.0.0.1", free_port(), 1, 0.5)
    with pytest.raises(PollError):
        transport.poll()


def test_lifetime_counter_going_down_is_dropped_counted_and_remembered(tmp_path: Path) -> None:
    clock = FakeClock()
    serial = "116180000001"
    with ModbusDtu([Row(serial, 1, total=74823)]) as dtu:
        source = _source(dtu.port, tmp_path, clock)
        assert len(gather(source)) == 3
        dtu.set_rows([Row(serial, 1, total=0, today=0, pv_power=0.0)])  # DTU reboot
        clock.advance(60)
        points = gather(source)
        assert _by(points, "port") == [] and _by(points, "dtu") == []
        assert len(_by(points, "inverter")) == 1
        assert source.counter.snapshot()["lifetime_counter_regression"] == 2
        source.close()
        # A restart of ours remembers the highest counter: the reboot value stays refused.
        again = _source(dtu.port, tmp_path, clock)
        clock.advance(60)
        assert _by(gather(again), "port") == []
        dtu.set_rows([Row(serial, 1, total=74830)])
        clock.advance(60)
        (port,) = _by(gather(again), "port")
        assert port.fields["total_production"] == 74830


def test_night_with_no_linked_inverter_writes_nothing_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    with ModbusDtu([Row("116180000001", 1, link=0, pv_power=0.0)]) as dtu:
        source = _source(dtu.port, tmp_path, clock)
        for _ in range(5):
            assert gather(source) == []
            clock.advance(60)
    notes = [r for r in caplog.records if "no inverter is linked" in r.getMessage()]
    assert len(notes) == 1


def test_replayed_poll_is_byte_identical(tmp_path: Path) -> None:
    clock = FakeClock()
    with ModbusDtu([Row("116180000001", 1)]) as dtu:
        first = gather(_source(dtu.port, tmp_path / "a", clock))
        clock.advance(30)  # same 60 s window
        second = gather(_source(dtu.port, tmp_path / "b", clock))
    assert first == second


@pytest.mark.parametrize(
    ("options", "interval", "message"),
    [
        ({}, 60.0, "host is required"),
        ({"host": "dtu", "transport": "wifi"}, 10.0, "too short for the wifi transport"),
        ({"host": "dtu"}, 1.0, "too short for the modbus transport"),
        ({"host": "dtu", "port": 70000}, 60.0, "expected 1..65535"),
        ({"host": "dtu", "transport": "serial"}, 60.0, "one of 'modbus', 'wifi'"),
        ({"host": "dtu", "dtu_name": " "}, 60.0, "must not be empty"),
    ],
)
def test_bad_config_is_a_clear_error(
    tmp_path: Path, options: dict[str, object], interval: float, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        HoymilesSource(make_ctx(options, tmp_path, interval_s=interval))


@pytest.mark.slow
def test_random_outages_and_reboots_never_write_a_lower_counter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A DTU that goes away, comes back and reboots at random: what is written stays sane.

    `make test` runs 60 polls, `make soak` (BRIDGE_SOAK=1) 600.
    """
    import random

    polls = 600 if SOAK else 60
    rng = random.Random(20261123)
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    serial = "116180000001"
    total = 10_000
    dtu = ModbusDtu([Row(serial, 1, total=total)]).start()
    port = dtu.port
    source = _source(port, tmp_path, clock, backoff_max="2m")
    up, outages, rebooted = True, 0, False
    written: list[int] = []
    try:
        for _ in range(polls):
            roll = rng.random()
            if up and roll < 0.05:
                dtu.stop()
                up, outages = False, outages + 1
            elif not up and roll < 0.3:
                dtu = ModbusDtu([Row(serial, 1, total=total)])
                dtu.port = port
                dtu.start()
                up = True
            elif up and roll < 0.1:
                dtu.set_rows([Row(serial, 1, total=0, today=0, pv_power=0.0)])
                rebooted = True
            elif up:
                total += rng.randint(0, 50)
                dtu.set_rows([Row(serial, 1, total=total)])
            clock.advance(60)
            points = gather(source)
            if not up:
                assert points == []
            for point in _by(points, "port"):
                value = point.fields["total_production"]
                assert isinstance(value, int)
                assert not written or value >= written[-1], "a lifetime counter went down"
                written.append(value)
    finally:
        dtu.stop()
    assert written, "some polls succeeded"
    assert outages >= 1 and rebooted
    gone = [r for r in caplog.records if "does not answer" in r.getMessage()]
    back = [r for r in caplog.records if "answers again" in r.getMessage()]
    assert len(gone) <= outages and len(back) <= outages
    assert len(gone) - len(back) in (0, 1), "each outage logged once, each recovery once"
