"""Check each source's ``options`` with its plugin's own parser, before anything is rendered.

The plugins validate their config when Telegraf starts them; a typo found there is an ``E!``
line in telegraf.log long after render-config said OK. Each plugin folder exposes a pure
``options.parse`` (no device, file or network access) that its factory also uses, so the
rules cannot drift: render-config reports the same problems, each naming
``sources[i].options.<key>``, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from telegraf_bridge.plugins.common import ConfigError, Section, parse_duration
from telegraf_bridge.plugins.demo import options as demo
from telegraf_bridge.plugins.gpio_pulse import options as gpio_pulse
from telegraf_bridge.plugins.hoymiles import options as hoymiles
from telegraf_bridge.plugins.iotflow import options as iotflow
from telegraf_bridge.plugins.ndjson_tail import options as ndjson_tail
from telegraf_bridge.plugins.taptap import options as taptap

# plugin -> parse(options, interval in seconds); the interval matters to pollers only.
PARSERS: Mapping[str, Callable[[Section, float], object]] = {
    "demo": lambda sec, _interval: demo.parse(sec),
    "ndjson_tail": lambda sec, _interval: ndjson_tail.parse(sec),
    "hoymiles": lambda sec, interval: hoymiles.parse(sec, interval_s=interval),
    "taptap": lambda sec, _interval: taptap.parse(sec),
    "gpio_pulse": lambda sec, _interval: gpio_pulse.parse(sec),
    "iotflow": lambda sec, _interval: iotflow.parse(sec),
}
# plugin -> its options that name files (dotted keys are in a table).
PATH_KEYS: Mapping[str, tuple[str, ...]] = {
    "demo": demo.PATH_KEYS,
    "ndjson_tail": ndjson_tail.PATH_KEYS,
    "hoymiles": hoymiles.PATH_KEYS,
    "taptap": taptap.PATH_KEYS,
    "gpio_pulse": gpio_pulse.PATH_KEYS,
    "iotflow": iotflow.PATH_KEYS,
}
# Keys render-config writes into every plugin's config itself (see render.py), and where the
# user sets them instead.
SHARED_KEYS: Mapping[str, str] = {
    "signal": "the source's signal",
    "interval": "the source's interval",
    "state_dir": "agent.state_directory",
    "instance": "the source's name",
    "require_clock_sync": "agent.require_clock_sync",
    "time_floor": "agent.time_floor",
    "debug": "agent.debug",
    "buffer_directory": "agent.buffer_directory",
    "buffer_max_size_mb": "agent.buffer_max_size_mb",
    "route_tag": "downsampling.route_tag",
    "raw_tier": "downsampling.raw_name",
    "tiers": "the downsampling section",
}


def problems(source: Mapping[str, Any], where: str) -> list[str]:
    """Every problem the plugin would report for this source's options (empty when fine)."""
    parser = PARSERS.get(str(source.get("plugin")))
    options = source.get("options")
    if parser is None or not isinstance(options, dict):
        return []  # an unknown plugin or a non-mapping is reported by the schema already
    found = [
        f"{where}.options.{key} is not a plugin option: bridge-cli sets it from {origin}; "
        "set it there"
        for key, origin in SHARED_KEYS.items()
        if key in options
    ]
    user = {k: v for k, v in options.items() if k not in SHARED_KEYS}
    try:
        interval_s = parse_duration(source.get("interval") or "10s")
    except ConfigError:
        interval_s = 10.0  # reported by the schema already
    try:
        parser(Section(user, f"{where}.options"), interval_s)
    except ConfigError as exc:
        found.extend(exc.problems)
    return found
