"""Device queries on InfluxDB 3 Core/Enterprise: SQL over ``/api/v3/query_sql``; no deletes.

InfluxDB 3 cannot delete points, only whole tables or databases; :data:`V3_DELETE_REFUSAL`
says so and what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telegraf_bridge.cli.influx.client import parse_influx_time_ns
from telegraf_bridge.cli.influx.devices.base import DEVICE_TAG, DeleteNotSupported, DeviceQueries
from telegraf_bridge.cli.influx.devices.results import (
    LatestValue,
    Point,
    RangeResult,
    first_points,
    newest_per_field,
)
from telegraf_bridge.cli.influx.devices.times import Window
from telegraf_bridge.cli.influx.sql import sql_ident, sql_string
from telegraf_bridge.cli.influx.v3 import InfluxV3Client
from telegraf_bridge.plugins.common import format_rfc3339_ns

V3_DELETE_REFUSAL = (
    "InfluxDB 3 (Core and Enterprise) cannot delete points by time range or tag: its only "
    "deletes are whole tables (DELETE /api/v3/configure/table, `influxdb3 delete table`; "
    "Enterprise can keep the schema with --data-only) and whole databases. Nothing was deleted. "
    "Alternatives: give the database a retention period so old points age out "
    "(`influxdb3 create database --retention-period 30d`), delete the measurement's whole "
    "table, or copy the points you want to keep into a new database and delete the old one."
)
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
        return newest_per_field(values)

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
