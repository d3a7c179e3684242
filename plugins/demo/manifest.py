"""The demo source as bridge-cli sees it (see plugins/common/_manifest.py)."""

from __future__ import annotations

from telegraf_bridge.plugins.common._manifest import AT_CAP_JOURNAL, MainMeasurement, Manifest
from telegraf_bridge.plugins.demo import options

MANIFEST = Manifest(
    name="demo",
    module="telegraf_bridge.plugins.demo",
    parse=lambda sec, _interval_s: options.parse(sec),
    path_keys=options.PATH_KEYS,
    at_cap=AT_CAP_JOURNAL,
    main_measurement=MainMeasurement("measurement", "demo"),
)
