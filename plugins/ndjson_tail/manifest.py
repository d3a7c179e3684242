"""The ndjson_tail plugin as bridge-cli sees it (see plugins/common/_manifest.py)."""

from __future__ import annotations

from telegraf_bridge.plugins.common._manifest import MainMeasurement, Manifest
from telegraf_bridge.plugins.ndjson_tail import options

MANIFEST = Manifest(
    name="ndjson_tail",
    module="telegraf_bridge.plugins.ndjson_tail",
    parse=lambda sec, _interval_s: options.parse(sec),
    path_keys=options.PATH_KEYS,
    at_cap="waits: stops reading and the data waits in the source files (one W! line, one I! "
    "when it resumes)",
    main_measurement=MainMeasurement("measurement", "smartsolar"),
)
