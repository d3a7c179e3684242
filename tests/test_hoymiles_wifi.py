"""Hoymiles over WiFi: the real hoymiles-wifi client against a loopback DTU that frames its
replies as the protocol does (``HM`` header, CRC16, pages) with the library's own protobuf
classes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _hoymiles_rig import FakeClock, WifiDtu, WifiInverter, crc16, frame, gather, start_source
from rig import free_port
from telegraf_bridge.plugins.hoymiles.plugin import HoymilesSource
from telegraf_bridge.plugins.hoymiles.snapshot import FIELD_TYPES
from telegraf_bridge.plugins.hoymiles.transport import PollError
from telegraf_bridge.plugins.hoymiles.wifi import WifiTransport

DTU_TIME = 1_763_899_937  # not on a poll-window boundary: the DTU's own time is used
HMS_2000 = WifiInverter(
    serial=0x116180123456,
    voltage=2381,
    frequency=4998,
    active_power=3985,
    reactive_power=-12,
    current=168,
    power_factor=998,
    temperature=-53,
    warning_number=2,
    ports=[
        {
            "port_number": 1,
            "voltage": 352,
            "current": 567,
            "power": 1996,
            "energy_total": 123456,
            "energy_daily": 1430,
            "error_code": 0,
        },
        {
            "port_number": 2,
            "voltage": 350,
            "current": 560,
            "power": 1960,
            "energy_total": 120000,
            "energy_daily": 1400,
            "error_code": 3,
        },
    ],
)
HMS_800 = WifiInverter(
    serial=0x114172000001,
    ports=[
        {
            "port_number": 1,
            "voltage": 300,
            "current": 100,
            "power": 300,
            "energy_total": 5000,
            "energy_daily": 10,
        }
    ],
)


def _source(dtu: WifiDtu, tmp_path: Path, clock: FakeClock, **options: object) -> HoymilesSource:
    opts = {
        "transport": "wifi",
        "host": "127.0.0.1",
        "port": dtu.port,
        "timeout": "2s",
        "dtu_name": "Garage",
        **options,
    }
    source: HoymilesSource = start_source(opts, tmp_path, clock)
    return source


def test_paged_real_data_becomes_points_field_by_field(tmp_path: Path) -> None:
    dtu = WifiDtu(inverters=[HMS_2000, HMS_800], pages=2, timestamp=DTU_TIME)
    clock = FakeClock(wall_ns=DTU_TIME * 10**9 + 5 * 10**9)
    with dtu.running():
        points = gather(_source(dtu, tmp_path, clock))
    assert [cp for _, cp in dtu.requests] == [0, 1], "both pages asked for"
    assert all(command == b"\xa3\x11" for command, _ in dtu.requests)
    assert {p.time_ns for p in points} == {DTU_TIME * 10**9}
    inverters = {p.tags["serial_number"]: p for p in points if p.measurement == "inverter"}
    assert set(inverters) == {"116180123456", "114172000001"}
    big = inverters["116180123456"]
    assert big.tags == {"serial_number": "116180123456", "dtu_name": "Garage"}
    assert big.fields == {
        "grid_voltage": 238.1,
        "grid_frequency": 49.98,
        "temperature": -5.3,
        "alarm_count": 2,
        "link_status": 1,
        "active_power": 398.5,
        "reactive_power": -1.2,
        "grid_current": 1.68,
        "power_factor": 0.998,
    }
    ports = {
        (p.tags["serial_number"], p.tags["port_number"]): p.fields
        for p in points
        if p.measurement == "port"
    }
    assert ports[("116180123456", "2")] == {
        "pv_voltage": 35.0,
        "pv_current": 5.6,
        "pv_power": 196.0,
        "today_production": 1400,
        "total_production": 120000,
        "error_code": 3,
    }
    assert len(ports) == 3
    (dtu_point,) = [p for p in points if p.measurement == "dtu"]
    assert dtu_point.tags == {"dtu_name": "Garage", "dtu_serial": "4143A0123456"}
    assert dtu_point.fields == {
        "pv_power": 797.0,  # the DTU's own figure
        "today_production": 1430,  # the DTU's own figure
        "total_production": 123456 + 120000 + 5000,
        "alarm_flag": True,  # warnings on the HMS-2000
        "inverters_online": 2,
    }


def test_both_transports_use_the_same_names_and_types() -> None:
    # Every field a WiFi point can carry is declared once, with one type, for both transports.
    declared = {name for fields in FIELD_TYPES.values() for name in fields}
    assert {"active_power", "reactive_power", "grid_current", "power_factor"} <= declared
    assert FIELD_TYPES["port"]["total_production"] == FIELD_TYPES["dtu"]["total_production"]


def test_dtu_clock_far_off_falls_back_to_the_poll_window(tmp_path: Path) -> None:
    dtu = WifiDtu(inverters=[HMS_800], timestamp=DTU_TIME - 86_400)  # a day behind
    clock = FakeClock(wall_ns=DTU_TIME * 10**9)
    with dtu.running():
        points = gather(_source(dtu, tmp_path, clock))
    window = (DTU_TIME // 60) * 60 * 10**9
    assert points and {p.time_ns for p in points} == {window}


def _bad_crc(request: bytes) -> bytes:
    good = frame(request[2:4], 1, b"\x0a\x0cAAAAAAAAAAAA")
    return good[:6] + bytes([good[6] ^ 0xFF]) + good[7:]


def _half_frame(request: bytes) -> bytes:
    whole = frame(request[2:4], 1, b"\x0a\x0c4143A0123456\x10\x01")
    return whole[: len(whole) // 2]


@pytest.mark.parametrize(
    ("respond", "stall"),
    [
        pytest.param(_bad_crc, False, id="bad-crc"),
        pytest.param(lambda request: b"HTTP/1.1 400 Bad Request\r\n\r\n", False, id="garbage"),
        pytest.param(lambda request: None, False, id="hang"),  # reads, never answers
        pytest.param(_half_frame, True, id="stall-mid-response"),
    ],
)
def test_misbehaving_dtu_is_a_failed_poll_within_the_timeout(
    tmp_path: Path,
    respond: Callable[[bytes], bytes | None],
    stall: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dtu = WifiDtu(respond=respond, stall_after_reply=stall)
    clock = FakeClock()
    with dtu.running():
        source = _source(dtu, tmp_path, clock, timeout="1s")
        started = time.monotonic()
        assert gather(source) == []
        assert time.monotonic() - started < 5
    assert source.failed_polls == 1
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_refused_connection_is_reported_as_no_answer() -> None:
    transport = WifiTransport("127.0.0.1", free_port(), 1)
    with pytest.raises(PollError, match="no answer"):
        transport.poll()
    transport.close()


def test_crc_matches_the_librarys() -> None:
    from crcmod import mkCrcFun

    library = mkCrcFun(0x18005, rev=True, initCrc=0xFFFF, xorOut=0x0000)
    for payload in (b"", b"\x00", b"hoymiles", bytes(range(256))):
        assert crc16(payload) == library(payload)
