"""Read-only queries against a configured sink: InfluxDB 1.x (InfluxQL), v2/Cloud (Flux), v3 (SQL).

Why a module of its own: ``healthcheck``, ``rssi-report`` and later per-device queries ask the
same two questions of any sink, and each language has its own quoting rules that must be right
once. It speaks HTTP with the standard library only (``urllib``, ``csv``, ``json``) because these
commands run on a Pi Zero from a systemd timer, where the official clients (pyarrow, pandas) do
not install or take seconds to import.

The two questions (see :class:`SinkQuery`):

- ``newest_point``: the timestamp of the newest point of a measurement (optionally only points
  that carry a field), at or after a lower time bound;
- ``series``: ``(tag value, numeric field value)`` for every point in a window, streamed so that
  memory stays bounded however many points the window holds.

Identifiers and literals taken from the command line are always quoted for the target language
(InfluxQL double-quoted identifiers, Flux string literals, SQL double-quoted identifiers and
single-quoted strings), so a measurement or field name can never change the query's shape.
Secrets (tokens, passwords) are sent in headers only and redacted from every error message.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPResponse
from pathlib import Path
from typing import Any, Protocol

from telegraf_bridge.cli.settings import InvalidConfig, Settings, load_settings
from telegraf_bridge.plugins.common import (
    ConfigError,
    format_rfc3339_ns,
    parse_duration,
    parse_rfc3339_ns,
)

QUERYABLE_TYPES = ("influxdb_v1", "influxdb_v2", "influxdb_v3")
# Points per chunk that InfluxDB 1.x streams back (chunked=true); bounds the client's memory.
V1_CHUNK_SIZE = 5000
# Error bodies are read up to this size: enough for any server message, bounded on a Pi Zero.
_MAX_ERROR_BODY = 64 * 1024
_ANNOTATIONS = ["datatype", "group", "default"]
# InfluxDB 3 answers a query on a table (or column) that was never written with a planning
# error instead of an empty result; both mean "no data" here.
_V3_MISSING_TABLE = re.compile(r"table '[^']*' not found")
_V3_MISSING_COLUMN = re.compile(r"No field named")


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


class SinkQuery(Protocol):
    """What the monitoring commands ask of a sink, whatever its query language."""

    name: str
    kind: str

    def describe(self) -> str:
        """Where the queries go, for messages (never includes a secret)."""
        ...

    def newest_point(self, measurement: str, field: str | None, *, since_ns: int) -> int | None:
        """Integer-ns timestamp of the newest point at or after ``since_ns``, or None."""
        ...

    def series(
        self, measurement: str, field: str, tag: str, start_ns: int
    ) -> Iterator[tuple[str, float]]:
        """``(tag value, field value)`` of every numeric point since ``start_ns``, streamed.

        Points without the tag yield an empty tag value; non-numeric values are skipped.
        """
        ...


# -- quoting -------------------------------------------------------------------------------------


def influxql_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier (backslash, quote and newline escaped)."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def flux_string(value: str) -> str:
    """A Flux string literal: backslash, quote, newline and ``${`` interpolation escaped."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("${", "\\${")
    )
    return f'"{escaped}"'


def sql_ident(name: str) -> str:
    """A SQL double-quoted identifier (embedded quotes doubled; case is kept)."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    """A SQL single-quoted string literal (embedded quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def parse_influx_time_ns(text: str) -> int:
    """A time from InfluxDB's answers: RFC3339Nano (v2) or naive UTC (v3's JSON)."""
    return parse_rfc3339_ns(text, assume_utc=True)


def _number(value: object) -> float | None:
    """A numeric field value as float; booleans, strings and nulls are not numbers here."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


# -- choosing and opening a sink -----------------------------------------------------------------


def load_query_settings(config_path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """The settings to pick a sink from: ``config_path``, or the environment alone.

    Without a config file the seeds' variables (``INFLUX_URL``/``INFLUX_DB``, ...) and the
    ``BRIDGE_*`` overrides still describe sinks, so a seed's ``.env`` is enough to run a
    health check. An invalid config is a ``config_error`` listing every problem.
    """
    try:
        if config_path is None:
            return load_settings(None, env, text="", base_dir=Path.cwd())
        return load_settings(config_path, env)
    except InvalidConfig as exc:
        raise SinkError("config_error", str(exc)) from None


def select_sink(settings: Settings, name: str | None) -> dict[str, Any]:
    """The sink to query: ``name``, or the first enabled InfluxDB sink.

    Raises :class:`SinkError` (``config_error``) naming the sinks there are when ``name`` is
    unknown, disabled or a file sink, or when no InfluxDB sink is configured.
    """
    queryable = [s for s in settings.active_sinks() if s["type"] in QUERYABLE_TYPES]
    listing = ", ".join(f"{s['name']} ({s['type']})" for s in settings.sinks) or "none"
    if name is None:
        if not queryable:
            raise SinkError(
                "config_error",
                f"no enabled InfluxDB sink in the config to query (sinks: {listing})",
            )
        return queryable[0]
    for sink in settings.sinks:
        if sink["name"] != name:
            continue
        if not sink["enabled"]:
            raise SinkError("config_error", f"sink {name!r} is disabled (enabled: false)")
        if sink["type"] not in QUERYABLE_TYPES:
            raise SinkError(
                "config_error", f"sink {name!r} is a {sink['type']} sink; it cannot be queried"
            )
        return sink
    raise SinkError("config_error", f"no sink named {name!r}; the config has: {listing}")


def _secret_from(sink: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The sink's token (token_env or token_file), or "" when it has none."""
    name = sink["name"]
    if sink.get("token_env"):
        var = sink["token_env"]
        value = env.get(var)
        if not value:
            raise SinkError(
                "config_error",
                f"sink {name!r}: token_env names {var}, which is not set in this environment",
            )
        return value
    if sink.get("token_file"):
        path = Path(sink["token_file"])
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SinkError(
                "config_error", f"sink {name!r}: cannot read token_file {path}: {exc.strerror}"
            ) from None
        if not value:
            raise SinkError("config_error", f"sink {name!r}: token_file {path} is empty")
        return value
    return ""


def open_sink(
    sink: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    timeout: float | None = None,
) -> SinkQuery:
    """A :class:`SinkQuery` for a validated sink dictionary (from ``Settings.active_sinks``).

    ``timeout`` (seconds per socket operation) defaults to the sink's own ``timeout``.
    """
    environ = os.environ if env is None else env
    try:
        seconds = timeout if timeout is not None else parse_duration(sink["timeout"])
    except ConfigError as exc:
        raise SinkError("config_error", str(exc)) from None
    kind = sink["type"]
    if kind == "influxdb_v1":
        password = ""
        if sink.get("password_env"):
            password = environ.get(sink["password_env"], "")
            if not password:
                raise SinkError(
                    "config_error",
                    f"sink {sink['name']!r}: password_env names {sink['password_env']}, which "
                    "is not set in this environment",
                )
        http = _Http(sink, seconds, secrets=(password,))
        return InfluxV1Query(sink, http, username=sink.get("username") or "", password=password)
    if kind == "influxdb_v2":
        token = _secret_from(sink, environ)
        if not token:
            raise SinkError("config_error", f"sink {sink['name']!r} has no token")
        return InfluxV2Query(sink, _Http(sink, seconds, secrets=(token,)), token)
    if kind == "influxdb_v3":
        token = _secret_from(sink, environ)
        return InfluxV3Query(sink, _Http(sink, seconds, secrets=(token,)), token)
    raise SinkError("config_error", f"sink {sink['name']!r} ({kind}) cannot be queried")


# -- HTTP ----------------------------------------------------------------------------------------


@dataclass
class _Reply:
    """An HTTP answer: the status and, for errors, the (bounded, redacted) body text."""

    status: int
    response: HTTPResponse | None
    error_text: str = ""


class _Http:
    """urllib with the sink's TLS options, timeouts, and secrets kept out of messages."""

    def __init__(self, sink: Mapping[str, Any], timeout: float, secrets: Iterable[str]) -> None:
        self.base = str(sink["url"]).rstrip("/")
        self.name = str(sink["name"])
        self.timeout = timeout
        self.secrets = tuple(s for s in secrets if s)
        self.context: ssl.SSLContext | None = None
        if self.base.startswith("https://"):
            cafile = sink.get("tls_ca") or None
            self.context = ssl.create_default_context(cafile=cafile)
            if sink.get("insecure_skip_verify"):
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        raise_refusals: bool = True,
    ) -> _Reply:
        """Send one request; network failures and 401/403 raise :class:`SinkError`.

        ``raise_refusals=False`` returns a 401/403 as a reply like any other status, for a
        caller that must tell "wrong token" from "token lacks this one right" itself (the v2
        admin backend: a scoped token is refused some buckets by design).
        """
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        # The URL is the sink's validated http(s) URL from the config, never arbitrary input.
        req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))  # noqa: S310
        try:
            response = urllib.request.urlopen(req, timeout=self.timeout, context=self.context)  # noqa: S310
        except urllib.error.HTTPError as err:
            raw = err.read(_MAX_ERROR_BODY) if err.fp is not None else b""
            text = self.redact(raw.decode("utf-8", errors="replace").strip())
            err.close()
            if raise_refusals and err.code in (401, 403):
                raise SinkError(
                    "auth_failed",
                    f"sink {self.name!r}: {self.base} refused the credentials "
                    f"(HTTP {err.code}): {_message(text) or err.reason}",
                ) from None
            return _Reply(err.code, None, text)
        except urllib.error.URLError as err:
            raise SinkError(
                "unreachable", f"sink {self.name!r}: cannot reach {self.base}: {_why(err.reason)}"
            ) from None
        except TimeoutError:
            raise SinkError(
                "unreachable",
                f"sink {self.name!r}: {self.base} did not answer within {self.timeout:g}s",
            ) from None
        except (ConnectionError, OSError) as exc:
            raise SinkError(
                "unreachable", f"sink {self.name!r}: cannot reach {self.base}: {_why(exc)}"
            ) from None
        return _Reply(int(response.status), response)

    def failure(self, reply: _Reply, what: str) -> SinkError:
        """The error for an unexpected status.

        ``not_found`` only when the server says the database does not exist (InfluxDB 3's
        404); a 404 for a wrong URL or a missing v2 bucket is ``query_failed``, because
        those are configuration mistakes, not an empty database.
        """
        detail = _message(reply.error_text) or f"HTTP {reply.status}"
        reason = "not_found" if "database not found" in detail else "query_failed"
        return SinkError(
            reason, f"sink {self.name!r}: {what} failed (HTTP {reply.status}): {detail}"
        )


