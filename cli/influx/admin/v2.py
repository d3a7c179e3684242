"""The meter-pulse tiers on InfluxDB v2 / Cloud: buckets, downsampling tasks and tokens.

What ``setup-influxdb`` does here (seed 003's ``make setup-influxdb``, through the official v2
HTTP API, standard library only):

- one bucket per tier with the tier's retention (``retentionRules`` ``[{"type": "expire",
  "everySeconds": N}]``, ``[]`` for forever). An existing bucket with another retention is a
  mismatch: reported, never changed (shortening a retention deletes data);
- one Flux task per aggregate tier (see :mod:`._v2_flux`), found by name; a task whose script
  differs from what the layout requires, or that is inactive, is a mismatch;
- a writer token (write on exactly the buckets Telegraf writes to this sink) and a reader token
  for Grafana (read on every tier and the sink's bucket), found by description. A new token is
  written to ``<secrets_dir>/<sink>_writer_token`` / ``_reader_token`` (mode 0600, no trailing
  newline: Telegraf sends the file's bytes as they are). InfluxDB Cloud shows a token only once,
  when it is created, so an existing token whose file is gone cannot be recovered there;
- the InfluxQL (DBRP) mappings the InfluxQL dashboards need: database = the sink's bucket,
  ``autogen`` (default) on that bucket and one retention policy per tier on the tier's bucket
  (see :mod:`._v2_dbrp`); one that points elsewhere is a mismatch.

The admin token is never printed: messages show at most its first four characters.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from telegraf_bridge.cli.config_model import InfluxSink, V2Sink, expect
from telegraf_bridge.cli.influx.admin._http import AuthFailed, admin_errors, token_hint
from telegraf_bridge.cli.influx.admin._v2_dbrp import DbrpMappings
from telegraf_bridge.cli.influx.admin._v2_dbrp import wanted as wanted_dbrps
from telegraf_bridge.cli.influx.admin._v2_flux import (
    VERIFY_FIELD,
    VERIFY_MEASUREMENT,
    VERIFY_TAG,
    count_flux,
    readback_flux,
    task_description,
    task_name,
)
from telegraf_bridge.cli.influx.admin._v2_tasks import task_check, task_step
from telegraf_bridge.cli.influx.admin._v2_tokens import (
    Perm,
    TokenWanted,
    reader_names,
    reader_perms,
    token_description,
    token_file,
    token_step,
    write_token,
    writer_perms,
)
from telegraf_bridge.cli.influx.admin.base import AdminError, Check, Step, TierUsage
from telegraf_bridge.cli.influx.admin.registry import admin_token
from telegraf_bridge.cli.influx.annotated_csv import parse_annotated_csv
from telegraf_bridge.cli.influx.auth import Credential
from telegraf_bridge.cli.influx.transport import Reply, SinkError
from telegraf_bridge.cli.influx.v2 import InfluxV2Client
from telegraf_bridge.cli.tiers import RAW_FIELD, Layout, Tier
from telegraf_bridge.plugins.common import format_rfc3339_ns

BUCKET_PAGE = 100  # the API's largest page
TASK_PAGE = 500
_MAX_PAGES = 10_000  # a server that never stops paging is a bug, not an answer to wait for
_ID = re.compile(r"^[0-9a-f]{16}$")
_NS = 1_000_000_000
_CLOUD_LIMITS = (
    "InfluxDB Cloud's Free Plan allows 2 buckets, 5 tasks and 30 days of retention: "
    "upgrade to the Usage-Based Plan, or shorten downsampling.*retention* to at most 30d"
)


def retention_text(seconds: int) -> str:
    """``30d``, ``12h``, ``90s`` or ``forever``."""
    if seconds == 0:
        return "forever"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def bucket_retention(bucket: Mapping[str, Any]) -> int:
    """Seconds a bucket keeps data; 0 (forever) when it has no expire rule."""
    for rule in bucket.get("retentionRules") or []:
        if rule.get("type", "expire") == "expire":
            return int(rule.get("everySeconds") or 0)
    return 0


class InfluxV2Admin:
    """:class:`~telegraf_bridge.cli.influx.admin.base.AdminBackend` for InfluxDB v2 and Cloud.

    ``write_names`` are the buckets Telegraf writes to this sink
    (:func:`telegraf_bridge.cli.tiers.written_names`); the writer token gets write on exactly
    these. Empty means the raw tier and the sink's bucket.
    """

    kind = "influxdb_v2"

    def __init__(
        self,
        sink: V2Sink,
        token: str | None,
        *,
        timeout: float = 10.0,
        write_names: Sequence[str] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sink = sink
        self.name = sink.name
        self.url = sink.url.rstrip("/")
        self.organization = sink.organization
        self.bucket = sink.bucket
        self._token = token or ""
        self._write_names = tuple(write_names)
        self._sleep = sleep
        # Every status comes back as a Reply (raise_refusals=False): a 403 is an expected answer
        # for a scoped token, and each step decides what a 401, 403, 404 or 422 means. Only a
        # server that does not answer at all raises (with the whole checklist: on v2 a wrong
        # URL, e.g. another Cloud region, is as likely as a stopped server).
        checklist = self._checklist()
        self._client = InfluxV2Client(
            sink,
            Credential(self._token),
            timeout=timeout,
            raise_refusals=False,
            errors=admin_errors(checklist, checklist),
        )
        self._org_id = ""
        self._org_name = ""

    @classmethod
    def from_sink(
        cls,
        sink: InfluxSink,
        env: Mapping[str, str],
        *,
        timeout: float,
        write_names: Sequence[str],
        resample_every_s: int | None,
    ) -> InfluxV2Admin:
        """The backend for a validated sink, its credential read from ``env`` (see registry)."""
        del resample_every_s  # Flux tasks run on their own schedule
        sink = expect(sink, V2Sink)
        return cls(sink, admin_token(sink, env) or None, timeout=timeout, write_names=write_names)

    # -- identity and connection -----------------------------------------------------------------

    def target(self) -> str:
        """``InfluxDB v2/Cloud URL, org ORG``."""
        return f"InfluxDB v2/Cloud {self.url}, org {self.organization}"

    def _checklist(self) -> tuple[str, ...]:
        where = self.sink.token_env or self.sink.token_file or "the sink"
        return (
            f"the InfluxDB server at {self.url} is running and reachable from here",
            f"sinks '{self.name}' url ({self.url}) is the server's address "
            "(an InfluxDB Cloud region URL, or http://host:8086 for OSS 2.x)",
            f"sinks '{self.name}' organization ({self.organization}) is your organization's "
            "name or ID",
            f"the token ({token_hint(self._token)}, from {where}) is valid and has all-access "
            "(admin) rights: creating buckets, tasks and tokens needs them",
        )

    def connect(self) -> None:
        """Reachable (``/ping``), token accepted, organization resolved to its ID."""
        if not self._token:
            raise AdminError(
                f"sink '{self.name}' has no token to administer InfluxDB with",
                self._checklist(),
            )
        alive = self._client.ping()
        if alive.status == 404:  # every 2.x and Cloud answers /ping; /health is OSS's other one
            alive = self._client.health()
        if alive.status not in (200, 204):
            raise AdminError(
                f"{self.url} answered /ping with HTTP {alive.status}: this is not an InfluxDB "
                "2.x or Cloud API",
                self._checklist(),
            )
        self._resolve_org()

    def _resolve_org(self) -> None:
        org = self.organization
        if _ID.fullmatch(org):
            reply = self._client.organization(org)
            self._refused(reply)
            doc = reply.json()
            if reply.status == 200 and isinstance(doc, dict) and doc.get("id") == org:
                self._org_id, self._org_name = org, str(doc.get("name") or org)
                return
        reply = self._client.orgs({"org": org})
        self._refused(reply)
        if reply.status not in (200, 404):
            raise self._failure(reply, f"looking up organization '{org}'")
        doc = reply.json() if reply.status == 200 else {}
        for item in (doc or {}).get("orgs") or []:
            if org in (item.get("name"), item.get("id")):
                self._org_id, self._org_name = str(item["id"]), str(item["name"])
                return
        raise AdminError(
            f"organization '{org}' not found at {self.url} (or the token cannot see it)",
            self._checklist(),
        )

    def _connected(self) -> None:
        if not self._org_id:
            self.connect()

    def _refused(self, reply: Reply) -> None:
        """401 means a wrong or revoked token: stop with the checklist."""
        if reply.status == 401:
            raise AuthFailed(
                f"InfluxDB at {self.url} refused the token {token_hint(self._token)} "
                f"(HTTP 401: {self._client.http.redact(reply.message())})",
                self._checklist(),
            )

    def _failure(self, reply: Reply, what: str) -> AdminError:
        self._refused(reply)
        message = self._client.http.redact(reply.message()) or "no explanation given"
        text = f"{what} failed (HTTP {reply.status}): {message}"
        if reply.status == 403:  # the token is valid but lacks this right (or a plan limit)
            return AuthFailed(
                text,
                (
                    "give the token all-access (admin) rights, or create the missing part by hand",
                    _CLOUD_LIMITS,
                ),
            )
        return AdminError(text)

    def _expect(self, reply: Reply, statuses: tuple[int, ...], what: str) -> Any:
        if reply.status not in statuses:
            raise self._failure(reply, what)
        return reply.json()

    # -- listings (every page: a bucket among many must not hide) ---------------------------------

    def _buckets(self) -> dict[str, dict[str, object]]:
        """Every bucket of the organization by name, across all pages."""
        found: dict[str, dict[str, object]] = {}
        offset = 0
        for _ in range(_MAX_PAGES):
            reply = self._client.buckets(
                {"orgID": self._org_id, "limit": str(BUCKET_PAGE), "offset": str(offset)}
            )
            page = (self._expect(reply, (200,), "listing buckets") or {}).get("buckets") or []
            for bucket in page:
                found.setdefault(str(bucket["name"]), bucket)
            # A short page is the last; a full one may be followed by more (links.next says so,
            # but asking once more is also right when a server leaves the link out).
            if len(page) < BUCKET_PAGE:
                break
            offset += len(page)
        return found

    def _tasks(self) -> list[dict[str, object]]:
        """Every task of the organization, across all pages (``after`` the last ID)."""
        tasks: list[dict[str, object]] = []
        params = {"orgID": self._org_id, "limit": str(TASK_PAGE)}
        for _ in range(_MAX_PAGES):
            reply = self._client.tasks(params)
            page = (self._expect(reply, (200,), "listing tasks") or {}).get("tasks") or []
            tasks += page
            if len(page) < TASK_PAGE:
                break
            params = {**params, "after": str(page[-1]["id"])}
        return tasks

    def _authorizations(self) -> list[dict[str, object]]:
        """Every authorization of the organization (``links.next`` followed when present)."""
        found: list[dict[str, object]] = []
        following, params = "", {"orgID": self._org_id}
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            reply = self._client.authorizations(params, following)
            doc = self._expect(reply, (200,), "listing tokens") or {}
            found += doc.get("authorizations") or []
            link = (doc.get("links") or {}).get("next")
            if not link or link in seen:
                break
            seen.add(link)
            following, params = str(link), {}
        return found

    # -- plan --------------------------------------------------------------------------------------

    def plan(self, layout: Layout, secrets_dir: Path) -> list[Step]:
        """Buckets, then tasks, then tokens: the order the steps must be applied in."""
        self._connected()
        buckets = self._buckets()
        steps = [self._bucket_step(tier, buckets.get(tier.name)) for tier in layout.tiers]
        tier_names = {t.name for t in layout.tiers}
        for name in reader_names(layout, self.bucket, self._write_names):
            if name not in tier_names and name not in buckets:
                steps.append(
                    Step(
                        f"bucket {name}",
                        "mismatch",
                        f"sink '{self.name}' writes to bucket {name}, which does not exist; "
                        "bridge-cli creates only the tier buckets: create it with the "
                        "retention you want (influx bucket create), then run setup-influxdb "
                        "again",
                    )
                )
        tasks = self._tasks()
        steps += [
            task_step(layout, tier, self._org_name, tasks, create=self._create_task)
            for tier in layout.aggregates
        ]
        auths = self._authorizations()
        for role, perms in (
            ("writer", writer_perms(layout, self.bucket, self._write_names)),
            ("reader", reader_perms(layout, self.bucket)),
        ):
            steps.append(self._token_step(role, perms, buckets, auths, secrets_dir))
        creatable = {s.what.removeprefix("bucket ") for s in steps if s.status == "create"}
        steps += self._dbrp().steps(
            wanted_dbrps(layout, self.bucket), buckets, creatable, self._buckets
        )
        return steps

    def _dbrp(self) -> DbrpMappings:
        return DbrpMappings(self._client, self._org_id, self._failure)

    def _bucket_step(self, tier: Tier, bucket: Mapping[str, Any] | None) -> Step:
        what = f"bucket {tier.name}"
        want = retention_text(tier.retention_s)
        if bucket is None:
            return Step(what, "create", f"retention {want}", apply=lambda: self._create(tier))
        have = bucket_retention(bucket)
        if have != tier.retention_s:
            return Step(
                what,
                "mismatch",
                f"exists with retention {retention_text(have)}, the layout wants {want}; "
                "bridge-cli never changes a retention (a shorter one deletes data): change it "
                f"in the InfluxDB UI or with `influx bucket update --id {bucket.get('id')} "
                f"--retention {want if tier.retention_s else '0'}`, or change the downsampling "
                "retention in bridge.yaml",
            )
        return Step(what, "present", f"retention {want}")

    def _create(self, tier: Tier) -> str:
        rules = [{"type": "expire", "everySeconds": tier.retention_s}] if tier.retention_s else []
        reply = self._client.create_bucket(
            {
                "orgID": self._org_id,
                "name": tier.name,
                "description": f"telegraf-bridge meter-pulse tier {tier.key}",
                "retentionRules": rules,
            },
        )
        if reply.status == 422 and "already exists" in reply.message():
            return "already existed (created meanwhile)"
        self._expect(reply, (201,), f"creating bucket {tier.name}")
        return f"created with retention {retention_text(tier.retention_s)}"

    def _create_task(self, layout: Layout, tier: Tier, flux: str) -> str:
        reply = self._client.create_task(
            {
                "orgID": self._org_id,
                "flux": flux,
                "status": "active",
                "description": task_description(layout, tier),
            },
        )
        self._expect(reply, (201,), f"creating task {task_name(layout, tier)}")
        return f"created: every {tier.every_s // 60}m into {tier.name}"

    # -- tokens ------------------------------------------------------------------------------------

    def _token_step(
        self,
        role: str,
        perms: set[Perm],
        buckets: dict[str, dict[str, object]],
        auths: list[dict[str, object]],
        secrets_dir: Path,
    ) -> Step:
        description = token_description(self.name, role)
        path = token_file(secrets_dir, self.name, role)
        existing = next((a for a in auths if a.get("description") == description), None)
        names_by_id = {str(b.get("id")): name for name, b in buckets.items()}
        return token_step(
            TokenWanted(description, perms, path),
            existing,
            names_by_id,
            create=lambda: self._create_token(description, perms, path),
        )

    def _create_token(self, description: str, perms: set[Perm], path: Path) -> str:
        buckets = self._buckets()  # the tier buckets may have been created by earlier steps
        missing = sorted({n for _, n in perms if n not in buckets})
        if missing:
            raise AdminError(
                f"cannot create the token '{description}': bucket(s) {', '.join(missing)} do "
                "not exist",
                ("create the bucket(s), then run setup-influxdb again",),
            )
        permissions = [
            {
                "action": action,
                "resource": {"type": "buckets", "id": buckets[name]["id"], "orgID": self._org_id},
            }
            for action, name in sorted(perms)
        ]
        reply = self._client.create_authorization(
            {
                "orgID": self._org_id,
                "description": description,
                "status": "active",
                "permissions": permissions,
            },
        )
        doc = self._expect(reply, (201,), f"creating the token '{description}'") or {}
        token = doc.get("token")
        if not isinstance(token, str) or not token:
            raise AdminError(
                f"InfluxDB created the token '{description}' but did not return its value",
                (f"delete it (influx auth delete --id {doc.get('id')}) and try again",),
            )
        return write_token(
            path, token, "created; InfluxDB Cloud shows a token only once: keep this file"
        )

    # -- verify ------------------------------------------------------------------------------------

    def checks(self, layout: Layout) -> list[Check]:
        """Tier buckets, tasks (and their last run), tokens, and a real write-read-delete."""
        self._connected()
        buckets = self._buckets()
        rows = []
        fix = "run bridge-cli setup-influxdb"
        for tier in layout.tiers:
            name = f"bucket {tier.name}"
            bucket = buckets.get(tier.name)
            want = retention_text(tier.retention_s)
            if bucket is None:
                rows.append(Check(name, False, "does not exist", fix))
            elif bucket_retention(bucket) != tier.retention_s:
                have = retention_text(bucket_retention(bucket))
                rows.append(Check(name, False, f"retention {have}, the layout wants {want}", fix))
            else:
                rows.append(Check(name, True, f"retention {want}"))
        tasks = self._tasks()
        for tier in layout.aggregates:
            rows.append(task_check(layout, tier, self._org_name, tasks))
        auths = self._authorizations()
        for role in ("writer", "reader"):
            description = token_description(self.name, role)
            found = next((a for a in auths if a.get("description") == description), None)
            name = f"{role} token"
            if found is None:
                rows.append(Check(name, False, f"no token '{description}'", fix))
            elif found.get("status", "active") != "active":
                rows.append(Check(name, False, f"'{description}' is inactive", fix))
            else:
                rows.append(Check(name, True, f"'{description}' exists"))
        rows.append(self._dbrp().check(wanted_dbrps(layout, self.bucket), buckets))
        rows.append(self._test_write(layout, buckets))
        return rows

    def _test_write(self, layout: Layout, buckets: Mapping[str, Any]) -> Check:
        """Write a marker point to the raw tier, read it back, delete it."""
        name = "test write"
        raw = layout.raw.name
        if raw not in buckets:
            return Check(name, None, f"skipped: bucket {raw} does not exist")
        nonce = secrets.token_hex(6)
        now = time.time_ns()
        line = f"{VERIFY_MEASUREMENT},{VERIFY_TAG}={nonce} {VERIFY_FIELD}=1i {now}"
        where = {"orgID": self._org_id, "bucket": raw}
        reply = self._client.write({**where, "precision": "ns"}, line)
        if reply.status != 204:
            return Check(
                name,
                False,
                f"writing to {raw} failed (HTTP {reply.status}): "
                + self._client.http.redact(reply.message()),
                "check that the token may write to the bucket",
            )
        found = False
        for attempt in range(6):  # Cloud acknowledges writes before they are queryable
            try:
                found = any(
                    tag == nonce for tag in self._readback(raw, format_rfc3339_ns(now - 60 * _NS))
                )
            except (SinkError, AdminError) as exc:
                return Check(name, False, f"the write was accepted, reading it back failed: {exc}")
            if found:
                break
            if attempt < 5:
                self._sleep(0.5)
        removed = self._client.delete(
            where,
            {
                "start": format_rfc3339_ns(now - 60 * _NS),
                "stop": format_rfc3339_ns(now + 60 * _NS),
                "predicate": f'_measurement="{VERIFY_MEASUREMENT}"',
            },
        )
        if not found:
            return Check(
                name,
                False,
                f"InfluxDB accepted a {VERIFY_MEASUREMENT} point in {raw} (HTTP 204) but a query "
                "did not find it",
                "run verify again in a minute; if it persists, check the server's logs",
            )
        if removed.status != 204:
            return Check(
                name,
                False,
                f"wrote and read back a {VERIFY_MEASUREMENT} point in {raw}, but deleting it "
                f"failed (HTTP {removed.status}): {self._client.http.redact(removed.message())}",
                f"delete it by hand: influx delete --bucket {raw} --predicate "
                f"'_measurement=\"{VERIFY_MEASUREMENT}\"' --start 1970-01-01T00:00:00Z --stop now",
            )
        return Check(
            name,
            True,
            f"wrote, read back and deleted a {VERIFY_MEASUREMENT} point in {raw} "
            "(on Cloud the delete completes asynchronously)",
        )

    def _query(self, flux: str) -> Iterator[dict[str, str]]:
        reply = self._client.query(flux, {"orgID": self._org_id})
        if reply.status != 200:
            raise self._failure(reply, "Flux query")
        lines = reply.text.splitlines(keepends=True)
        yield from parse_annotated_csv(lines, self.name)

    def _readback(self, bucket: str, start: str) -> list[str]:
        return [r.get(VERIFY_TAG, "") for r in self._query(readback_flux(bucket, start))]

    # -- delete-buckets ----------------------------------------------------------------------------

    def usage(self, layout: Layout) -> list[TierUsage]:
        """Each tier: does its bucket exist, and how many points of the measurement it holds."""
        self._connected()
        buckets = self._buckets()
        rows = []
        for tier in layout.tiers:
            bucket = buckets.get(tier.name)
            if bucket is None:
                rows.append(TierUsage(tier.name, False, None, "does not exist"))
                continue
            field = RAW_FIELD if tier.source is None else "pulses"
            retention = retention_text(bucket_retention(bucket))
            try:
                records = list(self._query(count_flux(tier.name, layout.measurement, field)))
            except (SinkError, AdminError) as exc:
                rows.append(TierUsage(tier.name, True, None, f"retention {retention}; {exc}"))
                continue
            points = sum(int(r.get("_value") or 0) for r in records)
            rows.append(
                TierUsage(
                    tier.name,
                    True,
                    points,
                    f"retention {retention}; {points} {layout.measurement} points",
                )
            )
        return rows

    def delete_tier(self, layout: Layout, name: str) -> None:
        """Delete a tier's bucket, and the tasks that write into or read from it first."""
        tier = next((t for t in layout.tiers if t.name == name), None)
        if tier is None:
            raise AdminError(
                f"{name} is not one of the tiers ({', '.join(t.name for t in layout.tiers)})"
            )
        self._connected()
        involved = {
            task_name(layout, t) for t in layout.aggregates if tier.key in (t.key, t.source)
        }
        for task in self._tasks():
            if task.get("name") in involved:
                reply = self._client.delete_task(str(task["id"]))
                if reply.status not in (204, 404):
                    raise self._failure(reply, f"deleting task {task.get('name')}")
        bucket = self._buckets().get(name)
        if bucket is None:
            return
        reply = self._client.delete_bucket(str(bucket["id"]))
        if reply.status not in (204, 404):
            raise self._failure(reply, f"deleting bucket {name}")
