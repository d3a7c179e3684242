"""The meter-pulse tiers on InfluxDB 3 Core / Enterprise: one database per tier.

What the InfluxDB 3 HTTP API offers, and so what ``setup-influxdb`` does here:

- tiers are databases: ``GET /api/v3/configure/database?format=json`` lists them, ``POST
  /api/v3/configure/database`` ``{"db": NAME, "retention_period": "30d"}`` creates one (no
  ``retention_period``: kept forever). Retention periods are whole hours or days (the API has
  no minutes or seconds for them). An existing database whose retention differs (read with
  InfluxQL ``SHOW RETENTION POLICIES`` on ``/api/v3/query_influxql``) is a mismatch, not
  changed: Core documents retention as fixed at creation.
- InfluxDB 3 Core allows 5 databases: the 4 tiers plus the sink's own database fit exactly.
- there is no task engine for downsampling (the processing engine runs Python plugins on the
  server, which this bundle does not install): the gpio_pulse plugin computes the 1m/5m/1h rows
  itself and Telegraf writes them to the tier databases. Setup reports that step as present
  when a gpio_pulse source is configured.
- tokens: Core has admin tokens only (full access); a token limited to some databases needs
  Enterprise (``POST /api/v3/enterprise/configure/token`` with ``db`` read/write
  permissions). On Core the writer/reader steps are "unsupported", with what to do instead.
  The edition is read from ``/ping``'s ``X-Influxdb-Build`` header.
- single points cannot be deleted in InfluxDB 3, so ``verify``'s test point goes to a table of
  its own, ``bridge_verify``, in the raw database, and stays there.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from telegraf_bridge.cli.config_model import InfluxSink, V3Sink, expect
from telegraf_bridge.cli.influx.admin._http import (
    admin_errors,
    human_retention,
    parse_go_duration,
    parse_json,
    reachability_steps,
)
from telegraf_bridge.cli.influx.admin._secrets import read_secret, secret_file, store_secret
from telegraf_bridge.cli.influx.admin.base import AdminError, Check, Step, TierUsage
from telegraf_bridge.cli.influx.admin.registry import admin_token
from telegraf_bridge.cli.influx.auth import Credential
from telegraf_bridge.cli.influx.client import as_int
from telegraf_bridge.cli.influx.sql import sql_ident, sql_string
from telegraf_bridge.cli.influx.transport import Reply, message_of
from telegraf_bridge.cli.influx.v3 import InfluxV3Client, missing_table
from telegraf_bridge.cli.tiers import Layout, Tier

VERIFY_MEASUREMENT = "bridge_verify"
INTERNAL_DATABASES = frozenset({"_internal"})
CORE_DATABASE_LIMIT = 5
_SETUP = "run bridge-cli setup-influxdb (it creates what is missing)"
_CORE_TOKENS = (
    "InfluxDB 3 Core has only admin tokens, which can do everything: give Telegraf and Grafana "
    "a named admin token of their own (influxdb3 create token --admin --name telegraf, or POST "
    "/api/v3/configure/token/named_admin), or use InfluxDB 3 Enterprise for tokens limited to "
    "these databases"
)


def retention_period(tier: Tier) -> str | None:
    """The ``retention_period`` to create ``tier`` with (None: forever); ValueError if unusable."""
    if tier.forever:
        return None
    if tier.retention_s % 86400 == 0:
        return f"{tier.retention_s // 86400}d"
    if tier.retention_s % 3600 == 0:
        return f"{tier.retention_s // 3600}h"
    raise ValueError(
        f"InfluxDB 3 retention periods are whole hours or days; {tier.name}'s "
        f"{tier.retention_s}s is neither"
    )


class InfluxV3Admin:
    """:class:`~telegraf_bridge.cli.influx.admin.base.AdminBackend` for InfluxDB 3.

    ``write_names`` are the databases Telegraf writes to this sink (a writer token gets write
    on exactly these); empty means the raw tier and the sink's database.
    """

    kind = "influxdb_v3"

    def __init__(
        self,
        sink: V3Sink,
        token: str,
        *,
        timeout: float = 10.0,
        write_names: Sequence[str] = (),
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.name = sink.name
        self.url = sink.url.rstrip("/")
        self.database = sink.database
        self._write_names = tuple(write_names)
        self._clock = clock
        where = sink.token_env or sink.token_file or "token_env/token_file"
        steps = (
            f"check the token in {where}: it must be an admin token of this server "
            "(influxdb3 create token --admin)",
        )
        self._client = InfluxV3Client(
            sink, Credential(token), timeout=timeout, errors=admin_errors(steps)
        )
        self.build = ""
        self.version = ""

    @classmethod
    def from_sink(
        cls,
        sink: InfluxSink,
        env: Mapping[str, str],
        *,
        timeout: float,
        write_names: Sequence[str],
        resample_every_s: int | None,
    ) -> InfluxV3Admin:
        """The backend for a validated sink, its credential read from ``env`` (see registry)."""
        del resample_every_s  # InfluxDB 3 has no server-side downsampling
        sink = expect(sink, V3Sink)
        return cls(sink, admin_token(sink, env), timeout=timeout, write_names=write_names)

    # -- identity and connection -----------------------------------------------------------------

    def target(self) -> str:
        """``InfluxDB 3 <edition> URL``."""
        edition = f" {self.build}" if self.build else ""
        return f"InfluxDB 3{edition} {self.url}"

    def connect(self) -> None:
        """Reachable (``/ping``), edition known, and the token may list databases (admin)."""
        ping = self._client.ping()
        status, text, headers = ping.status, ping.text, ping.headers
        if status != 200:
            raise AdminError(
                f"{self.url}/ping answered HTTP {status} ({message_of(text) or 'no body'}): "
                "this is not an InfluxDB 3 server",
                reachability_steps(self.url),
            )
        self.build = headers.get("x-influxdb-build", "")
        doc = parse_json(text, "GET /ping")
        self.version = str((doc or {}).get("version") or headers.get("x-influxdb-version") or "")
        self._databases()

    @property
    def enterprise(self) -> bool:
        """Whether the server said it is InfluxDB 3 Enterprise."""
        return self.build.lower() == "enterprise"

    @staticmethod
    def _answer(reply: Reply) -> tuple[int, str]:
        return reply.status, reply.text

    def _databases(self) -> set[str]:
        status, text = self._answer(self._client.databases())
        if status != 200:
            raise AdminError(f"listing databases failed (HTTP {status}): {message_of(text)}")
        doc = parse_json(text, "listing databases") or []
        names: set[str] = set()
        if isinstance(doc, dict):  # the shape the OpenAPI document describes
            names.update(str(n) for n in doc.get("databases") or [])
        else:  # the shape the server sends: one row per database
            names.update(str(row.get("iox::database")) for row in doc if isinstance(row, dict))
        return names - INTERNAL_DATABASES

    def _retention(self, database: str) -> int | None:
        """Seconds the database keeps data (0 = forever); None when the server does not say."""
        status, text = self._answer(
            self._client.query_influxql(database, "SHOW RETENTION POLICIES")
        )
        if status != 200:
            return None
        rows = parse_json(text, "SHOW RETENTION POLICIES") or []
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and row.get("iox::database") == database:
                return parse_go_duration(str(row.get("duration") or ""))
        return None

    # -- setup -----------------------------------------------------------------------------------

    def plan(self, layout: Layout, secrets_dir: Path) -> list[Step]:
        """One database per tier, the plugin's aggregation, writer and reader tokens."""
        if not self.build:
            self.connect()
        existing = self._databases()
        steps = [self._database_step(tier, existing) for tier in layout.tiers]
        steps.append(self._downsampling_step(layout))
        for role, action, names in (
            ("writer", "write", self._writer_names(layout)),
            ("reader", "read", self._reader_names(layout)),
        ):
            steps.append(self._token_step(role, action, names, secrets_dir))
        return steps

    def _database_step(self, tier: Tier, existing: set[str]) -> Step:
        what = f"database {tier.name} ({human_retention(tier.retention_s)})"
        try:
            period = retention_period(tier)
        except ValueError as exc:
            return Step(what, "unsupported", f"{exc}: set downsampling retention to e.g. 30d")
        if tier.name not in existing:
            detail = f"retention_period {period}" if period else "no retention period"
            doc: dict[str, object] = {"db": tier.name}
            if period is not None:
                doc["retention_period"] = period

            def create() -> str:
                status, text = self._answer(self._client.create_database(doc))
                if status in (200, 201, 204):
                    return detail
                if status == 409:
                    return "already existed"
                steps: tuple[str, ...] = ()
                if status == 422:
                    steps = (
                        f"InfluxDB 3 Core allows {CORE_DATABASE_LIMIT} databases: delete one "
                        "you do not need (DELETE /api/v3/configure/database?db=NAME) or use "
                        "Enterprise",
                    )
                raise AdminError(
                    f"creating database {tier.name} failed (HTTP {status}): {message_of(text)}",
                    steps,
                )

            return Step(what, "create", detail, apply=create)
        found = self._retention(tier.name)
        if found is not None and found != tier.retention_s:
            return Step(
                what,
                "mismatch",
                f"exists with {human_retention(found)}; not changed (InfluxDB 3 Core sets a "
                "retention only when a database is created): create a new database with the "
                "wanted retention and move the data, or change downsampling in bridge.yaml",
            )
        detail = "" if found is not None else "retention not reported by the server"
        return Step(what, "present", detail)

    def _downsampling_step(self, layout: Layout) -> Step:
        what = "downsampling 1m/5m/1h"
        if layout.gpio_sources:
            return Step(
                what,
                "present",
                "computed by the gpio_pulse plugin ("
                + ", ".join(layout.gpio_sources)
                + ") and written to the tier databases by Telegraf; InfluxDB 3 has no task "
                "engine for it",
            )
        return Step(
            what,
            "unsupported",
            "InfluxDB 3 has no task engine, and no gpio_pulse source is configured to compute "
            "the aggregates: add the gpio_pulse source to bridge.yaml",
        )

    def _writer_names(self, layout: Layout) -> list[str]:
        return list(self._write_names) or [layout.raw.name, self.database]

    def _reader_names(self, layout: Layout) -> list[str]:
        names = [t.name for t in layout.tiers]
        return [*names, self.database] if self.database not in names else names

    def _token_step(self, role: str, action: str, names: list[str], secrets_dir: Path) -> Step:
        what = f"{role} token ({action} on {', '.join(names)})"
        if not self.enterprise:
            return Step(what, "unsupported", _CORE_TOKENS)
        path = secret_file(secrets_dir, self.name, role, "token")
        if read_secret(path) is not None:
            return Step(what, "present", f"token in {path}")
        token_name = f"{self.name}-{role}"
        doc = {
            "token_name": token_name,
            "permissions": [
                {"resource_type": "db", "resource_identifier": names, "actions": [action]}
            ],
        }

        def create() -> str:
            status, text = self._answer(self._client.create_token(doc))
            if status == 409:
                raise AdminError(
                    f"a token named {token_name} exists, but {path} is missing and a token "
                    "is shown only when it is created",
                    (
                        f"delete it (DELETE /api/v3/configure/token?token_name={token_name}) "
                        "and run setup-influxdb again",
                    ),
                )
            if status not in (200, 201):
                raise AdminError(
                    f"creating token {token_name} failed (HTTP {status}): {message_of(text)}"
                )
            created = parse_json(text, "the new token") or {}
            token = str(created.get("token") or "")
            if not token:
                raise AdminError(f"the server created {token_name} but sent no token string")
            store_secret(path, token)
            return f"token in {path} (mode 0600)"

        return Step(what, "create", f"token to {path}", apply=create)

    # -- verify ----------------------------------------------------------------------------------

    def checks(self, layout: Layout) -> list[Check]:
        """Each tier database, who computes the aggregates, and a real write read back."""
        existing = self._databases()
        rows: list[Check] = []
        for tier in layout.tiers:
            name = f"tier {tier.name}"
            wanted = human_retention(tier.retention_s)
            if tier.name not in existing:
                rows.append(Check(name, False, "database missing", _SETUP))
                continue
            found = self._retention(tier.name)
            if found is not None and found != tier.retention_s:
                rows.append(
                    Check(
                        name,
                        False,
                        f"retention {human_retention(found)}, wanted {wanted}",
                        "recreate the database with the wanted retention, or change "
                        "downsampling in bridge.yaml",
                    )
                )
            else:
                rows.append(Check(name, True, f"database, {wanted}"))
        step = self._downsampling_step(layout)
        rows.append(
            Check(
                "downsampling",
                True if step.status == "present" else None,
                step.detail,
            )
        )
        rows.append(self._test_write(layout, layout.raw.name in existing))
        return rows

    def _test_write(self, layout: Layout, raw_exists: bool) -> Check:
        name = "test write"
        raw = layout.raw.name
        if not raw_exists:
            return Check(name, None, f"skipped: database {raw} is missing")
        marker = secrets.token_hex(8)
        line = f"{VERIFY_MEASUREMENT},check={marker} ok=1i {self._clock()}"
        status, text = self._answer(self._client.write_lp(raw, line))
        if status != 204:
            return Check(
                name,
                False,
                f"writing to {raw} failed (HTTP {status}): {message_of(text)}",
                "check the token's write permission on the database and the server's log",
            )
        sql = (
            f"SELECT {sql_ident('ok')} FROM {sql_ident(VERIFY_MEASUREMENT)} "  # noqa: S608 - quoted
            f"WHERE {sql_ident('check')} = {sql_string(marker)}"
        )
        rows = self._sql(raw, sql)
        if rows is None or len(rows) != 1:
            return Check(
                name,
                False,
                f"a marker point written to {raw} could not be read back",
                "check the server's log",
            )
        return Check(
            name,
            True,
            f"marker point written to {raw}/{VERIFY_MEASUREMENT} and read back; InfluxDB 3 "
            f"cannot delete single points, so it stays in the {VERIFY_MEASUREMENT} table",
        )

    def _sql(self, database: str, sql: str) -> list[dict[str, object]] | None:
        """Rows of a SQL query; None when the table is not there (a planning error)."""
        status, text = self._answer(self._client.query_sql(database, sql))
        if status == 400 and ("not found" in text or missing_table(text)):
            return None
        if status != 200:
            raise AdminError(f"SQL query on {database} failed (HTTP {status}): {message_of(text)}")
        rows = parse_json(text, "SQL query") or []
        return [r for r in rows if isinstance(r, dict)]

    # -- usage and delete ------------------------------------------------------------------------

    def usage(self, layout: Layout) -> list[TierUsage]:
        """Each tier database and the rows of each of its tables (SQL ``COUNT(*)``)."""
        existing = self._databases()
        result: list[TierUsage] = []
        for tier in layout.tiers:
            if tier.name not in existing:
                result.append(TierUsage(tier.name, False, None, "missing"))
                continue
            tables = [
                str(r["table_name"])
                for r in self._sql(tier.name, "SHOW TABLES") or []
                if r.get("table_schema") == "iox" and r.get("table_name")
            ]
            counts: list[str] = []
            total = 0
            for table in sorted(tables):
                rows = self._sql(tier.name, f"SELECT COUNT(*) AS points FROM {sql_ident(table)}")  # noqa: S608 - quoted
                points = as_int((rows or [{}])[0].get("points"))
                total += points
                counts.append(f"{table} {points}")
            result.append(TierUsage(tier.name, True, total, ", ".join(counts) or "no tables"))
        return result

    def delete_tier(self, layout: Layout, name: str) -> None:
        """``DELETE /api/v3/configure/database?db=NAME`` (a database already gone is fine)."""
        status, text = self._answer(self._client.delete_database(name))
        if status not in (200, 204, 404):
            raise AdminError(f"deleting database {name} failed (HTTP {status}): {message_of(text)}")
