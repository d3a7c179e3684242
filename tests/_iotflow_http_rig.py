"""Helpers for the iotflow HTTP tests: a registry with real keys, requests, a bounded load."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from telegraf_bridge.plugins.iotflow import registry

ENDPOINT = "/api/v1/devices/telemetry"
DEVICES = (
    ("esp32_001", "Office Sensor", "sensor", "office"),
    ("esp32_002", "Kitchen, Fridge=1", "sensor", ""),
)


def make_registry(
    path: Path, devices: Iterable[tuple[str, str, str, str]] = DEVICES
) -> dict[str, str]:
    """Write ``devices.yaml`` with fresh keys; returns {device id: API key}."""
    keys: dict[str, str] = {}
    reg = registry.Registry()
    for device_id, name, kind, location in devices:
        key_id, key = registry.new_key(d.key_id for d in reg.devices.values())
        reg.devices[device_id] = registry.Device(
            id=device_id,
            name=name,
            type=kind,
            location=location,
            key_id=key_id,
            key_hash=registry.hash_key(key),
        )
        keys[device_id] = key
    registry.save(path, reg)
    return keys


def plugin_toml(
    registry_path: Path, port: int, state_dir: Path, *, interval: str = "1s", http_extra: str = ""
) -> str:
    """The plugin's TOML as render-config writes it: iotflow options at top level."""
    return f"""
signal = "none"
interval = "{interval}"
state_dir = "{state_dir}"
require_clock_sync = false
time_floor = "2020-01-01T00:00:00Z"
registry = "{registry_path}"
string_tags = ["room"]
[http]
listen = "127.0.0.1:{port}"
{http_extra}
[mqtt]
enabled = false
"""


class Reply:
    """One HTTP answer."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:200]!r})"


def post(
    port: int,
    body: Any,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    path: str = ENDPOINT,
    method: str = "POST",
    tls: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One request on a fresh connection; ``body`` bytes are sent as they are, else as JSON."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"}
    if key is not None:
        all_headers["X-API-Key"] = key
    all_headers.update(headers or {})
    conn: http.client.HTTPConnection
    if tls is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=all_headers)
        resp = conn.getresponse()
        return Reply(resp.status, dict(resp.getheaders()), resp.read())
    finally:
        conn.close()


def raw_request(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send bytes as they are and read until the server closes (for malformed requests)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


class SafeBuffer(io.BytesIO):
    """What the plugin's stdout would receive, readable while workers write."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, data: Any) -> int:
        with self._lock:
            return super().write(data)

    def text(self) -> str:
        with self._lock:
            return self.getvalue().decode()

    def lines(self, prefix: str = "") -> list[str]:
        return [line for line in self.text().splitlines() if line.startswith(prefix)]


async def _one(port: int, request: bytes, timeout: float) -> tuple[int, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(
            reader.read(), timeout
        )  # the server closes: Connection: close
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body


def request_bytes(body: Any, key: str, *, close: bool = True) -> bytes:
    """A complete POST as bytes, ``Connection: close`` so the answer ends at EOF."""
    data = json.dumps(body).encode()
    head = (
        f"POST {ENDPOINT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-API-Key: {key}\r\nContent-Length: {len(data)}\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    )
    return head.encode() + data


def concurrent_posts(
    port: int, requests: list[bytes], *, timeout: float = 60.0
) -> list[tuple[int, bytes]]:
    """Open one connection per request, all at once, and send them together.

    Bounded by construction: exactly ``len(requests)`` connections, each with a timeout, and
    no retries. Failures come back as status 0.
    """

    async def run() -> list[tuple[int, bytes]]:
        async def guarded(request: bytes) -> tuple[int, bytes]:
            try:
                return await _one(port, request, timeout)
            except (OSError, TimeoutError, ValueError, IndexError) as exc:
                return 0, repr(exc).encode()

        return list(await asyncio.gather(*(guarded(r) for r in requests)))

    return asyncio.run(run())
