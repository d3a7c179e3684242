"""The InfluxDB v2/Cloud admin backend's view of :class:`._http.AdminHttp`: Token auth, replies.

Why an adapter and not a client of its own: urllib, the sink's TLS options, bounded reads, secret
redaction and the mapping of network failures to :class:`._http.Unreachable` live once, in
:class:`telegraf_bridge.cli.sinkquery._Http` (through ``AdminHttp``). What v2 needs on top is
small: the ``Authorization: Token`` header, JSON request bodies, and every HTTP status handed
back as a :class:`Reply` -- 401 and 403 included -- because a 403 is an expected answer for a
scoped token (the writer token must be refused the 1h bucket) and the backend decides per step
what a 401, 403, 404 or 422 means. Only a server that does not answer at all raises.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from telegraf_bridge.cli.influx_admin._http import AdminHttp, Unreachable, message_of


@dataclass(frozen=True)
class Reply:
    """One HTTP answer; ``text`` is bounded and has every secret redacted."""

    status: int
    text: str

    def json(self) -> Any:
        """The body as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def message(self) -> str:
        """The server's explanation: the ``message`` of an InfluxDB error body, or the text."""
        return message_of(self.text.strip())


class V2Http:
    """Requests to one InfluxDB v2/Cloud server with ``Authorization: Token``."""

    def __init__(
        self,
        sink: Mapping[str, Any],
        token: str,
        timeout: float,
        checklist: tuple[str, ...],
    ) -> None:
        self._http = AdminHttp(sink, timeout, (token,), checklist)
        self.base = self._http.base
        self.timeout = timeout
        self._token = token
        self._checklist = checklist

    def redact(self, text: str) -> str:
        """``text`` without the token."""
        return self._http.redact(text)

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
        """Send one request; any HTTP status is a :class:`Reply`, no answer :class:`Unreachable`.

        ``path`` may carry a query string already (a ``links.next`` the server handed out);
        ``params`` are then appended to it.
        """
        if params and "?" in path:
            path, params = path + "&" + urllib.parse.urlencode(params), None
        headers = {"Authorization": f"Token {self._token}", "Accept": accept}
        if json_body is not None:
            data = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        try:
            status, text, _ = self._http.call(
                method, path, params=params, body=data, headers=headers, raise_refusals=False
            )
        except Unreachable as exc:
            # Same message, but with the whole checklist: on v2 a wrong URL (e.g. another
            # Cloud region) is as likely as a stopped server.
            raise Unreachable(str(exc), self._checklist) from None
        return Reply(status, text)
