"""What ``bridge-cli`` knows about a plugin, declared by the plugin in its own folder.

Each ``plugins/<name>/manifest.py`` holds one :class:`Manifest`, and ``plugins/manifests.py``
lists them. The CLI reads everything plugin-specific from there (which module to run, how to
check the options, the default interval, the device nodes, what renders besides the execd
input) instead of branching on plugin names, so adding a plugin is adding a folder and one
line in that list.

A manifest is pure data plus pure functions: importing it opens no device, file or socket
and pulls in no device library, so ``bridge-cli`` imports every manifest on a Pi Zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from telegraf_bridge.plugins.common._config import Section

# (any of these modules, how to install them): one library a source imports.
Requirement = tuple[tuple[str, ...], str]


def _no_requirements(_options: Mapping[str, Any]) -> list[Requirement]:
    return []


@dataclass(frozen=True)
class MainMeasurement:
    """The option naming the measurement written for every reading, and its default."""

    option: str
    default: str


@dataclass(frozen=True)
class Manifest:
    """One plugin as the CLI sees it.

    ``parse`` is the plugin's own option parser (``options.parse``), given the source's
    options and its interval in seconds (which matters to pollers only); it raises
    ``ConfigError`` and returns the typed options. ``path_keys`` are the options that name
    files (dotted keys are in a table), anchored at the config file's directory.
    """

    name: str
    module: str  # run as ``python -m <module> --config FILE``
    parse: Callable[[Section, float], object]
    path_keys: tuple[str, ...]
    # What the source does once Telegraf's disk buffer and the journals reach
    # ``agent.buffer_max_size_mb`` (docs/delivery.md, "The cap"), one line.
    at_cap: str
    # The measurement every reading is written to; None when its devices name it (the
    # config cannot say which one a health check should watch).
    main_measurement: MainMeasurement | None
    # Interval when the source sets none; "" means the agent's interval.
    default_interval: str = ""
    # Device nodes under /dev (glob patterns) the plugin opens; the container entrypoint and
    # install-systemd grant their groups.
    device_globs: tuple[str, ...] = ()
    # Its points are meter pulses routed into the downsampling tiers (seed 003):
    # render-config writes the tier route (``route_tag``, ``raw_tier``, ``tiers``) into the
    # plugin's config, and the tiers' layout reads these sources.
    tier_route: bool = False
    # Telegraf plugins rendered for the source besides inputs.execd (iotflow's MQTT half).
    extra_telegraf_plugins: tuple[str, ...] = ()
    # Whether the execd input runs, from the parsed options (iotflow: only with HTTP on).
    runs_execd: Callable[[Any], bool] = lambda _options: True
    # ``bridge-cli verify``: the libraries a source with these options imports.
    requirements: Callable[[Mapping[str, Any]], list[Requirement]] = _no_requirements
    # ``bridge-cli verify``: the external program a source runs and the option naming it,
    # or None when it runs none.
    program: Callable[[Mapping[str, Any]], tuple[str, str]] | None = None


# The cap rule of every live source that journals its points (the device does not wait).
AT_CAP_JOURNAL = (
    "holds new data in the journal from 15/16 of the cap; past the cap drops the oldest "
    "journal entries, counted (a W! line and journal_dropped in the status point)"
)
