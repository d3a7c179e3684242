"""WiFi transport (DTU-WLite, DTU-Lite-S, HMS-xxxW with built-in DTU): protobuf on port 10081.

The real client is hoymiles-wifi. It asks ``RealDataNew`` page by page (the reply says how
many pages, ``ap``; each request names one, ``cp``) and spaces requests at least 2 s apart,
which the DTU needs. Units on the wire are fixed-point integers; the scaling here follows the
Home Assistant integration built on the same library (ha-hoymiles-wifi):

=========================  =============  ===========================================
wire field                 scale          written as
=========================  =============  ===========================================
sgs.voltage                0.1 V          inverter.grid_voltage
sgs.frequency              0.01 Hz        inverter.grid_frequency
sgs.temperature            0.1 degC       inverter.temperature
sgs.active_power           0.1 W          inverter.active_power
sgs.reactive_power         0.1 var        inverter.reactive_power
sgs.current                0.01 A         inverter.grid_current
sgs.power_factor           0.1 %          inverter.power_factor (ratio: raw / 1000)
sgs.warning_number         count          inverter.alarm_count
pv.voltage                 0.1 V          port.pv_voltage
pv.current                 0.01 A         port.pv_current
pv.power                   0.1 W          port.pv_power
pv.energy_daily            Wh             port.today_production
pv.energy_total            Wh             port.total_production
pv.error_code              code           port.error_code
dtu_power                  0.1 W          dtu.pv_power
dtu_daily_energy           Wh             dtu.today_production
=========================  =============  ===========================================
"""

from __future__ import annotations

import asyncio
from typing import Any

from telegraf_bridge.plugins.common import ConfigError
from telegraf_bridge.plugins.hoymiles.snapshot import InverterReading, PortReading, Snapshot
from telegraf_bridge.plugins.hoymiles.transport import PollError, quiet_library_log

NS = 1_000_000_000


def serial_text(serial: int) -> str:
    """Inverter serial as 12 lower-case hex digits, the form the Modbus DTU reports."""
    return f"{serial:012x}"


def snapshot_from_message(message: Any) -> Snapshot:
    """A merged ``RealDataNewReqDTO`` (all pages) to a snapshot."""
    inverters: list[InverterReading] = []
    for sgs in message.sgs_data:
        inverters.append(
            InverterReading(
                serial_number=serial_text(sgs.serial_number),
                grid_voltage=sgs.voltage / 10,
                grid_frequency=sgs.frequency / 100,
                temperature=sgs.temperature / 10,
                operating_status=None,
                alarm_code=None,
                alarm_count=int(sgs.warning_number),
                link_status=int(sgs.link_status),
                active_power=sgs.active_power / 10,
                reactive_power=sgs.reactive_power / 10,
                grid_current=sgs.current / 100,
                power_factor=sgs.power_factor / 1000,
            )
        )
    links = {inv.serial_number: inv.link_status for inv in inverters}
    ports: list[PortReading] = []
    for pv in message.pv_data:
        serial = serial_text(pv.serial_number)
        ports.append(
            PortReading(
                serial_number=serial,
                port_number=int(pv.port_number),
                pv_voltage=pv.voltage / 10,
                pv_current=pv.current / 100,
                pv_power=pv.power / 10,
                today_production=int(pv.energy_daily),
                total_production=int(pv.energy_total),
                link_status=links.get(serial, 1),
                error_code=int(pv.error_code),
            )
        )
    stamp = int(message.timestamp)
    return Snapshot(
        dtu_serial=str(message.device_serial_number),
        inverters=tuple(inverters),
        ports=tuple(ports),
        time_ns=stamp * NS if stamp > 0 else None,
        # proto3 cannot tell 0 from absent; older DTUs leave both at 0, so 0 means "sum the
        # ports" (which also gives 0 when nothing produces).
        dtu_pv_power=message.dtu_power / 10 if message.dtu_power else None,
        dtu_today_production=int(message.dtu_daily_energy) if message.dtu_daily_energy else None,
    )


class WifiTransport:
    """Polls a DTU with hoymiles-wifi; every failure becomes a :class:`PollError`."""

    name = "wifi"

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        try:
            from hoymiles_wifi.dtu import DTU, NetworkState  # noqa: PLC0415 - optional extra
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigError(
                "the wifi transport needs hoymiles-wifi: "
                "pip install 'telegraf-bridge[hoymiles-wifi]'"
            ) from exc
        quiet_library_log("hoymiles_wifi")
        self.endpoint = f"{host}:{port}"
        self._offline = NetworkState.Offline
        target_port = port

        class _DTU(DTU):  # type: ignore[misc]
            """The library's client, sending to the configured port (it hard-wires 10081)."""

            async def async_send_request(
                self,
                command: bytes,
                request: Any,
                response_type: Any,
                dtu_port: int = target_port,
                **kw: Any,
            ) -> Any:
                return await super().async_send_request(
                    command, request, response_type, target_port, **kw
                )

        # The library keeps at least 2 s between requests per client object; one object for
        # the plugin's life keeps that spacing across polls too.
        self._dtu = _DTU(host, timeout=max(1, round(timeout_s)))
        self._loop = asyncio.new_event_loop()

    def poll(self) -> Snapshot:
        """All pages of ``RealDataNew``, merged by the library, as one snapshot."""
        try:
            message = self._loop.run_until_complete(self._dtu.async_get_real_data_new())
        except Exception as exc:  # the library lets protobuf errors through
            raise PollError(f"{type(exc).__name__}: {exc}") from None
        if message is None:
            if self._dtu.get_state() == self._offline:
                raise PollError("no answer (connection refused or timed out)")
            raise PollError("the reply was not a valid RealDataNew frame (length, CRC or body)")
        try:
            snapshot = snapshot_from_message(message)
        except (AttributeError, TypeError, ValueError) as exc:
            raise PollError(f"unexpected RealDataNew content: {exc}") from None
        if not snapshot.inverters and not snapshot.ports:
            raise PollError("the DTU reported no inverters")
        return snapshot

    def close(self) -> None:
        """Close the private event loop."""
        self._loop.close()
