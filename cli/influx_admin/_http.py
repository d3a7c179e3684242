"""HTTP for the admin backends: the query layer's client, with errors turned into AdminErrors.

Why reuse :class:`telegraf_bridge.cli.sinkquery._Http`: it already knows the sink's TLS options
and timeout, and redacts every secret from error text; the admin commands must behave the same
way, so there is exactly one urllib/TLS/redaction implementation for every backend (v2's
``Token`` adapter in :mod:`._v2_http` sits on top of this one). Two subclasses of
:class:`AdminError` let ``verify`` tell "cannot reach the server" from "the server refused the
credentials" and print one row for each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from telegraf_bridge.cli.influx_admin.base import AdminError
from telegraf_bridge.cli.sinkquery import SinkError, _Http, _message

# Bounded read of successful JSON answers (admin listings are small).
_MAX_BODY = 16 * 2**20
# Shorter tokens are shown not at all: four characters of a short one give too much away.
_MIN_TOKEN_FOR_PREFIX = 12


def token_hint(token: str) -> str:
    """What a message may show of a token: its first 4 characters, for a long one.

    Enough to tell which of several tokens is configured, never enough to use it. (Error text
    is scrubbed separately, by :meth:`AdminHttp.redact`.)
    """
    if len(token) >= _MIN_TOKEN_FOR_PREFIX:
        return token[:4] + "…"
    return "(hidden)"


class Unreachable(AdminError):
    """No HTTP answer (refused, name resolution, timeout, TLS)."""


class AuthFailed(AdminError):
    """The server answered 401/403: the credential is wrong or lacks the rights."""


def reachability_steps(url: str) -> tuple[str, ...]:
    """What to check when a server does not answer."""
    return (
        f"check that the server runs and answers at {url} (e.g. curl -i {url}/ping)",
        "check the sink's url in bridge.yaml (scheme, host, port) and any firewall between",
    )


def admin_error(exc: SinkError, credential_steps: tuple[str, ...]) -> AdminError:
    """The AdminError for a query-layer failure (its message is already redacted)."""
    if exc.reason == "unreachable":
        return Unreachable(str(exc), ())
    if exc.reason == "auth_failed":
        return AuthFailed(str(exc), credential_steps)
    return AdminError(str(exc))


class AdminHttp:
    """One sink's HTTP endpoint; every answer is ``(status, body text)``."""

    def __init__(
        self,
        sink: Mapping[str, Any],
        timeout: float,
        secrets: tuple[str, ...],
        credential_steps: tuple[str, ...],
    ) -> None:
        self._http = _Http(sink, timeout, secrets)
        self.base = self._http.base
        self.credential_steps = credential_steps

    def redact(self, text: str) -> str:
        """``text`` without any secret this client knows."""
        return self._http.redact(text)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        raise_refusals: bool = True,
    ) -> tuple[int, str, dict[str, str]]:
        """Send a request; returns status, the (redacted, bounded) body and the headers.

        Network failures raise :class:`Unreachable`, 401/403 :class:`AuthFailed` (or, with
        ``raise_refusals=False``, come back as a status like any other).
        """
        try:
            reply = self._http.request(
                method,
                path,
                params=params,
                body=body,
                headers=headers,
                raise_refusals=raise_refusals,
            )
        except SinkError as exc:
            raise admin_error(exc, self.credential_steps) from None
        if reply.response is None:
            return reply.status, reply.error_text, {}
        with reply.response as response:
            try:
                raw = response.read(_MAX_BODY)
            except (OSError, TimeoutError) as exc:
                raise Unreachable(f"{self.base}: the answer broke off: {exc}") from None
            response_headers = {k.lower(): v for k, v in response.getheaders()}
        return reply.status, self.redact(raw.decode("utf-8", errors="replace")), response_headers


def message_of(text: str) -> str:
    """The human part of an error body (JSON ``error``/``message``, or the text)."""
    return _message(text)


def parse_json(text: str, what: str) -> Any:
    """JSON of a successful answer; a broken one is an AdminError naming ``what``."""
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        raise AdminError(f"{what}: the server's answer is not JSON: {text[:200]!r}") from None


# -- durations -------------------------------------------------------------------------------------

_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def influx_duration(seconds: int) -> str:
    """A duration literal as InfluxDB 1.x renders it (largest unit that divides it exactly)."""
    if seconds <= 0:
        return "0s"
    for suffix, size in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def parse_go_duration(text: str) -> int | None:
    """Seconds of a Go duration string such as ``720h0m0s`` (``0s`` = forever); None if not one."""
    text = text.strip()
    if not text:
        return None
    pos = 0
    total = 0.0
    for match in _GO_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match[1]) * _GO_SECONDS[match[2]]
        pos = match.end()
    if pos != len(text):
        return None
    return round(total)


def human_retention(seconds: int) -> str:
    """``30d``, ``12h``, or ``forever``, for reports (days, never weeks)."""
    if seconds <= 0:
        return "forever"
    for suffix, size in _UNITS[1:]:
        if seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"
