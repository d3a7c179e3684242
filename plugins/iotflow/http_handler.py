"""One HTTP connection of the telemetry listener: the checks, in order, and the answer.

The order of checks is path, ``Content-Length`` (411/413), key (401), ``Content-Type`` (415),
the disk-buffer cap (503, before the body is read), body (400), the body's device ids (401).
A 2xx is sent only once the request's points are fsynced in the source's journal.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from telegraf_bridge.plugins.iotflow import payload
from telegraf_bridge.plugins.iotflow import registry as registry_mod

if TYPE_CHECKING:
    from telegraf_bridge.plugins.iotflow.http_listener import TelemetryListener

log = logging.getLogger("telegraf_bridge.plugins.iotflow.http")

ENDPOINT = "/api/v1/devices/telemetry"
CAP_RETRY_AFTER_S = 60  # at the disk-buffer cap: when a device should try again
JSON_TYPES = ("application/json",)


class _Refusal(Exception):
    """Answer with ``status`` and ``body``; ``reason`` is what gets counted."""

    def __init__(
        self,
        status: HTTPStatus,
        reason: str,
        body: dict[str, Any],
        *,
        detail: str = "",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.body = body
        self.detail = detail
        self.headers = headers


UNAUTHORIZED = {"error": "unauthorized"}


class TelemetryHandler(BaseHTTPRequestHandler):
    """One connection: one request, or several while nobody else waits (keep-alive)."""

    protocol_version = "HTTP/1.1"
    server_version = "telegraf-bridge-iotflow"

    def version_string(self) -> str:
        """No Python version in the ``Server`` header."""
        return self.server_version

    server: TelemetryListener  # type: ignore[assignment]
    _expect_continue = False

    # -- the connection loop -----------------------------------------------------------------

    def handle(self) -> None:
        """Serve one request, then more while the client keeps the connection alive."""
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.connection.settimeout(self.server.settings.keepalive_idle_s)
            self.handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        """Access lines at debug level only: they would flood Telegraf's log."""
        log.debug("%s %s", self.address_string(), format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log: the status row counts requests instead."""
        return

    def handle_expect_100(self) -> bool:
        """Send ``100 Continue`` only once the headers passed every check (see _read_body)."""
        self._expect_continue = True
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (bad request line, huge headers) as JSON."""
        self.server.stats.request()
        self.server.stats.reject("bad_request_line", self._client(), f"{code} {message or ''}")
        self.close_connection = True
        status = HTTPStatus(code)
        self._reply(status, {"error": status.phrase.lower()})

    # -- methods -----------------------------------------------------------------------------

    def do_POST(self) -> None:
        """The telemetry endpoint: every refusal counted by reason, every answer JSON."""
        self.connection.settimeout(self.server.settings.read_timeout_s)
        self.server.stats.request()
        try:
            answer = self._post()
        except _Refusal as refusal:
            self.server.stats.reject(refusal.reason, self._client(), refusal.detail)
            self._reply(refusal.status, refusal.body, refusal.headers)
            return
        except OSError:
            raise  # the connection itself failed: nothing to answer on
        except Exception as exc:
            log.exception("request from %s failed", self._client())
            self.server.stats.reject("internal", self._client(), type(exc).__name__)
            self.close_connection = True
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})
            return
        self._reply(HTTPStatus.OK, answer)

    def _other(self) -> None:
        self.connection.settimeout(self.server.settings.read_timeout_s)
        self.server.stats.request()
        self.close_connection = True  # any body the client sent stays unread
        if self._route() == ENDPOINT:
            self.server.stats.reject("method_not_allowed", self._client(), self.command)
            self._reply(
                HTTPStatus.METHOD_NOT_ALLOWED,
                {"error": f"method {self.command} not allowed; use POST"},
                (("Allow", "POST"),),
            )
        else:
            self.server.stats.reject("not_found", self._client(), self._route()[:100])
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other  # noqa: N815 - http.server names

    # -- POST /api/v1/devices/telemetry ------------------------------------------------------

    def _post(self) -> dict[str, Any]:
        listener = self.server
        if self._route() != ENDPOINT:
            self.close_connection = True
            raise _Refusal(
                HTTPStatus.NOT_FOUND,
                "not_found",
                {"error": "not found"},
                detail=self._route()[:100],
            )
        length = self._content_length()
        device = self._authenticate()
        self._check_content_type()
        if listener.writer.holding:
            # The device keeps its data: nothing of the body is read, the answer says when
            # to come back (the sinks are down and the buffer is full).
            self.close_connection = True
            raise _Refusal(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "buffer_full",
                {"error": "the telemetry buffer is full; retry later"},
                headers=(("Retry-After", str(CAP_RETRY_AFTER_S)),),
            )
        doc = self._read_json(length)
        for named in payload.named_devices(doc):
            if named != device.id:
                raise _Refusal(HTTPStatus.UNAUTHORIZED, "unauthorized", UNAUTHORIZED)
        if listener.output_gone:
            raise self._unavailable()
        try:
            mapped = payload.to_points(
                doc, device.tags(), listener.settings.rules, listener.now_ns()
            )
        except payload.PayloadError as exc:
            raise _Refusal(
                HTTPStatus.BAD_REQUEST, exc.reason, {"error": exc.message}, detail=exc.message
            ) from None
        if mapped.receive_time_points and not listener.clock_ok():
            raise _Refusal(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "clock_unsynchronised",
                {"error": "the server's clock is not synchronised; send a timestamp or retry"},
                headers=(("Retry-After", "30"),),
            )
        try:
            # 2xx only once the points are fsynced in the journal: a device told "stored" may
            # delete its copy. Concurrent requests share one fsync.
            written = listener.writer.write_points(mapped.points, durable=True)
        except (OSError, ValueError) as exc:
            listener.output_gone = True
            log.error("cannot store telemetry (%s); answering 503 from now on", exc)
            listener.on_output_gone()
            raise self._unavailable() from None
        if listener.writer.output_gone and not listener.output_gone:
            # These points are safe in the journal (written again at the next start); later
            # requests are refused until then.
            listener.output_gone = True
            log.error("Telegraf has gone away; answering 503 from now on")
            listener.on_output_gone()
        if written != len(mapped.points):  # pragma: no cover - payload.py rules this out
            raise _Refusal(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                "internal",
                {"error": f"only {written} of {len(mapped.points)} points could be written"},
            )
        listener.stats.accepted(written, mapped.dropped_keys)
        return {"status": "ok", "points": written}

    def _unavailable(self) -> _Refusal:
        self.close_connection = True
        return _Refusal(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "output_unavailable",
            {"error": "telemetry cannot be stored right now; retry later"},
            headers=(("Retry-After", "10"),),
        )

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding") is not None:
            self.close_connection = True
            raise _Refusal(
                HTTPStatus.LENGTH_REQUIRED,
                "length_required",
                {"error": "chunked bodies are not accepted; send Content-Length"},
            )
        values = self.headers.get_all("Content-Length") or []
        if not values:
            self.close_connection = True
            raise _Refusal(
                HTTPStatus.LENGTH_REQUIRED,
                "length_required",
                {"error": "Content-Length is required"},
            )
        text = values[0].strip()
        if len(values) > 1 or not text.isdigit() or not text.isascii():
            self.close_connection = True
            raise _Refusal(
                HTTPStatus.BAD_REQUEST,
                "bad_request_line",
                {"error": "invalid Content-Length"},
            )
        length = int(text)
        limit = self.server.settings.max_body_bytes
        if length > limit:
            self.close_connection = True
            raise _Refusal(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "too_large",
                {"error": f"body of {length} bytes is over the limit of {limit} bytes"},
                detail=f"{length} bytes",
            )
        return length

    def _authenticate(self) -> registry_mod.Device:
        keys = self.headers.get_all("X-API-Key") or []
        hints = self.headers.get_all("X-Device-ID") or []
        registry = self.server.registry.current()
        # Every failure costs one hash check and gives the same answer.
        key = keys[0].strip() if len(keys) == 1 else ""
        hint = hints[0].strip() if len(hints) == 1 else None
        device = registry.authenticate(key, hint)
        if device is None or len(hints) > 1:
            self.close_connection = True  # the body stays unread
            raise _Refusal(
                HTTPStatus.UNAUTHORIZED,
                "unauthorized",
                UNAUTHORIZED,
                headers=(("WWW-Authenticate", 'ApiKey header="X-API-Key"'),),
            )
        return device

    def _check_content_type(self) -> None:
        mime = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if mime not in JSON_TYPES:
            self.close_connection = True
            raise _Refusal(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                {"error": "Content-Type must be application/json"},
                detail=mime[:60] or "none",
            )

    def _read_json(self, length: int) -> Any:
        if self._expect_continue:
            self._expect_continue = False
            self.send_response_only(HTTPStatus.CONTINUE)
            self.end_headers()
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            raise _Refusal(
                HTTPStatus.REQUEST_TIMEOUT, "timeout", {"error": "body not received in time"}
            ) from None
        if len(body) != length:
            self.close_connection = True
            raise _Refusal(
                HTTPStatus.BAD_REQUEST,
                "incomplete_body",
                {"error": f"body ended after {len(body)} of {length} bytes"},
            )
        try:
            return payload.decode(body)
        except payload.PayloadError as exc:
            raise _Refusal(
                HTTPStatus.BAD_REQUEST, exc.reason, {"error": exc.message}, detail=exc.message
            ) from None

    # -- helpers -----------------------------------------------------------------------------

    def _route(self) -> str:
        return self.path.split("?", 1)[0]

    def _client(self) -> str:
        return str(self.client_address[0]) if self.client_address else "?"

    def _reply(
        self,
        status: HTTPStatus,
        body: dict[str, Any],
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        data = (json.dumps(body, ensure_ascii=True) + "\n").encode()
        if not self.close_connection and self.server.others_waiting():
            # Keep-alive only while nobody waits for a worker; said in this answer, so the
            # client does not send its next request into a connection about to close.
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
