"""Check each source's ``options`` with its plugin's own parser, before anything is rendered.

The plugins validate their config when Telegraf starts them; a typo found there is an ``E!``
line in telegraf.log long after render-config said OK. Each plugin's manifest names its pure
``options.parse`` (no device, file or network access) that its factory also uses, so the
rules cannot drift: render-config reports the same problems, each naming
``sources[i].options.<key>``, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telegraf_bridge.cli import schema
from telegraf_bridge.plugins.common import ConfigError, Section, parse_duration
from telegraf_bridge.plugins.common._clock import DEFAULT_TIME_FLOOR, parse_time_floor
from telegraf_bridge.plugins.common._main import DeliveryOptions
from telegraf_bridge.plugins.manifests import manifest_of, routes_tiers

# Keys render-config always writes for a plugin with a tier route (its manifest says so), which
# the plugin's own parser reads, so its cross-checks see them (values checked by the schema).
_DOWNSAMPLING = {opt.key: opt.default for opt in schema.DOWNSAMPLING}
TIER_ROUTE: Mapping[str, Any] = {
    "route_tag": _DOWNSAMPLING["route_tag"],
    "raw_tier": _DOWNSAMPLING["raw_name"],
}


def options_section(
    plugin: object, options: Mapping[str, object], where: str, interval_s: float
) -> Section:
    """A source's options as its plugin reads them, with the shim's own keys read already.

    The options are taken as render-config writes them: over the keys it always provides,
    and with the shim's keys (render-config writes them from the agent and the source; an
    option of the same name, e.g. a per-source ``time_floor``, overrides them) checked as
    plugin_main checks them. Raises ConfigError.
    """
    rendered = TIER_ROUTE if routes_tiers(plugin) else {}
    section = Section({**rendered, **options}, where)
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


def parse(source: Mapping[str, object], where: str) -> tuple[object, list[str]]:
    """The plugin's typed options for a source, and every problem it reports (none: fine).

    The typed options are None when there are problems, or when the plugin is unknown or the
    options are not a mapping (both reported by the schema already).
    """
    manifest = manifest_of(source.get("plugin"))
    options = source.get("options")
    if manifest is None or not isinstance(options, dict):
        return None, []
    try:
        interval_s = parse_duration(str(source.get("interval") or "10s"))
    except ConfigError:
        interval_s = 10.0  # reported by the schema already
    try:
        section = options_section(manifest.name, options, f"{where}.options", interval_s)
        return manifest.parse(section, interval_s), []
    except ConfigError as exc:
        return None, exc.problems
