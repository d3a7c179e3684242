"""A real InfluxDB 2.x server (built by scripts/build-influxd2.sh) on loopback, for tests.

Why a real one: the v2/Cloud path was tested only against our own fake, which answers the
requests our code sends the way we believe the API behaves. This server is onboarded like a
fresh install (``POST /api/v2/setup``) and then answers as InfluxDB 2 really does.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from telegraf_bridge.cli.influx.flux import flux_string

from rig.managed import Managed, stop_process
from rig.ports import free_port, wait_for

INFLUXD2_VERSION = "v2.7.12"
INFLUXD2_BIN_ENV = "INFLUXD2_BIN"
# An operator token of a fixed value: tests pass it to bridge-cli through an environment
# variable, exactly as a user would pass theirs.
# A range() stop past any test's points (Flux's own default stop is now()).
ALL_TIME_STOP = "2200-01-01T00:00:00Z"
OPERATOR_TOKEN = "bridge-test-operator-token-0123456789abcdefghijklmnopqrstuvwxyz=="


def find_influxd2() -> str | None:
    """``$INFLUXD2_BIN``, else the build scripts/build-influxd2.sh caches, else None."""
    explicit = os.environ.get(INFLUXD2_BIN_ENV)
    if explicit:
        return explicit
    cache_root = os.environ.get("TELEGRAF_BRIDGE_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "telegraf-bridge"
    )
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    built = Path(cache_root) / "influxd2" / f"{INFLUXD2_VERSION}-linux-{arch}" / "influxd"
    return str(built) if built.is_file() and os.access(built, os.X_OK) else None


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, raw body, and the body parsed as JSON when it is JSON."""

    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}


