"""Every plugin of this release, by name: the one list ``bridge-cli`` reads plugins from.

A source naming a plugin not listed here is a config error. Adding a plugin is adding its
folder (with a ``manifest.py``) and one line below; nothing in ``cli/`` names a plugin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from telegraf_bridge.plugins.common._manifest import Manifest
from telegraf_bridge.plugins.demo.manifest import MANIFEST as DEMO
from telegraf_bridge.plugins.gpio_pulse.manifest import MANIFEST as GPIO_PULSE
from telegraf_bridge.plugins.hoymiles.manifest import MANIFEST as HOYMILES
from telegraf_bridge.plugins.iotflow.manifest import MANIFEST as IOTFLOW
from telegraf_bridge.plugins.ndjson_tail.manifest import MANIFEST as NDJSON_TAIL
from telegraf_bridge.plugins.taptap.manifest import MANIFEST as TAPTAP

_Source = TypeVar("_Source", bound=Mapping[str, Any])

MANIFESTS: Mapping[str, Manifest] = {
    m.name: m for m in (DEMO, NDJSON_TAIL, HOYMILES, TAPTAP, GPIO_PULSE, IOTFLOW)
}


def manifest_of(source: Mapping[str, Any]) -> Manifest | None:
    """The manifest of a source's plugin; None for a plugin this release does not have."""
    return MANIFESTS.get(str(source.get("plugin")))


def sources_of(sources: Iterable[_Source], manifest: Manifest) -> list[_Source]:
    """The sources that run ``manifest``'s plugin, in the config's order."""
    return [s for s in sources if s.get("plugin") == manifest.name]


def tier_routed(sources: Iterable[_Source]) -> list[_Source]:
    """The sources whose points are routed into the downsampling tiers (meter pulses)."""
    found = []
    for source in sources:
        manifest = manifest_of(source)
        if manifest is not None and manifest.tier_route:
            found.append(source)
    return found


def device_globs() -> tuple[str, ...]:
    """Every device node pattern some plugin opens, each once, in the plugins' order."""
    return tuple(dict.fromkeys(g for m in MANIFESTS.values() for g in m.device_globs))
