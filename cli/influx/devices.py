"""Per-device queries and deletes on any sink: latest values, a time range, and delete a range.

Replaces IoTFlow's ``GET /device/{id}/latest``, ``GET /device/{id}/data`` and ``DELETE
/device/{id}/data`` (seed 002) for every sink kind, in the sink's own language: InfluxQL on
InfluxDB 1.x, Flux on v2/Cloud, SQL on InfluxDB 3. Points are selected by the ``device_id`` tag
that every IoTFlow point carries (see the data model of issue 7).

Why our own small HTTP client (:mod:`telegraf_bridge.cli.influx`) and not the official
libraries: ``influxdb-client`` pulls in a large dependency tree for three HTTP calls, and
``influxdb3-python`` queries over Arrow Flight (gRPC), which needs pyarrow (no ARMv6 wheel,
seconds to import on a Pi Zero) and which the loopback v3 fake cannot answer. The official HTTP
APIs used here (``/query``, ``/api/v2/query``, ``/api/v2/delete``, ``/api/v3/query_sql``)
are documented, stable and enough.

Every device ID, measurement and time that reaches a query is quoted for the target language
by the quoting modules :mod:`.influxql`, :mod:`.flux` and :mod:`.sql` (InfluxQL identifiers
and strings, Flux strings, SQL identifiers and strings, the v2 delete predicate's double-quoted
values), so user input can never change a query's shape. Memory stays bounded: ranges fetch
at most ``limit + 1`` rows per series (the first ``limit`` points overall are always among
them) and counts are streamed.

Deleting, per sink (time windows are half-open, ``start <= time < stop``, everywhere):

- InfluxDB 1.x: ``DELETE [FROM m] WHERE "device_id" = '...' AND time >= a AND time < b``.
  InfluxQL's DELETE filters on tags and time only and cannot name a retention policy: it
  removes the matching points from *every* retention policy of the database.
- v2/Cloud: ``POST /api/v2/delete`` with ``start``/``stop`` (both inclusive on the server, so
  ``stop`` is sent 1 ns early) and the predicate ``_measurement="m" AND device_id="..."``
  (tag equality with double-quoted values joined by AND: the only form the server accepts;
  no OR, no regular expressions, no fields). InfluxDB Cloud Serverless (IOx) refuses deletes.
- InfluxDB 3 Core/Enterprise cannot delete points: only whole tables or databases (or points
  ageing out of a retention period). :data:`V3_DELETE_REFUSAL` says so and what to do instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from telegraf_bridge.cli.influx.annotated_csv import typed_annotated_csv
from telegraf_bridge.cli.influx.client import Client, as_int, parse_influx_time_ns
from telegraf_bridge.cli.influx.flux import flux_string
from telegraf_bridge.cli.influx.influxql import influxql_ident, influxql_string
from telegraf_bridge.cli.influx.sql import sql_ident, sql_string
from telegraf_bridge.cli.influx.v1 import InfluxV1Client
from telegraf_bridge.cli.influx.v2 import InfluxV2Client
from telegraf_bridge.cli.influx.v3 import InfluxV3Client
from telegraf_bridge.cli.influx.versions import VERSIONS
from telegraf_bridge.plugins.common import format_rfc3339_ns, parse_rfc3339_ns

DEVICE_TAG = "device_id"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000
# InfluxQL statements sent in one request by ``latest`` (one per field of each measurement).
_V1_STATEMENTS_PER_REQUEST = 100

V3_DELETE_REFUSAL = (
    "InfluxDB 3 (Core and Enterprise) cannot delete points by time range or tag: its only "
    "deletes are whole tables (DELETE /api/v3/configure/table, `influxdb3 delete table`; "
    "Enterprise can keep the schema with --data-only) and whole databases. Nothing was deleted. "
    "Alternatives: give the database a retention period so old points age out "
    "(`influxdb3 create database --retention-period 30d`), delete the measurement's whole "
    "table, or copy the points you want to keep into a new database and delete the old one."
)
V1_DELETE_NOTE = (
    "InfluxDB 1.x applies DELETE to every retention policy of the database, so copies of these "
    "points in other retention policies (downsampled tiers) are deleted too; the count above "
    "is for the sink's retention policy only."
)


class DeleteNotSupported(Exception):
    """The sink cannot delete points by device and time range (InfluxDB 3)."""


# -- input validation and times --------------------------------------------------------------------


def validate_name(value: str, what: str) -> str:
    """``value`` unchanged if it is usable as a tag value or measurement name.

    Non-empty (not only blanks) and free of control characters: line protocol cannot carry a
    newline in a tag, so such a value can match nothing, and in a terminal it could hide what
    a confirmation prompt says.
    """
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    for ch in value:
        if unicodedata.category(ch) == "Cc":
            raise ValueError(f"{what} must not contain control characters (found {ch!r})")
    return value


_RELATIVE = re.compile(r"^-\s*((?:\d+(?:ns|us|µs|ms|s|m|h|d|w)\s*)+)$")
_RELATIVE_PART = re.compile(r"(\d+)(ns|us|µs|ms|s|m|h|d|w)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_time_arg(text: str, now_ns: int) -> int:
    """Integer ns for a ``--start``/``--stop`` value; ValueError with the accepted forms.

    ``now`` (or ``now()``, IoTFlow's spelling), a duration before now as in Flux (``-1h``,
    ``-30m``, ``-7d``, ``-1h30m``; units ns us ms s m h d w), an RFC 3339 time with an offset
    (``2024-01-01T12:00:00Z``, ``...+02:00``) or a date (``2024-01-01``, midnight UTC).
    """
    value = text.strip()
    if value in ("now", "now()"):
        return now_ns
    match = _RELATIVE.match(value)
    if match:
        total = sum(int(n) * _UNIT_NS[unit] for n, unit in _RELATIVE_PART.findall(match[1]))
        return now_ns - total
    if _DATE_ONLY.match(value):
        value += "T00:00:00Z"
    try:
        return parse_rfc3339_ns(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use now, a duration before now such as -1h, -30m or -7d, "
            "or an RFC 3339 time such as 2024-01-01T12:00:00Z"
        ) from None


@dataclass(frozen=True)
class Window:
    """A half-open time range in integer ns: ``start <= time < stop``."""

    start_ns: int
    stop_ns: int

    def __post_init__(self) -> None:
        if self.stop_ns <= self.start_ns:
            raise ValueError(
                f"the stop time ({format_rfc3339_ns(self.stop_ns)}) must be after the start "
                f"time ({format_rfc3339_ns(self.start_ns)})"
            )


# -- results ---------------------------------------------------------------------------------------


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


def _newest_per_field(values: Iterable[LatestValue]) -> list[LatestValue]:
    """One value per (measurement, field): the newest, across series; sorted by name."""
    best: dict[tuple[str, str], LatestValue] = {}
    for value in values:
        key = (value.measurement, value.field)
        if key not in best or value.time_ns > best[key].time_ns:
            best[key] = value
    return [best[key] for key in sorted(best)]


# -- the per-sink implementations ------------------------------------------------------------------


class DeviceQueries:
    """What ``bridge-cli query`` and ``delete-data`` ask of a sink, in its own language."""

    # What a confirmation prompt adds about the delete's reach ("" when nothing).
    delete_note: str = ""
    # Why this sink cannot delete by device and time ("" when it can).
    delete_refusal: str = ""

    def __init__(self, query: Client) -> None:
        self.query = query

    def describe(self) -> str:
        """Where the queries go (never a secret)."""
        return self.query.describe()

    def latest(self, device: str, measurement: str | None, window: Window) -> list[LatestValue]:
        """The newest value of every field of the device per measurement within ``window``."""
        raise NotImplementedError

    def range(
        self, device: str, measurement: str | None, window: Window, limit: int
    ) -> RangeResult:
        """The device's first ``limit`` points of ``window``, in time order."""
        raise NotImplementedError

    def count(self, device: str, measurement: str | None, window: Window) -> int:
        """How many points of the device lie in ``window``, streamed (memory stays flat)."""
        raise NotImplementedError

    def delete(self, device: str, measurement: str | None, window: Window) -> None:
        """Delete the device's points in ``window``; :class:`DeleteNotSupported` if impossible."""
        raise NotImplementedError


