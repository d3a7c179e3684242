"""IoTFlow's HTTP endpoint, ``POST /api/v1/devices/telemetry``, with bounded concurrency.

Why a small server of our own and not Telegraf's ``inputs.http_listener_v2``: that listener has
no per-device key check (one shared token at most), so it would need a second server in front
to authenticate against the registry; and it answers once a metric is *queued* in Telegraf.
Here a request is answered 2xx only after its points are written and flushed to Telegraf's
pipe (stdout), so a device never drops a reading that was not handed over; any failure before
that is a 4xx/5xx and the device keeps the reading and retries.

Concurrency is bounded by ``workers`` threads, each accepting connections from the listening
socket itself. No thread per connection: 1,000 devices connecting at once wait in the kernel's
accept backlog (``BACKLOG``), and are served in turn, with a socket timeout for slow clients.
A kept-alive connection stays with its worker only while nobody else is waiting.

Answers are JSON: ``200 {"status": "ok", "points": N}``; ``401 {"error": "unauthorized"}``
for every authentication failure alike; ``400`` naming the JSON path; ``411`` / ``413`` /
``415`` decided from the headers, before the body is read; ``404`` / ``405`` (with ``Allow``);
``503`` when Telegraf's pipe is gone or the clock cannot stamp a point. The API key is never
logged or echoed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol

from telegraf_bridge.plugins.common import Point, worth_logging, worth_logging_between
from telegraf_bridge.plugins.iotflow import payload
from telegraf_bridge.plugins.iotflow import registry as registry_mod
from telegraf_bridge.plugins.iotflow.registry import Registry, RegistryError

log = logging.getLogger("telegraf_bridge.plugins.iotflow.http")

ENDPOINT = "/api/v1/devices/telemetry"
BACKLOG = 1024  # connections the kernel holds while every worker is busy
READ_TIMEOUT_S = 10.0  # a client that sends nothing for this long is cut off
CAP_RETRY_AFTER_S = 60  # at the disk-buffer cap: when a device should try again
KEEPALIVE_IDLE_S = 2.0  # how long a kept-alive connection may sit idle on a worker
ACCEPT_POLL_S = 0.25  # how often an idle worker looks at the stop flag
JSON_TYPES = ("application/json",)
# Why a request was refused at the HTTP level (payload reasons come from payload.py).
HTTP_REASONS = (
    "unauthorized",
    "too_large",
    "length_required",
    "unsupported_media_type",
    "not_found",
    "method_not_allowed",
    "bad_request_line",
    "incomplete_body",
    "timeout",
    "tls_handshake",
    "clock_unsynchronised",
    "output_unavailable",
    "buffer_full",
    "internal",
)
REASONS = HTTP_REASONS + payload.PAYLOAD_REASONS


class ListenerError(Exception):
    """The listener cannot start (port taken, certificate unreadable); the message says why."""


class PointWriter(Protocol):
    """Where accepted points go: the plugin's JournaledWriter (journal, then stdout)."""

    # True at the disk-buffer cap: requests are refused before their body is read.
    holding: bool
    # True once Telegraf has gone: accepted points wait in the journal for the next start.
    output_gone: bool

    def write_points(self, points: Iterable[Point], *, durable: bool = False) -> int:
        """Journal (fsynced when ``durable``), then write; raise OSError/ValueError on failure."""


