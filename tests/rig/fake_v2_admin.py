"""The InfluxDB v2 management API for :class:`FakeInfluxV2`: orgs, buckets, tasks, tokens.

Why a fake: InfluxDB Cloud is not a server one can run. ``setup-influxdb``, ``verify`` and
``delete-buckets`` run against the real influxd 2 (tests/test_admin_v2.py); this part of the
fake serves the tests that need a v2 API under their own control, and
tests/test_fake_v2_differential.py keeps it answering as the real server does. Cloud's own
management answers (plan limits, a token listed without its value) are not modelled here. These
endpoints follow the official InfluxDB v2 API (the ``influxdata/openapi`` contract and the OSS
2.x server's error mapping):

- ``GET /api/v2/orgs`` (``org``, ``orgID`` filters; an unknown name is 404 ``organization name
  "x" not found``), ``GET /api/v2/orgs/{id}``.
- ``GET /api/v2/buckets`` with ``limit`` (default 20, 1..100, else 400 ``limit must be between
  1 and 100``), ``offset``, ``name``, ``id``, ``org``/``orgID``; the answer is ``{"links":
  {"self", "next" (when the page is full), "prev" (when offset > 0)}, "buckets": [...]}``,
  system buckets ``_monitoring`` and ``_tasks`` included as on OSS. ``POST /api/v2/buckets``:
  201 with the bucket; 422 ``{"code": "conflict", "message": "bucket with name X already
  exists"}``; 422 for a retention under one hour; ``retentionRules`` ``[]`` or
  ``everySeconds: 0`` keep data forever. ``DELETE /api/v2/buckets/{id}``: 204, 404 ``bucket not
  found``, 400 ``id must have a length of 16 bytes``.
- ``GET /api/v2/tasks`` (``orgID``/``org``, ``name``, ``status``, ``after``, ``limit`` default
  100, 1..500, ``links.next`` when the page is full), ``POST /api/v2/tasks`` (201; 400
  ``failed to decode request: missing flux``; the ``option task`` record supplies ``name``,
  ``every``/``cron`` and ``offset``), ``GET``/``DELETE /api/v2/tasks/{id}``. Tasks are stored but
  NEVER executed: there is no Flux engine here, so tests compare the stored Flux with what the
  layout requires instead.
- ``GET /api/v2/authorizations``, ``POST /api/v2/authorizations`` (201 with a fresh ``token``).
  Tokens really scope access: :meth:`FakeV2Admin.allowed` checks an action on a bucket the way
  the server's permission set does (by bucket ID or for every bucket of the org). The admin
  token given to the fake is an all-access (operator) token.

Every endpoint answers 401 ``{"code": "unauthorized", "message": "unauthorized access"}``
without a valid ``Authorization: Token``. As the server's authorizer does, a listing leaves
out what the token may not read (buckets: after paging, so a scoped token can get a short
page), and creating or deleting without the permission is 401 ``<action>:orgs/<id>/<resource>
is unauthorized``.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from telegraf_bridge.plugins.common import format_rfc3339_ns

# What a handler returns: (HTTP status, JSON body or None for an empty 204).
Answer = tuple[int, dict[str, Any] | None]

BUCKET_PAGE_DEFAULT = 20
BUCKET_PAGE_MAX = 100
TASK_PAGE_DEFAULT = 100
TASK_PAGE_MAX = 500
_ID = re.compile(r"^[0-9a-f]{16}$")
_RESOURCE_TYPES = frozenset(
    {
        "authorizations",
        "buckets",
        "dashboards",
        "orgs",
        "sources",
        "tasks",
        "telegrafs",
        "users",
        "variables",
        "scrapers",
        "secrets",
        "labels",
        "views",
        "documents",
        "notificationRules",
        "notificationEndpoints",
        "checks",
        "dbrp",
        "notebooks",
        "annotations",
        "remotes",
        "replications",
    }
)
_TASK_OPTION = re.compile(r"option\s+task\s*=\s*\{(?P<body>[^{}]*)\}")
_TASK_PROP = re.compile(r'(?P<key>\w+)\s*:\s*(?P<value>"(?:[^"\\]|\\.)*"|[^,]+)')
UNAUTHORIZED: Answer = (401, {"code": "unauthorized", "message": "unauthorized access"})


def _now() -> str:
    return format_rfc3339_ns(time.time_ns())


def _retention_seconds(rules: Any) -> int | Answer:
    """A bucket's retention from its ``retentionRules`` (0: forever), or the server's error."""
    if not isinstance(rules, list):
        return _error(400, "invalid", "invalid json: retentionRules must be an array")
    retention = 0
    for rule in rules:
        if not isinstance(rule, dict) or rule.get("type", "expire") != "expire":
            return _error(400, "invalid", "invalid retention rule")
        seconds = rule.get("everySeconds", 0)
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
            return _error(400, "invalid", "invalid retention rule: everySeconds")
        retention = seconds
    if 0 < retention < 3600:
        return _error(
            422,
            "unprocessable entity",
            "expiration seconds must be greater than or equal to one hour",
        )
    return retention


def _error(status: int, code: str, message: str) -> Answer:
    return status, {"code": code, "message": message}


@dataclass
class FakeBucket:
    """A bucket as the fake stores it."""

    id: str
    name: str
    org_id: str
    retention_s: int = 0
    type: str = "user"
    description: str = ""
    created_at: str = field(default_factory=_now)

    def as_json(self, org_name: str) -> dict[str, Any]:
        """The API's Bucket object."""
        rules = (
            [{"type": "expire", "everySeconds": self.retention_s, "shardGroupDurationSeconds": 0}]
            if self.retention_s
            else []
        )
        doc: dict[str, Any] = {
            "id": self.id,
            "orgID": self.org_id,
            "type": self.type,
            "name": self.name,
            "retentionRules": rules,
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
            "labels": [],
            "links": {
                "labels": f"/api/v2/buckets/{self.id}/labels",
                "members": f"/api/v2/buckets/{self.id}/members",
                "org": f"/api/v2/orgs/{self.org_id}",
                "owners": f"/api/v2/buckets/{self.id}/owners",
                "self": f"/api/v2/buckets/{self.id}",
                "write": f"/api/v2/write?org={org_name}&bucket={self.id}",
            },
        }
        if self.description:
            doc["description"] = self.description
        return doc


