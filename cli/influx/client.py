"""What every InfluxDB client offers, whatever its version: a transport, a name, two questions.

Why a base class: one client class per InfluxDB version (:mod:`.v1`, :mod:`.v2`, :mod:`.v3`)
owns every endpoint of that version, each called from exactly one method
(``tests/test_influx_layers.py`` checks it). The monitoring commands (``healthcheck``,
``rssi-report``) only ask the two questions below, so they work on any version:

- ``newest_point``: the timestamp of the newest point of a measurement (optionally only points
  that carry a field), at or after a lower time bound;
- ``series``: ``(tag value, numeric field value)`` for every point in a window, streamed so that
  memory stays bounded however many points the window holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from telegraf_bridge.cli.config_model import InfluxSink
from telegraf_bridge.cli.influx.auth import Credential, Scheme, authorization
from telegraf_bridge.cli.influx.transport import ErrorMapper, Reply, SinkError, Transport, as_is
from telegraf_bridge.plugins.common import parse_rfc3339_ns


def parse_influx_time_ns(text: str) -> int:
    """A time from InfluxDB's answers: RFC3339Nano (v2) or naive UTC (v3's JSON)."""
    return parse_rfc3339_ns(text, assume_utc=True)


def as_int(value: object) -> int:
    """A JSON number (or its text) as an int; anything else is 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)  # exact for nanosecond times, which a float would round
        except ValueError:
            pass
        try:
            return int(float(value))
        except ValueError:
            return 0
    return 0


def number(value: object) -> float | None:
    """A numeric field value as float; booleans, strings and nulls are not numbers here."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


class Client:
    """One sink's server: its transport, and the questions every version answers.

    The transport carries the ``Authorization`` header of ``scheme``; ``raise_refusals`` and
    ``errors`` are handed to it (see :class:`Transport`).
    """

    kind: ClassVar[str]
    scheme: ClassVar[Scheme]
    # Whether the client can do nothing without a token (v2/Cloud refuses every anonymous call).
    requires_secret: ClassVar[bool] = False

    def __init__(
        self,
        sink: InfluxSink,
        credential: Credential,
        *,
        timeout: float,
        raise_refusals: bool = True,
        errors: ErrorMapper = as_is,
    ) -> None:
        self.name = sink.name
        self.http = Transport(
            sink,
            timeout,
            secrets=(credential.secret,),
            auth=authorization(self.scheme, credential),
            raise_refusals=raise_refusals,
            errors=errors,
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        doc: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
        stream: bool = False,
    ) -> Reply:
        """One request: ``doc`` is sent as JSON, ``data`` as it is (with ``content_type``)."""
        headers = {"Accept": accept}
        if doc is not None:
            data = json.dumps(doc).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        return self.http.request(
            method, path, params=params, body=data, headers=headers, stream=stream
        )

    def _json_lines(self, reply: Reply) -> Iterator[Any]:
        """Each JSON document of a streamed, line-delimited answer."""
        for line in self.http.lines(reply):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError:
                raise SinkError(
                    "query_failed", f"sink {self.name!r}: the answer is not JSON: {line[:200]!r}"
                ) from None

    def describe(self) -> str:
        """Where the queries go, for messages (never includes a secret)."""
        raise NotImplementedError

    def newest_point(self, measurement: str, field: str | None, *, since_ns: int) -> int | None:
        """Integer-ns timestamp of the newest point at or after ``since_ns``, or None."""
        raise NotImplementedError

    def series(
        self, measurement: str, field: str, tag: str, start_ns: int
    ) -> Iterator[tuple[str, float]]:
        """``(tag value, field value)`` of every numeric point since ``start_ns``, streamed.

        Points without the tag yield an empty tag value; non-numeric values are skipped.
        """
        raise NotImplementedError
