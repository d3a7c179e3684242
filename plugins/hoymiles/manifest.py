"""The Hoymiles DTU poller as bridge-cli sees it (see plugins/common/_manifest.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telegraf_bridge.plugins.common._manifest import (
    AT_CAP_JOURNAL,
    MainMeasurement,
    Manifest,
    Requirement,
)
from telegraf_bridge.plugins.hoymiles import options


def requirements(opts: Mapping[str, Any]) -> list[Requirement]:
    """The DTU library of the configured transport (each is an optional extra)."""
    if str(opts.get("transport", "modbus")) == "wifi":
        return [(("hoymiles_wifi",), "pip install 'telegraf-bridge[hoymiles-wifi]'")]
    return [(("hoymiles_modbus",), "pip install 'telegraf-bridge[hoymiles]'")]


MANIFEST = Manifest(
    name="hoymiles",
    module="telegraf_bridge.plugins.hoymiles",
    parse=lambda sec, interval_s: options.parse(sec, interval_s=interval_s),
    path_keys=options.PATH_KEYS,
    at_cap=AT_CAP_JOURNAL,
    main_measurement=MainMeasurement("measurement_dtu", "dtu"),
    # A DTU must not be polled at the agent's pace: every 60 s, as the seed did.
    default_interval="60s",
    requirements=requirements,
)
