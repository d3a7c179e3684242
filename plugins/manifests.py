"""Every plugin of this release, by name: the one list ``bridge-cli`` reads plugins from.

A source naming a plugin not listed here is a config error. Adding a plugin is adding its
folder (with a ``manifest.py``) and one line below; nothing in ``cli/`` names a plugin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

from telegraf_bridge.plugins.common._manifest import Manifest
from telegraf_bridge.plugins.demo.manifest import MANIFEST as DEMO
from telegraf_bridge.plugins.gpio_pulse.manifest import MANIFEST as GPIO_PULSE
from telegraf_bridge.plugins.hoymiles.manifest import MANIFEST as HOYMILES
from telegraf_bridge.plugins.iotflow.manifest import MANIFEST as IOTFLOW
from telegraf_bridge.plugins.ndjson_tail.manifest import MANIFEST as NDJSON_TAIL
from telegraf_bridge.plugins.taptap.manifest import MANIFEST as TAPTAP


class _RunsPlugin(Protocol):
    """A configured source (``bridge-cli``'s ``SourceConfig``): it names its plugin."""

    @property
    def plugin(self) -> str: ...


_Source = TypeVar("_Source", bound=_RunsPlugin)

MANIFESTS: Mapping[str, Manifest] = {
    m.name: m for m in (DEMO, NDJSON_TAIL, HOYMILES, TAPTAP, GPIO_PULSE, IOTFLOW)
}


def manifest_of(plugin: object) -> Manifest | None:
    """The manifest of the plugin named ``plugin``; None for one this release does not have.

    ``plugin`` is any value (a config's, before it is checked), so a typo is None, not an error.
    """
    return MANIFESTS.get(plugin) if isinstance(plugin, str) else None


def routes_tiers(plugin: object) -> bool:
    """Whether the plugin named ``plugin`` writes meter pulses routed into the tiers."""
    manifest = manifest_of(plugin)
    return manifest is not None and manifest.tier_route


def sources_of(sources: Iterable[_Source], manifest: Manifest) -> list[_Source]:
    """The sources that run ``manifest``'s plugin, in the config's order."""
    return [s for s in sources if s.plugin == manifest.name]


def tier_routed(sources: Iterable[_Source]) -> list[_Source]:
    """The sources whose points are routed into the downsampling tiers (meter pulses)."""
    return [s for s in sources if routes_tiers(s.plugin)]


def device_globs() -> tuple[str, ...]:
    """Every device node pattern some plugin opens, each once, in the plugins' order."""
    return tuple(dict.fromkeys(g for m in MANIFESTS.values() for g in m.device_globs))
