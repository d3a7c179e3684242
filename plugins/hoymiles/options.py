"""The options of a ``hoymiles`` source, read by the plugin and checked by ``bridge-cli``.

Pure parsing (no DTU is contacted), so render-config can refuse a bad option before anything
is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegraf_bridge.plugins.common._config import ConfigError, Section, format_duration
from telegraf_bridge.plugins.hoymiles.snapshot import Measurements

# Options that name files (none: the DTU is on the network).
PATH_KEYS: tuple[str, ...] = ()
TRANSPORTS = ("modbus", "wifi")
# A DTU serves one client at a time and slows down or drops off when polled hard. The WiFi
# DTUs need the most room (the vendor app polls them every 30 s or slower).
MIN_INTERVAL_S = {"modbus": 5.0, "wifi": 30.0}
DEFAULT_PORT = {"modbus": 502, "wifi": 10081}
DEFAULT_TIMEOUT_S = {"modbus": 5.0, "wifi": 10.0}


@dataclass(frozen=True)
class HoymilesOptions:
    """One DTU and how its points are named."""

    transport: str
    host: str
    port: int
    unit_id: int
    timeout_s: float
    dtu_name: str
    names: Measurements
    use_dtu_time: bool
    max_clock_skew_s: float
    backoff_max_s: float


def parse(sec: Section, *, interval_s: float, require_host: bool = True) -> HoymilesOptions:
    """Validate a hoymiles source's options against its poll interval; names the key."""
    kind = sec.string("transport", "modbus", choices=TRANSPORTS)
    host = sec.string("host", "")
    port = sec.integer("port", DEFAULT_PORT[kind], minimum=1)
    unit_id = sec.integer("unit_id", 1, minimum=0)
    timeout_s = sec.duration("timeout", DEFAULT_TIMEOUT_S[kind], minimum=0.1)
    dtu_name = sec.string("dtu_name", "DTU")
    names = Measurements(
        dtu=sec.string("measurement_dtu", "dtu"),
        inverter=sec.string("measurement_inverter", "inverter"),
        port=sec.string("measurement_port", "port"),
    )
    use_dtu_time = sec.boolean("use_dtu_time", True)
    max_clock_skew_s = sec.duration("max_clock_skew", 900.0, minimum=1.0)
    backoff_max_s = sec.duration("backoff_max", 900.0, minimum=1.0)
    sec.check_unknown()
    if not host and require_host:
        raise ConfigError(f"{sec.where}.host is required: the DTU's IP address or host name")
    if port > 65535:
        raise ConfigError(f"{sec.where}.port = {port} is invalid: expected 1..65535")
    if unit_id > 247:
        raise ConfigError(f"{sec.where}.unit_id = {unit_id} is invalid: expected 0..247")
    if not dtu_name.strip():
        raise ConfigError(f"{sec.where}.dtu_name must not be empty")
    minimum = MIN_INTERVAL_S[kind]
    if interval_s < minimum:
        raise ConfigError(
            f"{sec.where}: interval {format_duration(interval_s)} is too short for the "
            f"{kind} transport: poll at most every {format_duration(minimum)} "
            "(a DTU polled harder stops answering)"
        )
    return HoymilesOptions(
        transport=kind,
        host=host,
        port=port,
        unit_id=unit_id,
        timeout_s=timeout_s,
        dtu_name=dtu_name,
        names=names,
        use_dtu_time=use_dtu_time,
        max_clock_skew_s=max_clock_skew_s,
        backoff_max_s=backoff_max_s,
    )
