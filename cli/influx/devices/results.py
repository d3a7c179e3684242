"""What a device query returns: points, latest values, and a bounded time range.

Shared by every InfluxDB version so ``query`` prints the same shape whatever the sink; memory
stays bounded because a range keeps only the first ``limit`` points in time order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from telegraf_bridge.plugins.common import format_rfc3339_ns

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000


@dataclass
class Point:
    """One point as stored: time, measurement, tags and the fields it carries."""

    time_ns: int
    measurement: str
    tags: dict[str, str]
    fields: dict[str, object] = field(default_factory=dict)

    def sort_key(self) -> tuple[int, str, tuple[tuple[str, str], ...]]:
        """Time order, then measurement and tags so equal times print in a stable order."""
        return (self.time_ns, self.measurement, tuple(sorted(self.tags.items())))

    def to_json(self) -> dict[str, object]:
        """The point as JSON data (RFC 3339 time with nanoseconds, sorted keys)."""
        return {
            "time": format_rfc3339_ns(self.time_ns),
            "measurement": self.measurement,
            "tags": dict(sorted(self.tags.items())),
            "fields": dict(sorted(self.fields.items())),
        }


@dataclass(frozen=True)
class LatestValue:
    """The newest value of one field of one measurement, with its time."""

    measurement: str
    field: str
    value: Any
    time_ns: int

    def to_json(self) -> dict[str, object]:
        """The value as JSON data."""
        return {
            "measurement": self.measurement,
            "field": self.field,
            "value": self.value,
            "time": format_rfc3339_ns(self.time_ns),
        }


@dataclass
class RangeResult:
    """The first ``limit`` points of a window in time order; ``truncated`` when there are more."""

    points: list[Point]
    truncated: bool


def first_points(points: Iterable[Point], limit: int) -> RangeResult:
    """The ``limit`` earliest of ``points`` (each fetched with at most ``limit + 1`` per series)."""
    ordered = sorted(points, key=Point.sort_key)
    return RangeResult(ordered[:limit], len(ordered) > limit)


def newest_per_field(values: Iterable[LatestValue]) -> list[LatestValue]:
    """One value per (measurement, field): the newest, across series; sorted by name."""
    best: dict[tuple[str, str], LatestValue] = {}
    for value in values:
        key = (value.measurement, value.field)
        if key not in best or value.time_ns > best[key].time_ns:
            best[key] = value
    return [best[key] for key in sorted(best)]
