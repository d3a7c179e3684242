"""Modbus TCP transport (DTU-Pro, DTU-Pro-S): one scan of the DTU's port rows per poll.

The real client is hoymiles_modbus (pure Python over pymodbus), the library the seed used. The
DTU lays out one 20-register row per inverter *port* at 0x1000 + 40 * i, ended by a row whose
serial is all zeros. The seed wrote one inverter point per row, so a 4-port inverter became 4
inverter points; here rows are grouped by serial: one inverter point, N port points.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from telegraf_bridge.plugins.common import ConfigError
from telegraf_bridge.plugins.hoymiles.snapshot import InverterReading, PortReading, Snapshot
from telegraf_bridge.plugins.hoymiles.transport import PollError, quiet_library_log


def _float(value: Decimal | float | int) -> float:
    return float(value)


def snapshot_from_rows(dtu_serial: str, rows: list[Any]) -> Snapshot:
    """Group hoymiles_modbus ``InverterData`` rows into inverters and ports.

    An inverter's grid values and status are the same in each of its rows; the first row is
    used. Its ``link_status`` is the highest of its rows, so one linked port is enough.
    """
    inverters: dict[str, InverterReading] = {}
    ports: list[PortReading] = []
    for row in rows:
        serial = str(row.serial_number)
        link = int(row.link_status)
        ports.append(
            PortReading(
                serial_number=serial,
                port_number=int(row.port_number),
                pv_voltage=_float(row.pv_voltage),
                pv_current=_float(row.pv_current),
                pv_power=_float(row.pv_power),
                today_production=int(row.today_production),
                total_production=int(row.total_production),
                link_status=link,
            )
        )
        known = inverters.get(serial)
        if known is not None:
            if link > known.link_status:
                inverters[serial] = replace(known, link_status=link)
            continue
        inverters[serial] = InverterReading(
            serial_number=serial,
            grid_voltage=_float(row.grid_voltage),
            grid_frequency=_float(row.grid_frequency),
            temperature=_float(row.temperature),
            operating_status=int(row.operating_status),
            alarm_code=int(row.alarm_code),
            alarm_count=int(row.alarm_count),
            link_status=link,
        )
    return Snapshot(dtu_serial=dtu_serial, inverters=tuple(inverters.values()), ports=tuple(ports))


class ModbusTransport:
    """Polls a DTU over Modbus TCP; every failure becomes a :class:`PollError`."""

    name = "modbus"

    def __init__(self, host: str, port: int, unit_id: int, timeout_s: float) -> None:
        try:
            from hoymiles_modbus.client import HoymilesModbusTCP  # noqa: PLC0415 - optional extra
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigError(
                "the modbus transport needs hoymiles_modbus: "
                "pip install 'telegraf-bridge[hoymiles]'"
            ) from exc
        quiet_library_log("pymodbus")
        self.endpoint = f"{host}:{port} unit {unit_id}"
        self._client = HoymilesModbusTCP(host, port=port, unit_id=unit_id)
        # One attempt per request: the poll loop owns retries and backoff, so a dead DTU costs
        # one timeout per poll, not three.
        self._client.comm_params.timeout = timeout_s
        self._client.comm_params.retries = 0

    def poll(self) -> Snapshot:
        """One full scan: the DTU serial (cached by the library after the first) and all rows."""
        try:
            serial = self._client.dtu
            rows = self._client.inverters
        except Exception as exc:  # pymodbus and plum raise many kinds
            raise PollError(f"{type(exc).__name__}: {exc}") from None
        if not rows:
            raise PollError("the DTU lists no inverters")
        return snapshot_from_rows(str(serial), rows)

    def close(self) -> None:
        """Nothing held between polls: the library opens one connection per scan."""
