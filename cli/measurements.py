"""The measurement each configured source writes, for commands that watch one (healthcheck).

Why a module of its own: ``healthcheck`` takes its default ``--measurement`` from the config,
and ``install-systemd`` must know before it writes a timer whether that default is clear. Both
read each plugin's main measurement from its manifest: the option that names it and the
plugin's own default for that option (plugins/<name>/README.md, "Metrics"), or none when the
devices name their measurements (iotflow: the topic's last level or the request's "type").
"""

from __future__ import annotations

from dataclasses import dataclass

from telegraf_bridge.cli.settings import Settings
from telegraf_bridge.plugins.manifests import manifest_of

# With no source at all (a config naming only sinks, or seed 004's INFLUX_URL/INFLUX_DB alone)
# the health check keeps seed 004's measurement, whose tigo_healthcheck.py it replaces.
SEED_DEFAULT = "tigo_power_report"


class NoClearMeasurement(ValueError):
    """The config's sources do not name exactly one measurement; the message lists them."""


@dataclass(frozen=True)
class SourceMeasurement:
    """One enabled source and the measurement it writes (None: named by its devices)."""

    source: str
    plugin: str
    measurement: str | None


def source_measurements(settings: Settings) -> list[SourceMeasurement]:
    """Each enabled source with its main measurement, in the config's order."""
    found = []
    for source in settings.active_sources():
        manifest = manifest_of(source.plugin)
        if manifest is None:
            continue
        main = manifest.main_measurement
        measurement = None if main is None else str(source.options.get(main.option, main.default))
        found.append(SourceMeasurement(source.name, manifest.name, measurement))
    return found


def default_measurement(settings: Settings) -> str:
    """The one measurement the config's sources write; raises :class:`NoClearMeasurement`."""
    found = source_measurements(settings)
    if not found:
        return SEED_DEFAULT
    names = sorted({f.measurement for f in found if f.measurement is not None})
    device_named = [f for f in found if f.measurement is None]
    if len(names) == 1 and not device_named:
        return names[0]
    listed = [f"{f.measurement} (source {f.source})" for f in found if f.measurement is not None]
    listed += [
        f"the measurements its devices name (source {f.source}, {f.plugin})" for f in device_named
    ]
    raise NoClearMeasurement(
        "the config's sources write "
        + ", ".join(listed)
        + "; pass --measurement NAME (or set BRIDGE_HEALTH_MEASUREMENT) to choose the one to watch"
    )
