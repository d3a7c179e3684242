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
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlparse

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: _FakeInflux


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def _send(
        self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
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
        org = params.get("org") or params.get("orgID")
        bucket = params.get("bucket")
        if not org:
            handler._send(400, {"code": "invalid", "message": "Please provide either orgID or org"})
            return
        if org != self.org:
            handler._send(
                404, {"code": "not found", "message": f'organization name "{org}" not found'}
            )
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
            points, errors, new_types = self._parse_batch(body, f"{org}/{bucket}")
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

    def handle_post(self, handler: _Handler, raw: bytes) -> None:
        url = urlparse(handler.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
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
