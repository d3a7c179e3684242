"""The one HTTP transport to InfluxDB: urllib with the sink's TLS options, timeouts and redaction.

Why one: every command that talks to a sink (queries, deletes, health checks, preflight probes,
setup/verify/delete-buckets) must treat TLS, timeouts, unreachable servers and secrets the same
way; before this module there were four request wrappers doing it slightly differently. It uses
the standard library only because these commands run on a Pi Zero from a systemd timer, where the
official clients (pyarrow, pandas) do not install or take seconds to import.

The ``Authorization`` header is not built here: :mod:`.auth` builds it once per client and the
transport adds it to every request. Every secret the transport knows is replaced by ``***`` in
every error text it returns or raises.
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.client import HTTPResponse
from typing import Any

from telegraf_bridge.cli.config_model import HttpSink

# Bodies are read up to this size: enough for any error message or admin listing, bounded on a
# Pi Zero. Streamed query answers are not bounded here: they are read line by line.
MAX_BODY = 16 * 2**20
_MAX_ERROR_BODY = 64 * 1024


class SinkError(Exception):
    """A sink could not answer.

    ``reason`` is one of ``config_error`` (the sink's settings or secrets are unusable),
    ``unreachable`` (no HTTP answer), ``auth_failed`` (401/403), ``not_found`` (the database or
    bucket does not exist) and ``query_failed`` (any other refusal). The message never contains
    a secret.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


# What a user of the transport turns a SinkError into (the admin commands raise their own
# error types with next steps); the default raises it as it is.
ErrorMapper = Callable[[SinkError], Exception]


def as_is(exc: SinkError) -> Exception:
    """The default error mapper: a SinkError stays a SinkError."""
    return exc


@dataclass
class Reply:
    """An HTTP answer.

    ``response`` is the open body of a streamed success (the caller reads and closes it);
    ``text`` is the whole (bounded, redacted) body otherwise, error bodies included.
    """

    status: int
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    response: HTTPResponse | None = None

    def json(self) -> Any:
        """The body as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def message(self) -> str:
        """The server's explanation: the ``message`` of an InfluxDB error body, or the text."""
        return message_of(self.text.strip())


def message_of(text: str) -> str:
    """The human part of an InfluxDB error body (JSON ``message``/``error``, or the text)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:500]
    if isinstance(doc, dict):
        for key in ("message", "error"):
            if isinstance(doc.get(key), str):
                return str(doc[key])[:500]
    return text[:500]


def why(reason: object) -> str:
    """A network failure's cause in words (name resolution, refused, ...)."""
    if isinstance(reason, socket.gaierror):
        return f"name resolution failed ({reason.strerror})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


class Transport:
    """One sink's HTTP endpoint: base URL, TLS, timeout, auth header and secrets to redact.

    ``raise_refusals=False`` returns a 401/403 as a reply like any other status, for a caller
    that must tell "wrong token" from "token lacks this one right" itself (the v2 admin
    backend: a scoped token is refused some buckets by design). ``errors`` turns every
    :class:`SinkError` the transport raises into the caller's own exception.
    """

    def __init__(
        self,
        sink: HttpSink,
        timeout: float,
        *,
        secrets: Iterable[str] = (),
        auth: Mapping[str, str] | None = None,
        raise_refusals: bool = True,
        errors: ErrorMapper = as_is,
    ) -> None:
        self.base = sink.url.rstrip("/")
        self.name = sink.name
        self.timeout = timeout
        self.secrets = tuple(s for s in secrets if s)
        self.auth = dict(auth or {})
        self.raise_refusals = raise_refusals
        self.errors = errors
        self.context: ssl.SSLContext | None = None
        if self.base.startswith("https://"):
            self.context = ssl.create_default_context(cafile=sink.tls_ca or None)
            if sink.insecure_skip_verify:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, reason: str, message: str) -> Exception:
        return self.errors(SinkError(reason, message))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Reply:
        """Send one request; network failures (and 401/403 unless allowed) raise.

        ``path`` may carry a query string already (a ``links.next`` the server handed out);
        ``params`` are then appended to it. With ``stream`` a success keeps its body open in
        :attr:`Reply.response`; otherwise the body is read (bounded) into :attr:`Reply.text`.
        """
        url = self.base + path
        if params:
            url += ("&" if "?" in path else "?") + urllib.parse.urlencode(params)
        all_headers = {**self.auth, **(headers or {})}
        # The URL is the sink's validated http(s) URL from the config, never arbitrary input.
        req = urllib.request.Request(url, data=body, method=method, headers=all_headers)  # noqa: S310 - validated sink URL
        try:
            response = urllib.request.urlopen(req, timeout=self.timeout, context=self.context)  # noqa: S310 - validated sink URL
        except urllib.error.HTTPError as err:
            raw = err.read(_MAX_ERROR_BODY) if err.fp is not None else b""
            text = self.redact(raw.decode("utf-8", errors="replace").strip())
            found = {k.lower(): v for k, v in (err.headers or {}).items()}
            err.close()
            if self.raise_refusals and err.code in (401, 403):
                raise self._error(
                    "auth_failed",
                    f"sink {self.name!r}: {self.base} refused the credentials "
                    f"(HTTP {err.code}): {message_of(text) or err.reason}",
                ) from None
            return Reply(err.code, text, found)
        except urllib.error.URLError as err:
            raise self._error(
                "unreachable", f"sink {self.name!r}: cannot reach {self.base}: {why(err.reason)}"
            ) from None
        except TimeoutError:
            raise self._error(
                "unreachable",
                f"sink {self.name!r}: {self.base} did not answer within {self.timeout:g}s",
            ) from None
        except (ConnectionError, OSError) as exc:
            raise self._error(
                "unreachable", f"sink {self.name!r}: cannot reach {self.base}: {why(exc)}"
            ) from None
        found = {k.lower(): v for k, v in response.getheaders()}
        if stream:
            return Reply(int(response.status), headers=found, response=response)
        with response:
            try:
                raw = response.read(MAX_BODY)
            except (OSError, TimeoutError) as exc:
                raise self._error(
                    "unreachable", f"sink {self.name!r}: the answer broke off: {why(exc)}"
                ) from None
        return Reply(
            int(response.status), self.redact(raw.decode("utf-8", errors="replace")), found
        )

    def lines(self, reply: Reply) -> Iterator[bytes]:
        """Lines of a streamed body; a connection dropped mid-stream is a SinkError."""
        response = reply.response
        if response is None:
            yield from (line.encode() for line in reply.text.splitlines(keepends=True))
            return
        try:
            yield from response
        except (OSError, TimeoutError) as exc:
            raise self._error(
                "unreachable", f"sink {self.name!r}: the answer broke off: {why(exc)}"
            ) from None
        finally:
            response.close()

    def failure(self, reply: Reply, what: str) -> Exception:
        """The error for an unexpected status.

        ``not_found`` only when the server says the database does not exist (InfluxDB 3's
        404); a 404 for a wrong URL or a missing v2 bucket is ``query_failed``, because
        those are configuration mistakes, not an empty database.
        """
        detail = message_of(reply.text) or f"HTTP {reply.status}"
        reason = "not_found" if "database not found" in detail else "query_failed"
        return self._error(
            reason, f"sink {self.name!r}: {what} failed (HTTP {reply.status}): {detail}"
        )
