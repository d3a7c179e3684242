"""InfluxDB 1.x: InfluxQL over ``/query``, line protocol over ``/write``, ``/ping``.

Authentication is HTTP Basic with ``username`` and the password from ``password_env``, so the
password never appears in a URL or a proxy's access log.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

from telegraf_bridge.cli.config_model import InfluxSink, V1Sink, expect
from telegraf_bridge.cli.influx.client import Client, as_int, number
from telegraf_bridge.cli.influx.influxql import influxql_ident
from telegraf_bridge.cli.influx.influxql_result import StatementResult, results_of
from telegraf_bridge.cli.influx.transport import Reply, SinkError

# Points per chunk that InfluxDB 1.x streams back (chunked=true); bounds the client's memory.
V1_CHUNK_SIZE = 5000


class InfluxV1Client(Client):
    """One InfluxDB 1.x server and the sink's database (and retention policy)."""

    kind = "influxdb_v1"
    scheme = "Basic"

    def __init__(self, sink: InfluxSink, *args: Any, **kwargs: Any) -> None:
        super().__init__(sink, *args, **kwargs)
        sink = expect(sink, V1Sink)
        self.database = sink.database
        self.retention_policy = sink.retention_policy

    def describe(self) -> str:
        """``influxdb_v1 URL db=DB [rp=RP]``."""
        rp = f" rp={self.retention_policy}" if self.retention_policy else ""
        return f"{self.kind} {self.http.base} db={self.database}{rp}"

    # -- endpoints -------------------------------------------------------------------------------

    def ping(self) -> Reply:
        """``GET /ping``: 204 and ``X-Influxdb-Version`` from a 1.x server."""
        return self._send("GET", "/ping")

    def query(
        self,
        statement: str,
        *,
        database: str | None,
        rp: str = "",
        chunked: bool = False,
        stream: bool = False,
    ) -> Reply:
        """``POST /query`` (a form, so DDL works too and nothing lands in a URL); ``epoch=ns``."""
        form = {"q": statement, "epoch": "ns"}
        if database:
            form["db"] = database
        if rp:
            form["rp"] = rp
        if chunked:
            form["chunked"] = "true"
            form["chunk_size"] = str(V1_CHUNK_SIZE)
        return self._send(
            "POST",
            "/query",
            data=urllib.parse.urlencode(form).encode(),
            content_type="application/x-www-form-urlencoded",
            stream=stream,
        )

    def write(self, line: str, *, database: str, rp: str) -> Reply:
        """``POST /write`` of line protocol with ns precision."""
        return self._send(
            "POST",
            "/write",
            params={"db": database, "rp": rp, "precision": "ns"},
            data=line.encode(),
            content_type="text/plain; charset=utf-8",
        )

    # -- InfluxQL on the sink's database ---------------------------------------------------------

    def statements(self, query: str, *, chunked: bool = False) -> Iterator[StatementResult]:
        """Each statement result of ``query`` (statements separated by ``;``), errors raised."""
        reply = self.query(
            query,
            database=self.database,
            rp=self.retention_policy,
            chunked=chunked,
            stream=True,
        )
        if reply.response is None:
            raise self.http.failure(reply, "InfluxQL query")
        for doc in self._json_lines(reply):
            if "error" in doc:
                raise SinkError("query_failed", f"sink {self.name!r}: {doc['error']}")
            for result in results_of(doc):
                if result.error:
                    reason = "not_found" if result.error.startswith("database not found") else ""
                    raise SinkError(reason or "query_failed", f"sink {self.name!r}: {result.error}")
                yield result

    def newest_point(self, measurement: str, field: str | None, *, since_ns: int) -> int | None:
        """``SELECT <field|*> FROM m WHERE time >= since ORDER BY time DESC LIMIT 1``."""
        selection = influxql_ident(field) if field else "*"
        query = (
            f"SELECT {selection} FROM {influxql_ident(measurement)} "  # noqa: S608 - names quoted, time an int
            f"WHERE time >= {int(since_ns)} ORDER BY time DESC LIMIT 1"
        )
        newest: int | None = None
        for result in self.statements(query):
            for series in result.series:
                for row in series.values:
                    stamp = as_int(row[0])
                    newest = stamp if newest is None else max(newest, stamp)
        return newest

    def series(
        self, measurement: str, field: str, tag: str, start_ns: int
    ) -> Iterator[tuple[str, float]]:
        """``SELECT field FROM m WHERE time >= start GROUP BY tag``, chunked."""
        query = (
            f"SELECT {influxql_ident(field)} FROM {influxql_ident(measurement)} "  # noqa: S608 - names quoted, time an int
            f"WHERE time >= {int(start_ns)} GROUP BY {influxql_ident(tag)}"
        )
        for result in self.statements(query, chunked=True):
            for series in result.series:
                key = series.tags.get(tag, "")
                for row in series.values:
                    value = number(row[1]) if len(row) > 1 else None
                    if value is not None:
                        yield key, value
