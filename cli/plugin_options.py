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

from telegraf_bridge.cli import schema
from telegraf_bridge.plugins.common import ConfigError, Section, parse_duration
from telegraf_bridge.plugins.common._clock import DEFAULT_TIME_FLOOR, parse_time_floor
from telegraf_bridge.plugins.common._main import DeliveryOptions
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
# Keys render-config always writes for a plugin that the plugin's own parser reads, so its
# cross-checks see them (gpio_pulse: the tier route; values checked by the schema).
_DOWNSAMPLING = {opt.key: opt.default for opt in schema.DOWNSAMPLING}
RENDERED: Mapping[str, Mapping[str, Any]] = {
    "gpio_pulse": {
        "route_tag": _DOWNSAMPLING["route_tag"],
        "raw_tier": _DOWNSAMPLING["raw_name"],
    },
}


def options_section(source: Mapping[str, Any], where: str, interval_s: float) -> Section:
    """A source's options as its plugin reads them, with the shim's own keys read already.

    The options are taken as render-config writes them: over the keys it always provides,
    and with the shim's keys (render-config writes them from the agent and the source; an
    option of the same name, e.g. a per-source ``time_floor``, overrides them) checked as
    plugin_main checks them. Raises ConfigError.
    """
    options = source.get("options") or {}
    section = Section({**RENDERED.get(str(source.get("plugin")), {}), **options}, where)
    floor = section.string("time_floor", DEFAULT_TIME_FLOOR)
    try:
        parse_time_floor(floor)
    except ValueError:
        raise ConfigError(
            f"{where}.time_floor = {floor!r} is invalid: expected an RFC 3339 time"
        ) from None
    section.string("signal", "none", choices=("none", "STDIN"))
    section.duration("interval", interval_s, minimum=0.001)
    for key in ("state_dir", "instance"):
        section.string(key, "")
    for key in ("require_clock_sync", "debug"):
        section.boolean(key, False)
    DeliveryOptions.parse(section)
    return section


def problems(source: Mapping[str, Any], where: str) -> list[str]:
    """Every problem the plugin would report for this source's options (empty when fine)."""
    parser = PARSERS.get(str(source.get("plugin")))
    if parser is None or not isinstance(source.get("options"), dict):
        return []  # an unknown plugin or a non-mapping is reported by the schema already
    try:
        interval_s = parse_duration(source.get("interval") or "10s")
    except ConfigError:
        interval_s = 10.0  # reported by the schema already
    try:
        parser(options_section(source, f"{where}.options", interval_s), interval_s)
    except ConfigError as exc:
        return exc.problems
    return []
