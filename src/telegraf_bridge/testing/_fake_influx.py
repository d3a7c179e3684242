r"""Loopback fakes of the InfluxDB v2 (Cloud/OSS 2.x) and v3 (Core/Enterprise) write APIs.

Why fakes: neither server can be installed on the test machines (no container engine, no
package), while InfluxDB 1.x runs for real. The fakes follow the official HTTP APIs as
documented by InfluxData:

- v2 ``POST /api/v2/write?org=|orgID=&bucket=&precision=``: ``Authorization: Token <token>``;
  204 on success; 400 ``{"code":"invalid","message":"unable to parse '<line>': <why>"}`` with
  the whole batch rejected; 401 ``{"code":"unauthorized","message":"unauthorized access"}``;
  404 ``{"code":"not found","message":"bucket \"<name>\" not found"}``; 413
  ``{"code":"request too large",...}``; 422 for a field type conflict; 429 and 503 with
  ``Retry-After``; ``GET /health`` and ``GET /ping``.
- v3 ``POST /api/v3/write_lp?db=&precision=&accept_partial=&no_sync=``:
  ``Authorization: Bearer <token>`` (``Token`` accepted too); 204; 400
  ``{"error":"...","data":[{"original_line":...,"line_number":...,"error_message":...}]}``;
  401; 413; 429/503 with ``Retry-After``; databases are created on first write, as in Core.

Both accept gzip bodies (``Content-Encoding: gzip``), record every request, and can be told to
answer the next writes with a scripted status (fault injection) via :meth:`fail_next`.

Queries (for ``bridge-cli healthcheck`` and ``rssi-report``) are answered over the points the
fakes accepted by write, but only in the exact shapes :mod:`telegraf_bridge.cli.sinkquery`
sends; the fakes parse those strictly and refuse anything else with the documented 400 body.
They are no query engines:

- v2 ``POST /api/v2/query?org=|orgID=``: ``Authorization: Token``; the body is Flux
  (``application/vnd.flux``) or the JSON form ``{"query", "type", "dialect"}``; the answer is
  CSV as InfluxDB 2 writes it (CRLF lines, ``result``/``table`` columns, RFC3339Nano times, a
  new annotation+header block whenever the column schema changes, annotation rows
  ``#datatype``/``#group``/``#default`` only when the JSON dialect asks for them, as the
  server does). Evaluated shapes: ``from |> range(start:) |> filter(_measurement [and
  _field]) |> last() |> keep(columns: ["_time"]) |> group() |> max(column: "_time")`` and
  ``... |> keep(columns: ["_value", "<tag>"])``. Errors: 400 ``{"code":"invalid",...}``, 401,
  404 for an unknown org or bucket.
- v3 ``GET|POST /api/v3/query_sql`` (``db``, ``q``, ``format`` = ``json`` | ``jsonl``):
  ``Authorization: Bearer``; rows as JSON objects (null columns left out, naive UTC times as
  Core prints them); 400 text ``missing query parameters 'db' and 'q'``; 404
  ``{"error":"query error: database not found: <db>"}``; 400 text ``Error during planning:
  table 'public.iox.<m>' not found`` and ``Schema error: No field named ...`` for a table or
  column never written. Evaluated shapes: ``SELECT time FROM "m" WHERE time >= '<t>' [AND
  "f" IS NOT NULL] ORDER BY time DESC LIMIT 1`` and ``SELECT "tag", "f" FROM "m" WHERE time
  >= '<t>' AND "f" IS NOT NULL``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlparse

from telegraf_bridge.plugins.common import format_rfc3339_ns, parse_rfc3339_ns
from telegraf_bridge.testing._lineprotocol import LineProtocolError, ParsedPoint, parse_line
from telegraf_bridge.testing._managed import Managed

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
    rf"SELECT time FROM (?P<table>{_SQL_IDENT}) WHERE time >= (?P<start>{_SQL_STR})"  # noqa: S608
    rf"(?: AND (?P<field>{_SQL_IDENT}) IS NOT NULL)? ORDER BY time DESC LIMIT 1"
)
_SQL_SERIES = re.compile(
    rf"SELECT (?P<tag>{_SQL_IDENT}), (?P<field>{_SQL_IDENT}) FROM (?P<table>{_SQL_IDENT}) "  # noqa: S608
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


def _flux_keep(records: list[tuple[int, ParsedPoint, str, Any]], tag: str) -> list[_Table]:
    """``keep(columns: ["_value", tag])``: one table per tag value (group key: the tag)."""
    groups: dict[str | None, list[tuple[int, ParsedPoint, str, Any]]] = {}
    for record in sorted(
        records, key=lambda r: (r[1].tags.get(tag) is None, r[1].tags.get(tag) or "", r[0])
    ):
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


class FakeInfluxV2(_FakeInflux):
    """InfluxDB Cloud / OSS 2.x write API on loopback (see the module docstring)."""

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
        self.buckets = set(buckets)

    def _authorised(self, header: str | None) -> bool:
        return header == f"Token {self.token}"

    def handle_post(self, handler: _Handler, raw: bytes) -> None:
        url = urlparse(handler.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v2/query":
            self._query(handler, params, raw)
            return
        if url.path != "/api/v2/write":
            handler._send(404, {"code": "not found", "message": "path not found"})
            return
        if not self._authorised(handler.headers.get("Authorization")):
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
        if not bucket or bucket not in self.buckets:
            handler._send(404, {"code": "not found", "message": f'bucket "{bucket}" not found'})
            return
        if params.get("precision", "ns") not in _PRECISIONS_V2:
            handler._send(
                400, {"code": "invalid", "message": f'invalid precision "{params["precision"]}"'}
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
        with self._lock:
            points, errors, new_types = self._parse_batch(body, f"{self.org}/{bucket}")
            if not errors:
                self._types.update(new_types)
        if errors:
            _, line, why = errors[0]
            status = 422 if "type conflict" in why else 400
            message = (
                f"failure writing points to database: partial write: {why}"
                if status == 422
                else f"unable to parse '{line}': {why}"
            )
            self._record(handler, params, body, status, [])
            handler._send(
                status,
                {
                    "code": "invalid" if status == 400 else "unprocessable entity",
                    "message": message,
                },
            )
            return
        self._record(handler, params, body, 204, points)
        handler._send(204)

    # -- queries (see the module docstring for the shapes evaluated) -----------------------------

    def stored(self, bucket: str) -> list[tuple[int, ParsedPoint]]:
        """``(time ns, point)`` of every point accepted into ``bucket``."""
        with self._lock:
            requests = [r for r in self.requests if r.status == 204]
        return [
            (_time_ns(p, r.params.get("precision", "ns"), r.received_ns), p)
            for r in requests
            if r.params.get("bucket") == bucket
            for p in r.points
        ]

    def _org_known(self, handler: _Handler, params: dict[str, str]) -> bool:
        """The ``org``/``orgID`` check every v2 endpoint makes; answers the error itself."""
        org = params.get("org") or params.get("orgID")
        if not org:
            handler._send(400, {"code": "invalid", "message": "Please provide either orgID or org"})
            return False
        if org != self.org:
            handler._send(
                404, {"code": "not found", "message": f'organization name "{org}" not found'}
            )
            return False
        return True

    def _query(self, handler: _Handler, params: dict[str, str], raw: bytes) -> None:
        if not self._authorised(handler.headers.get("Authorization")):
            handler._send(401, {"code": "unauthorized", "message": "unauthorized access"})
            return
        if not self._org_known(handler, params):
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
        if match is None:
            handler._send(
                400,
                {
                    "code": "invalid",
                    "message": "compilation failed: the fake evaluates only the query shapes "
                    "bridge-cli sends",
                },
            )
            return
        bucket = _flux_unquote(match["bucket"])
        if bucket not in self.buckets:
            handler._send(
                404,
                {
                    "code": "not found",
                    "message": "failed to initialize execute state: could not find bucket "
                    f'"{bucket}"',
                },
            )
            return
        start = _parse_time(match["start"])
        stop = time.time_ns()
        measurement = _flux_unquote(match["measurement"])
        field_name = _flux_unquote(match["field"]) if match["field"] else None
        # One record per (point, field) in the window, as the storage engine yields them.
        records = [
            (t, p, key, value)
            for t, p in self.stored(bucket)
            if p.measurement == measurement and start <= t < stop
            for key, value in p.fields.items()
            if field_name is None or key == field_name
        ]
        if match["newest"]:
            tables = _flux_newest(records)
        else:
            tables = _flux_keep(records, _flux_unquote(match["tag"]))
        body = _annotated_csv(tables, annotations)
        handler._send(200, body, content_type="text/csv; charset=utf-8")


_V2_BODIES: dict[int, dict[str, Any]] = {
    400: {"code": "invalid", "message": "unable to parse 'scripted': scripted failure"},
    401: {"code": "unauthorized", "message": "unauthorized access"},
    404: {"code": "not found", "message": 'bucket "scripted" not found'},
    413: {"code": "request too large", "message": "unable to read data: points batch is too large"},
    429: {"code": "too many requests", "message": "rate limit exceeded"},
    500: {"code": "internal error", "message": "an internal error has occurred"},
    503: {"code": "unavailable", "message": "service unavailable"},
}


class FakeInfluxV3(_FakeInflux):
    """InfluxDB 3 Core/Enterprise ``write_lp`` API on loopback (see the module docstring)."""

    version = "3.5.0"

    def __init__(
        self, *, token: str | None = "test-token", max_body_bytes: int = 10 * 2**20
    ) -> None:
        super().__init__(token=token, max_body_bytes=max_body_bytes)
        self.databases: set[str] = set()

    def _authorised(self, header: str | None) -> bool:
        if self.token is None:
            return True
        return header in (f"Bearer {self.token}", f"Token {self.token}")

    def not_found_body(self, path: str) -> dict[str, Any]:
        return {"error": f"not found: {path}"}

    def handle_get(self, handler: _Handler) -> None:
        url = urlparse(handler.path)
        if url.path == "/api/v3/query_sql":
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            self._query(handler, params)
            return
        super().handle_get(handler)

    def handle_post(self, handler: _Handler, raw: bytes) -> None:
        url = urlparse(handler.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v3/query_sql":
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
            self._query(handler, {k: str(v) for k, v in doc.items() if isinstance(v, str)})
            return
        if url.path != "/api/v3/write_lp":
            handler._send(404, {"error": f"not found: {url.path}"})
            return
        if not self._authorised(handler.headers.get("Authorization")):
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
                self.databases.add(database)
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
        self.databases.add(database)
        self._record(handler, params, body, 204, points)
        handler._send(204)

    # -- queries (see the module docstring for the shapes evaluated) -----------------------------

    def stored(self, database: str) -> list[tuple[int, ParsedPoint]]:
        """``(time ns, point)`` of every point accepted into ``database``."""
        with self._lock:
            requests = list(self.requests)
        return [
            (_time_ns(p, r.params.get("precision", "auto"), r.received_ns), p)
            for r in requests
            if r.params.get("db") == database
            for p in r.points
        ]

    def _query(self, handler: _Handler, params: dict[str, str]) -> None:
        if not self._authorised(handler.headers.get("Authorization")):
            handler._send(401, {"error": "the request was not authenticated"})
            return
        database, sql = params.get("db"), params.get("q")
        if not database or not sql:
            handler._send(400, "missing query parameters 'db' and 'q'", content_type="text/plain")
            return
        fmt = params.get("format", "json")
        if fmt not in ("json", "jsonl"):
            handler._send(
                400, f"the fake answers format json or jsonl, not {fmt}", content_type="text/plain"
            )
            return
        if database not in self.databases:
            handler._send(404, {"error": f"query error: database not found: {database}"})
            return
        newest = _SQL_NEWEST.fullmatch(sql.strip())
        series = None if newest else _SQL_SERIES.fullmatch(sql.strip())
        shape = newest or series
        if shape is None:
            handler._send(
                400,
                "SQL error: the fake evaluates only the query shapes bridge-cli sends",
                content_type="text/plain",
            )
            return
        table = _sql_unquote(shape["table"])
        points = [(t, p) for t, p in self.stored(database) if p.measurement == table]
        if not points:
            handler._send(
                400,
                f"Error during planning: table 'public.iox.{table}' not found",
                content_type="text/plain",
            )
            return
        columns = {"time"} | {k for _, p in points for k in (*p.tags, *p.fields)}
        wanted = [_sql_unquote(shape["field"])] if shape["field"] else []
        if series is not None:
            wanted.append(_sql_unquote(series["tag"]))
        for name in wanted:
            if name not in columns:
                valid = ", ".join(f"{table}.{c}" for c in sorted(columns))
                handler._send(
                    400,
                    f'Schema error: No field named "{name}". Valid fields are {valid}.',
                    content_type="text/plain",
                )
                return
        start = _parse_time(_sql_unstring(shape["start"]))
        field_name = _sql_unquote(shape["field"]) if shape["field"] else None
        matching = [
            (t, p)
            for t, p in points
            if t >= start and (field_name is None or field_name in p.fields)
        ]
        rows: list[dict[str, Any]]
        if newest is not None:
            matching.sort(key=lambda tp: tp[0], reverse=True)
            rows = [{"time": _naive_time(t)} for t, _ in matching[:1]]
        else:
            tag = _sql_unquote(series["tag"]) if series else ""
            rows = []
            for _, p in matching:
                row: dict[str, Any] = {}
                if tag in p.tags:
                    row[tag] = p.tags[tag]
                row[str(field_name)] = p.fields[str(field_name)]
                rows.append(row)
        if fmt == "jsonl":
            body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
            handler._send(200, body, content_type="application/jsonl")
        else:
            handler._send(200, json.dumps(rows, separators=(",", ":")))
