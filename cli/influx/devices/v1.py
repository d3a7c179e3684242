"""Device queries on InfluxDB 1.x: InfluxQL over ``/query``; times are integer ns literals.

InfluxQL's DELETE filters on tags and time only and cannot name a retention policy: it removes
the matching points from *every* retention policy of the database (:data:`V1_DELETE_NOTE`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from telegraf_bridge.cli.influx.client import as_int
from telegraf_bridge.cli.influx.devices.base import DEVICE_TAG, DeviceQueries
from telegraf_bridge.cli.influx.devices.results import (
    LatestValue,
    Point,
    RangeResult,
    first_points,
    newest_per_field,
)
from telegraf_bridge.cli.influx.devices.times import Window
from telegraf_bridge.cli.influx.influxql import influxql_ident, influxql_string
from telegraf_bridge.cli.influx.v1 import InfluxV1Client

# InfluxQL statements sent in one request by ``latest`` (one per field of each measurement).
_V1_STATEMENTS_PER_REQUEST = 100
V1_DELETE_NOTE = (
    "InfluxDB 1.x applies DELETE to every retention policy of the database, so copies of these "
    "points in other retention policies (downsampled tiers) are deleted too; the count above "
    "is for the sink's retention policy only."
)


def _coerce_v1(value: Any, field_type: str | None) -> Any:
    """A float field's whole-number value as float: InfluxDB 1.x's JSON writes 60.0 as 60."""
    if field_type == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


class V1DeviceQueries(DeviceQueries):
    """InfluxQL on InfluxDB 1.x; times are integer ns literals, names and values quoted."""

    query: InfluxV1Client
    delete_note = V1_DELETE_NOTE

    def __init__(self, query: InfluxV1Client) -> None:
        super().__init__(query)
        self.query = query

    def _where(self, device: str, window: Window) -> str:
        return (
            f"{influxql_ident(DEVICE_TAG)} = {influxql_string(device)} "
            f"AND time >= {int(window.start_ns)} AND time < {int(window.stop_ns)}"
        )

    @staticmethod
    def _source(measurement: str | None) -> str:
        return influxql_ident(measurement) if measurement is not None else "/.*/"

    def _measurements(self, device: str) -> list[str]:
        query = f"SHOW MEASUREMENTS WHERE {influxql_ident(DEVICE_TAG)} = {influxql_string(device)}"
        names: list[str] = []
        for result in self.query.statements(query):
            for series in result.series:
                names += [str(row[0]) for row in series.values]
        return names

    def _field_types(self, measurements: list[str]) -> dict[str, dict[str, str]]:
        """``{measurement: {field: type}}`` from one multi-statement ``SHOW FIELD KEYS``."""
        types: dict[str, dict[str, str]] = {m: {} for m in measurements}
        if not measurements:
            return types
        query = "; ".join(f"SHOW FIELD KEYS FROM {influxql_ident(m)}" for m in measurements)
        for result in self.query.statements(query):
            for series in result.series:
                for row in series.values:
                    types[measurements[result.statement_id]][str(row[0])] = str(row[1])
        return types

    def latest(self, device: str, measurement: str | None, window: Window) -> list[LatestValue]:
        """``SELECT LAST("f")`` per field: a single selector keeps the point's own time."""
        measurements = [measurement] if measurement is not None else self._measurements(device)
        types = self._field_types(measurements)
        pairs = [(m, f) for m in measurements for f in sorted(types[m])]
        values: list[LatestValue] = []
        where = self._where(device, window)
        for offset in range(0, len(pairs), _V1_STATEMENTS_PER_REQUEST):
            batch = pairs[offset : offset + _V1_STATEMENTS_PER_REQUEST]
            # Safe: names quoted by influxql_ident, the device by influxql_string, times ints.
            query = "; ".join(
                f"SELECT LAST({influxql_ident(f)}) FROM {influxql_ident(m)} WHERE {where}"  # noqa: S608 - names quoted
                for m, f in batch
            )
            for result in self.query.statements(query):
                m, f = batch[result.statement_id]
                for series in result.series:
                    for row in series.values:
                        if len(row) > 1 and row[1] is not None:
                            value = _coerce_v1(row[1], types[m].get(f))
                            values.append(LatestValue(m, f, value, as_int(row[0])))
        return newest_per_field(values)

    def _points(self, query: str, types: dict[str, dict[str, str]]) -> Iterator[Point]:
        """Rows of a ``GROUP BY *`` answer as points; empty tags (absent keys) left out."""
        for result in self.query.statements(query, chunked=True):
            for series in result.series:
                name = series.name
                tags = {k: v for k, v in series.tags.items() if v}
                columns = series.columns
                kinds = types.get(name, {})
                for row in series.values:
                    fields = {
                        col: _coerce_v1(val, kinds.get(col))
                        for col, val in zip(columns[1:], row[1:], strict=False)
                        if val is not None
                    }
                    if fields:
                        yield Point(as_int(row[0]), name, dict(tags), fields)

    def range(
        self, device: str, measurement: str | None, window: Window, limit: int
    ) -> RangeResult:
        """``SELECT * ... GROUP BY * LIMIT limit+1``: LIMIT counts per series under GROUP BY."""
        measurements = [measurement] if measurement is not None else self._measurements(device)
        if not measurements:
            return RangeResult([], truncated=False)
        types = self._field_types(measurements)
        # Safe: names quoted by influxql_ident, the device by influxql_string, times ints.
        query = (
            f"SELECT * FROM {self._source(measurement)} WHERE {self._where(device, window)} "  # noqa: S608 - names quoted
            f"GROUP BY * LIMIT {int(limit) + 1}"
        )
        return first_points(self._points(query, types), limit)

    def count(self, device: str, measurement: str | None, window: Window) -> int:
        """Rows of ``SELECT * ... GROUP BY *`` (one per point), streamed in chunks.

        ``COUNT(*)`` would count values per field, not points, when fields are sparse.
        """
        # Safe: names quoted by influxql_ident, the device by influxql_string, times ints.
        query = (
            f"SELECT * FROM {self._source(measurement)} WHERE {self._where(device, window)} "  # noqa: S608 - names quoted
            "GROUP BY *"
        )
        total = 0
        for result in self.query.statements(query, chunked=True):
            for series in result.series:
                total += len(series.values)
        return total

    def delete(self, device: str, measurement: str | None, window: Window) -> None:
        """``DELETE [FROM m] WHERE device AND time``; without FROM, every measurement."""
        source = f"FROM {influxql_ident(measurement)} " if measurement is not None else ""
        # Safe: names quoted by influxql_ident, the device by influxql_string, times ints.
        statement = f"DELETE {source}WHERE {self._where(device, window)}"
        for _ in self.query.statements(statement):
            pass
