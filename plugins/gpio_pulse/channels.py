"""The pulse channels of a meter, as the plugin config declares them.

Kept free of any GPIO library so ``bridge-cli`` can read the same declarations (the energy
per pulse of each channel) when it creates the server-side downsampling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from telegraf_bridge.plugins.common import ConfigError, Section

Edge = Literal["rising", "falling", "both"]
Pull = Literal["up", "down", "none"]

# Seed 003's wiring: BCM 20 import, 26 export, 21 generation, rising edges.
DEFAULT_CHANNELS: tuple[Mapping[str, Any], ...] = (
    {"name": "Import", "pin": 20},
    {"name": "Export", "pin": 26},
    {"name": "Generate", "pin": 21},
)
DEFAULT_IMPULSES_PER_KWH = 1000.0
DEFAULT_DEBOUNCE_S = 0.002
DEFAULT_MIN_INTERVAL_S = 0.02
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Channel:
    """One pulse input: which pin, which edge, and what a pulse is worth."""

    name: str
    pin: int
    edge: Edge = "rising"
    pull: Pull = "down"
    debounce_s: float = DEFAULT_DEBOUNCE_S
    min_interval_s: float = DEFAULT_MIN_INTERVAL_S
    impulses_per_kwh: float = DEFAULT_IMPULSES_PER_KWH

    @property
    def wh_per_pulse(self) -> float:
        """Energy one pulse stands for."""
        return 1000.0 / self.impulses_per_kwh

    @property
    def min_interval_ns(self) -> int:
        """Edges closer than this to the last accepted one are contact bounce."""
        return round(self.min_interval_s * 1e9)


def parse_channels(config: Section) -> list[Channel]:
    """The ``[[channels]]`` of a plugin config, or seed 003's three channels when absent."""
    raw = config.raw("channels")
    defaults = Section(
        {
            "impulses_per_kwh": config.raw("impulses_per_kwh"),
            "debounce": config.raw("debounce"),
            "min_interval": config.raw("min_interval"),
            "edge": config.raw("edge"),
            "pull": config.raw("pull"),
        },
        config.where,
    )
    ipk = defaults.number("impulses_per_kwh", DEFAULT_IMPULSES_PER_KWH, minimum=1e-9)
    debounce = defaults.duration("debounce", DEFAULT_DEBOUNCE_S)
    min_interval = defaults.duration("min_interval", DEFAULT_MIN_INTERVAL_S)
    edge = defaults.string("edge", "rising", choices=("rising", "falling", "both"))
    pull = defaults.string("pull", "down", choices=("up", "down", "none"))
    if raw is None:
        tables: Sequence[Any] = DEFAULT_CHANNELS
    elif isinstance(raw, list) and raw:
        tables = raw
    else:
        raise ConfigError(
            f"{config.where}.channels = {raw!r} is invalid: expected one or more "
            '[[channels]] tables with name and pin (e.g. name = "Import", pin = 20)'
        )
    channels: list[Channel] = []
    for index, table in enumerate(tables):
        where = f"{config.where}.channels[{index}]"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} = {table!r} is invalid: expected a table")
        sec = Section(table, where)
        name = sec.string("name", "")
        if not _NAME.match(name):
            raise ConfigError(
                f"{where}.name = {name!r} is invalid: expected letters, digits, '_', '.' or "
                "'-' (it becomes the PulseType tag)"
            )
        pin = sec.integer("pin", -1, minimum=0)
        if pin < 0:
            raise ConfigError(f"{where}.pin is required: the BCM (GPIO) number, e.g. 20")
        channel = Channel(
            name=name,
            pin=pin,
            edge=sec.string("edge", edge, choices=("rising", "falling", "both")),  # type: ignore[arg-type]
            pull=sec.string("pull", pull, choices=("up", "down", "none")),  # type: ignore[arg-type]
            debounce_s=sec.duration("debounce", debounce),
            min_interval_s=sec.duration("min_interval", min_interval),
            impulses_per_kwh=sec.number("impulses_per_kwh", ipk, minimum=1e-9),
        )
        sec.check_unknown()
        channels.append(channel)
    for label, values in (
        ("name", [c.name for c in channels]),
        ("pin", [str(c.pin) for c in channels]),
    ):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ConfigError(
                f"{config.where}.channels: {label} {', '.join(dupes)} is used twice; "
                f"each channel needs its own {label}"
            )
    return channels


def channels_from_options(options: Mapping[str, Any]) -> list[Channel]:
    """Channels from a source's ``options`` mapping in bridge.yaml (for bridge-cli)."""
    return parse_channels(Section(options, "gpio_pulse"))