class InfluxD2(Managed):
    """Starts ``influxd`` 2.x with its own bolt, engine and sqlite paths; onboards it; stops it."""

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str | None = None,
        http_port: int | None = None,
        org: str = "home",
        bucket: str = "solar",
        token: str = OPERATOR_TOKEN,
        admin: tuple[str, str] = ("admin", "admin-secret-pw"),
    ) -> None:
        """Set up paths and the port; ``start`` runs and onboards the server.

        ``org``, ``bucket`` and ``token`` are what onboarding creates: the first organization,
        its first bucket (infinite retention) and the operator token (every permission).
        """
        found = binary or find_influxd2()
        if not found:
            raise RuntimeError(
                f"influxd {INFLUXD2_VERSION} (InfluxDB 2.x) is not built: run `make influxdb2`"
                f" or set {INFLUXD2_BIN_ENV}"
            )
        self.binary = found
        self.workdir = Path(workdir)
        self.http_port = http_port or free_port()
        self.org = org
        self.bucket = bucket
        self.token = token
        self.admin = admin
        self.org_id = ""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        d = self.workdir
        # influxd reads INFLUXD_* variables and a config.* file in its working directory as
        # settings: neither may leak in from the developer's shell or checkout.
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXD_")}
        log = (d / "influxd.log").open("wb")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--bolt-path",
                str(d / "influxd.bolt"),
                "--engine-path",
                str(d / "engine"),
                "--sqlite-path",
                str(d / "influxd.sqlite"),
                "--http-bind-address",
                f"127.0.0.1:{self.http_port}",
                "--reporting-disabled",
                "--ui-disabled",
                "--log-level",
                "warn",
            ],
            cwd=d,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._healthy, timeout=60, what=f"influxd 2 on {self.url}")
        user, password = self.admin
        reply = self.request(
            "POST",
            "/api/v2/setup",
            body={
                "username": user,
                "password": password,
                "org": self.org,
                "bucket": self.bucket,
                "token": self.token,
            },
            token=False,
        )
        if reply.status != 201:
            raise RuntimeError(f"influxd 2 onboarding failed ({reply.status}): {reply.body!r}")
        self.org_id = str(reply.json()["org"]["id"])
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            log = (self.workdir / "influxd.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"influxd 2 exited with {self.proc.returncode}: {log}")
        try:
            return self.request("GET", "/health", token=False).status == 200
        except OSError:
            return False

    def request(  # noqa: PLR0913 - the keyword-only options of one HTTP call
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        params: dict[str, str] | None = None,
        token: str | bool = True,
        data: bytes | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One call to the HTTP API; an error status is returned, not raised.

        ``token`` is True for this server's operator token, False for no Authorization
        header, or the token to send; the rest as :func:`http_call` takes it.
        """
        return http_call(
            self.url,
            method,
            path,
            token=self.token if token is True else token,
            body=body,
            params=params,
            data=data,
            content_type=content_type,
            accept=accept,
            headers=headers,
        )

    def _ok(self, reply: Reply, what: str) -> Any:
        if reply.status >= 300:
            raise RuntimeError(f"influxd 2: {what} failed ({reply.status}): {reply.body!r}")
        return reply.json()

    # -- organizations, buckets, tokens ------------------------------------------------------

    def create_org(self, name: str) -> str:
        """A new organization (one per test keeps a shared server's tests apart); its id."""
        doc = self._ok(self.request("POST", "/api/v2/orgs", body={"name": name}), "create org")
        return str(doc["id"])

    def new_org(self, bucket: str | None = "solar") -> str:
        """A fresh organization named ``t-<random>`` (with ``bucket`` in it); its name.

        Tests on the shared session server keep apart this way: each one sees only its own
        buckets, tasks, tokens and DBRP mappings.
        """
        name = f"t-{uuid.uuid4().hex[:10]}"
        self.create_org(name)
        if bucket:
            self.create_bucket(bucket, org=name)
        return name

    def org_id_of(self, name: str) -> str:
        doc = self._ok(self.request("GET", "/api/v2/orgs", params={"org": name}), "list orgs")
        return str(doc["orgs"][0]["id"])

    def create_bucket(self, name: str, *, org: str | None = None, retention_s: int = 0) -> str:
        """A bucket in ``org`` (default: the onboarded one) with ``retention_s`` (0 = forever)."""
        org_id = self.org_id if org is None else self.org_id_of(org)
        rules = [{"type": "expire", "everySeconds": retention_s}] if retention_s else []
        body = {"orgID": org_id, "name": name, "retentionRules": rules}
        return str(
            self._ok(self.request("POST", "/api/v2/buckets", body=body), "create bucket")["id"]
        )

    def buckets(self, org: str) -> dict[str, dict[str, Any]]:
        """The buckets of ``org`` by name, as the API lists them."""
        doc = self._ok(
            self.request("GET", "/api/v2/buckets", params={"org": org, "limit": "100"}),
            "list buckets",
        )
        return {str(b["name"]): b for b in doc["buckets"]}

    def create_token(
        self, permissions: list[tuple[str, str]], *, org: str | None = None, description: str = ""
    ) -> str:
        """A token with ``(action, bucket name)`` permissions in ``org``; the token string."""
        org_name = org or self.org
        org_id = self.org_id_of(org_name)
        ids = {name: b["id"] for name, b in self.buckets(org_name).items()}
        perms = [
            {"action": action, "resource": {"type": "buckets", "id": ids[name], "orgID": org_id}}
            for action, name in permissions
        ]
        body = {"orgID": org_id, "description": description, "permissions": perms}
        doc = self._ok(self.request("POST", "/api/v2/authorizations", body=body), "create token")
        return str(doc["token"])

    # -- data ------------------------------------------------------------------------------------

    def write(
        self, bucket: str, lines: str, *, org: str | None = None, precision: str = "ns"
    ) -> None:
        """Line protocol into ``bucket`` through ``/api/v2/write``."""
        params = {"org": org or self.org, "bucket": bucket, "precision": precision}
        reply = self.request(
            "POST",
            "/api/v2/write",
            params=params,
            data=lines.encode(),
            content_type="text/plain; charset=utf-8",
        )
        self._ok(reply, f"write to {bucket}")

    def query(self, flux: str, *, org: str | None = None) -> list[dict[str, str]]:
        """Flux through ``/api/v2/query``; every table's rows as {column: value} strings.

        The answer is annotated CSV: ``#`` annotation rows, then per table a header row and
        data rows, tables separated by blank lines. Errors arrive as a JSON body.
        """
        reply = self.request(
            "POST",
            "/api/v2/query",
            params={"org": org or self.org},
            body={
                "query": flux,
                "type": "flux",
                "dialect": {"annotations": ["datatype", "group", "default"], "header": True},
            },
            accept="application/csv",
        )
        if reply.status != 200:
            raise RuntimeError(f"influxd 2 query failed ({reply.status}): {reply.body!r}")
        return parse_annotated_csv(reply.body.decode())

    def influxql(self, q: str, *, db: str, token: str) -> list[dict[str, Any]]:
        """InfluxQL through the v1 ``/query`` API; the ``series`` of the first result.

        As :meth:`InfluxD1.query <rig.InfluxD1.query>` answers (``epoch=ns``).
        ``db``/``rp`` resolve through the DBRP mappings of ``token``'s organization: the API
        has no organization parameter, so the token must belong to the org that holds the data.
        """
        reply = self.request("GET", "/query", params={"db": db, "q": q, "epoch": "ns"}, token=token)
        if reply.status != 200:
            raise RuntimeError(f"influxd 2 InfluxQL failed ({reply.status}): {reply.body!r}")
        result = reply.json()["results"][0]
        if "error" in result:
            raise RuntimeError(f"influxd 2 InfluxQL error: {result['error']}")
        return list(result.get("series", []))

    def count(self, bucket: str, measurement: str, field: str, *, org: str | None = None) -> int:
        """Points of ``measurement`` with ``field`` in ``bucket`` (all time, every series).

        All time includes the future: a range's stop is ``now()`` unless given.
        """
        flux = (
            f"from(bucket: {flux_string(bucket)}) |> range(start: 0, stop: {ALL_TIME_STOP})"
            f" |> filter(fn: (r) => r._measurement == {flux_string(measurement)}"
            f" and r._field == {flux_string(field)}) |> count()"
        )
        return sum(int(row["_value"]) for row in self.query(flux, org=org))

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)


def http_call(  # noqa: PLR0913 - the keyword-only options of one HTTP call
    base_url: str,
    method: str,
    path: str,
    *,
    token: str | bool,
    body: object = None,
    params: dict[str, str] | None = None,
    data: bytes | None = None,
    content_type: str = "application/json",
    accept: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Reply:
    """One HTTP call to an InfluxDB 2 API at ``base_url`` (the real server or the fake).

    ``body`` is sent as JSON, ``data`` as-is; ``token`` False sends no Authorization header.
    An error status is returned, not raised.
    """
    url = base_url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    payload = json.dumps(body).encode() if body is not None else data
    # Loopback http:// URL built by the tests; no user-supplied scheme reaches urlopen.
    req = urllib.request.Request(url, data=payload, method=method)
    req.add_header("Accept", accept)
    if payload is not None:
        req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Token {token}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Reply(int(resp.status), resp.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.read())


def parse_annotated_csv(text: str) -> list[dict[str, str]]:
    """Rows of every table in a Flux annotated-CSV answer, annotation rows left out."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for record in csv.reader(io.StringIO(text)):
        if not record or record == [""]:
            header = None  # a blank line ends a table; the next one brings its own header
        elif record[0].startswith("#"):
            header = None
        elif header is None:
            header = record
        else:
            rows.append(dict(zip(header, record, strict=True)))
    return rows