class Stats:
    """Request counters for the status row.

    Every rejection is counted by reason and logged sparingly (the 1st, 10th, 100th ...
    occurrence of each reason), so a misbehaving device cannot flood Telegraf's log.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.accepted_requests = 0
        self.accepted_points = 0
        self.dropped_keys = 0
        self.rejected = dict.fromkeys(REASONS, 0)

    def request(self) -> None:
        """Count one request, whatever its fate."""
        with self._lock:
            self.requests += 1

    def accepted(self, points: int, dropped_keys: int) -> None:
        """Count a request whose points were written (and the owned keys it had dropped)."""
        with self._lock:
            self.accepted_requests += 1
            self.accepted_points += points
            self.dropped_keys += dropped_keys
            dropped_total = self.dropped_keys
        if dropped_keys and worth_logging_between(dropped_total - dropped_keys, dropped_total):
            log.warning(
                "dropped payload key(s) the bundle sets itself (device_id, device_name, "
                "device_type, location, topic, timestamp in data/metadata): %d so far",
                dropped_total,
            )

    def reject(self, reason: str, client: str, detail: str = "") -> None:
        """Count and (sparingly) log one refusal; ``detail`` never holds the API key."""
        with self._lock:
            n = self.rejected.get(reason, 0) + 1
            self.rejected[reason] = n
        if worth_logging(n):
            suffix = f": {detail}" if detail else ""
            log.warning(
                "refused a request from %s: %s (occurrence %d)%s", client, reason, n, suffix
            )

    def snapshot(self) -> dict[str, int]:
        """Every counter, flat, for the status row."""
        with self._lock:
            out = {
                "requests": self.requests,
                "accepted_requests": self.accepted_requests,
                "accepted_points": self.accepted_points,
                "dropped_keys": self.dropped_keys,
                "rejected_requests": sum(self.rejected.values()),
            }
            out.update({f"rejected_{reason}": n for reason, n in self.rejected.items()})
        return out


class RegistryWatcher:
    """The device registry, re-read when ``devices.yaml`` changes.

    The file's identity (inode, mtime, size) is looked at most once per ``check_every_s``.
    ``bridge-cli devices`` replaces the file atomically; a file that is broken, unreadable or
    gone on reload keeps the previous registry (an error, counted), and an empty (truncated)
    one is looked at again later, so a hand edit in progress never locks every device out.
    """

    def __init__(
        self,
        path: Path,
        *,
        check_every_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.check_every_s = check_every_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._signature = self._stat()
        self.registry: Registry = registry_mod.load(self.path)  # RegistryError: caller's to show
        self._next_check = monotonic() + check_every_s
        self.reloads = 0
        self.reload_errors = 0

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def current(self) -> Registry:
        """The registry to authenticate against now."""
        now = self._monotonic()
        if now < self._next_check:
            return self.registry
        with self._lock:
            if now >= self._next_check:
                self._next_check = now + self.check_every_s
                self._maybe_reload()
        return self.registry

    def _maybe_reload(self) -> None:
        signature = self._stat()
        if signature == self._signature:
            return
        if signature is not None and signature[2] == 0:
            # Truncated by an editor that is about to write it again: look next time.
            return
        self._signature = signature  # one attempt (and one error) per change of the file
        try:
            if signature is None:
                raise RegistryError(f"the device registry {self.path} is gone")
            fresh = registry_mod.load(self.path)
        except RegistryError as exc:
            self.reload_errors += 1
            log.error("keeping the previous device registry: %s", exc)
            return
        self.registry = fresh
        self.reloads += 1
        log.info("reloaded the device registry %s: %d device(s)", self.path, len(fresh.devices))


@dataclass(frozen=True)
class ListenerSettings:
    """Everything the listener needs besides its collaborators."""

    host: str
    port: int
    workers: int
    max_body_bytes: int
    rules: payload.Rules
    tls_cert: str = ""
    tls_key: str = ""
    read_timeout_s: float = READ_TIMEOUT_S
    keepalive_idle_s: float = KEEPALIVE_IDLE_S


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server context for ``cert``/``key``: TLS 1.2 or later, the library's default ciphers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ListenerError(f"cannot load tls_cert {cert} / tls_key {key}: {exc}") from None
    return context


class TelemetryListener:
    """The listening socket and its worker threads."""

    def __init__(
        self,
        settings: ListenerSettings,
        registry: RegistryWatcher,
        writer: PointWriter,
        *,
        stats: Stats | None = None,
        clock_ok: Callable[[], bool] = lambda: True,
        on_output_gone: Callable[[], None] = lambda: None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.writer = writer
        self.stats = stats or Stats()
        self.clock_ok = clock_ok
        self.on_output_gone = on_output_gone
        self.now_ns = now_ns
        self.tls = tls_context(settings.tls_cert, settings.tls_key) if settings.tls_cert else None
        self.output_gone = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sock: socket.socket | None = None
        self._busy = 0
        self._busy_lock = threading.Lock()

    # -- life cycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the kernel's pick for port 0)."""
        if self._sock is None:
            return self.settings.port
        return int(self._sock.getsockname()[1])

    @property
    def scheme(self) -> str:
        """``https`` when TLS is configured."""
        return "https" if self.tls else "http"

    def start(self) -> None:
        """Bind, listen and start the workers; ListenerError when the address is unusable."""
        host = self.settings.host or "0.0.0.0"  # noqa: S104 - ':PORT' means every interface
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sock = socket.create_server(
                (host, self.settings.port), family=family, backlog=BACKLOG, reuse_port=False
            )
        except OSError as exc:
            raise ListenerError(
                f"cannot listen on {host}:{self.settings.port}: {exc.strerror or exc}"
            ) from None
        sock.settimeout(ACCEPT_POLL_S)
        self._sock = sock
        for index in range(self.settings.workers):
            thread = threading.Thread(target=self._work, name=f"http-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "listening on %s://%s:%d%s with %d worker(s), bodies up to %d bytes",
            self.scheme,
            host,
            self.port,
            ENDPOINT,
            self.settings.workers,
            self.settings.max_body_bytes,
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, let requests in progress finish (up to ``timeout``), close."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._threads.clear()

    def busy_workers(self) -> int:
        """Workers serving a connection right now (for the status row)."""
        return self._busy

    def others_waiting(self) -> bool:
        """Whether every worker is busy and a connection waits in the backlog."""
        sock = self._sock
        if sock is None or self._busy < self.settings.workers:
            return False
        poller = select.poll()  # not select(): no limit on the descriptor's number
        try:
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return False

    # -- workers -----------------------------------------------------------------------------

    def _work(self) -> None:
        listening = self._sock
        assert listening is not None  # noqa: S101 - set before the workers start
        while not self._stop.is_set():
            try:
                conn, addr = listening.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return
                # EMFILE and the like: back off instead of spinning.
                log.error("accept failed: %s", exc)
                self._stop.wait(0.5)
                continue
            with self._busy_lock:
                self._busy += 1
            try:
                self._serve(conn, addr)
            finally:
                with self._busy_lock:
                    self._busy -= 1

    def _serve(self, conn: socket.socket, addr: Any) -> None:
        client = str(addr[0]) if isinstance(addr, tuple) else str(addr)
        try:
            conn.settimeout(self.settings.read_timeout_s)
            # The answer goes out in two sends (headers, body): without TCP_NODELAY, Nagle holds
            # the second until the client's delayed ACK, about 40 ms per request on a kept-alive
            # connection.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError) as exc:
                    self.stats.reject("tls_handshake", client, str(exc)[:200])
                    return
            _Handler(conn, addr, self)  # type: ignore[arg-type] # only .server is used
        except (OSError, ValueError) as exc:
            log.debug("connection from %s ended: %s", client, exc)
        except Exception:
            log.exception("unexpected error serving %s", client)
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


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


class _Handler(BaseHTTPRequestHandler):
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
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.connection.settimeout(self.server.settings.keepalive_idle_s)
            self.handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        """Access lines at debug level only: they would flood Telegraf's log."""
        log.debug("%s %s", self.address_string(), format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
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

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other  # noqa: N815 - http.server's names

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
