"""The meter-pulse tiers on InfluxDB 1.x: retention policies, continuous queries and users.

What ``setup-influxdb`` does here, over the 1.x HTTP API (``/ping``, ``/query`` with InfluxQL,
``/write``; standard library only):

- ``CREATE DATABASE`` for the sink's database when it is missing;
- one retention policy per tier in that database (``DURATION 30d`` / ``INF``, ``REPLICATION
  1``, never the default policy). An existing policy with another duration is a mismatch:
  reported, not altered (shortening a retention deletes data);
- the continuous queries of :mod:`._influxql` (the server-side downsampling); one whose text
  differs from the wanted one is a mismatch (a CQ cannot be altered, only dropped and
  recreated);
- a writer user (``GRANT WRITE``, for Telegraf) and a reader user (``GRANT READ``, for
  Grafana) on the database, each with a random password written to
  ``<secrets_dir>/<sink>_writer_password`` / ``_reader_password`` (mode 0600). The file is
  written before the user is created, so a failed run never loses a password and the next run
  uses the same one.

The admin credential is the sink's ``username`` and the password from ``password_env``; it is
sent only in the ``Authorization`` header and never appears in a message.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from telegraf_bridge.cli.config_model import InfluxSink, V1Sink, expect
from telegraf_bridge.cli.influx.admin._http import (
    AuthFailed,
    admin_errors,
    human_retention,
    parse_go_duration,
    parse_json,
    reachability_steps,
)
from telegraf_bridge.cli.influx.admin._influxql import (
    ContinuousQuery,
    canonical,
    continuous_queries,
    into_target,
    rp_duration,
)
from telegraf_bridge.cli.influx.admin._secrets import (
    new_password,
    read_secret,
    secret_file,
    store_secret,
)
from telegraf_bridge.cli.influx.admin.base import AdminError, Check, Step, TierUsage
from telegraf_bridge.cli.influx.admin.registry import v1_password
from telegraf_bridge.cli.influx.auth import Credential
from telegraf_bridge.cli.influx.client import as_int
from telegraf_bridge.cli.influx.influxql import influxql_ident, influxql_string
from telegraf_bridge.cli.influx.influxql_result import (
    Series,
    results_of,
    statement_result,
)
from telegraf_bridge.cli.influx.transport import message_of
from telegraf_bridge.cli.influx.v1 import InfluxV1Client
from telegraf_bridge.cli.tiers import RAW_FIELD, Layout, Tier

VERIFY_MEASUREMENT = "bridge_verify"
_ROLES = (("writer", "WRITE"), ("reader", "READ"))
_SETUP = "run bridge-cli setup-influxdb (it creates what is missing)"


class InfluxV1Admin:
    """:class:`~telegraf_bridge.cli.influx.admin.base.AdminBackend` for InfluxDB 1.x.

    ``resample_every_s`` overrides how often each continuous query runs (default: once per
    tier window); the tests set 1 s so downsampling can be watched within seconds.
    """

    kind = "influxdb_v1"

    def __init__(
        self,
        sink: V1Sink,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        resample_every_s: int | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.name = sink.name
        self.url = sink.url.rstrip("/")
        self.database = sink.database
        self.username = username
        self.resample_every_s = resample_every_s
        self._clock = clock
        self._credential_steps = self._steps(sink)
        self._client = InfluxV1Client(
            sink,
            Credential(password, username),
            timeout=timeout,
            errors=admin_errors(self._credential_steps),
        )

    @classmethod
    def from_sink(
        cls,
        sink: InfluxSink,
        env: Mapping[str, str],
        *,
        timeout: float,
        write_names: Sequence[str],
        resample_every_s: int | None,
    ) -> InfluxV1Admin:
        """The backend for a validated sink, its credential read from ``env`` (see registry)."""
        del write_names  # InfluxDB 1.x users are granted the whole database
        sink = expect(sink, V1Sink)
        return cls(
            sink,
            sink.username,
            v1_password(sink, env),
            timeout=timeout,
            resample_every_s=resample_every_s,
        )

    def _steps(self, sink: V1Sink) -> tuple[str, ...]:
        where = sink.password_env or "password_env"
        return (
            f"check sinks '{self.name}' username ({self.username or 'none set'}) and the "
            f"password in {where}",
            "setup-influxdb needs an admin user (CREATE USER ... WITH ALL PRIVILEGES); a "
            "user with only WRITE can send data but not create retention policies or users",
        )

    # -- identity and connection -----------------------------------------------------------------

    def target(self) -> str:
        """``InfluxDB 1.x URL, database DB``."""
        return f"InfluxDB 1.x {self.url}, database {self.database}"

    def connect(self) -> None:
        """Reachable (``/ping`` answered by a 1.x server) and the credentials accepted."""
        ping = self._client.ping()
        version = ping.headers.get("x-influxdb-version", "")
        if ping.status != 204:
            raise AdminError(
                f"{self.url}/ping answered HTTP {ping.status}: this is not an InfluxDB 1.x server",
                reachability_steps(self.url),
            )
        if version and not version.lstrip("v").startswith("1."):
            raise AdminError(
                f"{self.url} is InfluxDB {version}, not 1.x: set the sink's type to "
                "influxdb_v2 (2.x/Cloud) or influxdb_v3",
            )
        self._query("SHOW DATABASES")

    # -- InfluxQL --------------------------------------------------------------------------------

    def _query(self, query: str, *, database: str | None = None, secret: str = "") -> list[Series]:
        """Run one statement (POST, so DDL works too); returns the result's series."""
        try:
            reply = self._client.query(query, database=database)
        except AdminError as exc:
            raise _without(exc, secret) from None
        status, text = reply.status, reply.text
        if secret:
            text = text.replace(secret, "***")
        shown = _shown(query, secret)
        if status != 200:
            raise AdminError(f"{shown} failed (HTTP {status}): {message_of(text)}")
        doc = parse_json(text, shown) or {}
        if "error" in doc:
            raise AdminError(f"{shown} failed: {doc['error']}")
        results = results_of(doc) or [statement_result({})]
        error = results[0].error
        if error:
            if "requires admin privilege" in str(error) or "not authorized" in str(error):
                raise AuthFailed(f"{shown} was refused: {error}", self._credential_steps)
            raise AdminError(f"{shown} failed: {error}")
        return results[0].series

    @staticmethod
    def _rows(series: list[Series]) -> list[dict[str, object]]:
        return [row for s in series for row in s.rows()]

    def _databases(self) -> set[str]:
        return {str(r.get("name")) for r in self._rows(self._query("SHOW DATABASES"))}

    def _policies(self) -> dict[str, int]:
        """Retention policies of the database as {name: seconds (0 = forever)}."""
        if self.database not in self._databases():
            return {}
        rows = self._rows(self._query(f"SHOW RETENTION POLICIES ON {self._db}"))
        return {
            str(r["name"]): parse_go_duration(str(r.get("duration") or "0s")) or 0 for r in rows
        }

    def _cqs(self) -> dict[str, str]:
        """Continuous queries of the database as {name: statement as influxd renders it}."""
        found: dict[str, str] = {}
        for series in self._query("SHOW CONTINUOUS QUERIES"):
            if series.name != self.database:
                continue
            for row in series.values:
                name, query = row[:2]
                found[str(name)] = str(query)
        return found

    def _users(self) -> set[str]:
        return {str(r.get("user")) for r in self._rows(self._query("SHOW USERS"))}

    def _grants(self, user: str) -> dict[str, str]:
        rows = self._rows(self._query(f"SHOW GRANTS FOR {influxql_ident(user)}"))
        return {str(r.get("database")): str(r.get("privilege")) for r in rows}

    @property
    def _db(self) -> str:
        return influxql_ident(self.database)

    # -- setup -----------------------------------------------------------------------------------

    def plan(self, layout: Layout, secrets_dir: Path) -> list[Step]:
        """Database, one retention policy per tier, the CQs, the writer and reader users."""
        self._users()  # needs admin rights: fail here, before anything is planned
        steps: list[Step] = []
        if self.database in self._databases():
            steps.append(Step(f"database {self.database}", "present"))
            policies = self._policies()
            cqs = self._cqs()
        else:
            steps.append(
                Step(
                    f"database {self.database}",
                    "create",
                    "CREATE DATABASE",
                    apply=self._create_database,
                )
            )
            policies, cqs = {}, {}
        for tier in layout.tiers:
            steps.append(self._policy_step(tier, policies))
        wanted = continuous_queries(layout, self.database, resample_every_s=self.resample_every_s)
        for cq in wanted:
            steps.append(self._cq_step(cq, cqs))
        users = self._users()
        for role, privilege in _ROLES:
            steps.append(self._user_step(role, privilege, users, secrets_dir))
        return steps

    def _create_database(self) -> str:
        self._query(f"CREATE DATABASE {self._db}")
        return ""

    def _policy_step(self, tier: Tier, policies: Mapping[str, int]) -> Step:
        what = f"retention policy {tier.name} ({human_retention(tier.retention_s)})"
        existing = policies.get(tier.name)
        if existing is None:
            statement = (
                f"CREATE RETENTION POLICY {influxql_ident(tier.name)} ON {self._db} "
                f"DURATION {rp_duration(tier)} REPLICATION 1"
            )

            def create() -> str:
                self._query(statement)
                return ""

            return Step(what, "create", statement, apply=create)
        if existing != tier.retention_s:
            return Step(
                what,
                "mismatch",
                f"exists with {human_retention(existing)}; not changed (shortening a retention "
                f"deletes data). To change it: ALTER RETENTION POLICY "
                f"{influxql_ident(tier.name)} ON {self._db} DURATION {rp_duration(tier)}",
            )
        return Step(what, "present")

    def _cq_step(self, cq: ContinuousQuery, existing: Mapping[str, str]) -> Step:
        what = f"continuous query {cq.name} (-> {cq.tier.name})"
        stored = existing.get(cq.name)
        if stored is None:

            def create() -> str:
                self._query(cq.statement)
                return ""

            detail = f"runs every {cq.every}, recomputes the last {cq.span} (late data)"
            return Step(what, "create", detail, apply=create)
        if canonical(stored) != canonical(cq.statement):
            return Step(
                what,
                "mismatch",
                f"exists with other text: {stored}. A CQ cannot be altered: DROP CONTINUOUS "
                f"QUERY {influxql_ident(cq.name)} ON {self._db}, then run setup-influxdb again",
            )
        return Step(what, "present")

    def _user_step(self, role: str, privilege: str, users: set[str], secrets_dir: Path) -> Step:
        user = f"{self.name}_{role}".replace("-", "_")
        path = secret_file(secrets_dir, self.name, role, "password")
        what = f"{role} user {user} ({privilege} on {self.database})"
        if user not in users:

            def create() -> str:
                password = read_secret(path)
                if password is None:
                    password = new_password()
                    store_secret(path, password)
                self._query(
                    f"CREATE USER {influxql_ident(user)} WITH PASSWORD {influxql_string(password)}",
                    secret=password,
                )
                self._grant(user, privilege)
                return f"password in {path} (mode 0600)"

            return Step(what, "create", f"password to {path}", apply=create)
        grants = self._grants(user)
        if read_secret(path) is None:
            return Step(
                what,
                "mismatch",
                f"the user exists but {path} is missing, and a password cannot be read back: "
                f"SET PASSWORD FOR {influxql_ident(user)} = '<new>' and store it in {path}, "
                f"or DROP USER {influxql_ident(user)} and run setup-influxdb again",
            )
        if grants.get(self.database) not in (privilege, "ALL PRIVILEGES"):

            def grant() -> str:
                self._grant(user, privilege)
                return ""

            return Step(f"{what}: grant", "create", f"GRANT {privilege}", apply=grant)
        return Step(what, "present", f"password in {path}")

    def _grant(self, user: str, privilege: str) -> None:
        self._query(f"GRANT {privilege} ON {self._db} TO {influxql_ident(user)}")

    # -- verify ----------------------------------------------------------------------------------

    def checks(self, layout: Layout) -> list[Check]:
        """The database, each tier's policy, each CQ, and a real write that is read back."""
        rows: list[Check] = []
        if self.database not in self._databases():
            rows.append(Check(f"database {self.database}", False, "does not exist", _SETUP))
            return rows
        rows.append(Check(f"database {self.database}", True, "exists"))
        try:
            policies = self._policies()
            cqs = self._cqs()
        except AuthFailed:
            # Telegraf's own user has WRITE only: it may not list policies or CQs.
            rows.append(
                Check(
                    "tiers and downsampling",
                    None,
                    f"not checked: user {self.username or '(none)'} may not read the schema "
                    "(needs READ on the database, or admin)",
                )
            )
            rows.append(self._test_write(layout, raw_exists=True))
            return rows
        for tier in layout.tiers:
            existing = policies.get(tier.name)
            wanted = human_retention(tier.retention_s)
            if existing is None:
                rows.append(Check(f"tier {tier.name}", False, "retention policy missing", _SETUP))
            elif existing != tier.retention_s:
                rows.append(
                    Check(
                        f"tier {tier.name}",
                        False,
                        f"retention {human_retention(existing)}, wanted {wanted}",
                        f"ALTER RETENTION POLICY {influxql_ident(tier.name)} ON {self._db} "
                        f"DURATION {rp_duration(tier)} (or change downsampling in bridge.yaml)",
                    )
                )
            else:
                rows.append(Check(f"tier {tier.name}", True, f"retention policy, {wanted}"))
        for cq in continuous_queries(layout, self.database, resample_every_s=self.resample_every_s):
            stored = cqs.get(cq.name)
            name = f"downsampling {cq.name}"
            if stored is None:
                rows.append(
                    Check(name, False, f"continuous query into {cq.tier.name} missing", _SETUP)
                )
            elif canonical(stored) != canonical(cq.statement):
                rows.append(
                    Check(
                        name,
                        False,
                        "continuous query differs from the layout",
                        f"DROP CONTINUOUS QUERY {influxql_ident(cq.name)} ON {self._db}, then "
                        "run bridge-cli setup-influxdb",
                    )
                )
            else:
                rows.append(Check(name, True, f"continuous query into {cq.tier.name}"))
        rows.append(self._test_write(layout, layout.raw.name in policies))
        return rows

    def _test_write(self, layout: Layout, raw_exists: bool) -> Check:
        name = "test write"
        raw = layout.raw.name
        if not raw_exists:
            return Check(name, None, f"skipped: tier {raw} is missing")
        marker = secrets.token_hex(8)
        line = f"{VERIFY_MEASUREMENT},check={marker} ok=1i {self._clock()}"
        try:
            written = self._client.write(line, database=self.database, rp=raw)
            status, text = written.status, written.text
            if status != 204:
                return Check(
                    name,
                    False,
                    f"writing to {self.database}.{raw} failed (HTTP {status}): {message_of(text)}",
                    "check the user's WRITE permission on the database and the server's log",
                )
            where = f"{self._db}.{influxql_ident(raw)}.{influxql_ident(VERIFY_MEASUREMENT)}"
            try:
                rows = self._rows(
                    self._query(
                        f'SELECT "ok" FROM {where} WHERE "check" = {influxql_string(marker)}',  # noqa: S608 - quoted
                        database=self.database,
                    )
                )
            except AuthFailed:
                return Check(
                    name,
                    True,
                    f"marker point written to {raw}/{VERIFY_MEASUREMENT}; user "
                    f"{self.username} may not read it back (WRITE only), so it stays",
                )
            self._query(
                f"DROP SERIES FROM {influxql_ident(VERIFY_MEASUREMENT)} "
                f'WHERE "check" = {influxql_string(marker)}',
                database=self.database,
            )
        except AdminError as exc:
            return Check(name, False, str(exc), "check the server's log")
        if len(rows) != 1:
            return Check(
                name,
                False,
                f"a marker point written to {raw} could not be read back ({len(rows)} rows)",
                "check the server's log for write errors",
            )
        return Check(
            name,
            True,
            f"marker point written to {raw}/{VERIFY_MEASUREMENT}, read back, deleted",
        )

    # -- usage and delete ------------------------------------------------------------------------

    def usage(self, layout: Layout) -> list[TierUsage]:
        """Each tier's policy and the points of the layout's measurement it holds."""
        policies = self._policies()
        result: list[TierUsage] = []
        for tier in layout.tiers:
            if tier.name not in policies:
                result.append(TierUsage(tier.name, False, None, "missing"))
                continue
            field = RAW_FIELD if tier.key == "raw" else "pulses"
            source = f"{self._db}.{influxql_ident(tier.name)}.{influxql_ident(layout.measurement)}"
            rows = self._rows(
                self._query(
                    f"SELECT count({influxql_ident(field)}) FROM {source}",  # noqa: S608 - quoted
                    database=self.database,
                )
            )
            points = sum(as_int(r.get("count")) for r in rows)
            result.append(
                TierUsage(
                    tier.name,
                    True,
                    points,
                    f"{layout.measurement} points, "
                    f"retention {human_retention(policies[tier.name])}",
                )
            )
        return result

    def delete_tier(self, layout: Layout, name: str) -> None:
        """Drop the CQs that write into the policy, then the policy with all its data."""
        for cq_name, statement in self._cqs().items():
            if into_target(statement) == (self.database, name):
                self._query(f"DROP CONTINUOUS QUERY {influxql_ident(cq_name)} ON {self._db}")
        self._query(f"DROP RETENTION POLICY {influxql_ident(name)} ON {self._db}")


def _shown(query: str, secret: str) -> str:
    """A statement for an error message: the first words, any secret masked."""
    text = query.replace(secret, "***") if secret else query
    return text if len(text) <= 120 else text[:117] + "..."


def _without(exc: AdminError, secret: str) -> AdminError:
    if not secret or secret not in str(exc):
        return exc
    return type(exc)(str(exc).replace(secret, "***"), exc.next_steps)