@dataclass
class FakeTask:
    """A task: stored, listed and deleted, never run."""

    id: str
    org_id: str
    name: str
    flux: str
    status: str = "active"
    every: str = ""
    cron: str = ""
    offset: str = ""
    description: str = ""
    last_run_status: str = ""
    last_run_error: str = ""
    latest_completed: str = ""
    created_at: str = field(default_factory=_now)

    def as_json(self, org_name: str) -> dict[str, Any]:
        """The API's Task object (``lastRunStatus`` only once a run is scripted)."""
        doc: dict[str, Any] = {
            "id": self.id,
            "orgID": self.org_id,
            "org": org_name,
            "name": self.name,
            "status": self.status,
            "flux": self.flux,
            "labels": [],
            "createdAt": self.created_at,  # no updatedAt: the server sends it once edited
            "links": {
                "self": f"/api/v2/tasks/{self.id}",
                "runs": f"/api/v2/tasks/{self.id}/runs",
                "logs": f"/api/v2/tasks/{self.id}/logs",
            },
        }
        for key, value in (
            ("description", self.description),
            ("every", self.every),
            ("cron", self.cron),
            ("offset", self.offset),
            ("lastRunStatus", self.last_run_status),
            ("lastRunError", self.last_run_error),
            ("latestCompleted", self.latest_completed),
        ):
            if value:
                doc[key] = value
        return doc


@dataclass
class FakeAuthorization:
    """An API token and what it may do."""

    id: str
    token: str
    org_id: str
    permissions: list[dict[str, Any]]
    description: str = ""
    status: str = "active"
    operator: bool = False  # the all-access admin token the fake was started with
    created_at: str = field(default_factory=_now)

    def as_json(self, org_name: str) -> dict[str, Any]:
        """The API's Authorization object, token included as OSS 2.x returns it."""
        return {
            "id": self.id,
            "token": self.token,
            "status": self.status,
            "description": self.description,
            "orgID": self.org_id,
            "org": org_name,
            "permissions": self.permissions,
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
            "links": {"self": f"/api/v2/authorizations/{self.id}"},
        }

    def allows(self, action: str, resource: str, org_id: str, resource_id: str | None) -> bool:
        """The server's permission check: by resource ID, or for all of the org's resources."""
        if self.status != "active":
            return False
        if self.operator:
            return True
        for perm in self.permissions:
            res = perm.get("resource") or {}
            if perm.get("action") != action or res.get("type") != resource:
                continue
            if res.get("orgID") not in (None, "", org_id):
                continue
            if res.get("id") in (None, "") or res.get("id") == resource_id:
                return True
        return False


