r"""Loopback fakes of the InfluxDB v2 (Cloud/OSS 2.x) and v3 (Core/Enterprise) write APIs.

Why fakes: InfluxDB 3 cannot be obtained on the test machines, and InfluxDB Cloud is not a
server one can run. InfluxDB 1.x and OSS 2.x run for real (``InfluxD1``, ``InfluxD2``), and
every v2 test an OSS server can serve runs against the real one. The v2 fake stays only for
what the real OSS server cannot show:

- InfluxDB Cloud's rate limiting: 429 (and 503) with ``Retry-After`` through scripted outages
  (:meth:`fail_next`), which Telegraf must honour without losing a point;
- observing exactly what Telegraf sends (headers such as ``Content-Encoding: gzip`` and the
  ``Authorization`` token, query parameters, the raw body): every request is recorded;
- a small ``max_body_bytes`` for 413 answers.

Wherever both serve an endpoint, tests/test_fake_v2_differential.py sends the same requests to
the fake and to a real influxd 2.7 and requires the same status, error code and message and
body shape (annotated CSV byte for byte). It found and fixed: a type conflict and points older
than the bucket's retention are partial writes (the rest is stored, ``dropped=N``); tables of a
query come in series-key order; the query API's org errors are 400s; delete and precision
messages; no ``updatedAt`` on a new task, no ``status`` on an organization. Known to remain
different: the wording of a line-protocol parse error's reason.

The fakes follow the official HTTP APIs as documented by InfluxData:

- v2 ``POST /api/v2/write?org=|orgID=&bucket=&precision=``: ``Authorization: Token <token>``;
  204 on success; 400 ``{"code":"invalid","message":"unable to parse '<line>': <why>"}`` with
  the whole batch rejected; 401 ``{"code":"unauthorized","message":"unauthorized access"}``;
  404 ``{"code":"not found","message":"bucket \"<name>\" not found"}``; 413
  ``{"code":"request too large",...}``; 422 for a field type conflict or points beyond the
  bucket's retention (a partial write: the other points are stored); 429 and 503 with
  ``Retry-After``; ``GET /health`` and ``GET /ping``.
- v3 ``POST /api/v3/write_lp?db=&precision=&accept_partial=&no_sync=``:
  ``Authorization: Bearer <token>`` (``Token`` accepted too); 204; 400
  ``{"error":"...","data":[{"original_line":...,"line_number":...,"error_message":...}]}``;
  401; 413; 429/503 with ``Retry-After``; databases are created on first write, as in Core.

Both accept gzip bodies (``Content-Encoding: gzip``), record every request, and can be told to
answer the next writes with a scripted status (fault injection) via :meth:`fail_next`.

Queries (for ``bridge-cli healthcheck`` and ``rssi-report``) are answered over the points the
fakes accepted by write, but only in the exact shapes :mod:`telegraf_bridge.cli.influx`
sends; the fakes parse those strictly and refuse anything else with the documented 400 body.
They are no query engines:

- v2 ``POST /api/v2/query?org=|orgID=``: ``Authorization: Token``; the body is Flux
  (``application/vnd.flux``) or the JSON form ``{"query", "type", "dialect"}``; the answer is
  CSV as InfluxDB 2 writes it (CRLF lines, ``result``/``table`` columns, RFC3339Nano times, a
  new annotation+header block whenever the column schema changes, annotation rows
  ``#datatype``/``#group``/``#default`` only when the JSON dialect asks for them, as the
  server does). Evaluated shapes: ``from |> range(start:) |> filter(_measurement [and
  _field]) |> last() |> keep(columns: ["_time"]) |> group() |> max(column: "_time")`` and
  ``... |> keep(columns: ["_value", "<tag>"])``; for ``bridge-cli query``/``delete-data``
  ``from |> range(start:, stop:) |> filter(r["<tag>"] == "<v>" [and _measurement]) |>``
  ``last()``, ``limit(n:)`` (one table per series and field, full columns and group key) or
  ``pivot(...) |> keep(columns: ["_time"]) |> group() |> reduce(...)`` (a point count in
  column ``n``). Errors: 400 ``{"code":"invalid",...}``, 401, 404 for an unknown org or
  bucket. ``POST /api/v2/delete`` takes ``start``/``stop`` (both inclusive, as the storage
  engine's ``[min, max]``) and the predicate grammar ``key="value"`` joined by AND, values
  unescaped as influxql's scanner does (``\"``, ``\\``, ``\n``).
- v3 ``GET|POST /api/v3/query_sql`` (``db``, ``q``, ``format`` = ``json`` | ``jsonl``):
  ``Authorization: Bearer``; rows as JSON objects (null columns left out, naive UTC times as
  Core prints them); 400 text ``missing query parameters 'db' and 'q'``; 404
  ``{"error":"query error: database not found: <db>"}``; 400 text ``Error during planning:
  table 'public.iox.<m>' not found`` and ``Schema error: No field named ...`` for a table or
  column never written. Evaluated shapes: ``SELECT time FROM "m" WHERE time >= '<t>' [AND
  "f" IS NOT NULL] ORDER BY time DESC LIMIT 1`` and ``SELECT "tag", "f" FROM "m" WHERE time
  >= '<t>' AND "f" IS NOT NULL``; for ``bridge-cli query``: ``SELECT table_name,
  column_name, data_type FROM information_schema.columns WHERE table_schema = 'iox' [AND
  table_name = 'm']`` (tags ``Dictionary(Int32, Utf8)``, ``time`` ``Timestamp(Nanosecond,
  None)``, fields ``Float64``/``Int64``/``UInt64``/``Utf8``/``Boolean``), ``SELECT * FROM "m"
  WHERE "tag" = 'v' AND time >= '<t>' AND time < '<t>' ORDER BY time LIMIT n`` and
  ``SELECT time, "f" FROM "m" WHERE ... AND "f" IS NOT NULL ORDER BY time DESC LIMIT 1``.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlparse

from telegraf_bridge.plugins.common import format_rfc3339_ns, parse_rfc3339_ns

from rig.fake_v2_admin import FakeAuthorization, FakeBucket, FakeV2Admin
from rig.managed import Managed
from telegraf_bridge.testing import LineProtocolError, ParsedPoint, parse_line

_PRECISIONS_V2 = {"ns", "us", "ms", "s"}
_PRECISIONS_V3 = {
    "auto",
    "nanosecond",
    "microsecond",
    "millisecond",
    "second",
    "ns",
    "us",
    "ms",
    "s",
}


@dataclass
class Scripted:
    """A forced response for the next write request."""

    status: int
    retry_after: int | None = None
    body: dict[str, Any] | None = None


@dataclass
class WriteRequest:
    """One write request as the fake received it."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: str
    status: int
    # The points the server stored from this request (none for a rejected v2 batch).
    points: list[ParsedPoint] = field(default_factory=list)
    # When the fake received it: the timestamp of points written without one.
    received_ns: int = field(default_factory=time.time_ns)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: _FakeInflux


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def _send(
        self,
        status: int,
        body: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        if isinstance(body, str):
            payload = body.encode()
        else:
            payload = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if body is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Influxdb-Version", self.server.fake.version)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def do_GET(self) -> None:
        self.server.fake.handle_get(self)

    def do_HEAD(self) -> None:
        self.server.fake.handle_get(self)

    def do_POST(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raw = self._read_chunked()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
        self.server.fake.handle_post(self, raw)

    def _read_chunked(self) -> bytes:
        """Go's HTTP client streams bodies of unknown length as chunks (Telegraf does)."""
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";")[0].strip()
            size = int(size_line or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, then the blank line
                    pass
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline(8)  # CRLF after the chunk


class _FakeInflux(Managed):
    version = "fake"

    def __init__(self, *, token: str | None, max_body_bytes: int) -> None:
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.requests: list[WriteRequest] = []
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], str] = {}
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- scripting and inspection ------------------------------------------------------------

    def fail_next(self, status: int, *, count: int = 1, retry_after: int | None = None) -> None:
        """Answer the next ``count`` writes with ``status`` (and its documented body)."""
        with self._lock:
            for _ in range(count):
                self._script.append(Scripted(status, retry_after))

    def accepted_points(self) -> list[ParsedPoint]:
        """Every point the fake stored, in arrival order (v3 partial writes included)."""
        with self._lock:
            return [p for r in self.requests for p in r.points]

    # -- request handling --------------------------------------------------------------------

    def handle_get(self, handler: _Handler) -> None:
        path = urlparse(handler.path).path
        if path == "/health":
            handler._send(
                200,
                {
                    "name": "influxdb",
                    "message": "ready for queries and writes",
                    "status": "pass",
                    "checks": [],
                    "version": self.version,
                },
            )
        elif path == "/ping":
            handler._send(204)
        else:
            handler._send(404, self.not_found_body(path))

    def not_found_body(self, path: str) -> dict[str, Any]:
        return {"code": "not found", "message": "path not found"}

    def _authorised(self, header: str | None) -> bool:
        raise NotImplementedError

    def handle_post(self, handler: _Handler, raw: bytes) -> None:
        raise NotImplementedError

    def _decode(self, handler: _Handler, raw: bytes) -> str:
        if handler.headers.get("Content-Encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        if len(raw) > self.max_body_bytes:
            raise _TooLarge
        return raw.decode("utf-8")

    def _parse_batch(
        self, body: str, target: str
    ) -> tuple[list[ParsedPoint], list[tuple[int, str, str]], dict[tuple[str, str, str], str]]:
        """Valid points, errors as (line number, line, why), and the field types they add."""
        points: list[ParsedPoint] = []
        errors: list[tuple[int, str, str]] = []
        new_types: dict[tuple[str, str, str], str] = {}
        for number, line in enumerate(body.split("\n"), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            try:
                point = parse_line(line)
            except LineProtocolError as exc:
                errors.append((number, line, str(exc)))
                continue
            conflict = ""
            for key, value in point.fields.items():
                kind = _kind(key, value, point)
                slot = (target, point.measurement, key)
                seen = self._types.get(slot) or new_types.get(slot)
                if seen is not None and seen != kind:
                    conflict = (
                        f'field type conflict: input field "{key}" on measurement '
                        f'"{point.measurement}" is type {kind}, already exists as type {seen}'
                    )
                    break
                new_types[slot] = kind
            if conflict:
                errors.append((number, line, conflict))
                continue
            points.append(point)
        return points, errors, new_types

    def _record(
        self,
        handler: _Handler,
        params: dict[str, str],
        body: str,
        status: int,
        points: list[ParsedPoint],
    ) -> None:
        with self._lock:
            self.requests.append(
                WriteRequest(
                    path=urlparse(handler.path).path,
                    params=params,
                    headers=dict(handler.headers.items()),
                    body=body,
                    status=status,
                    points=points,
                )
            )

    def _scripted(self) -> Scripted | None:
        with self._lock:
            return self._script.popleft() if self._script else None


# -- query helpers ---------------------------------------------------------------------------------

_FLUX_STR = r'"(?:[^"\\]|\\.)*"'
_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z"
_FLUX_QUERY = re.compile(
    rf"from\(bucket:\s*(?P<bucket>{_FLUX_STR})\)\s*"
    rf"\|>\s*range\(start:\s*(?P<start>{_TIME})\)\s*"
    rf"\|>\s*filter\(fn:\s*\(r\)\s*=>\s*r\._measurement\s*==\s*(?P<measurement>{_FLUX_STR})"
    rf"(?:\s+and\s+r\._field\s*==\s*(?P<field>{_FLUX_STR}))?\)\s*"
    r"(?:(?P<newest>\|>\s*last\(\)\s*\|>\s*keep\(columns:\s*\[\s*\"_time\"\s*\]\)\s*"
    r"\|>\s*group\(\)\s*\|>\s*max\(column:\s*\"_time\"\))"
    rf"|\|>\s*keep\(columns:\s*\[\s*\"_value\"\s*,\s*(?P<tag>{_FLUX_STR})\s*\]\))"
)
_FLUX_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$"}
_SQL_IDENT = r'"(?:[^"]|"")*"'
_SQL_STR = r"'(?:[^']|'')*'"
# Regular expressions that recognise the SQL bridge-cli sends; no SQL is built here.
_SQL_NEWEST = re.compile(
    rf"SELECT time FROM (?P<table>{_SQL_IDENT}) WHERE time >= (?P<start>{_SQL_STR})"
    rf"(?: AND (?P<field>{_SQL_IDENT}) IS NOT NULL)? ORDER BY time DESC LIMIT 1"
)
_SQL_SERIES = re.compile(
    rf"SELECT (?P<tag>{_SQL_IDENT}), (?P<field>{_SQL_IDENT}) FROM (?P<table>{_SQL_IDENT}) "
    rf"WHERE time >= (?P<start>{_SQL_STR}) AND (?P=field) IS NOT NULL"
)
_PRECISION_NS = {
    "ns": 1,
    "nanosecond": 1,
    "us": 1_000,
    "microsecond": 1_000,
    "ms": 1_000_000,
    "millisecond": 1_000_000,
    "s": 1_000_000_000,
    "second": 1_000_000_000,
}


def _time_ns(point: ParsedPoint, precision: str, received_ns: int) -> int:
    """A point's time in ns; ``auto`` guesses the unit from the magnitude, as InfluxDB 3 does."""
    if point.time_ns is None:
        return received_ns
    raw = point.time_ns
    if precision == "auto":
        digits = len(str(abs(raw)))
        factor = (
            1_000_000_000
            if digits <= 10
            else 1_000_000
            if digits <= 13
            else 1_000
            if digits <= 16
            else 1
        )
        return raw * factor
    return raw * _PRECISION_NS.get(precision, 1)


def _flux_unquote(literal: str) -> str:
    body = literal[1:-1]
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(_FLUX_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _sql_unquote(ident: str) -> str:
    return ident[1:-1].replace('""', '"')


def _sql_unstring(literal: str) -> str:
    return literal[1:-1].replace("''", "'")


def _parse_time(text: str) -> int:
    """Only the ``Z`` form the CLI sends; anything else is a query the fake does not know."""
    if not text.endswith("Z"):
        raise ValueError(f"not an RFC 3339 UTC time: {text}")
    return parse_rfc3339_ns(text)


def _naive_time(time_ns: int) -> str:
    """Core's JSON time: naive UTC, the fraction in 0, 3, 6 or 9 digits (chrono's ``%.f``)."""
    seconds, frac = divmod(time_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        return text
    if frac % 1_000_000 == 0:
        return f"{text}.{frac // 1_000_000:03d}"
    if frac % 1_000 == 0:
        return f"{text}.{frac // 1_000:06d}"
    return f"{text}.{frac:09d}"


def _flux_type(value: object, unsigned: bool) -> str:
    if isinstance(value, bool):
        return "boolean"
    if unsigned:
        return "unsignedLong"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    return "string"


def _flux_cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")  # Go's 'f', -1: shortest, never an exponent
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


# A Flux table for the CSV writer: (columns [(name, datatype, in group key)], rows of cells).
_Table = tuple[list[tuple[str, str, bool]], list[list[str]]]


def _flux_newest(records: list[tuple[int, ParsedPoint, str, Any]]) -> list[_Table]:
    """``last() |> keep(["_time"]) |> group() |> max(column: "_time")``: one row, or none."""
    if not records:
        return []
    newest = max(t for t, _, _, _ in records)
    return [([("_time", "dateTime:RFC3339", False)], [[format_rfc3339_ns(newest)]])]


def _series_key(point: ParsedPoint) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A point's series as the storage engine orders series: measurement, sorted tags."""
    return point.measurement, tuple(sorted(point.tags.items()))


def _flux_keep(records: list[tuple[int, ParsedPoint, str, Any]], tag: str) -> list[_Table]:
    """``keep(columns: ["_value", tag])``: one table per tag value (group key: the tag)."""
    groups: dict[str | None, list[tuple[int, ParsedPoint, str, Any]]] = {}
    # The storage engine yields series in series-key order (measurement, then the sorted
    # tags); keep() leaves the tables in that order, so a group comes where its first series is.
    for record in sorted(records, key=lambda r: (_series_key(r[1]), r[0])):
        groups.setdefault(record[1].tags.get(tag), []).append(record)
    tables: list[_Table] = []
    for key, rows in groups.items():
        _, point, name, value = rows[0]
        columns = [("_value", _flux_type(value, name in point.unsigned), False)]
        if key is not None:
            columns.append((tag, "string", True))
        cells = [[_flux_cell(v)] + ([key] if key is not None else []) for _, _, _, v in rows]
        tables.append((columns, cells))
    return tables


def _annotated_csv(tables: list[_Table], annotations: list[str]) -> str:
    """Tables as InfluxDB 2 writes CSV: CRLF, a new block per schema, a blank line at the end."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    previous: list[tuple[str, str, bool]] | None = None
    for index, (columns, rows) in enumerate(tables):
        if columns != previous:
            if previous is not None:
                out.write("\r\n")
            for annotation in annotations:
                if annotation == "datatype":
                    writer.writerow(["#datatype", "string", "long", *(c[1] for c in columns)])
                elif annotation == "group":
                    writer.writerow(
                        [
                            "#group",
                            "false",
                            "false",
                            *("true" if c[2] else "false" for c in columns),
                        ]
                    )
                elif annotation == "default":
                    writer.writerow(["#default", "_result", "", *("" for _ in columns)])
            writer.writerow(["", "result", "table", *(c[0] for c in columns)])
            previous = columns
        result = "" if "default" in annotations else "_result"
        for cells in rows:
            writer.writerow(["", result, str(index), *cells])
    out.write("\r\n")
    return out.getvalue()


class _TooLarge(Exception):
    pass


def _kind(key: str, value: object, point: ParsedPoint) -> str:
    if isinstance(value, bool):
        return "boolean"
    if key in point.unsigned:
        return "unsigned"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"


# -- InfluxDB v2: management endpoints, counts and deletes (helpers of FakeInfluxV2) -----------

# The count ``bridge-cli delete-buckets`` shows: points of one field of a measurement, ever.
_FLUX_COUNT = re.compile(
    rf"from\(bucket:\s*(?P<bucket>{_FLUX_STR})\)\s*"
    r"\|>\s*range\(start:\s*0\)\s*"
    rf"\|>\s*filter\(fn:\s*\(r\)\s*=>\s*r\._measurement\s*==\s*(?P<measurement>{_FLUX_STR})"
    rf"\s+and\s+r\._field\s*==\s*(?P<field>{_FLUX_STR})\)\s*"
    r"\|>\s*count\(\)\s*\|>\s*group\(\)\s*\|>\s*sum\(\)"
)
# The per-device queries of ``bridge-cli query`` / ``delete-data``: a tag filter (and maybe a
# measurement) in a window, then ``last()``, ``limit(n:)`` or a pivot-and-reduce point count.
_FLUX_DEVICE = re.compile(
    rf"from\(bucket:\s*(?P<bucket>{_FLUX_STR})\)\s*"
    rf"\|>\s*range\(start:\s*(?P<start>{_TIME}),\s*stop:\s*(?P<stop>{_TIME})\)\s*"
    rf"\|>\s*filter\(fn:\s*\(r\)\s*=>\s*r\[(?P<tag>{_FLUX_STR})\]\s*==\s*(?P<value>{_FLUX_STR})"
    rf"(?:\s+and\s+r\._measurement\s*==\s*(?P<measurement>{_FLUX_STR}))?\)\s*"
    r"(?:(?P<last>\|>\s*last\(\))"
    r"|\|>\s*limit\(n:\s*(?P<limit>\d+)\)"
    r"|(?P<count>\|>\s*pivot\(rowKey:\s*\[\s*\"_time\"\s*\],\s*columnKey:\s*\[\s*\"_field\"\s*\],"
    r"\s*valueColumn:\s*\"_value\"\)\s*\|>\s*keep\(columns:\s*\[\s*\"_time\"\s*\]\)\s*"
    r"\|>\s*group\(\)\s*\|>\s*reduce\(identity:\s*\{n:\s*0\},\s*fn:\s*\(r,\s*accumulator\)\s*=>"
    r"\s*\(\{n:\s*accumulator\.n\s*\+\s*1\}\)\)))"
)
# One ``key="value"`` (or ``!=``) term of a delete predicate; terms are joined by AND.
_DELETE_TERM = re.compile(
    r'\s*(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)\s*(?P<op>!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*'
)
_DELETE_AND = re.compile(r"(?i)and\b")


def _delete_predicate(text: str) -> list[tuple[str, bool, str]]:
    """``(key, equal?, value)`` terms of a delete predicate; ValueError for anything else.

    The server's grammar: ``key="value"`` or ``key!="value"`` joined by ``AND``; no OR, no
    parentheses needed here. An empty predicate deletes everything in the time range.
    """
    terms: list[tuple[str, bool, str]] = []
    rest = text.strip()
    while rest:
        match = _DELETE_TERM.match(rest)
        if match is None:
            raise ValueError(f"invalid delete predicate: {text!r}")
        terms.append((match["key"], match["op"] == "=", _influxql_unescape(match["value"])))
        rest = rest[match.end() :]
        if rest:
            joiner = _DELETE_AND.match(rest)
            if joiner is None:
                word = rest.lstrip().split(" ", 1)[0]
                if word.upper() == "OR":
                    position = len(text) - len(rest.lstrip())
                    raise ValueError(
                        f"the logical operator OR is not supported yet at position {position}"
                    )
                raise ValueError(f"invalid delete predicate (only AND joins terms): {text!r}")
            rest = rest[joiner.end() :]
            if not rest.strip():
                raise ValueError(f"invalid delete predicate: {text!r}")
    return terms


_INFLUXQL_ESCAPES = {"n": "\n", "\\": "\\", '"': '"', "'": "'"}


def _influxql_unescape(body: str) -> str:
    r"""A double-quoted predicate value as influxql's scanner reads it (``ScanString``).

    ``\n``, ``\\``, ``\"`` and ``\'`` are escapes; any other backslash sequence is
    the server's ``bad escape`` error.
    """
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _INFLUXQL_ESCAPES:
                raise ValueError(f"bad escape \\{nxt} in delete predicate")
            out.append(_INFLUXQL_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _predicate_matches(point: ParsedPoint, terms: list[tuple[str, bool, str]]) -> bool:
    for key, equal, value in terms:
        actual = point.measurement if key == "_measurement" else point.tags.get(key)
        if (actual == value) != equal:
            return False
    return True


def _go_duration(seconds: int) -> str:
    """A duration as Go prints it: ``1h0m0s``, ``720h0m0s``, ``5m0s``, ``30s``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _beyond_retention(
    points: list[ParsedPoint], precision: str, bucket: FakeBucket
) -> tuple[list[ParsedPoint], str] | None:
    """The points a write keeps and the 422 message when some are older than the retention.

    The storage engine drops those and stores the rest (a partial write); None: all are kept.
    """
    if not bucket.retention_s:
        return None
    now = time.time_ns()
    bound = now - bucket.retention_s * 1_000_000_000
    stamped = [(_time_ns(p, precision, now), p) for p in points]
    dropped = sorted((t, p) for t, p in stamped if t < bound)
    if not dropped:
        return None
    (old_t, old_p), (new_t, new_p) = dropped[0], dropped[-1]
    lower = format_rfc3339_ns(bound)
    message = (
        "failure writing points to database: partial write: dropped "
        f"{len(dropped)} points outside retention policy of duration "
        f"{_go_duration(bucket.retention_s)} - oldest point {old_p.measurement} at "
        f"{format_rfc3339_ns(old_t)} dropped because it violates a Retention Policy Lower Bound "
        f"at {lower}, newest point {new_p.measurement} at {format_rfc3339_ns(new_t)} dropped "
        f"because it violates a Retention Policy Lower Bound at {lower} dropped={len(dropped)} "
        f"for database: {bucket.id} for retention policy: autogen"
    )
    return [p for t, p in stamped if t >= bound], message


class _V2Handler(_Handler):
    """The shared handler plus DELETE, which only the v2 management API uses."""

    def do_DELETE(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        if isinstance(fake, FakeInfluxV2):
            fake.handle_delete(self, raw)
        else:
            self._send(405, {"code": "method not allowed", "message": "method not allowed"})


class FakeInfluxV2(_FakeInflux):
    """InfluxDB Cloud / OSS 2.x on loopback, following the official v2 API.

    For what a real OSS server cannot show (see the module docstring): Cloud's 429/503 with
    Retry-After, and the requests exactly as a client sent them. Everything else runs against
    the real influxd 2 (``InfluxD2``), and tests/test_fake_v2_differential.py keeps this fake
    answering as that server does.

    The write and query APIs are described in the module docstring. The management API that
    ``bridge-cli setup-influxdb``, ``verify`` and ``delete-buckets`` use (orgs, buckets with
    pagination, tasks, authorizations) lives in :mod:`._fake_v2_admin`; ``POST /api/v2/delete``
    removes the matching points. Tasks are stored but never executed (no Flux engine here).

    ``buckets`` exist from the start (kept forever), so write tests need no set-up; a write to
    any other bucket is 404 ``bucket "X" not found`` as on the server. ``token`` is an
    all-access (operator) token. Tokens created through ``/api/v2/authorizations`` carry
    exactly their permissions: a write outside them is 403 ``insufficient permissions for
    write``, a query of a bucket they cannot read is 404 as for a missing bucket.
    """

    version = "v2.7.11"

    def __init__(
        self,
        *,
        token: str = "test-token",
        org: str = "test-org",
        buckets: tuple[str, ...] = ("test-bucket",),
        max_body_bytes: int = 50 * 2**20,
    ) -> None:
        super().__init__(token=token, max_body_bytes=max_body_bytes)
        self.org = org
        self.admin = FakeV2Admin(org=org, token=token, buckets=tuple(buckets))
        self.admin.on_bucket_deleted = self._drop_bucket
        self._server.RequestHandlerClass = _V2Handler

    @property
    def buckets(self) -> frozenset[str]:
        """Names of the buckets that exist now (system buckets included)."""
        return self.admin.bucket_names()

    def _authorised(self, header: str | None) -> bool:
        return self.admin.auth_for(header) is not None

    # -- routing ---------------------------------------------------------------------------------

    def _management(self, handler: _Handler, method: str, raw: bytes) -> bool:
        """Answer a management request; False when the path is not one."""
        url = urlparse(handler.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        auth = self.admin.auth_for(handler.headers.get("Authorization"))
        answer = self.admin.dispatch(method, url.path, params, raw, auth)
        if answer is None:
            return False
        status, body = answer
        handler._send(status, body)
        return True

    def handle_get(self, handler: _Handler) -> None:
        if not self._management(handler, "GET", b""):
            super().handle_get(handler)

    def handle_delete(self, handler: _Handler, raw: bytes) -> None:
        """``DELETE /api/v2/buckets/{id}`` and ``/api/v2/tasks/{id}``."""
        if not self._management(handler, "DELETE", raw):
            handler._send(404, {"code": "not found", "message": "path not found"})

    def handle_post(self, handler: _Handler, raw: bytes) -> None:
        url = urlparse(handler.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v2/query":
            self._query(handler, params, raw)
        elif url.path == "/api/v2/delete":
            self._delete(handler, params, raw)
        elif url.path == "/api/v2/write":
            self._write(handler, params, raw)
        elif not self._management(handler, "POST", raw):
            handler._send(404, {"code": "not found", "message": "path not found"})

    # -- writes ----------------------------------------------------------------------------------

    def _write(self, handler: _Handler, params: dict[str, str], raw: bytes) -> None:
        auth = self.admin.auth_for(handler.headers.get("Authorization"))
        if auth is None:
            self._record(handler, params, "", 401, [])
            handler._send(401, {"code": "unauthorized", "message": "unauthorized access"})
            return
        scripted = self._scripted()
        if scripted is not None:
            reply = scripted.body or _V2_BODIES.get(
                scripted.status, {"code": "internal error", "message": "scripted failure"}
            )
            headers = (
                {"Retry-After": str(scripted.retry_after)}
                if scripted.retry_after is not None
                else {}
            )
            self._record(handler, params, "", scripted.status, [])
            handler._send(scripted.status, reply, headers)
            return
        bucket = params.get("bucket")
        if not self._org_known(handler, params):
            return
        target = self.admin.bucket(bucket) if bucket else None
        if target is None:
            handler._send(404, {"code": "not found", "message": f'bucket "{bucket}" not found'})
            return
        if not self.admin.allowed(auth, "write", target):
            self._record(handler, params, "", 403, [])
            handler._send(
                403, {"code": "forbidden", "message": "insufficient permissions for write"}
            )
            return
        if params.get("precision", "ns") not in _PRECISIONS_V2:
            handler._send(
                400,
                {
                    "code": "invalid",
                    "message": "invalid precision; valid precision units are ns, us, ms, and s",
                },
            )
            return
        try:
            body = self._decode(handler, raw)
        except _TooLarge:
            self._record(handler, params, "", 413, [])
            handler._send(413, _V2_BODIES[413])
            return
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            handler._send(
                400, {"code": "invalid", "message": f"unable to decode request body: {exc}"}
            )
            return
        self._store(handler, params, body, target)

    def _store(
        self, handler: _Handler, params: dict[str, str], body: str, target: FakeBucket
    ) -> None:
        """Parse an admitted batch into the bucket: all of it, part of it (422) or none (400)."""
        with self._lock:
            points, errors, new_types = self._parse_batch(body, f"{self.org}/{target.id}")
            # A line that does not parse rejects the batch; a type conflict drops only the
            # conflicting points and stores the rest (a partial write), as the server does.
            partial = bool(errors) and all("type conflict" in why for _, _, why in errors)
            if not errors or partial:
                self._types.update(new_types)
        if errors:
            _, line, why = errors[0]
            status = 422 if partial else 400
            message = (
                f"failure writing points to database: partial write: {why} dropped={len(errors)}"
                if partial
                else f"unable to parse '{line}': {why}"
            )
            self._record(handler, params, body, status, points if partial else [])
            handler._send(
                status,
                {
                    "code": "invalid" if status == 400 else "unprocessable entity",
                    "message": message,
                },
            )
            return
        expired = _beyond_retention(points, params.get("precision", "ns"), target)
        if expired is not None:
            kept, message = expired
            self._record(handler, params, body, 422, kept)
            handler._send(422, {"code": "unprocessable entity", "message": message})
            return
        self._record(handler, params, body, 204, points)
        handler._send(204)

    def _drop_bucket(self, bucket: FakeBucket) -> None:
        """A deleted bucket takes its points (and field types) with it."""
        with self._lock:
            for request in self.requests:
                if request.params.get("bucket") in (bucket.name, bucket.id):
                    request.points = []
            slot = f"{self.org}/{bucket.id}"
            for key in [k for k in self._types if k[0] == slot]:
                del self._types[key]

    # -- queries (see the module docstring for the shapes evaluated) -----------------------------

    def stored(self, bucket: str) -> list[tuple[int, ParsedPoint]]:
        """``(time ns, point)`` of every point accepted into ``bucket`` (name or ID)."""
        target = self.admin.bucket(bucket)
        if target is None:
            return []
        with self._lock:
            requests = [r for r in self.requests if r.points]  # 204, and 422's partial writes
        return [
            (_time_ns(p, r.params.get("precision", "ns"), r.received_ns), p)
            for r in requests
            if r.params.get("bucket") in (target.name, target.id)
            for p in r.points
        ]

    def _org_known(self, handler: _Handler, params: dict[str, str], *, query: bool = False) -> bool:
        """The ``org``/``orgID`` check every v2 endpoint makes; answers the error itself.

        The query API decodes the org with the request body: its errors are 400s prefixed
        ``failed to decode request body: `` (an unknown org too), as the server answers.
        """
        org = params.get("org") or params.get("orgID")
        prefix = "failed to decode request body: " if query else ""
        if not org:
            handler._send(
                400, {"code": "invalid", "message": prefix + "Please provide either orgID or org"}
            )
            return False
        if not self.admin.org_matches(org):
            status, code = (400, "invalid") if query else (404, "not found")
            handler._send(
                status, {"code": code, "message": f'{prefix}organization name "{org}" not found'}
            )
            return False
        return True

    def _caller_in_org(
        self, handler: _Handler, params: dict[str, str], *, query: bool = False
    ) -> FakeAuthorization | None:
        """The caller's authorization for a request naming a known org; None once answered."""
        auth = self.admin.auth_for(handler.headers.get("Authorization"))
        if auth is None:
            handler._send(401, {"code": "unauthorized", "message": "unauthorized access"})
            return None
        if not self._org_known(handler, params, query=query):
            return None
        return auth

    def _query(self, handler: _Handler, params: dict[str, str], raw: bytes) -> None:
        auth = self._caller_in_org(handler, params, query=True)
        if auth is None:
            return
        content_type = handler.headers.get("Content-Type", "").split(";")[0].strip().lower()
        annotations: list[str] = []
        try:
            text = raw.decode("utf-8")
            if content_type == "application/json":
                doc = json.loads(text)
                if doc.get("type", "flux") != "flux":
                    raise ValueError(f"unknown query type: {doc.get('type')}")
                flux = str(doc["query"])
                annotations = list((doc.get("dialect") or {}).get("annotations") or [])
            elif content_type == "application/vnd.flux":
                flux = text
            else:
                raise ValueError(f"unsupported content type {content_type!r}")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            handler._send(400, {"code": "invalid", "message": f"invalid query request: {exc}"})
            return
        match = _FLUX_QUERY.fullmatch(flux.strip())
        count = None if match else _FLUX_COUNT.fullmatch(flux.strip())
        device = None if match or count else _FLUX_DEVICE.fullmatch(flux.strip())
        shape = match or count or device
        if shape is None:
            handler._send(
                400,
                {
                    "code": "invalid",
                    "message": "compilation failed: the fake evaluates only the query shapes "
                    "bridge-cli sends",
                },
            )
            return
        bucket = _flux_unquote(shape["bucket"])
        target = self.admin.bucket(bucket)
        if target is None or not self.admin.allowed(auth, "read", target):
            handler._send(
                404,
                {
                    "code": "not found",
                    "message": "failed to initialize execute state: could not find bucket "
                    f'"{bucket}"',
                },
            )
            return
        if device is not None:
            body = _annotated_csv(self._device_tables(bucket, device), annotations)
            handler._send(200, body, content_type="text/csv; charset=utf-8")
            return
        start = 0 if count else _parse_time(shape["start"])
        stop = time.time_ns()
        measurement = _flux_unquote(shape["measurement"])
        field_name = _flux_unquote(shape["field"]) if shape["field"] else None
        # One record per (point, field) in the window, as the storage engine yields them.
        records = [
            (t, p, key, value)
            for t, p in self.stored(bucket)
            if p.measurement == measurement and start <= t < stop
            for key, value in p.fields.items()
            if field_name is None or key == field_name
        ]
        tables: list[_Table]
        if count is not None:
            # count() per series, group() into one table, sum(): one long, or no table at all.
            tables = [([("_value", "long", False)], [[str(len(records))]])] if records else []
        elif shape["newest"]:
            tables = _flux_newest(records)
        else:
            tables = _flux_keep(records, _flux_unquote(shape["tag"]))
        body = _annotated_csv(tables, annotations)
        handler._send(200, body, content_type="text/csv; charset=utf-8")

    def _device_tables(self, bucket: str, shape: re.Match[str]) -> list[_Table]:
        """The per-device shapes, as the storage engine yields them.

        One table per series and field, sorted by series key, then field; rows in time order.

        Columns as InfluxDB 2 writes them: ``_start, _stop, _time, _value, _field,
        _measurement`` and the series' tags; the group key is everything but ``_time`` and
        ``_value``. ``last()`` keeps each table's last row, ``limit(n:)`` its first n; the
        count pivots each series' fields into one row per time and counts all rows.
        """
        start, stop = _parse_time(shape["start"]), _parse_time(shape["stop"])
        tag, value = _flux_unquote(shape["tag"]), _flux_unquote(shape["value"])
        measurement = _flux_unquote(shape["measurement"]) if shape["measurement"] else None
        series: dict[tuple[str, tuple[tuple[str, str], ...], str], list[tuple[int, Any, str]]]
        series = {}
        for t, p in self.stored(bucket):
            if not (start <= t < stop) or p.tags.get(tag) != value:
                continue
            if measurement is not None and p.measurement != measurement:
                continue
            key_tags = tuple(sorted(p.tags.items()))
            for name, field_value in p.fields.items():
                kind = _flux_type(field_value, name in p.unsigned)
                series.setdefault((p.measurement, key_tags, name), []).append(
                    (t, field_value, kind)
                )
        if shape["count"]:
            points = {(m, tags, t) for (m, tags, _), rows in series.items() for t, _, _ in rows}
            return [([("n", "long", False)], [[str(len(points))]])] if points else []
        tables: list[_Table] = []
        bounds = [format_rfc3339_ns(start), format_rfc3339_ns(stop)]
        for (name, tags, field_name), rows in sorted(series.items()):
            rows.sort(key=lambda row: row[0])
            kept = rows[-1:] if shape["last"] else rows[: int(shape["limit"])]
            columns = [
                ("_start", "dateTime:RFC3339", True),
                ("_stop", "dateTime:RFC3339", True),
                ("_time", "dateTime:RFC3339", False),
                ("_value", kept[0][2], False),
                ("_field", "string", True),
                ("_measurement", "string", True),
                *((k, "string", True) for k, _ in tags),
            ]
            cells = [
                [*bounds, format_rfc3339_ns(t), _flux_cell(v), field_name, name]
                + [tag_value for _, tag_value in tags]
                for t, v, _ in kept
            ]
            tables.append((columns, cells))
        return tables

    # -- deletes ---------------------------------------------------------------------------------

    def _delete(self, handler: _Handler, params: dict[str, str], raw: bytes) -> None:
        """``POST /api/v2/delete``: points of a bucket in [start, stop] matching the predicate."""
        auth = self._caller_in_org(handler, params)
        if auth is None:
            return
        ref = params.get("bucketID") or params.get("bucket")
        if not ref:
            handler._send(
                400, {"code": "invalid", "message": "Please provide either bucketID or bucket"}
            )
            return
        target = self.admin.bucket(ref)
        if target is None:
            handler._send(404, {"code": "not found", "message": f'bucket "{ref}" not found'})
            return
        if not self.admin.allowed(auth, "write", target):
            handler._send(
                403, {"code": "forbidden", "message": "insufficient permissions to delete"}
            )
            return
        prefix = "error decoding json body: "
        try:
            doc = json.loads(raw.decode("utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("the body is not a JSON object")
            bounds = []
            for key in ("start", "stop"):
                try:
                    bounds.append(parse_rfc3339_ns(str(doc[key])))
                except (KeyError, ValueError):
                    raise ValueError(
                        f"invalid RFC3339Nano for field {key}, please format your time with "
                        "RFC3339Nano format, example: 2009-01-02T23:00:00Z"
                    ) from None
            terms = _delete_predicate(str(doc.get("predicate") or ""))
        except (ValueError, UnicodeDecodeError) as exc:
            handler._send(400, {"code": "invalid", "message": prefix + str(exc)})
            return
        start, stop = bounds
        with self._lock:
            for request in self.requests:
                if not request.points or request.params.get("bucket") not in (
                    target.name,
                    target.id,
                ):
                    continue
                precision = request.params.get("precision", "ns")
                request.points = [
                    p
                    for p in request.points
                    if not (
                        start <= _time_ns(p, precision, request.received_ns) <= stop
                        and _predicate_matches(p, terms)
                    )
                ]
        handler._send(204)


_V2_BODIES: dict[int, dict[str, Any]] = {
    400: {"code": "invalid", "message": "unable to parse 'scripted': scripted failure"},
    401: {"code": "unauthorized", "message": "unauthorized access"},
    404: {"code": "not found", "message": 'bucket "scripted" not found'},
    413: {"code": "request too large", "message": "unable to read data: points batch is too large"},
    429: {"code": "too many requests", "message": "rate limit exceeded"},
    500: {"code": "internal error", "message": "an internal error has occurred"},
    503: {"code": "unavailable", "message": "service unavailable"},
}


def _answer_format(handler: _Handler, params: dict[str, str]) -> str | None:
    """The v3 query's ``format`` (json or jsonl); None after answering 400 for another."""
    fmt = params.get("format", "json")
    if fmt in ("json", "jsonl"):
        return fmt
    handler._send(
        400, f"the fake answers format json or jsonl, not {fmt}", content_type="text/plain"
    )
    return None


@dataclass(frozen=True)
class _SqlShape:
    """Which of the monitoring queries' SQL shapes matched (exactly one is set)."""

    newest: re.Match[str] | None
    series: re.Match[str] | None
    count: re.Match[str] | None
    lookup: re.Match[str] | None

    @property
    def matched(self) -> re.Match[str]:
        """The one match, whichever shape it is."""
        shape = self.newest or self.series or self.count or self.lookup
        assert shape is not None
        return shape


def _missing_column(table: str, points: list[tuple[int, ParsedPoint]], shapes: _SqlShape) -> str:
    """InfluxDB 3's schema error for a named column the table lacks ("" when all exist)."""
    shape = shapes.matched
    columns = {"time"} | {k for _, p in points for k in (*p.tags, *p.fields)}
    wanted = [_sql_unquote(shape["field"])] if shape["field"] else []
    if shapes.series is not None:
        wanted.append(_sql_unquote(shapes.series["tag"]))
    if shapes.lookup is not None:
        wanted.append(_sql_unquote(shapes.lookup["tag"]))
    for name in wanted:
        if name not in columns:
            valid = ", ".join(f"{table}.{c}" for c in sorted(columns))
            return f'Schema error: No field named "{name}". Valid fields are {valid}.'
    return ""


class FakeInfluxV3(_FakeInflux):
    """InfluxDB 3 Core/Enterprise on loopback (write and query: see the module docstring).

    The management API that ``bridge-cli setup-influxdb``/``verify``/``delete-buckets`` use
    follows the InfluxDB 3 server (``influxdb3_server`` HTTP routes and error mapping, and the
    official OpenAPI document):

    - ``GET /ping``: 200 ``{"version", "revision", "process_id"}`` with ``X-Influxdb-Build``
      (``Core`` or ``Enterprise``, from ``edition``) and ``X-Influxdb-Version``; ``GET
      /health``: 200 ``OK``. Both need the token, as on a server started with auth.
    - ``GET /api/v3/configure/database?format=json|jsonl|csv[&show_deleted=true]``: one row
      ``{"iox::database": NAME}`` per database (``_internal`` included, as the server lists
      it); without ``format``: 400 ``serde error: missing field `format```.
    - ``POST /api/v3/configure/database`` ``{"db", "retention_period"}`` (JSON only, else 415
      ``unacceptable content-type, expected: application/json``): 200 with an empty body; 409
      ``attempted to create a resource that already exists``; 400 ``{"error": "invalid
      character in database name: ...", "data": null}``; 422 ``{"error": "Adding a new
      database would exceed limit of N databases", "data": null}`` (Core allows 5,
      ``max_databases``). Retention periods are humantime durations (``30d``, ``1h``, ``2w``).
    - ``DELETE /api/v3/configure/database?db=NAME``: 200 empty; 404 ``the requested resource
      was not found``; 400 ``serde error: missing field `db```. The data goes with it; the
      name is free again (the server keeps the deleted one as ``NAME-<timestamp>``).
    - ``/api/v3/query_influxql`` (``db``, ``q``, ``format``): ``SHOW DATABASES`` and ``SHOW
      RETENTION POLICIES`` only; the retention is reported as the server prints it for v1
      clients (``720h0m0s``, ``0s`` for none).
    - writes create a missing database, as Core does, unless ``max_databases`` live databases
      exist: then 422 ``partial write of line protocol occurred`` with every line rejected by
      ``Adding a new database would exceed limit of N databases``. A retention period hides
      older points from queries, as the server enforces retention at query time.
    - Enterprise only (``edition="enterprise"``; Core answers 404 ``not found``): ``POST
      /api/v3/enterprise/configure/token`` ``{"token_name", "permissions": [{"resource_type":
      "db", "resource_identifier": [...], "actions": ["read"|"write"]}]}``: 201 with the token
      string; 409 ``token name already exists, NAME``. Such a token may write/query only its
      databases (403 with an empty body otherwise, and on every configure endpoint);
      ``DELETE /api/v3/configure/token?token_name=`` removes one.
    - a missing or unknown token: 401 with an empty body on the management endpoints (the
      write endpoint keeps its JSON error body).
    """

    version = "3.5.0"

    def __init__(
        self,
        *,
        token: str | None = "test-token",
        max_body_bytes: int = 10 * 2**20,
        edition: str = "core",
        max_databases: int = 5,
    ) -> None:
        super().__init__(token=token, max_body_bytes=max_body_bytes)
        if edition not in ("core", "enterprise"):
            raise ValueError(f"edition must be 'core' or 'enterprise', not {edition!r}")
        self.edition = edition
        self.max_databases = max_databases
        self.databases: set[str] = set()
        # Retention period in seconds per database; None keeps data forever.
        self.retention: dict[str, int | None] = {}
        self.deleted: list[str] = []
        self.tokens: dict[str, _V3Token] = {}
        self._server.RequestHandlerClass = _V3Handler

    # -- authentication ----------------------------------------------------------------------

    def _auth(self, header: str | None) -> _V3Token | str | None:
        """``"admin"``, a resource token, or None (unauthenticated)."""
        if self.token is None:
            return "admin"
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme == "Basic":
            try:
                value = base64.b64decode(value).decode().rpartition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return None
        elif scheme not in ("Bearer", "Token"):
            return None
        if value == self.token:
            return "admin"
        with self._lock:
            return self.tokens.get(value)

    def _authorised(self, header: str | None) -> bool:
        return self._auth(header) is not None

    @staticmethod
    def _may(auth: _V3Token | str | None, action: str, database: str) -> bool:
        if auth == "admin":
            return True
        if not isinstance(auth, _V3Token):
            return False
        return any(
            action in actions and ("*" in names or database in names)
            for names, actions in auth.permissions
        )

    def not_found_body(self, path: str) -> dict[str, Any]:
        return {"error": f"not found: {path}"}

    # -- routing -----------------------------------------------------------------------------

    def handle_get(self, handler: _Handler) -> None:
        url = urlparse(handler.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v3/query_sql":
            self._query(handler, params)
        elif url.path == "/api/v3/query_influxql":
            self._influxql(handler, params)
        elif url.path in ("/ping", "/health", "/api/v1/health"):
            self._server_info(handler, url.path)
        elif url.path == "/api/v3/configure/database":
            self._list_databases(handler, params)
        else:
            handler._send(404, "not found", content_type="text/plain; charset=utf-8")

    def handle_delete(self, handler: _Handler) -> None:
        url = urlparse(handler.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v3/configure/database":
            self._delete_database(handler, params)
        elif url.path == "/api/v3/configure/token":
            self._delete_token(handler, params)
        else:
            handler._send(404, "not found", content_type="text/plain; charset=utf-8")

    def handle_post(self, handler: _Handler, raw: bytes) -> None:
        url = urlparse(handler.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path in ("/api/v3/query_sql", "/api/v3/query_influxql"):
            try:
                doc = json.loads(raw.decode("utf-8") or "{}")
            except (ValueError, UnicodeDecodeError) as exc:
                handler._send(400, f"serde json error: {exc}", content_type="text/plain")
                return
            if not isinstance(doc, dict):
                handler._send(
                    400, "serde json error: expected an object", content_type="text/plain"
                )
                return
            fields = {k: str(v) for k, v in doc.items() if isinstance(v, str)}
            if url.path == "/api/v3/query_sql":
                self._query(handler, fields)
            else:
                self._influxql(handler, fields)
        elif url.path == "/api/v3/write_lp":
            self._write(handler, params, raw)
        elif url.path == "/api/v3/configure/database":
            self._create_database(handler, raw)
        elif url.path == "/api/v3/enterprise/configure/token" and self.edition == "enterprise":
            self._create_token(handler, raw)
        else:
            handler._send(404, "not found", content_type="text/plain; charset=utf-8")

    def _admin_only(self, handler: _Handler) -> bool:
        """The configure endpoints need an admin token: 401 without one, 403 for a resource one."""
        auth = self._auth(handler.headers.get("Authorization"))
        if auth is None:
            handler._send(401)
            return False
        if auth != "admin":
            handler._send(403)
            return False
        return True

    # -- server information ------------------------------------------------------------------

    def _server_info(self, handler: _Handler, path: str) -> None:
        if self._auth(handler.headers.get("Authorization")) is None:
            handler._send(401)
            return
        if path != "/ping":
            handler._send(200, "OK", content_type="text/plain; charset=utf-8")
            return
        build = "Enterprise" if self.edition == "enterprise" else "Core"
        body = {"version": self.version, "revision": "fake", "process_id": _PROCESS_ID}
        handler._send(200, body, {"X-Influxdb-Build": build}, content_type="application/json")

    # -- databases ---------------------------------------------------------------------------

    def _live_databases(self) -> list[str]:
        with self._lock:
            return sorted(self.databases)

    def _list_databases(self, handler: _Handler, params: dict[str, str]) -> None:
        if not self._admin_only(handler):
            return
        fmt = params.get("format")
        if fmt is None:
            handler._send(400, "serde error: missing field `format`", content_type="text/plain")
            return
        show_deleted = params.get("show_deleted", "false") == "true"
        rows: list[dict[str, Any]] = [
            {"iox::database": name} for name in sorted(["_internal", *self._live_databases()])
        ]
        if show_deleted:
            rows = [{**row, "deleted": False} for row in rows]
            with self._lock:
                rows += [{"iox::database": name, "deleted": True} for name in self.deleted]
        _send_rows(handler, rows, fmt)

    def _create_database(self, handler: _Handler, raw: bytes) -> None:
        if not self._admin_only(handler):
            return
        doc = _json_body(handler, raw)
        if doc is None:
            return
        name = doc.get("db")
        if not isinstance(name, str):
            handler._send(400, "serde json error: missing field `db`", content_type="text/plain")
            return
        problem = _db_name_problem(name)
        if problem:
            handler._send(400, {"error": problem, "data": None})
            return
        retention: int | None = None
        if doc.get("retention_period") is not None:
            retention = _humantime_seconds(str(doc["retention_period"]))
            if retention is None:
                handler._send(
                    400,
                    f"serde json error: invalid duration {doc['retention_period']!r} for "
                    "retention_period",
                    content_type="text/plain",
                )
                return
        with self._lock:
            if name in self.databases:
                exists = True
            elif len(self.databases) >= self.max_databases:
                handler._send(
                    422,
                    {
                        "error": "Adding a new database would exceed limit of "
                        f"{self.max_databases} databases",
                        "data": None,
                    },
                )
                return
            else:
                exists = False
                self.databases.add(name)
                self.retention[name] = retention
        if exists:
            handler._send(
                409,
                "attempted to create a resource that already exists",
                content_type="text/plain",
            )
            return
        handler._send(200)

    def _delete_database(self, handler: _Handler, params: dict[str, str]) -> None:
        if not self._admin_only(handler):
            return
        name = params.get("db")
        if not name:
            handler._send(400, "serde error: missing field `db`", content_type="text/plain")
            return
        if name == "_internal":
            handler._send(500, "cannot delete internal db", content_type="text/plain")
            return
        with self._lock:
            if name not in self.databases:
                missing = True
            else:
                missing = False
                self.databases.discard(name)
                self.retention.pop(name, None)
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
                self.deleted.append(f"{name}-{stamp}")
                for request in self.requests:
                    if request.params.get("db") == name:
                        request.points = []
                for key in [k for k in self._types if k[0] == name]:
                    del self._types[key]
        if missing:
            handler._send(404, "the requested resource was not found", content_type="text/plain")
            return
        handler._send(200)

    # -- tokens (Enterprise) -----------------------------------------------------------------

    def _create_token(self, handler: _Handler, raw: bytes) -> None:
        if not self._admin_only(handler):
            return
        doc = _json_body(handler, raw)
        if doc is None:
            return
        name = doc.get("token_name")
        permissions = doc.get("permissions")
        try:
            if not isinstance(name, str) or not name:
                raise ValueError("missing field `token_name`")
            if not isinstance(permissions, list) or not permissions:
                raise ValueError("missing field `permissions`")
            parsed = []
            for perm in permissions:
                if perm.get("resource_type") != "db":
                    raise ValueError(f"unknown resource_type {perm.get('resource_type')!r}")
                names = frozenset(str(n) for n in perm["resource_identifier"])
                actions = frozenset(str(a) for a in perm["actions"])
                if not actions <= {"read", "write"}:
                    raise ValueError(f"unknown actions {sorted(actions)}")
                parsed.append((names, actions))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            handler._send(400, f"serde json error: {exc}", content_type="text/plain")
            return
        with self._lock:
            if any(t.name == name for t in self.tokens.values()):
                taken = True
            else:
                taken = False
                token = "apiv3_" + secrets.token_urlsafe(48)
                self.tokens[token] = _V3Token(name, tuple(parsed))
                ident = len(self.tokens)
        if taken:
            handler._send(409, f"token name already exists, {name}", content_type="text/plain")
            return
        body = {
            "id": ident,
            "name": name,
            "token": token,
            "hash": hashlib.sha512(token.encode()).hexdigest(),
            "created_at": format_rfc3339_ns(time.time_ns()),
            "expiry": None,
        }
        # The server really labels this answer "json".
        handler._send(201, body, content_type="json")

    def _delete_token(self, handler: _Handler, params: dict[str, str]) -> None:
        if not self._admin_only(handler):
            return
        name = params.get("token_name")
        if not name:
            handler._send(400, "serde error: missing field `token_name`", content_type="text/plain")
            return
        with self._lock:
            found = [key for key, t in self.tokens.items() if t.name == name]
            for key in found:
                del self.tokens[key]
        if not found:
            handler._send(404, "the requested resource was not found", content_type="text/plain")
            return
        handler._send(200)

    # -- writes ------------------------------------------------------------------------------

    def _write(self, handler: _Handler, params: dict[str, str], raw: bytes) -> None:
        auth = self._auth(handler.headers.get("Authorization"))
        if auth is None:
            self._record(handler, params, "", 401, [])
            handler._send(401, {"error": "the request was not authenticated"})
            return
        scripted = self._scripted()
        if scripted is not None:
            headers = (
                {"Retry-After": str(scripted.retry_after)}
                if scripted.retry_after is not None
                else {}
            )
            self._record(handler, params, "", scripted.status, [])
            handler._send(
                scripted.status,
                scripted.body or {"error": f"scripted failure {scripted.status}"},
                headers,
            )
            return
        database = params.get("db")
        if not database:
            handler._send(400, {"error": "missing query parameter: db"})
            return
        problem = _db_name_problem(database)
        if problem:
            handler._send(400, {"error": problem, "data": None})
            return
        if not self._may(auth, "write", database):
            self._record(handler, params, "", 403, [])
            handler._send(403)
            return
        if params.get("precision", "auto") not in _PRECISIONS_V3:
            handler._send(400, {"error": f"invalid precision: {params['precision']}"})
            return
        try:
            body = self._decode(handler, raw)
        except _TooLarge:
            self._record(handler, params, "", 413, [])
            handler._send(413, {"error": "the request entity was too large"})
            return
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            handler._send(400, {"error": f"unable to decode request body: {exc}"})
            return
        self._store(handler, params, body, database)

    def _store(self, handler: _Handler, params: dict[str, str], body: str, database: str) -> None:
        """Parse an admitted batch into the database, creating it on the first write (as Core)."""
        with self._lock:
            full = database not in self.databases and len(self.databases) >= self.max_databases
        if full:
            # Core creates a database on its first write, up to its database limit.
            why = f"Adding a new database would exceed limit of {self.max_databases} databases"
            data = [
                {"original_line": line, "line_number": n, "error_message": why}
                for n, line in enumerate(body.split("\n"), start=1)
                if line.strip() and not line.startswith("#")
            ]
            self._record(handler, params, body, 422, [])
            handler._send(422, {"error": "partial write of line protocol occurred", "data": data})
            return
        accept_partial = params.get("accept_partial", "true") != "false"
        with self._lock:
            points, errors, new_types = self._parse_batch(body, database)
            if accept_partial or not errors:
                self._types.update(new_types)
        if errors:
            data = [
                {"original_line": line, "line_number": n, "error_message": why}
                for n, line, why in errors
            ]
            # With accept_partial (the default) the valid lines are written all the same.
            kept = points if accept_partial else []
            if kept:
                self._add_database(database)
            self._record(handler, params, body, 400, kept)
            handler._send(
                400,
                {
                    "error": "partial write of line protocol occurred"
                    if accept_partial
                    else "parsing failed for write_lp endpoint",
                    "data": data,
                },
            )
            return
        self._add_database(database)
        self._record(handler, params, body, 204, points)
        handler._send(204)

    def _add_database(self, name: str) -> None:
        with self._lock:
            if name not in self.databases:
                self.databases.add(name)
                self.retention[name] = None

    # -- queries (see the module docstring for the shapes evaluated) -----------------------------

    def stored(self, database: str) -> list[tuple[int, ParsedPoint]]:
        """``(time ns, point)`` of every point accepted into ``database`` and still retained."""
        with self._lock:
            requests = list(self.requests)
            retention = self.retention.get(database)
        cutoff = time.time_ns() - retention * 1_000_000_000 if retention else None
        points = [
            (_time_ns(p, r.params.get("precision", "auto"), r.received_ns), p)
            for r in requests
            if r.params.get("db") == database
            for p in r.points
        ]
        return [(t, p) for t, p in points if cutoff is None or t >= cutoff]

    def _query(self, handler: _Handler, params: dict[str, str]) -> None:
        auth = self._auth(handler.headers.get("Authorization"))
        if auth is None:
            handler._send(401, {"error": "the request was not authenticated"})
            return
        database, sql = params.get("db"), params.get("q")
        if not database or not sql:
            handler._send(400, "missing query parameters 'db' and 'q'", content_type="text/plain")
            return
        fmt = _answer_format(handler, params)
        if fmt is None:
            return
        if not self._may(auth, "read", database):
            handler._send(403)
            return
        with self._lock:
            known = database in self.databases
        if not known:
            handler._send(404, {"error": f"query error: database not found: {database}"})
            return
        self._sql(handler, database, sql.strip(), fmt)

    def _sql(self, handler: _Handler, database: str, text: str, fmt: str) -> None:
        """Answer one of the SQL shapes bridge-cli sends (a 400 for any other)."""
        if _SQL_SHOW_TABLES.fullmatch(text):
            with self._lock:
                tables = {
                    p.measurement
                    for r in self.requests
                    if r.params.get("db") == database
                    for p in r.points
                }
            _send_rows(handler, _show_tables(tables), fmt)
            return
        schema = _SQL_COLUMNS.fullmatch(text)
        if schema is not None:
            only = _sql_unstring(schema["table"]) if schema["table"] else None
            _send_rows(handler, self._columns(database, only), fmt)
            return
        device = _SQL_DEVICE_RANGE.fullmatch(text) or _SQL_DEVICE_LATEST.fullmatch(text)
        if device is not None:
            self._device_query(handler, database, device, fmt)
            return
        newest = _SQL_NEWEST.fullmatch(text)
        series = None if newest else _SQL_SERIES.fullmatch(text)
        count = None if newest or series else _SQL_COUNT.fullmatch(text)
        lookup = None if newest or series or count else _SQL_LOOKUP.fullmatch(text)
        if not (newest or series or count or lookup):
            handler._send(
                400,
                "SQL error: the fake evaluates only the query shapes bridge-cli sends",
                content_type="text/plain",
            )
            return
        self._monitoring_query(handler, database, _SqlShape(newest, series, count, lookup), fmt)

    def _monitoring_query(
        self, handler: _Handler, database: str, shapes: _SqlShape, fmt: str
    ) -> None:
        """The newest point, a series listing, a count or a lookup on one table."""
        shape = shapes.matched
        table = _sql_unquote(shape["table"])
        points = self._table_points(handler, database, table)
        if not points:
            return
        if shapes.count is not None:
            alias = shapes.count["alias"]
            alias = _sql_unquote(alias) if alias.startswith('"') else alias
            _send_rows(handler, [{alias: len(points)}], fmt)
            return
        missing = _missing_column(table, points, shapes)
        if missing:
            handler._send(400, missing, content_type="text/plain")
            return
        field_name = _sql_unquote(shape["field"]) if shape["field"] else None
        if shapes.lookup is not None:
            tag, value = _sql_unquote(shapes.lookup["tag"]), _sql_unstring(shapes.lookup["value"])
            rows = [
                {str(field_name): p.fields[str(field_name)]}
                for _, p in points
                if p.tags.get(tag) == value and str(field_name) in p.fields
            ]
            _send_rows(handler, rows, fmt)
            return
        start = _parse_time(_sql_unstring(shape["start"]))
        matching = [
            (t, p)
            for t, p in points
            if t >= start and (field_name is None or field_name in p.fields)
        ]
        if shapes.newest is not None:
            matching.sort(key=lambda tp: tp[0], reverse=True)
            rows = [{"time": _naive_time(t)} for t, _ in matching[:1]]
        else:
            tag = _sql_unquote(shapes.series["tag"]) if shapes.series else ""
            rows = []
            for _, p in matching:
                row: dict[str, Any] = {}
                if tag in p.tags:
                    row[tag] = p.tags[tag]
                row[str(field_name)] = p.fields[str(field_name)]
                rows.append(row)
        _send_rows(handler, rows, fmt)

    def _columns(self, database: str, only: str | None) -> list[dict[str, Any]]:
        """``information_schema.columns`` rows of the ``iox`` tables.

        Tags are dictionary columns, ``time`` a nanosecond timestamp, fields their Arrow type.
        """
        columns: dict[str, dict[str, str]] = {}
        for _, p in self.stored(database):
            if only is not None and p.measurement != only:
                continue
            table = columns.setdefault(p.measurement, {"time": "Timestamp(Nanosecond, None)"})
            for tag in p.tags:
                table[tag] = "Dictionary(Int32, Utf8)"
            for key, value in p.fields.items():
                table[key] = _ARROW_TYPES[_kind(key, value, p)]
        return [
            {
                "table_catalog": "public",
                "table_schema": "iox",
                "table_name": name,
                "column_name": column,
                "data_type": kind,
                "is_nullable": "NO" if column == "time" else "YES",
            }
            for name in sorted(columns)
            for column, kind in sorted(columns[name].items())
        ]

    def _table_points(
        self, handler: _Handler, database: str, table: str
    ) -> list[tuple[int, ParsedPoint]]:
        """The stored points of one table; none (and the planner's error sent) if unwritten."""
        points = [(t, p) for t, p in self.stored(database) if p.measurement == table]
        if not points:
            handler._send(
                400,
                f"Error during planning: table 'public.iox.{table}' not found",
                content_type="text/plain",
            )
        return points

    def _device_query(
        self, handler: _Handler, database: str, shape: re.Match[str], fmt: str
    ) -> None:
        """A device's rows of one table in a window (``SELECT *``), or a field's newest value.

        A table never written is the planner's ``table not found``, a tag or field column
        the table lacks its ``No field named`` error, as for the other shapes.
        """
        table = _sql_unquote(shape["table"])
        points = self._table_points(handler, database, table)
        if not points:
            return
        columns = {"time"} | {k for _, p in points for k in (*p.tags, *p.fields)}
        tag = _sql_unquote(shape["tag"])
        latest = "field" in shape.re.groupindex
        field_name = _sql_unquote(shape["field"]) if latest else None
        for name in (tag, field_name):
            if name is not None and name not in columns:
                valid = ", ".join(f"{table}.{c}" for c in sorted(columns))
                handler._send(
                    400,
                    f'Schema error: No field named "{name}". Valid fields are {valid}.',
                    content_type="text/plain",
                )
                return
        value = _sql_unstring(shape["value"])
        start = _parse_time(_sql_unstring(shape["start"]))
        stop = _parse_time(_sql_unstring(shape["stop"]))
        matching = sorted(
            (
                (t, p)
                for t, p in points
                if p.tags.get(tag) == value
                and start <= t < stop
                and (field_name is None or field_name in p.fields)
            ),
            key=lambda tp: tp[0],
            reverse=latest,
        )
        rows: list[dict[str, Any]]
        if field_name is not None:
            rows = [{"time": _naive_time(t), field_name: p.fields[field_name]} for t, p in matching]
            rows = rows[:1]
        else:
            rows = [
                {"time": _naive_time(t), **p.tags, **p.fields}
                for t, p in matching[: int(shape["limit"])]
            ]
        _send_rows(handler, rows, fmt)

    def _influxql(self, handler: _Handler, params: dict[str, str]) -> None:
        """``SHOW DATABASES`` and ``SHOW RETENTION POLICIES [ON db]`` only."""
        auth = self._auth(handler.headers.get("Authorization"))
        if auth is None:
            handler._send(401)
            return
        query = params.get("q")
        if not query:
            handler._send(400, "missing query parameters 'db' and 'q'", content_type="text/plain")
            return
        fmt = _answer_format(handler, params)
        if fmt is None:
            return
        if _INFLUXQL_SHOW_DATABASES.fullmatch(query.strip()):
            names = sorted(["_internal", *self._live_databases()])
            _send_rows(handler, [{"iox::database": n, "deleted": False} for n in names], fmt)
            return
        match = _INFLUXQL_SHOW_RPS.fullmatch(query.strip())
        if match is None:
            handler._send(
                400,
                "InfluxQL error: the fake evaluates only SHOW DATABASES and SHOW RETENTION "
                "POLICIES",
                content_type="text/plain",
            )
            return
        target = match["db"].strip('"') if match["db"] else params.get("db")
        names = [target] if target else self._live_databases()
        rows = []
        for name in names:
            with self._lock:
                known = name in self.databases
                retention = self.retention.get(name)
            if not known:
                handler._send(
                    404, {"error": f"query error: database not found: {name}", "data": None}
                )
                return
            rows.append({"iox::database": name, "name": "autogen", "duration": _v1(retention)})
        _send_rows(handler, rows, fmt)


@dataclass(frozen=True)
class _V3Token:
    """An Enterprise resource token: its name and ``(database names, actions)`` pairs."""

    name: str
    permissions: tuple[tuple[frozenset[str], frozenset[str]], ...]


class _V3Handler(_Handler):
    """The shared handler plus DELETE, which the InfluxDB 3 management API uses."""

    def do_DELETE(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        fake = self.server.fake
        if isinstance(fake, FakeInfluxV3):
            fake.handle_delete(self)
        else:
            self._send(405, "method not allowed", content_type="text/plain")


_PROCESS_ID = str(uuid.uuid4())
_DB_NAME_CHARS = re.compile(r"^[A-Za-z0-9_-]*$")
_SQL_SHOW_TABLES = re.compile(r"(?i)SHOW\s+TABLES")
_SQL_COUNT = re.compile(
    rf"SELECT COUNT\(\*\) AS (?P<alias>{_SQL_IDENT}|\w+) FROM (?P<table>{_SQL_IDENT})"
    r"(?P<field>)"
)
_SQL_LOOKUP = re.compile(
    rf"SELECT (?P<field>{_SQL_IDENT}) FROM (?P<table>{_SQL_IDENT}) "
    rf"WHERE (?P<tag>{_SQL_IDENT}) = (?P<value>{_SQL_STR})"
)
# The per-device queries of ``bridge-cli query``: the schema, a window, a field's newest value.
_SQL_COLUMNS = re.compile(
    r"SELECT table_name, column_name, data_type FROM information_schema\.columns "
    rf"WHERE table_schema = 'iox'(?: AND table_name = (?P<table>{_SQL_STR}))?"
)
_SQL_DEVICE_RANGE = re.compile(
    rf"SELECT \* FROM (?P<table>{_SQL_IDENT}) WHERE (?P<tag>{_SQL_IDENT}) = "
    rf"(?P<value>{_SQL_STR}) AND time >= (?P<start>{_SQL_STR}) AND time < (?P<stop>{_SQL_STR}) "
    r"ORDER BY time LIMIT (?P<limit>\d+)"
)
_SQL_DEVICE_LATEST = re.compile(
    rf"SELECT time, (?P<field>{_SQL_IDENT}) FROM (?P<table>{_SQL_IDENT}) "
    rf"WHERE (?P<tag>{_SQL_IDENT}) = (?P<value>{_SQL_STR}) AND time >= (?P<start>{_SQL_STR}) "
    rf"AND time < (?P<stop>{_SQL_STR}) AND (?P=field) IS NOT NULL ORDER BY time DESC LIMIT 1"
)
# Arrow types of columns as ``information_schema.columns`` names them.
_ARROW_TYPES = {
    "float": "Float64",
    "integer": "Int64",
    "unsigned": "UInt64",
    "string": "Utf8",
    "boolean": "Boolean",
}
_INFLUXQL_SHOW_DATABASES = re.compile(r"(?i)SHOW\s+DATABASES")
_INFLUXQL_SHOW_RPS = re.compile(r'(?i)SHOW\s+RETENTION\s+POLICIES(?:\s+ON\s+(?P<db>"[^"]+"|\w+))?')
_HUMANTIME_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
    "M": 2_630_016,
    "mo": 2_630_016,
    "month": 2_630_016,
    "months": 2_630_016,
    "y": 31_557_600,
    "year": 31_557_600,
    "years": 31_557_600,
}
_HUMANTIME_PART = re.compile(r"\s*(\d+)\s*([A-Za-z]+)")


def _humantime_seconds(text: str) -> int | None:
    """Seconds of a humantime duration (``30d``, ``1h 30m``); None when it is not one."""
    total, pos = 0, 0
    for match in _HUMANTIME_PART.finditer(text):
        if match.start() != pos or match[2] not in _HUMANTIME_UNITS:
            return None
        total += int(match[1]) * _HUMANTIME_UNITS[match[2]]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def _v1(retention: int | None) -> str:
    """A retention as the server prints it for InfluxQL clients (``720h0m0s``, ``0s``)."""
    if not retention:
        return "0s"
    hours, rest = divmod(retention, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def _db_name_problem(name: str) -> str:
    """The server's complaint about a database name, or "" for a valid one."""
    if not name:
        return "db name cannot be empty"
    if not (name[0].isascii() and name[0].isalnum()):
        return "db name did not start with a number or letter"
    if not name.isascii() or not _DB_NAME_CHARS.match(name):
        return (
            "invalid character in database name: must be ASCII, containing only letters, "
            "numbers, underscores, or hyphens"
        )
    return ""


def _json_body(handler: _Handler, raw: bytes) -> dict[str, Any] | None:
    """The JSON object of a configure request, or None after answering 415/400."""
    content_type = handler.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        handler._send(
            415,
            "unacceptable content-type, expected: application/json",
            content_type="text/plain",
        )
        return None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        handler._send(400, f"serde json error: {exc}", content_type="text/plain")
        return None
    if not isinstance(doc, dict):
        handler._send(400, "serde json error: expected a JSON object", content_type="text/plain")
        return None
    return doc


def _show_tables(tables: set[str]) -> list[dict[str, Any]]:
    """``SHOW TABLES``: the database's tables, then some of the system ones, as Core lists them."""
    rows = [
        {
            "table_catalog": "public",
            "table_schema": "iox",
            "table_name": name,
            "table_type": "BASE TABLE",
        }
        for name in sorted(tables)
    ]
    for schema, name in (
        ("system", "distinct_caches"),
        ("system", "last_caches"),
        ("system", "queries"),
        ("information_schema", "tables"),
        ("information_schema", "columns"),
    ):
        rows.append(
            {
                "table_catalog": "public",
                "table_schema": schema,
                "table_name": name,
                "table_type": "VIEW",
            }
        )
    return rows


def _send_rows(handler: _Handler, rows: list[dict[str, Any]], fmt: str) -> None:
    """Rows as the server sends them: a JSON array, JSON Lines or CSV."""
    if fmt == "jsonl":
        body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
        handler._send(200, body, content_type="application/jsonl")
    elif fmt == "csv":
        out = io.StringIO()
        columns = list(dict.fromkeys(k for row in rows for k in row))
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        handler._send(200, out.getvalue(), content_type="text/csv")
    elif fmt == "json":
        handler._send(200, json.dumps(rows, separators=(",", ":")), content_type="application/json")
    else:
        handler._send(
            400, f"the fake answers format json, jsonl or csv, not {fmt}", content_type="text/plain"
        )
