"""The options of a ``demo`` source, read by the plugin and checked by ``bridge-cli``.

Pure parsing (no file is touched), so render-config can refuse a bad option before anything
is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from telegraf_bridge.plugins.common._config import ConfigError, Section

# Options that name files; bridge-cli anchors relative ones at the config file's directory.
PATH_KEYS = ("ndjson_dir",)
MAX_DEVICES = 1000


@dataclass(frozen=True)
class DemoOptions:
    """A simulated PV site."""

    measurement: str
    site: str
    devices: int
    peak_power_w: float
    ndjson_dir: Path | None


def parse(sec: Section) -> DemoOptions:
    """Validate a demo source's options; every problem names its key."""
    measurement = sec.string("measurement", "demo")
    site = sec.string("site", "demo")
    devices = sec.integer("devices", 1, minimum=1)
    peak_power_w = sec.number("peak_power_w", 4000.0, minimum=0.0)
    ndjson_dir = sec.string("ndjson_dir", "")
    sec.check_unknown()
    if devices > MAX_DEVICES:
        raise ConfigError(f"{sec.where}.devices = {devices} is invalid: expected 1..{MAX_DEVICES}")
    return DemoOptions(
        measurement=measurement,
        site=site,
        devices=devices,
        peak_power_w=peak_power_w,
        ndjson_dir=Path(ndjson_dir) if ndjson_dir else None,
    )
