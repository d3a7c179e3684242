"""The meter-pulse storage tiers (seed 003): names, retentions and what each one holds.

One layout, read from ``bridge.yaml``, drives every place that must agree on it: the rendered
routing (which tier a point is written to), the plugin's own aggregates (InfluxDB 3), the
server-side downsampling (InfluxDB 1.x continuous queries, InfluxDB v2 tasks) and the admin
commands that create, verify and delete the tiers.

What a tier row holds, whoever computes it (so dashboards read one shape everywhere):
``<measurement>,PulseType=<channel> pulses=<int>i,energy_wh=<float>,power_w=<float> <start>``
with ``energy_wh = pulses * 1000 / impulses_per_kwh`` of that channel, ``power_w = energy_wh
* 3600 / window seconds`` and the timestamp at the window's start. Raw pulses are
``<measurement>,PulseType=<channel> Pulse=1i <edge time>`` (seed 003's format).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from telegraf_bridge.cli.config_model import DownsamplingConfig, InfluxSink, V1Sink, V2Sink, V3Sink
from telegraf_bridge.cli.settings import Settings
from telegraf_bridge.plugins.common import ConfigError, parse_duration
from telegraf_bridge.plugins.gpio_pulse.channels import Channel, channels_from_options
from telegraf_bridge.plugins.manifests import tier_routed

DEFAULT_MEASUREMENT = "PowerPulse"
RAW_FIELD = "Pulse"
TIER_FIELDS = ("pulses", "energy_wh", "power_w")


@dataclass(frozen=True)
class Tier:
    """One storage tier: a bucket, a retention policy or a database, by sink kind."""

    key: str  # "raw", "1m", "5m", "1h"
    name: str
    retention_s: int  # 0 keeps data forever
    every_s: int  # window length; 0 for raw pulses
    source: str | None  # key of the tier it is computed from; None for raw

    @property
    def forever(self) -> bool:
        """Whether the tier never expires data."""
        return self.retention_s == 0


@dataclass(frozen=True)
class Layout:
    """Everything the admin commands and the renderer need to agree on."""

    measurement: str
    tiers: tuple[Tier, ...]
    channels: tuple[Channel, ...]
    lookback_s: int
    route_tag: str
    gpio_sources: tuple[str, ...] = field(default=())

    @property
    def raw(self) -> Tier:
        """The tier of the raw pulses."""
        return self.tiers[0]

    @property
    def aggregates(self) -> tuple[Tier, ...]:
        """The downsampled tiers, finest first."""
        return self.tiers[1:]

    def tier(self, key: str) -> Tier:
        """The tier with this key."""
        return next(t for t in self.tiers if t.key == key)

    def lookback_for(self, tier: Tier) -> int:
        """Seconds each run of ``tier``'s downsampling recomputes: at least two windows."""
        return max(self.lookback_s, 2 * tier.every_s)

    def wh_groups(self) -> list[tuple[float, tuple[str, ...]]]:
        """Channels grouped by energy per pulse, as (Wh per pulse, channel names).

        Server-side downsampling needs one query per group; a meter with one constant for
        every output (the usual case) needs one.
        """
        groups: dict[float, list[str]] = {}
        for channel in self.channels:
            groups.setdefault(channel.wh_per_pulse, []).append(channel.name)
        return [(wh, tuple(names)) for wh, names in groups.items()]


def layout_from_settings(settings: Settings) -> Layout:
    """The layout of a validated ``bridge.yaml``.

    The channels and measurement come from the enabled ``gpio_pulse`` sources (all must use
    the same measurement); without one, seed 003's defaults apply, so the tiers can be set up
    before the meter is wired.
    """
    ds = settings.downsampling
    sources = tier_routed(settings.active_sources())
    measurements = {str(s.options.get("measurement", DEFAULT_MEASUREMENT)) for s in sources}
    if len(measurements) > 1:
        raise ConfigError(
            "gpio_pulse sources use different measurements "
            f"({', '.join(sorted(measurements))}); the downsampling tiers need one"
        )
    channels: list[Channel] = []
    seen: set[str] = set()
    for options in [s.options for s in sources] or [{}]:
        for channel in channels_from_options(_channel_options(options)):
            if channel.name not in seen:
                seen.add(channel.name)
                channels.append(channel)

    return Layout(
        measurement=measurements.pop() if measurements else DEFAULT_MEASUREMENT,
        tiers=tiers_of(ds),
        channels=tuple(channels),
        lookback_s=_seconds(ds.lookback, "lookback"),
        route_tag=ds.route_tag,
        gpio_sources=tuple(s.name for s in sources),
    )


def _seconds(value: str, key: str) -> int:
    return round(parse_duration(value, key=f"downsampling.{key}"))


def tiers_of(ds: DownsamplingConfig) -> tuple[Tier, ...]:
    """The four tiers of a validated ``downsampling`` section, raw first."""
    return (
        Tier("raw", ds.raw_name, _seconds(ds.raw_retention, "raw_retention"), 0, None),
        Tier("1m", ds.name_1m, _seconds(ds.retention_1m, "retention_1m"), 60, "raw"),
        Tier("5m", ds.name_5m, _seconds(ds.retention_5m, "retention_5m"), 300, "1m"),
        Tier("1h", ds.name_1h, _seconds(ds.retention_1h, "retention_1h"), 3600, "5m"),
    )


def _channel_options(options: Mapping[str, object]) -> dict[str, object]:
    # Only the channel declarations matter here; the rest is the plugin's business.
    keep = ("channels", "impulses_per_kwh", "debounce", "min_interval", "edge", "pull")
    return {k: v for k, v in options.items() if k in keep}


def plugin_writes_tiers(settings: Settings) -> bool:
    """Whether the gpio_pulse plugin computes the tier rows itself.

    InfluxDB 3 Core has no task engine, so with an InfluxDB 3 sink the plugin aggregates before
    writing; the rows pass every output, so the other sinks receive them as well (identical to
    what their own downsampling computes, so they overwrite nothing with different values).
    """
    return any(isinstance(s, V3Sink) for s in settings.active_sinks())


def written_names(settings: Settings, layout: Layout, sink: InfluxSink) -> list[str]:
    """The buckets (v2), retention policies (1.x) or databases (3) Telegraf writes to ``sink``.

    A writer token gets exactly these. The sink's own bucket/database receives every other
    source's points.
    """
    names = [layout.raw.name]
    if plugin_writes_tiers(settings):
        names += [t.name for t in layout.aggregates]
    if isinstance(sink, V1Sink):
        own = sink.retention_policy  # "" is the database's default policy
    else:
        own = sink.bucket if isinstance(sink, V2Sink) else sink.database
    if own and own not in names:
        names.append(own)
    return names
