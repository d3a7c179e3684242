"""IoTFlow's HTTP endpoint, ``POST /api/v1/devices/telemetry``, with bounded concurrency.

Why a small server of our own and not Telegraf's ``inputs.http_listener_v2``: that listener has
no per-device key check (one shared token at most), so it would need a second server in front
to authenticate against the registry; and it answers once a metric is *queued* in Telegraf.
Here a request is answered 2xx only after its points are fsynced in the source's journal
(which hands them to Telegraf and keeps them until Telegraf has them on disk), so a device never
drops a reading that is not durable; any failure before that is a 4xx/5xx and the device keeps
the reading and retries.

Concurrency is bounded by ``workers`` threads, each accepting connections from the listening
socket itself. No thread per connection: 1,000 devices connecting at once wait in the kernel's
accept backlog (``BACKLOG``), and are served in turn, with a socket timeout for slow clients.
A kept-alive connection stays with its worker only while nobody else is waiting.

Modules: this one (the socket and its workers), http_handler.py (one connection's checks and
answer), http_stats.py (counters and refusal reasons), registry_watcher.py (the keys).

Answers are JSON: ``200 {"status": "ok", "points": N}``; ``401 {"error": "unauthorized"}``
for every authentication failure alike; ``400`` naming the JSON path; ``411`` / ``413`` /
``415`` decided from the headers, before the body is read; ``404`` / ``405`` (with ``Allow``);
``503`` at the disk-buffer cap, when Telegraf's pipe is gone, or when the clock cannot stamp
a point. The API key is never
logged or echoed.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from telegraf_bridge.plugins.common import Point
from telegraf_bridge.plugins.iotflow import payload
from telegraf_bridge.plugins.iotflow.http_handler import ENDPOINT, TelemetryHandler
from telegraf_bridge.plugins.iotflow.http_stats import Stats
from telegraf_bridge.plugins.iotflow.registry_watcher import RegistryWatcher

log = logging.getLogger("telegraf_bridge.plugins.iotflow.http")

BACKLOG = 1024  # connections the kernel holds while every worker is busy
READ_TIMEOUT_S = 10.0  # a client that sends nothing for this long is cut off
KEEPALIVE_IDLE_S = 2.0  # how long a kept-alive connection may sit idle on a worker
ACCEPT_POLL_S = 0.25  # how often an idle worker looks at the stop flag


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
            TelemetryHandler(conn, addr, self)  # type: ignore[arg-type] # only .server is used
        except (OSError, ValueError) as exc:
            log.debug("connection from %s ended: %s", client, exc)
        except Exception:
            log.exception("unexpected error serving %s", client)
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
