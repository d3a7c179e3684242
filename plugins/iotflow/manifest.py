"""IoTFlow device telemetry as bridge-cli sees it (see plugins/common/_manifest.py)."""

from __future__ import annotations

from telegraf_bridge.plugins.common._manifest import Manifest
from telegraf_bridge.plugins.iotflow import options

MANIFEST = Manifest(
    name="iotflow",
    module="telegraf_bridge.plugins.iotflow",
    parse=lambda sec, _interval_s: options.parse(sec),
    path_keys=options.PATH_KEYS,
    at_cap="HTTP answers 503 with Retry-After: 60 before reading the body (the device keeps "
    "its data); MQTT: Telegraf holds at most max_undelivered_messages unacknowledged and the "
    "broker keeps the rest",
    # Measurements come from the topic's last level or the request's "type".
    main_measurement=None,
    # The MQTT half: Telegraf's consumer, then its processors (the registry's tags by
    # device id, string fields); render-config writes them when options.mqtt is enabled.
    extra_telegraf_plugins=(
        "inputs.mqtt_consumer",
        "processors.converter",
        "processors.lookup",
    ),
    runs_execd=lambda opts: bool(opts.http.enabled),
)
