"""What the admin backends add to the clients: their errors, token hints and durations.

The admin backends talk through the same clients as every other command
(:mod:`telegraf_bridge.cli.influx`); :func:`admin_errors` makes the transport raise
:class:`AdminError` subclasses instead of :class:`SinkError`, so ``verify`` can tell "cannot
reach the server" (:class:`Unreachable`) from "the server refused the credentials"
(:class:`AuthFailed`) and print one row for each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from telegraf_bridge.cli.influx.admin.base import AdminError
from telegraf_bridge.cli.influx.transport import SinkError

# Shorter tokens are shown not at all: four characters of a short one give too much away.
_MIN_TOKEN_FOR_PREFIX = 12


def token_hint(token: str) -> str:
    """What a message may show of a token: its first 4 characters, for a long one.

    Enough to tell which of several tokens is configured, never enough to use it. (Error text
    is scrubbed separately, by the transport.)
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


def admin_errors(
    credential_steps: tuple[str, ...], unreachable_steps: tuple[str, ...] = ()
) -> Callable[[SinkError], Exception]:
    """The transport's error mapper for an admin backend: each SinkError as an AdminError.

    The messages are already redacted; the next steps are the backend's own.
    """

    def mapped(exc: SinkError) -> Exception:
        if exc.reason == "unreachable":
            return Unreachable(str(exc), unreachable_steps)
        if exc.reason == "auth_failed":
            return AuthFailed(str(exc), credential_steps)
        return AdminError(str(exc))

    return mapped


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
