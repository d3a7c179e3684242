"""InfluxDB 3 Core / Enterprise: SQL over ``/api/v3/query_sql``, writes and the admin resources.

Authentication is ``Authorization: Bearer``. Query answers are JSON Lines (one row per line),
so memory stays bounded. A table or column that was never written is a planning error on
InfluxDB 3 (``table '...' not found``): :meth:`InfluxV3Client.rows` reads it as "no data", like
an unknown database (404), which InfluxDB 3 creates on first write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from telegraf_bridge.cli.config_model import InfluxSink, V3Sink, expect
from telegraf_bridge.cli.influx.client import Client, number, parse_influx_time_ns
from telegraf_bridge.cli.influx.sql import sql_ident, sql_string
from telegraf_bridge.cli.influx.transport import Reply
from telegraf_bridge.plugins.common import format_rfc3339_ns

# InfluxDB 3 answers a query on a table (or column) that was never written with a planning
# error instead of an empty result; both mean "no data" here.
_V3_MISSING_TABLE = re.compile(r"table '[^']*' not found")
_V3_MISSING_COLUMN = re.compile(r"No field named")


def missing_table(text: str) -> bool:
    """Whether an error text is InfluxDB 3's "this table or column was never written"."""
    return bool(_V3_MISSING_TABLE.search(text) or _V3_MISSING_COLUMN.search(text))


class InfluxV3Client(Client):
    """One InfluxDB 3 server and the sink's database."""

    kind = "influxdb_v3"
    scheme = "Bearer"

    def __init__(self, sink: InfluxSink, *args: Any, **kwargs: Any) -> None:
        super().__init__(sink, *args, **kwargs)
        sink = expect(sink, V3Sink)
        self.database = sink.database

    def describe(self) -> str:
        """``influxdb_v3 URL db=DB``."""
        return f"{self.kind} {self.http.base} db={self.database}"

    # -- endpoints -------------------------------------------------------------------------------

    def ping(self) -> Reply:
        """``GET /ping``: the version, and ``X-Influxdb-Build`` (Core or Enterprise)."""
        return self._send("GET", "/ping")

    def query_sql(self, database: str, sql: str, *, jsonl: bool = False) -> Reply:
        """``POST /api/v3/query_sql``: JSON rows, or JSON Lines streamed with ``jsonl``."""
        return self._send(
            "POST",
            "/api/v3/query_sql",
            doc={"db": database, "q": sql, "format": "jsonl" if jsonl else "json"},
            accept="application/jsonl" if jsonl else "application/json",
            stream=jsonl,
        )

    def query_influxql(self, database: str, statement: str) -> Reply:
        """``GET /api/v3/query_influxql`` (used for ``SHOW RETENTION POLICIES``)."""
        return self._send(
            "GET",
            "/api/v3/query_influxql",
            params={"db": database, "q": statement, "format": "json"},
        )

    def write_lp(self, database: str, line: str) -> Reply:
        """``POST /api/v3/write_lp`` of line protocol with ns precision."""
        return self._send(
            "POST",
            "/api/v3/write_lp",
            params={"db": database, "precision": "nanosecond"},
            data=line.encode(),
            content_type="text/plain; charset=utf-8",
        )

    def databases(self) -> Reply:
        """``GET /api/v3/configure/database?format=json``."""
        return self._send("GET", "/api/v3/configure/database", params={"format": "json"})

    def create_database(self, doc: Mapping[str, Any]) -> Reply:
        """``POST /api/v3/configure/database`` (``db``, optional ``retention_period``)."""
        return self._send("POST", "/api/v3/configure/database", doc=doc)

    def delete_database(self, name: str) -> Reply:
        """``DELETE /api/v3/configure/database?db=NAME``."""
        return self._send("DELETE", "/api/v3/configure/database", params={"db": name})

    def create_token(self, doc: Mapping[str, Any]) -> Reply:
        """``POST /api/v3/enterprise/configure/token`` (Enterprise: a scoped token)."""
        return self._send("POST", "/api/v3/enterprise/configure/token", doc=doc)

    # -- SQL on the sink's database --------------------------------------------------------------

    def rows(self, sql: str) -> Iterator[dict[str, object]]:
        """The rows of ``sql`` as JSON objects, streamed; a missing table or column is no rows."""
        reply = self.query_sql(self.database, sql, jsonl=True)
        if reply.response is None:
            if missing_table(reply.text):
                return
            raise self.http.failure(reply, "SQL query")
        for row in self._json_lines(reply):
            if isinstance(row, dict):
                yield row

    def newest_point(self, measurement: str, field: str | None, *, since_ns: int) -> int | None:
        """``SELECT time FROM m WHERE time >= since [AND f IS NOT NULL] ORDER BY time DESC``."""
        where = f"time >= {sql_string(format_rfc3339_ns(since_ns))}"
        if field:
            where += f" AND {sql_ident(field)} IS NOT NULL"
        table = sql_ident(measurement)
        sql = f"SELECT time FROM {table} WHERE {where} ORDER BY time DESC LIMIT 1"  # noqa: S608 - quoted
        newest: int | None = None
        for row in self.rows(sql):
            time_text = row.get("time")
            if isinstance(time_text, str):
                stamp = parse_influx_time_ns(time_text)
                newest = stamp if newest is None else max(newest, stamp)
        return newest

    def series(
        self, measurement: str, field: str, tag: str, start_ns: int
    ) -> Iterator[tuple[str, float]]:
        """``SELECT tag, field FROM m WHERE time >= start AND field IS NOT NULL``."""
        sql = (
            f"SELECT {sql_ident(tag)}, {sql_ident(field)} FROM {sql_ident(measurement)} "  # noqa: S608 - names quoted by sql_ident, the time by sql_string
            f"WHERE time >= {sql_string(format_rfc3339_ns(start_ns))} "
            f"AND {sql_ident(field)} IS NOT NULL"
        )
        for row in self.rows(sql):
            value = number(row.get(field))
            if value is not None:
                key = row.get(tag)
                yield ("" if key is None else str(key)), value
