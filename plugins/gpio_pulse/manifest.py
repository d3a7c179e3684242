"""The GPIO meter-pulse counter as bridge-cli sees it (see plugins/common/_manifest.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telegraf_bridge.plugins.common._manifest import (
    AT_CAP_JOURNAL,
    MainMeasurement,
    Manifest,
    Requirement,
)
from telegraf_bridge.plugins.gpio_pulse import options

_GPIOD_HINT = (
    "pip install 'telegraf-bridge[gpio]' (the libgpiod v2 bindings; on Raspberry Pi OS trixie "
    "also sudo apt install python3-libgpiod)"
)
_RPI_HINT = "pip install RPi.GPIO (or the drop-in rpi-lgpio on kernels >= 6.6 and the Pi 5)"


def requirements(opts: Mapping[str, Any]) -> list[Requirement]:
    """The GPIO library of the configured backend (``auto`` takes either; ``sim`` none)."""
    backend = str(opts.get("backend", "auto"))
    if backend == "sim":
        return []
    if backend == "gpiod":
        return [(("gpiod",), _GPIOD_HINT)]
    if backend == "rpi":
        return [(("RPi.GPIO",), _RPI_HINT)]
    return [(("gpiod", "RPi.GPIO"), f"{_GPIOD_HINT}; or {_RPI_HINT}")]


MANIFEST = Manifest(
    name="gpio_pulse",
    module="telegraf_bridge.plugins.gpio_pulse",
    parse=lambda sec, _interval_s: options.parse(sec),
    path_keys=options.PATH_KEYS,
    at_cap=AT_CAP_JOURNAL,
    main_measurement=MainMeasurement("measurement", "PowerPulse"),
    # GPIO chips (libgpiod) and /dev/gpiomem (RPi.GPIO).
    device_globs=("gpiochip*", "gpiomem"),
    tier_route=True,
    requirements=requirements,
)
