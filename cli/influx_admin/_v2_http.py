"""HTTP for the InfluxDB v2/Cloud admin backend: urllib, the sink's TLS options, no secrets out.

Standard library only, like :mod:`telegraf_bridge.cli.sinkquery` (``influxdb-client`` is an
optional extra and does not install everywhere). Every answer comes back as a :class:`Reply`,
whatever its status, so each caller decides what a 404 or a 422 means for its step; only a
server that cannot be reached at all raises (:class:`AdminError`).
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from telegraf_bridge.cli.influx_admin.base import AdminError

_MAX_BODY = 16 * 2**20  # admin answers are small; a bound keeps a wrong URL from eating memory
_MIN_TOKEN_FOR_PREFIX = 12


def token_hint(token: str) -> str:
    """What a message may show of a token: its first 4 characters, for a long one."""
    if len(token) >= _MIN_TOKEN_FOR_PREFIX:
        return token[:4] + "…"
    return "(hidden)"


@dataclass(frozen=True)
class Reply:
    """One HTTP answer."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def message(self) -> str:
        """The server's explanation: the ``message`` of an InfluxDB error body, or the text."""
        doc = self.json()
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            return str(doc["message"])[:500]
        return self.body.decode("utf-8", errors="replace").strip()[:500]


class V2Http:
    """Requests to one InfluxDB v2/Cloud server with ``Authorization: Token``."""

    def __init__(
        self,
        sink: Mapping[str, Any],
        token: str,
        timeout: float,
        checklist: tuple[str, ...],
    ) -> None:
        self.base = str(sink["url"]).rstrip("/")
        self.timeout = timeout
        self._token = token
        self._checklist = checklist
        self._context: ssl.SSLContext | None = None
        if self.base.startswith("https://"):
            self._context = ssl.create_default_context(cafile=sink.get("tls_ca") or None)
            if sink.get("insecure_skip_verify"):
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE

    def redact(self, text: str) -> str:
        """``text`` with the token replaced by its hint."""
        return text.replace(self._token, token_hint(self._token)) if self._token else text

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
    ) -> Reply:
        """Send one request; any HTTP status is a :class:`Reply`, no answer an AdminError."""
        url = self.base + path
        if params:
            url += ("&" if "?" in path else "?") + urllib.parse.urlencode(params)
        headers = {"Authorization": f"Token {self._token}", "Accept": accept}
        if json_body is not None:
            data = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        # The URL is the sink's validated http(s) URL from the config, never arbitrary input.
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(  # noqa: S310
                req, timeout=self.timeout, context=self._context
            ) as response:
                return Reply(int(response.status), response.read(_MAX_BODY))
        except urllib.error.HTTPError as err:
            body = err.read(_MAX_BODY) if err.fp is not None else b""
            err.close()
            return Reply(err.code, self.redact(body.decode("utf-8", "replace")).encode())
        except urllib.error.URLError as err:
            raise self._unreachable(_why(err.reason)) from None
        except TimeoutError:
            raise self._unreachable(f"no answer within {self.timeout:g}s") from None
        except OSError as exc:
            raise self._unreachable(_why(exc)) from None

    def _unreachable(self, why: str) -> AdminError:
        return AdminError(f"cannot reach InfluxDB at {self.base}: {why}", self._checklist)


def _why(reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        return f"name resolution failed ({reason.strerror})"
    if isinstance(reason, ssl.SSLError):
        return f"TLS failed ({reason.reason or reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)