class FakeV2Admin:
    """State and handlers of the management endpoints (one organization, as on Cloud)."""

    def __init__(self, *, org: str, token: str, buckets: tuple[str, ...]) -> None:
        self._lock = threading.RLock()
        self._ids: Iterator[int] = itertools.count(int.from_bytes(os.urandom(5), "big") << 16)
        self.org_name = org
        self.org_id = self._new_id()
        self.org_created = _now()
        self.buckets: dict[str, FakeBucket] = {}
        self.tasks: dict[str, FakeTask] = {}
        self.authorizations: dict[str, FakeAuthorization] = {}
        # Called with a bucket when it is deleted, so the fake drops its points.
        self.on_bucket_deleted: Callable[[FakeBucket], None] = lambda _bucket: None
        for name, days in (("_monitoring", 7), ("_tasks", 3)):
            self._add_bucket(name, days * 86400, kind="system")
        for name in buckets:
            self._add_bucket(name, 0)
        admin = FakeAuthorization(
            id=self._new_id(),
            token=token,
            org_id=self.org_id,
            permissions=[],
            description="admin's Token",
            operator=True,
        )
        self.authorizations[admin.id] = admin

    # -- state helpers used by the fake and by tests --------------------------------------------

    def _new_id(self) -> str:
        return f"{next(self._ids) & 0xFFFFFFFFFFFFFFFF:016x}"

    def _add_bucket(self, name: str, retention_s: int, *, kind: str = "user") -> FakeBucket:
        bucket = FakeBucket(self._new_id(), name, self.org_id, retention_s, kind)
        self.buckets[bucket.id] = bucket
        return bucket

    def add_bucket(self, name: str, retention_s: int = 0) -> FakeBucket:
        """Create a bucket directly (test set-up, e.g. one with a "wrong" retention)."""
        with self._lock:
            return self._add_bucket(name, retention_s)

    def bucket(self, ref: str) -> FakeBucket | None:
        """The bucket named ``ref``, or with ID ``ref`` (the write API accepts both)."""
        with self._lock:
            if ref in self.buckets:
                return self.buckets[ref]
            return next((b for b in self.buckets.values() if b.name == ref), None)

    def bucket_names(self) -> frozenset[str]:
        """Names of every bucket, system buckets included."""
        with self._lock:
            return frozenset(b.name for b in self.buckets.values())

    def org_matches(self, ref: str) -> bool:
        """Whether ``ref`` names the org or is its ID (``org`` accepts both on the server)."""
        return ref in (self.org_name, self.org_id)

    def auth_for(self, header: str | None) -> FakeAuthorization | None:
        """The active authorization of an ``Authorization: Token <token>`` header."""
        if not header or not header.startswith("Token "):
            return None
        token = header[len("Token ") :]
        with self._lock:
            for auth in self.authorizations.values():
                if auth.token == token and auth.status == "active":
                    return auth
        return None

    def allowed(self, auth: FakeAuthorization, action: str, bucket: FakeBucket) -> bool:
        """Whether ``auth`` may ``action`` ("read"/"write") ``bucket``."""
        return auth.allows(action, "buckets", bucket.org_id, bucket.id)

    def task_named(self, name: str) -> FakeTask | None:
        """The first task with this name (names are not unique on the server)."""
        with self._lock:
            return next((t for t in self.tasks.values() if t.name == name), None)

    def authorization_described(self, description: str) -> FakeAuthorization | None:
        """The first authorization with this description."""
        with self._lock:
            return next(
                (a for a in self.authorizations.values() if a.description == description), None
            )

    # -- dispatch --------------------------------------------------------------------------------

    def dispatch(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        body: bytes,
        auth: FakeAuthorization | None,
    ) -> Answer | None:
        """Answer a management request, or None when ``path`` is not one of these endpoints."""
        parts = path.rstrip("/").split("/")
        if len(parts) < 4 or parts[:3] != ["", "api", "v2"]:
            return None
        resource, rest = parts[3], parts[4:]
        handlers = {
            "orgs": self._orgs,
            "buckets": self._buckets,
            "tasks": self._tasks,
            "authorizations": self._authorizations,
        }
        handler = handlers.get(resource)
        if handler is None:
            return None
        if auth is None:
            return UNAUTHORIZED
        with self._lock:
            return handler(method, rest, params, body, auth)

    def _scoped(self, auth: FakeAuthorization, action: str, resource: str) -> Answer | None:
        """401 for a token without ``action`` on every ``resource`` of the org."""
        if auth.allows(action, resource, self.org_id, None):
            return None
        return _error(
            401, "unauthorized", f"{action}:orgs/{self.org_id}/{resource} is unauthorized"
        )

    def _org_filter(self, params: dict[str, str]) -> Answer | None:
        """404 when ``org``/``orgID`` names another organization."""
        if "orgID" in params and params["orgID"] != self.org_id:
            return _error(404, "not found", "organization not found")
        if "org" in params and params["org"] != self.org_name:
            return _error(404, "not found", f'organization name "{params["org"]}" not found')
        return None

    def _org_json(self) -> dict[str, Any]:
        return {
            "id": self.org_id,
            "name": self.org_name,
            "description": "",
            "createdAt": self.org_created,
            "updatedAt": self.org_created,
            "links": {"self": f"/api/v2/orgs/{self.org_id}"},
        }

    # -- /api/v2/orgs ----------------------------------------------------------------------------

    def _orgs(
        self, method: str, rest: list[str], params: dict[str, str], _body: bytes, auth: Any
    ) -> Answer:
        if method != "GET":
            return _error(405, "method not allowed", "method not allowed")
        visible = auth.allows("read", "orgs", self.org_id, self.org_id)
        if rest:
            if not _ID.match(rest[0]):
                return _error(400, "invalid", "id must have a length of 16 bytes")
            if rest[0] != self.org_id:
                return _error(404, "not found", "organization not found")
            if not visible:
                return _error(401, "unauthorized", f"read:orgs/{self.org_id} is unauthorized")
            return 200, self._org_json()
        missing = self._org_filter(params)
        if missing:
            return missing
        # As the server's authorizer does: what the token may not read is left out.
        orgs = [self._org_json()] if visible else []
        return 200, {"links": {"self": "/api/v2/orgs"}, "orgs": orgs}

    # -- /api/v2/buckets -------------------------------------------------------------------------

    def _buckets(
        self, method: str, rest: list[str], params: dict[str, str], body: bytes, auth: Any
    ) -> Answer:
        if method == "GET" and not rest:
            return self._list_buckets(params, auth)
        if method == "POST" and not rest:
            denied = self._scoped(auth, "write", "buckets")
            return denied or self._create_bucket(body)
        if rest and method in ("GET", "DELETE"):
            if not _ID.match(rest[0]):
                return _error(400, "invalid", "id must have a length of 16 bytes")
            bucket = self.buckets.get(rest[0])
            if bucket is None:
                return _error(404, "not found", "bucket not found")
            action = "read" if method == "GET" else "write"
            if not auth.allows(action, "buckets", bucket.org_id, bucket.id):
                return _error(
                    401,
                    "unauthorized",
                    f"{action}:orgs/{bucket.org_id}/buckets/{bucket.id} is unauthorized",
                )
            if method == "GET":
                return 200, bucket.as_json(self.org_name)
            del self.buckets[bucket.id]
            self.on_bucket_deleted(bucket)
            return 204, None
        return _error(405, "method not allowed", "method not allowed")

    def _list_buckets(self, params: dict[str, str], auth: FakeAuthorization) -> Answer:
        try:
            limit = int(params.get("limit", BUCKET_PAGE_DEFAULT))
            offset = int(params.get("offset", 0))
        except ValueError as exc:
            return _error(400, "invalid", str(exc))
        if not 1 <= limit <= BUCKET_PAGE_MAX:
            return _error(400, "invalid", f"limit must be between 1 and {BUCKET_PAGE_MAX}")
        if offset < 0:
            return _error(400, "invalid", "offset must not be negative")
        missing = self._org_filter(params)
        if missing:
            return missing
        found = sorted(self.buckets.values(), key=lambda b: b.id)
        if "name" in params:
            found = [b for b in found if b.name == params["name"]]
        if "id" in params:
            found = [b for b in found if b.id == params["id"]]
        # The server pages first and then leaves out what the token may not read, so a scoped
        # token can get a short page; the links count what is returned.
        page = [b for b in found[offset : offset + limit] if self.allowed(auth, "read", b)]
        keep = {k: v for k, v in params.items() if k not in ("limit", "offset")}

        def link(at: int) -> str:
            query = {"descending": "false", "limit": str(limit), "offset": str(at), **keep}
            return "/api/v2/buckets?" + urlencode(sorted(query.items()))

        links = {"self": link(offset)}
        if len(page) >= limit:
            links["next"] = link(offset + limit)
        if offset > 0:
            links["prev"] = link(max(0, offset - limit))
        return 200, {"links": links, "buckets": [b.as_json(self.org_name) for b in page]}

    def _create_bucket(self, body: bytes) -> Answer:
        doc = _json_object(body)
        if doc is None:
            return _error(400, "invalid", "invalid json: the body is not a JSON object")
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            return _error(422, "unprocessable entity", "bucket name is required")
        if doc.get("orgID") != self.org_id:
            return _error(404, "not found", "organization not found")
        if name.startswith("_"):
            return _error(400, "invalid", "bucket name cannot start with underscore")
        retention = _retention_seconds(doc.get("retentionRules") or [])
        if isinstance(retention, tuple):
            return retention
        if any(b.name == name for b in self.buckets.values()):
            return _error(422, "conflict", f"bucket with name {name} already exists")
        bucket = self._add_bucket(name, retention)
        bucket.description = str(doc.get("description") or "")
        return 201, bucket.as_json(self.org_name)

    # -- /api/v2/tasks ---------------------------------------------------------------------------

    def _tasks(
        self, method: str, rest: list[str], params: dict[str, str], body: bytes, auth: Any
    ) -> Answer:
        if method == "GET" and not rest:
            return self._list_tasks(params, auth)
        if method == "POST" and not rest:
            denied = self._scoped(auth, "write", "tasks")
            return denied or self._create_task(body)
        if rest and method in ("GET", "DELETE"):
            if not _ID.match(rest[0]):
                return _error(400, "invalid", "id must have a length of 16 bytes")
            task = self.tasks.get(rest[0])
            if task is None:
                return _error(404, "not found", "task not found")
            action = "read" if method == "GET" else "write"
            if not auth.allows(action, "tasks", task.org_id, task.id):
                return _error(
                    401,
                    "unauthorized",
                    f"{action}:orgs/{task.org_id}/tasks/{task.id} is unauthorized",
                )
            if method == "GET":
                return 200, task.as_json(self.org_name)
            del self.tasks[task.id]
            return 204, None
        return _error(405, "method not allowed", "method not allowed")

    def _list_tasks(self, params: dict[str, str], auth: FakeAuthorization) -> Answer:
        try:
            limit = int(params.get("limit", TASK_PAGE_DEFAULT))
        except ValueError as exc:
            return _error(400, "invalid", str(exc))
        if not 1 <= limit <= TASK_PAGE_MAX:
            return _error(400, "invalid", f"limit must be between 1 and {TASK_PAGE_MAX}")
        missing = self._org_filter(params)
        if missing:
            return missing
        found = sorted(
            (t for t in self.tasks.values() if auth.allows("read", "tasks", t.org_id, t.id)),
            key=lambda t: t.id,
        )
        if "after" in params:
            found = [t for t in found if t.id > params["after"]]
        if "name" in params:
            found = [t for t in found if t.name == params["name"]]
        if "status" in params:
            found = [t for t in found if t.status == params["status"]]
        page = found[:limit]
        keep = {k: v for k, v in params.items() if k != "after"}
        links = {"self": "/api/v2/tasks?" + urlencode(sorted(params.items()))}
        if len(page) >= limit:
            links["next"] = "/api/v2/tasks?" + urlencode(
                sorted({**keep, "after": page[-1].id}.items())
            )
        return 200, {"links": links, "tasks": [t.as_json(self.org_name) for t in page]}

    def _create_task(self, body: bytes) -> Answer:
        doc = _json_object(body)
        if doc is None:
            return _error(400, "invalid", "failed to decode request: invalid json")
        org_ok = (doc.get("orgID") == self.org_id) or (doc.get("org") == self.org_name)
        if not org_ok:
            return _error(400, "invalid", "failed to decode request body: organization not found")
        flux = doc.get("flux")
        if not isinstance(flux, str) or not flux.strip():
            return _error(400, "invalid", "failed to decode request: missing flux")
        options = _task_options(flux)
        if options is None or "name" not in options:
            return _error(400, "invalid", "invalid options: missing the task option name")
        if "every" not in options and "cron" not in options:
            return _error(400, "invalid", "invalid options: cron or every is required")
        status = doc.get("status", "active")
        if status not in ("active", "inactive"):
            return _error(400, "invalid", f"invalid task status: {status}")
        task = FakeTask(
            id=self._new_id(),
            org_id=self.org_id,
            name=options["name"],
            flux=flux,
            status=str(status),
            every=options.get("every", ""),
            cron=options.get("cron", ""),
            offset=options.get("offset", ""),
            description=str(doc.get("description") or ""),
        )
        self.tasks[task.id] = task
        return 201, task.as_json(self.org_name)

    # -- /api/v2/authorizations ------------------------------------------------------------------

    def _authorizations(
        self, method: str, rest: list[str], params: dict[str, str], body: bytes, auth: Any
    ) -> Answer:
        if method == "GET" and not rest:
            missing = self._org_filter(params)
            if missing:
                return missing
            listed = [
                a.as_json(self.org_name)
                for a in self.authorizations.values()
                if auth.allows("read", "authorizations", a.org_id, a.id)
            ]
            return 200, {"links": {"self": "/api/v2/authorizations"}, "authorizations": listed}
        if method == "POST" and not rest:
            denied = self._scoped(auth, "write", "authorizations")
            return denied or self._create_authorization(body)
        return _error(405, "method not allowed", "method not allowed")

    def _create_authorization(self, body: bytes) -> Answer:
        doc = _json_object(body)
        if doc is None:
            return _error(400, "invalid", "invalid json: the body is not a JSON object")
        if doc.get("orgID") != self.org_id:
            return _error(400, "invalid", "organization not found")
        permissions = doc.get("permissions")
        if not isinstance(permissions, list) or not permissions:
            return _error(400, "invalid", "permissions are required")
        for perm in permissions:
            resource = perm.get("resource") if isinstance(perm, dict) else None
            if not isinstance(resource, dict) or perm.get("action") not in ("read", "write"):
                return _error(400, "invalid", "invalid permission: action must be read or write")
            if resource.get("type") not in _RESOURCE_TYPES:
                return _error(400, "invalid", f"unknown resource type {resource.get('type')}")
            rid = resource.get("id")
            if rid is not None and not (isinstance(rid, str) and _ID.match(rid)):
                return _error(400, "invalid", "id must have a length of 16 bytes")
        status = doc.get("status", "active")
        if status not in ("active", "inactive"):
            return _error(400, "invalid", f"invalid status: {status}")
        new = FakeAuthorization(
            id=self._new_id(),
            token=base64.b64encode(os.urandom(64)).decode(),
            org_id=self.org_id,
            permissions=[
                {
                    "action": p["action"],
                    "resource": {
                        **p["resource"],
                        "orgID": p["resource"].get("orgID") or self.org_id,
                        "org": self.org_name,
                    },
                }
                for p in permissions
            ],
            description=str(doc.get("description") or ""),
            status=str(status),
        )
        self.authorizations[new.id] = new
        return 201, new.as_json(self.org_name)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _task_options(flux: str) -> dict[str, str] | None:
    """``name``, ``every``, ``cron`` and ``offset`` of the script's ``option task`` record."""
    match = _TASK_OPTION.search(flux)
    if match is None:
        return None
    options = {}
    for prop in _TASK_PROP.finditer(match["body"]):
        value = prop["value"].strip()
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:  # a Flux escape JSON does not know, such as \${
                value = value[1:-1]
        options[prop["key"]] = value
    return options
