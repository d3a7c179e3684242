"""One poll of a DTU as typed values, and the points it becomes.

Why a snapshot between transport and line protocol: Modbus and the WiFi protobuf protocol
report the same quantities with different layouts and scalings. Each transport fills the same
snapshot, so both write the same measurement, tag and field names with the same types, and the
guards (lifetime counters that must not go down, nothing written for an offline inverter) are
written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from telegraf_bridge.plugins.common import FieldType, FieldValue, Point


@dataclass(frozen=True)
class PortReading:
    """One PV input (port) of one inverter."""

    serial_number: str
    port_number: int
    pv_voltage: float  # V
    pv_current: float  # A
    pv_power: float  # W
    today_production: int  # Wh
    total_production: int  # Wh, lifetime
    link_status: int = 1  # 0: the DTU has no current data for this port's inverter
    error_code: int | None = None  # WiFi only


@dataclass(frozen=True)
class InverterReading:
    """One microinverter: grid side and status."""

    serial_number: str
    grid_voltage: float  # V
    grid_frequency: float  # Hz
    temperature: float  # degC
    operating_status: int | None  # Modbus only
    alarm_code: int | None  # Modbus only
    alarm_count: int  # WiFi: the inverter's warning_number
    link_status: int
    # Only the WiFi protocol carries these.
    active_power: float | None = None  # W (AC)
    reactive_power: float | None = None  # var
    grid_current: float | None = None  # A (AC)
    power_factor: float | None = None  # ratio, -1..1


@dataclass(frozen=True)
class Snapshot:
    """Everything one poll returned; ``time_ns`` is the DTU's own time when it has one."""

    dtu_serial: str
    inverters: tuple[InverterReading, ...]
    ports: tuple[PortReading, ...]
    time_ns: int | None = None  # None: stamp with the poll window
    dtu_pv_power: float | None = None  # W, as the DTU reports it (WiFi); else summed
    dtu_today_production: int | None = None  # Wh (WiFi); else summed


FIELD_TYPES: dict[str, dict[str, FieldType]] = {
    "dtu": {
        "pv_power": FieldType.FLOAT,
        "today_production": FieldType.INTEGER,
        "total_production": FieldType.INTEGER,
        "alarm_flag": FieldType.BOOLEAN,
        "inverters_online": FieldType.INTEGER,
    },
    "inverter": {
        "grid_voltage": FieldType.FLOAT,
        "grid_frequency": FieldType.FLOAT,
        "temperature": FieldType.FLOAT,
        "operating_status": FieldType.INTEGER,
        "alarm_code": FieldType.INTEGER,
        "alarm_count": FieldType.INTEGER,
        "link_status": FieldType.INTEGER,
        "active_power": FieldType.FLOAT,
        "reactive_power": FieldType.FLOAT,
        "grid_current": FieldType.FLOAT,
        "power_factor": FieldType.FLOAT,
    },
    "port": {
        "pv_voltage": FieldType.FLOAT,
        "pv_current": FieldType.FLOAT,
        "pv_power": FieldType.FLOAT,
        "today_production": FieldType.INTEGER,
        "total_production": FieldType.INTEGER,
        "error_code": FieldType.INTEGER,
    },
}


@dataclass(frozen=True)
class Measurements:
    """The three measurement names (configurable, defaults as the seed wrote them)."""

    dtu: str = "dtu"
    inverter: str = "inverter"
    port: str = "port"


@dataclass
class Rejections:
    """What :func:`to_points` left out, by reason, for the skip counter and the log."""

    offline_inverters: list[str] = field(default_factory=list)
    counter_regressions: list[str] = field(default_factory=list)


class LifetimeGuard:
    """Remembers the highest lifetime counter per series; lower values are refused.

    A DTU that reboots reports 0 Wh for a while; written, that would draw a cliff in every
    dashboard and break ``MAX - MIN`` queries. The remembered values are persisted by the
    plugin, so a restart of ours does not forget them.
    """

    def __init__(self, highest: dict[str, int] | None = None) -> None:
        self.highest: dict[str, int] = dict(highest or {})

    def accept(self, key: str, value: int) -> bool:
        """True when ``value`` is not below the highest seen for ``key`` (and records it)."""
        best = self.highest.get(key)
        if best is not None and value < best:
            return False
        self.highest[key] = value
        return True


def _dtu_totals(snapshot: Snapshot, online: list[PortReading]) -> tuple[float, int, int]:
    power = sum(p.pv_power for p in online)
    today = sum(p.today_production for p in online)
    total = sum(p.total_production for p in online)
    if snapshot.dtu_pv_power is not None:
        power = snapshot.dtu_pv_power
    if snapshot.dtu_today_production is not None:
        today = snapshot.dtu_today_production
    return round(power, 3), today, total