def device_queries(query: Client) -> DeviceQueries:
    """The implementation for ``query``'s InfluxDB version (:data:`.versions.VERSIONS`)."""
    implementation: type[DeviceQueries] = VERSIONS[query.kind].load("devices")
    return implementation(query)


# -- InfluxDB 1.x ----------------------------------------------------------------------------------


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
        return _newest_per_field(values)

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


# -- InfluxDB 2.x / Cloud --------------------------------------------------------------------------

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
        return _newest_per_field(values)

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


# -- InfluxDB 3 Core / Enterprise ------------------------------------------------------------------

_V3_TAG_TYPE = "Dictionary("
_V3_TIME_TYPE = "Timestamp("


@dataclass
class _Table:
    """One InfluxDB 3 table's columns: its tags and its fields with their Arrow types."""

    tags: set[str] = field(default_factory=set)
    fields: dict[str, str] = field(default_factory=dict)


def _coerce_v3(value: Any, arrow_type: str | None) -> Any:
    if arrow_type == "Float64" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


class V3DeviceQueries(DeviceQueries):
    """SQL over ``/api/v3/query_sql``, one table (measurement) at a time; no deletes."""

    query: InfluxV3Client
    delete_refusal = V3_DELETE_REFUSAL

    def __init__(self, query: InfluxV3Client) -> None:
        super().__init__(query)
        self.query = query

    def _tables(self, measurement: str | None) -> dict[str, _Table]:
        """Tables that have a ``device_id`` tag, from ``information_schema.columns``.

        Tags are the dictionary-encoded columns, ``time`` the timestamp, the rest fields.
        """
        # Safe: the literals are quoted by sql_string.
        sql = (
            "SELECT table_name, column_name, data_type FROM information_schema.columns "  # noqa: S608 - names quoted
            f"WHERE table_schema = {sql_string('iox')}"
        )
        if measurement is not None:
            sql += f" AND table_name = {sql_string(measurement)}"
        tables: dict[str, _Table] = {}
        for row in self.query.rows(sql):
            name, column = str(row.get("table_name")), str(row.get("column_name"))
            kind = str(row.get("data_type", ""))
            table = tables.setdefault(name, _Table())
            if kind.startswith(_V3_TAG_TYPE):
                table.tags.add(column)
            elif not kind.startswith(_V3_TIME_TYPE):
                table.fields[column] = kind
        return {n: t for n, t in sorted(tables.items()) if DEVICE_TAG in t.tags}

    def _where(self, device: str, window: Window) -> str:
        return (
            f"{sql_ident(DEVICE_TAG)} = {sql_string(device)} "
            f"AND time >= {sql_string(format_rfc3339_ns(window.start_ns))} "
            f"AND time < {sql_string(format_rfc3339_ns(window.stop_ns))}"
        )

    def latest(self, device: str, measurement: str | None, window: Window) -> list[LatestValue]:
        """Per field: its newest non-null value (``ORDER BY time DESC LIMIT 1``)."""
        values: list[LatestValue] = []
        where = self._where(device, window)
        for name, table in self._tables(measurement).items():
            for column in sorted(table.fields):
                # Safe: names quoted by sql_ident, the device and times by sql_string.
                sql = (
                    f"SELECT time, {sql_ident(column)} FROM {sql_ident(name)} "  # noqa: S608 - names quoted
                    f"WHERE {where} AND {sql_ident(column)} IS NOT NULL "
                    "ORDER BY time DESC LIMIT 1"
                )
                for row in self.query.rows(sql):
                    time_text = row.get("time")
                    if row.get(column) is not None and isinstance(time_text, str):
                        value = _coerce_v3(row[column], table.fields[column])
                        stamp = parse_influx_time_ns(time_text)
                        values.append(LatestValue(name, column, value, stamp))
        return _newest_per_field(values)

    def range(
        self, device: str, measurement: str | None, window: Window, limit: int
    ) -> RangeResult:
        """``SELECT * ... ORDER BY time LIMIT limit+1`` per table; columns split by schema."""
        points: list[Point] = []
        where = self._where(device, window)
        for name, table in self._tables(measurement).items():
            # Safe: names quoted by sql_ident, the device and times by sql_string.
            sql = (
                f"SELECT * FROM {sql_ident(name)} WHERE {where} "  # noqa: S608 - names quoted
                f"ORDER BY time LIMIT {int(limit) + 1}"
            )
            for row in self.query.rows(sql):
                time_text = row.get("time")
                if not isinstance(time_text, str):
                    continue
                tags = {
                    k: str(v) for k, v in row.items() if k in table.tags and v not in (None, "")
                }
                fields = {
                    k: _coerce_v3(v, table.fields.get(k))
                    for k, v in row.items()
                    if k != "time" and k not in table.tags and v is not None
                }
                if fields:
                    points.append(Point(parse_influx_time_ns(time_text), name, tags, fields))
        return first_points(points, limit)

    def count(self, device: str, measurement: str | None, window: Window) -> int:
        """Not needed: InfluxDB 3 cannot delete what would be counted."""
        raise DeleteNotSupported(V3_DELETE_REFUSAL)

    def delete(self, device: str, measurement: str | None, window: Window) -> None:
        """Refused: see :data:`V3_DELETE_REFUSAL`."""
        raise DeleteNotSupported(V3_DELETE_REFUSAL)


__all__ = [
    "DEFAULT_LIMIT",
    "DEVICE_TAG",
    "MAX_LIMIT",
    "V3_DELETE_REFUSAL",
    "DeleteNotSupported",
    "DeviceQueries",
    "LatestValue",
    "Point",
    "RangeResult",
    "Window",
    "device_queries",
    "first_points",
    "parse_time_arg",
    "validate_name",
]
