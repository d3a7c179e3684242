"""Device queries on InfluxDB 2.x and Cloud: Flux over ``/api/v2/query``, ``/api/v2/delete``.

The delete's ``stop`` is inclusive on the server, so it is sent 1 ns early; its predicate
accepts only tag equality with double-quoted values joined by AND.
"""

from __future__ import annotations

from collections.abc import Iterator

from telegraf_bridge.cli.influx.annotated_csv import typed_annotated_csv
from telegraf_bridge.cli.influx.client import as_int, parse_influx_time_ns
from telegraf_bridge.cli.influx.devices.base import DEVICE_TAG, DeviceQueries
from telegraf_bridge.cli.influx.devices.results import (
    LatestValue,
    Point,
    RangeResult,
    first_points,
    newest_per_field,
)
from telegraf_bridge.cli.influx.devices.times import Window
from telegraf_bridge.cli.influx.flux import flux_string
from telegraf_bridge.cli.influx.influxql import influxql_ident
from telegraf_bridge.cli.influx.v2 import InfluxV2Client
from telegraf_bridge.plugins.common import format_rfc3339_ns

_FLUX_META = frozenset(
    {"", "result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"}
)
_COUNT_PIPELINE = (
    '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
    '  |> keep(columns: ["_time"])\n'
    "  |> group()\n"
    "  |> reduce(identity: {n: 0}, fn: (r, accumulator) => ({n: accumulator.n + 1}))\n"
)


class V2DeviceQueries(DeviceQueries):
    """Flux over ``/api/v2/query``; deletes over ``/api/v2/delete``."""

    query: InfluxV2Client

    def __init__(self, query: InfluxV2Client) -> None:
        super().__init__(query)
        self.query = query

    def _base(self, device: str, measurement: str | None, window: Window) -> str:
        predicate = f"r[{flux_string(DEVICE_TAG)}] == {flux_string(device)}"
        if measurement is not None:
            predicate += f" and r._measurement == {flux_string(measurement)}"
        return (
            f"from(bucket: {flux_string(self.query.bucket)})\n"
            f"  |> range(start: {format_rfc3339_ns(window.start_ns)}, "
            f"stop: {format_rfc3339_ns(window.stop_ns)})\n"
            f"  |> filter(fn: (r) => {predicate})\n"
        )

    def _records(self, flux: str) -> Iterator[dict[str, object]]:
        return typed_annotated_csv(self.query.csv_lines(flux), self.query.name)

    def latest(self, device: str, measurement: str | None, window: Window) -> list[LatestValue]:
        """``last()`` per table (series and field), then the newest per measurement and field."""
        flux = self._base(device, measurement, window) + "  |> last()\n"
        values = (
            LatestValue(
                str(r.get("_measurement", "")),
                str(r.get("_field", "")),
                r["_value"],
                parse_influx_time_ns(str(r["_time"])),
            )
            for r in self._records(flux)
            if "_value" in r and "_time" in r
        )
        return newest_per_field(values)

    def range(
        self, device: str, measurement: str | None, window: Window, limit: int
    ) -> RangeResult:
        """``limit(n: limit+1)`` per table; records of one series and time become one point."""
        flux = self._base(device, measurement, window) + f"  |> limit(n: {int(limit) + 1})\n"
        points: dict[tuple[str, tuple[tuple[str, str], ...], int], Point] = {}
        for record in self._records(flux):
            if "_value" not in record or "_time" not in record:
                continue
            tags = {
                k: str(v) for k, v in record.items() if k not in _FLUX_META and v not in ("", None)
            }
            name = str(record.get("_measurement", ""))
            stamp = parse_influx_time_ns(str(record["_time"]))
            key = (name, tuple(sorted(tags.items())), stamp)
            point = points.get(key)
            if point is None:
                point = points[key] = Point(stamp, name, tags)
            point.fields[str(record.get("_field", ""))] = record["_value"]
        return first_points(points.values(), limit)

    def count(self, device: str, measurement: str | None, window: Window) -> int:
        """Pivot fields into rows (one per point), then count rows with ``reduce``.

        ``count(column: "_time")`` is refused by Flux (no aggregate over a time column), and
        ``keep(["_time"])`` before ``group()`` avoids a schema collision between series whose
        fields have different types.
        """
        flux = self._base(device, measurement, window) + _COUNT_PIPELINE
        return sum(as_int(r.get("n", 0)) for r in self._records(flux))

    def delete(self, device: str, measurement: str | None, window: Window) -> None:
        """``POST /api/v2/delete``; the server's stop is inclusive, so it gets ``stop - 1ns``."""
        terms = []
        if measurement is not None:
            terms.append(f"_measurement={influxql_ident(measurement)}")
        terms.append(f"{DEVICE_TAG}={influxql_ident(device)}")
        reply = self.query.delete(
            {"org": self.query.org, "bucket": self.query.bucket},
            {
                "start": format_rfc3339_ns(window.start_ns),
                "stop": format_rfc3339_ns(window.stop_ns - 1),
                "predicate": " AND ".join(terms),
            },
        )
        if reply.status >= 300:
            raise self.query.http.failure(reply, "delete")