def _inverter_fields(inv: InverterReading) -> dict[str, FieldValue]:
    """An inverter point's fields; values the DTU did not report are left out, never zeroed."""
    fields: dict[str, FieldValue] = {
        "grid_voltage": inv.grid_voltage,
        "grid_frequency": inv.grid_frequency,
        "temperature": inv.temperature,
        "alarm_count": inv.alarm_count,
        "link_status": inv.link_status,
    }
    for name in (
        "operating_status",
        "alarm_code",
        "active_power",
        "reactive_power",
        "grid_current",
        "power_factor",
    ):
        value = getattr(inv, name)
        if value is not None:
            fields[name] = value
    return fields


def _port_fields(port: PortReading) -> dict[str, FieldValue]:
    """A port point's fields; ``error_code`` only when the DTU reported one."""
    fields: dict[str, FieldValue] = {
        "pv_voltage": port.pv_voltage,
        "pv_current": port.pv_current,
        "pv_power": port.pv_power,
        "today_production": port.today_production,
        "total_production": port.total_production,
    }
    if port.error_code is not None:
        fields["error_code"] = port.error_code
    return fields


def to_points(
    snapshot: Snapshot,
    *,
    dtu_name: str,
    time_ns: int,
    guard: LifetimeGuard,
    names: Measurements | None = None,
) -> tuple[list[Point], Rejections]:
    """The points of one poll, stamped ``time_ns``; offline and regressed series left out.

    Rules (documented in the README): an inverter whose ``link_status`` is 0 has no current
    data, so neither it nor its ports are written; a port or DTU whose lifetime counter went
    down is dropped whole; the DTU point sums only linked ports (as hoymiles_modbus' plant
    data does) and is written only when at least one inverter is linked.
    """
    names = names or Measurements()
    rejected = Rejections()
    serial = snapshot.dtu_serial
    linked = {inv.serial_number for inv in snapshot.inverters if inv.link_status}
    for inv in snapshot.inverters:
        if not inv.link_status:
            rejected.offline_inverters.append(inv.serial_number)
    points: list[Point] = []
    for inv in snapshot.inverters:
        if inv.serial_number not in linked:
            continue
        tags = {"serial_number": inv.serial_number, "dtu_name": dtu_name}
        points.append(Point(names.inverter, tags, _inverter_fields(inv), time_ns))
    online = [p for p in snapshot.ports if p.serial_number in linked and p.link_status]
    accepted: list[PortReading] = []
    for port in online:
        key = f"port/{serial}/{port.serial_number}/{port.port_number}"
        if not guard.accept(key, port.total_production):
            rejected.counter_regressions.append(
                f"{port.serial_number} port {port.port_number}: {port.total_production} Wh "
                f"< {guard.highest[key]} Wh"
            )
            continue
        accepted.append(port)
        tags = {
            "serial_number": port.serial_number,
            "port_number": str(port.port_number),
            "dtu_name": dtu_name,
        }
        points.append(Point(names.port, tags, _port_fields(port), time_ns))
    if linked and len(accepted) == len(online):
        power, today, total = _dtu_totals(snapshot, online)
        key = f"dtu/{serial}"
        if guard.accept(key, total):
            alarm = any(
                inv.alarm_code or (inv.alarm_code is None and inv.alarm_count)
                for inv in snapshot.inverters
                if inv.serial_number in linked
            )
            dtu_fields: dict[str, FieldValue] = {
                "pv_power": power,
                "today_production": today,
                "total_production": total,
                "alarm_flag": alarm,
                "inverters_online": len(linked),
            }
            tags = {"dtu_name": dtu_name, "dtu_serial": serial}
            points.append(Point(names.dtu, tags, dtu_fields, time_ns))
        else:
            rejected.counter_regressions.append(f"DTU {serial}: {total} Wh < {guard.highest[key]}")
    elif linked:
        rejected.counter_regressions.append(f"DTU {serial}: not written, a port regressed")
    return points, rejected


def _all_field_types() -> dict[str, FieldType]:
    """Every field name with its one type; a name declared twice must agree across tables."""
    merged: dict[str, FieldType] = {}
    for fields in FIELD_TYPES.values():
        for name, kind in fields.items():
            if merged.setdefault(name, kind) is not kind:  # pragma: no cover - a table error
                raise AssertionError(f"field {name} declared with two types")
    return merged


# The serializer's per-key declarations (field types are per key, not per measurement).
ALL_FIELD_TYPES = _all_field_types()
