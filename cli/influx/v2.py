"""InfluxDB v2 / Cloud: Flux over ``/api/v2/query``, writes, deletes and the admin resources.

Every ``/api/v2`` endpoint the commands use is one method here: queries, ``/write`` and
``/delete`` for the data, ``/orgs``, ``/buckets``, ``/tasks``, ``/authorizations`` and
``/dbrps`` for ``setup-influxdb``, ``verify`` and ``delete-buckets``. Authentication is
``Authorization: Token``.

Queries are sent as the JSON form with the dialect annotations ``datatype``, ``group`` and
``default`` (as the official clients send it): with a plain ``application/vnd.flux`` body the
server leaves the annotation rows out. The annotated CSV answer is parsed as a stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from telegraf_bridge.cli.config_model import InfluxSink, V2Sink, expect
from telegraf_bridge.cli.influx.annotated_csv import parse_annotated_csv
from telegraf_bridge.cli.influx.client import Client, parse_influx_time_ns
from telegraf_bridge.cli.influx.flux import flux_string
from telegraf_bridge.cli.influx.transport import Reply
from telegraf_bridge.plugins.common import format_rfc3339_ns

_ANNOTATIONS = ["datatype", "group", "default"]


class InfluxV2Client(Client):
    """One InfluxDB v2/Cloud organization and the sink's bucket."""

    kind = "influxdb_v2"
    scheme = "Token"
    requires_secret = True

    def __init__(self, sink: InfluxSink, *args: Any, **kwargs: Any) -> None:
        super().__init__(sink, *args, **kwargs)
        sink = expect(sink, V2Sink)
        self.org = sink.organization
        self.bucket = sink.bucket

    def describe(self) -> str:
        """``influxdb_v2 URL org=ORG bucket=BUCKET``."""
        return f"{self.kind} {self.http.base} org={self.org} bucket={self.bucket}"

    # -- endpoints -------------------------------------------------------------------------------

    def ping(self) -> Reply:
        """``GET /ping`` (every 2.x and Cloud answers it)."""
        return self._send("GET", "/ping")

    def health(self) -> Reply:
        """``GET /health`` (OSS's other liveness endpoint)."""
        return self._send("GET", "/health")

    def query(self, flux: str, params: Mapping[str, str], *, stream: bool = False) -> Reply:
        """``POST /api/v2/query`` (``org=`` or ``orgID=``), answered with annotated CSV."""
        doc = {
            "query": flux,
            "type": "flux",
            "dialect": {"annotations": _ANNOTATIONS, "header": True, "delimiter": ","},
        }
        return self._send(
            "POST", "/api/v2/query", params=params, doc=doc, accept="application/csv", stream=stream
        )

    def write(self, params: Mapping[str, str], line: str) -> Reply:
        """``POST /api/v2/write`` of line protocol (``org``/``orgID``, ``bucket``, precision)."""
        return self._send(
            "POST",
            "/api/v2/write",
            params=params,
            data=line.encode(),
            content_type="text/plain; charset=utf-8",
        )

    def delete(self, params: Mapping[str, str], doc: Mapping[str, str]) -> Reply:
        """``POST /api/v2/delete``: ``start``, ``stop`` (inclusive) and a tag predicate."""
        return self._send("POST", "/api/v2/delete", params=params, doc=doc)

    def organization(self, org_id: str) -> Reply:
        """``GET /api/v2/orgs/{id}``."""
        return self._send("GET", f"/api/v2/orgs/{org_id}")

    def orgs(self, params: Mapping[str, str]) -> Reply:
        """``GET /api/v2/orgs`` (``org=`` filters by name)."""
        return self._send("GET", "/api/v2/orgs", params=params)

    def buckets(self, params: Mapping[str, str]) -> Reply:
        """``GET /api/v2/buckets``: one page (``name``, ``org``/``orgID``, limit, offset)."""
        return self._send("GET", "/api/v2/buckets", params=params)

    def create_bucket(self, doc: Mapping[str, Any]) -> Reply:
        """``POST /api/v2/buckets``."""
        return self._send("POST", "/api/v2/buckets", doc=doc)

    def delete_bucket(self, bucket_id: str) -> Reply:
        """``DELETE /api/v2/buckets/{id}`` (its data goes with it)."""
        return self._send("DELETE", f"/api/v2/buckets/{bucket_id}")

    def tasks(self, params: Mapping[str, str]) -> Reply:
        """``GET /api/v2/tasks`` (one page; ``after`` the last ID for the next)."""
        return self._send("GET", "/api/v2/tasks", params=params)

    def create_task(self, doc: Mapping[str, Any]) -> Reply:
        """``POST /api/v2/tasks``."""
        return self._send("POST", "/api/v2/tasks", doc=doc)

    def delete_task(self, task_id: str) -> Reply:
        """``DELETE /api/v2/tasks/{id}``."""
        return self._send("DELETE", f"/api/v2/tasks/{task_id}")

    def authorizations(self, params: Mapping[str, str], following: str = "") -> Reply:
        """``GET /api/v2/authorizations``, or the ``links.next`` page the server handed out."""
        return self._send("GET", following or "/api/v2/authorizations", params=params)

    def create_authorization(self, doc: Mapping[str, Any]) -> Reply:
        """``POST /api/v2/authorizations`` (a new token; its value is in the answer)."""
        return self._send("POST", "/api/v2/authorizations", doc=doc)

    def dbrps(self, params: Mapping[str, str]) -> Reply:
        """``GET /api/v2/dbrps`` (the InfluxQL database/retention-policy mappings)."""
        return self._send("GET", "/api/v2/dbrps", params=params)

    def create_dbrp(self, doc: Mapping[str, Any]) -> Reply:
        """``POST /api/v2/dbrps``."""
        return self._send("POST", "/api/v2/dbrps", doc=doc)

    # -- Flux on the sink's bucket ---------------------------------------------------------------

    def csv_lines(self, flux: str) -> Iterator[str]:
        """The annotated CSV answer to ``flux`` as text lines, streamed."""
        reply = self.query(flux, {"org": self.org}, stream=True)
        if reply.response is None:
            raise self.http.failure(reply, "Flux query")
        for raw in self.http.lines(reply):
            yield raw.decode("utf-8")

    def _base(self, measurement: str, field: str | None, since_ns: int) -> str:
        predicate = f"r._measurement == {flux_string(measurement)}"
        if field:
            predicate += f" and r._field == {flux_string(field)}"
        return (
            f"from(bucket: {flux_string(self.bucket)})\n"
            f"  |> range(start: {format_rfc3339_ns(since_ns)})\n"
            f"  |> filter(fn: (r) => {predicate})\n"
        )

    def newest_point(self, measurement: str, field: str | None, *, since_ns: int) -> int | None:
        """``last()`` per series, then the latest of those across all series.

        Only ``_time`` is kept before ``group()``: fields of different types in one table
        would be a schema collision on ``_value``.
        """
        flux = (
            self._base(measurement, field, since_ns)
            + '  |> last()\n  |> keep(columns: ["_time"])\n  |> group()\n'
            + '  |> max(column: "_time")\n'
        )
        newest: int | None = None
        for record in parse_annotated_csv(self.csv_lines(flux), self.name):
            stamp = parse_influx_time_ns(record["_time"])
            newest = stamp if newest is None else max(newest, stamp)
        return newest

    def series(
        self, measurement: str, field: str, tag: str, start_ns: int
    ) -> Iterator[tuple[str, float]]:
        """Only the value and the tag column travel (``keep``): a fraction of the full rows."""
        flux = (
            self._base(measurement, field, start_ns)
            + f'  |> keep(columns: ["_value", {flux_string(tag)}])\n'
        )
        for record in parse_annotated_csv(self.csv_lines(flux), self.name):
            try:
                value = float(record.get("_value", ""))
            except ValueError:
                continue
            yield record.get(tag, ""), value
