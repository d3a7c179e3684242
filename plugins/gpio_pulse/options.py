"""The options of a ``gpio_pulse`` source, read by the plugin and checked by ``bridge-cli``.

Pure parsing (no GPIO chip is opened), so render-config can refuse a bad option before
anything is written. ``route_tag``, ``raw_tier`` and ``tiers`` are written by render-config
from the downsampling section, not by the user.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegraf_bridge.plugins.common._config import (
    ConfigError,
    Section,
    format_duration,
    parse_duration,
)
from telegraf_bridge.plugins.gpio_pulse.channels import Channel, parse_channels
from telegraf_bridge.plugins.gpio_pulse.sim import SimConfig

# Options that name files (none: pins and a chip name).
PATH_KEYS: tuple[str, ...] = ()
BACKENDS = ("auto", "gpiod", "rpi", "sim")


@dataclass(frozen=True)
class TierRoute:
    """Aggregates the plugin writes itself (InfluxDB 3 has no task engine)."""

    window_s: int
    tier: str


@dataclass(frozen=True)
class PulseOptions:
    """The meter's channels, windows, tiers and backend."""

    channels: tuple[Channel, ...]
    measurement: str
    meter_measurement: str
    status_measurement: str
    window_s: float
    grace_s: float
    route_tag: str
    raw_tier: str
    tier_routes: tuple[TierRoute, ...]
    backend: str
    chip: str
    sim: SimConfig | None
    queue_size: int
    restart_delay_s: float
    restart_backoff_max_s: float


def _parse_tiers(raw: object, where: str) -> list[TierRoute]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f'{where} = {raw!r} is invalid: expected [{{window = "1m", tier = ...}}]')
    routes = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}[{index}] = {item!r} is invalid: expected a table")
        sec = Section(item, f"{where}[{index}]")
        window = parse_duration(sec.raw("window"), key=f"{where}[{index}].window")
        tier = sec.string("tier", "")
        if window < 1 or window != int(window) or 86400 % int(window):
            raise ConfigError(
                f"{where}[{index}].window must be whole seconds dividing a day (1m, 5m, 1h)"
            )
        if not tier:
            raise ConfigError(f"{where}[{index}].tier is required (the tier's name)")
        sec.check_unknown()
        routes.append(TierRoute(int(window), tier))
    return routes


def parse(sec: Section) -> PulseOptions:
    """Validate a gpio_pulse source's options; every problem names its key."""
    channels = parse_channels(sec)
    measurement = sec.string("measurement", "PowerPulse")
    meter_measurement = sec.string("meter_measurement", "PowerMeter")
    status_measurement = sec.string("status_measurement", "gpio_pulse_status")
    window_s = sec.duration("window", 60.0, minimum=1.0)
    grace_s = sec.duration("grace", 5.0)
    route_tag = sec.string("route_tag", "")
    raw_tier = sec.string("raw_tier", "")
    tier_routes = _parse_tiers(sec.raw("tiers"), f"{sec.where}.tiers")
    backend = sec.string("backend", "auto", choices=BACKENDS)
    chip = sec.string("chip", "auto")
    sim_section = sec.table("sim")
    sim = SimConfig.from_section(sim_section) if backend == "sim" else None
    queue_size = sec.integer("queue_size", 100_000, minimum=1)
    restart_delay_s = sec.duration("restart_delay", 5.0, minimum=0.1)
    backoff_max_s = sec.duration("restart_backoff_max", 300.0, minimum=0.1)
    sec.check_unknown()
    if not measurement.strip():
        raise ConfigError(f"{sec.where}.measurement must not be empty")
    if window_s != int(window_s) or 86400 % int(window_s):
        raise ConfigError(
            f"{sec.where}.window = {format_duration(window_s)} must be whole seconds "
            "dividing a day (e.g. 10s, 1m, 5m, 15m, 1h)"
        )
    if bool(route_tag) != bool(raw_tier):
        raise ConfigError(f"{sec.where}: route_tag and raw_tier are set together (by render)")
    if tier_routes and not route_tag:
        raise ConfigError(f"{sec.where}.tiers needs route_tag and raw_tier")
    if backend != "sim" and sim_section.keys():
        raise ConfigError(f'{sec.where}: [sim] is only read with backend = "sim"')
    return PulseOptions(
        channels=tuple(channels),
        measurement=measurement,
        meter_measurement=meter_measurement,
        status_measurement=status_measurement,
        window_s=window_s,
        grace_s=grace_s,
        route_tag=route_tag,
        raw_tier=raw_tier,
        tier_routes=tuple(tier_routes),
        backend=backend,
        chip=chip,
        sim=sim,
        queue_size=queue_size,
        restart_delay_s=restart_delay_s,
        restart_backoff_max_s=backoff_max_s,
    )