def _why(reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        return f"name resolution failed ({reason.strerror})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def _message(text: str) -> str:
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


def _read_guarded(response: HTTPResponse, sink: str) -> Iterator[bytes]:
    """Lines of a streamed body; a connection dropped mid-stream is a SinkError."""
    try:
        yield from response
    except (OSError, TimeoutError) as exc:
        raise SinkError(
            "unreachable", f"sink {sink!r}: the answer broke off: {_why(exc)}"
        ) from None
    finally:
        response.close()


# -- InfluxDB 1.x --------------------------------------------------------------------------------


class InfluxV1Query:
    """InfluxQL over ``POST /query`` (``db``, ``rp``, ``epoch=ns``; chunked for series).

    Authentication is HTTP Basic with ``username`` and the password from ``password_env``, so
    the password never appears in a URL or a proxy's access log.
    """

    kind = "influxdb_v1"

    def __init__(self, sink: Mapping[str, Any], http: _Http, username: str, password: str) -> None:
        self.name = str(sink["name"])
        self.database = str(sink["database"])
        self.retention_policy = str(sink.get("retention_policy") or "")
        self.http = http
        self.headers = {"Accept": "application/json"}
        if username:
            pair = base64.b64encode(f"{username}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {pair}"

    def describe(self) -> str:
        """``influxdb_v1 URL db=DB [rp=RP]``."""
        rp = f" rp={self.retention_policy}" if self.retention_policy else ""
        return f"{self.kind} {self.http.base} db={self.database}{rp}"

    def _post(self, query: str, *, chunked: bool) -> HTTPResponse:
        form = {"db": self.database, "q": query, "epoch": "ns"}
        if self.retention_policy:
            form["rp"] = self.retention_policy
        if chunked:
            form["chunked"] = "true"
            form["chunk_size"] = str(V1_CHUNK_SIZE)
        headers = {**self.headers, "Content-Type": "application/x-www-form-urlencoded"}
        reply = self.http.request(
            "POST", "/query", body=urllib.parse.urlencode(form).encode(), headers=headers
        )
        if reply.response is None:
            raise self.http.failure(reply, "InfluxQL query")
        return reply.response

    def _results(self, response: HTTPResponse) -> Iterator[dict[str, Any]]:
        """Each statement result of a (possibly chunked) answer, errors raised."""
        for line in _read_guarded(response, self.name):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                raise SinkError(
                    "query_failed", f"sink {self.name!r}: the answer is not JSON: {line[:200]!r}"
                ) from None
            if "error" in doc:
                raise SinkError("query_failed", f"sink {self.name!r}: {doc['error']}")
            for result in doc.get("results", []):
                error = result.get("error")
                if error:
                    reason = "not_found" if str(error).startswith("database not found") else ""
                    raise SinkError(reason or "query_failed", f"sink {self.name!r}: {error}")
                yield result

    def statements(self, query: str, *, chunked: bool = False) -> Iterator[dict[str, Any]]:
        """Each statement result of ``query`` (statements separated by ``;``), errors raised.

        For callers that build their own (quoted) InfluxQL, such as the per-device queries.
        """
        return self._results(self._post(query, chunked=chunked))

    def newest_point(self, measurement: str, field: str | None, *, since_ns: int) -> int | None:
        """``SELECT <field|*> FROM m WHERE time >= since ORDER BY time DESC LIMIT 1``."""
        selection = influxql_ident(field) if field else "*"
        # Safe: every name is quoted by influxql_ident, the time is an int.
        query = (
            f"SELECT {selection} FROM {influxql_ident(measurement)} "  # noqa: S608
            f"WHERE time >= {int(since_ns)} ORDER BY time DESC LIMIT 1"
        )
        newest: int | None = None
        for result in self._results(self._post(query, chunked=False)):
            for series in result.get("series", []):
                for row in series.get("values", []):
                    stamp = int(row[0])
                    newest = stamp if newest is None else max(newest, stamp)
        return newest

    def series(
        self, measurement: str, field: str, tag: str, start_ns: int
    ) -> Iterator[tuple[str, float]]:
        """``SELECT field FROM m WHERE time >= start GROUP BY tag``, chunked."""
        # Safe: every name is quoted by influxql_ident, the time is an int.
        query = (
            f"SELECT {influxql_ident(field)} FROM {influxql_ident(measurement)} "  # noqa: S608
            f"WHERE time >= {int(start_ns)} GROUP BY {influxql_ident(tag)}"
        )
        for result in self._results(self._post(query, chunked=True)):
            for series in result.get("series", []):
                key = str((series.get("tags") or {}).get(tag, ""))
                for row in series.get("values", []):
                    value = _number(row[1]) if len(row) > 1 else None
                    if value is not None:
                        yield key, value


# -- InfluxDB 2.x / Cloud ------------------------------------------------------------------------


class InfluxV2Query:
    """Flux over ``POST /api/v2/query?org=`` with ``Authorization: Token``.

    The request body is the JSON form with the dialect annotations ``datatype``, ``group`` and
    ``default`` (as the official clients send it): with a plain ``application/vnd.flux`` body the
    server leaves the annotation rows out. The annotated CSV answer is parsed as a stream.
    """

    kind = "influxdb_v2"

    def __init__(self, sink: Mapping[str, Any], http: _Http, token: str) -> None:
        self.name = str(sink["name"])
        self.org = str(sink["organization"])
        self.bucket = str(sink["bucket"])
        self.http = http
        self.headers = {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "Accept": "application/csv",
        }

    def describe(self) -> str:
        """``influxdb_v2 URL org=ORG bucket=BUCKET``."""
        return f"{self.kind} {self.http.base} org={self.org} bucket={self.bucket}"

    def _records(self, flux: str) -> Iterator[dict[str, str]]:
        yield from parse_annotated_csv(self.csv_lines(flux), self.name)

    def csv_lines(self, flux: str) -> Iterator[str]:
        """The annotated CSV answer to ``flux`` as text lines, streamed.

        For callers that need more than :func:`parse_annotated_csv` keeps (the per-device
        queries read each value's ``#datatype``).
        """
        body = json.dumps(
            {
                "query": flux,
                "type": "flux",
                "dialect": {"annotations": _ANNOTATIONS, "header": True, "delimiter": ","},
            }
        ).encode()
        reply = self.http.request(
            "POST", "/api/v2/query", params={"org": self.org}, body=body, headers=self.headers
        )
        if reply.response is None:
            raise self.http.failure(reply, "Flux query")
        for raw in _read_guarded(reply.response, self.name):
            yield raw.decode("utf-8")

    def _base(self, measurement: str, field: str | None, since_ns: int) -> str:
        predicate = f"r._measurement == {flux_string(measurement)}"
        if field:
            predicate += f" and r._field == {flux_string(field)}"
        return (
            f"from(bucket: {flux_string(self.bucket)})\n"
            f"  |> range(start: {format_rfc3339_ns(since_ns)})\n"
            f"  |> filter(fn: (r) => {predicate})\n"
        )

    def newest_point(self, measurement: str, field: str | None, *, since_ns: int) -> int | None:
        """``last()`` per series, then the latest of those across all series.

        Only ``_time`` is kept before ``group()``: fields of different types in one table
        would be a schema collision on ``_value``.
        """
        flux = (
            self._base(measurement, field, since_ns)
            + '  |> last()\n  |> keep(columns: ["_time"])\n  |> group()\n'
            + '  |> max(column: "_time")\n'
        )
        newest: int | None = None
        for record in self._records(flux):
            stamp = parse_influx_time_ns(record["_time"])
            newest = stamp if newest is None else max(newest, stamp)
        return newest

    def series(
        self, measurement: str, field: str, tag: str, start_ns: int
    ) -> Iterator[tuple[str, float]]:
        """Only the value and the tag column travel (``keep``): a fraction of the full rows."""
        flux = (
            self._base(measurement, field, start_ns)
            + f'  |> keep(columns: ["_value", {flux_string(tag)}])\n'
        )
        for record in self._records(flux):
            try:
                value = float(record.get("_value", ""))
            except ValueError:
                continue
            yield record.get(tag, ""), value


def annotated_rows(
    lines: Iterable[str], sink: str = ""
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """Rows of an InfluxDB 2 (annotated) CSV answer: ``({column: text}, {column: datatype})``.

    Handles several tables with their own annotation and header rows, blank separator lines,
    ``#default`` cells, answers without annotations (every datatype then ``string``), and the
    error table (columns ``error``, ``reference``) that the server writes when a query fails
    after the answer has started. Streamed: one row in memory at a time.
    """
    header: list[str] | None = None
    defaults: list[str] = []
    datatypes: list[str] = []
    for row in csv.reader(lines):
        if not row or all(cell == "" for cell in row):
            header, defaults, datatypes = None, [], []
            continue
        if row[0].startswith("#"):
            if row[0] == "#default":
                defaults = row
            elif row[0] == "#datatype":
                datatypes = row
            header = None
            continue
        if header is None:
            header = row
            continue
        record: dict[str, str] = {}
        kinds: dict[str, str] = {}
        for index, name in enumerate(header):
            if not name:
                continue
            cell = row[index] if index < len(row) else ""
            if cell == "" and index < len(defaults):
                cell = defaults[index]
            record[name] = cell
            kinds[name] = datatypes[index] if index < len(datatypes) else "string"
        if "error" in record and "_value" not in record and "_time" not in record:
            raise SinkError("query_failed", f"sink {sink!r}: {record['error']}")
        yield record, kinds


def parse_annotated_csv(lines: Iterable[str], sink: str = "") -> Iterator[dict[str, str]]:
    """Records of an annotated CSV answer as ``{column: text}`` (numbers and booleans as text)."""
    for record, _kinds in annotated_rows(lines, sink):
        yield record


# -- InfluxDB 3 Core / Enterprise ----------------------------------------------------------------


class InfluxV3Query:
    """SQL over ``POST /api/v3/query_sql`` (JSON body ``db``, ``q``, ``format=jsonl``).

    JSON Lines stream one row per line, so memory stays bounded. A table or column that was
    never written is a planning error on InfluxDB 3 (``table '...' not found``): it is read as
    "no data", like an unknown database (404), which InfluxDB 3 creates on first write.
    """

    kind = "influxdb_v3"

    def __init__(self, sink: Mapping[str, Any], http: _Http, token: str) -> None:
        self.name = str(sink["name"])
        self.database = str(sink["database"])
        self.http = http
        self.headers = {"Content-Type": "application/json", "Accept": "application/jsonl"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def describe(self) -> str:
        """``influxdb_v3 URL db=DB``."""
        return f"{self.kind} {self.http.base} db={self.database}"

    def _rows(self, sql: str) -> Iterator[dict[str, Any]]:
        body = json.dumps({"db": self.database, "q": sql, "format": "jsonl"}).encode()
        reply = self.http.request("POST", "/api/v3/query_sql", body=body, headers=self.headers)
        if reply.response is None:
            text = reply.error_text
            if _V3_MISSING_TABLE.search(text) or _V3_MISSING_COLUMN.search(text):
                return
            raise self.http.failure(reply, "SQL query")
        for line in _read_guarded(reply.response, self.name):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise SinkError(
                    "query_failed", f"sink {self.name!r}: the answer is not JSON: {line[:200]!r}"
                ) from None
            if isinstance(row, dict):
                yield row

    def rows(self, sql: str) -> Iterator[dict[str, Any]]:
        """The rows of ``sql`` as JSON objects, streamed; a missing table or column is no rows.

        For callers that build their own (quoted) SQL, such as the per-device queries.
        """
        return self._rows(sql)

    def newest_point(self, measurement: str, field: str | None, *, since_ns: int) -> int | None:
        """``SELECT time FROM m WHERE time >= since [AND f IS NOT NULL] ORDER BY time DESC``."""
        where = f"time >= {sql_string(format_rfc3339_ns(since_ns))}"
        if field:
            where += f" AND {sql_ident(field)} IS NOT NULL"
        table = sql_ident(measurement)
        sql = f"SELECT time FROM {table} WHERE {where} ORDER BY time DESC LIMIT 1"  # noqa: S608 - quoted
        newest: int | None = None
        for row in self._rows(sql):
            if isinstance(row.get("time"), str):
                stamp = parse_influx_time_ns(row["time"])
                newest = stamp if newest is None else max(newest, stamp)
        return newest

    def series(
        self, measurement: str, field: str, tag: str, start_ns: int
    ) -> Iterator[tuple[str, float]]:
        """``SELECT tag, field FROM m WHERE time >= start AND field IS NOT NULL``."""
        # Safe: names quoted by sql_ident, the time by sql_string.
        sql = (
            f"SELECT {sql_ident(tag)}, {sql_ident(field)} FROM {sql_ident(measurement)} "  # noqa: S608
            f"WHERE time >= {sql_string(format_rfc3339_ns(start_ns))} "
            f"AND {sql_ident(field)} IS NOT NULL"
        )
        for row in self._rows(sql):
            value = _number(row.get(field))
            if value is not None:
                key = row.get(tag)
                yield ("" if key is None else str(key)), value


__all__ = [
    "QUERYABLE_TYPES",
    "InfluxV1Query",
    "InfluxV2Query",
    "InfluxV3Query",
    "SinkError",
    "SinkQuery",
    "annotated_rows",
    "flux_string",
    "influxql_ident",
    "load_query_settings",
    "open_sink",
    "parse_annotated_csv",
    "parse_influx_time_ns",
    "select_sink",
    "sql_ident",
    "sql_string",
]
