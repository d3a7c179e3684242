"""setup-influxdb / verify / delete-buckets on InfluxDB v2, against the real influxd 2.x.

Each test works in its own organization of the session's server (``influxd2.new_org``), so the
buckets, tasks and tokens it sees are its own. What only InfluxDB Cloud does (a token shown only
once, the Free Plan's limits) stays with the fake: test_fake_v2_differential.py says which.
The tasks here are real Flux tasks; test_downsampling_v2.py runs them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rig import InfluxD2
from rig.influxd2 import OPERATOR_TOKEN, Reply
from telegraf_bridge.cli.influx.admin._http import AuthFailed, Unreachable
from telegraf_bridge.cli.influx.admin._v2_flux import (
    count_flux,
    flux_float,
    lookback_seconds,
    task_flux,
    task_name,
)
from telegraf_bridge.cli.influx.admin.base import AdminError, Step
from telegraf_bridge.cli.influx.admin.v2 import InfluxV2Admin, token_file
from telegraf_bridge.cli.settings import load_settings
from telegraf_bridge.cli.tiers import Layout, layout_from_settings, written_names

pytestmark = pytest.mark.influxd2

ADMIN = OPERATOR_TOKEN
DAY = 86400
SEED_RETENTIONS = {
    "PowerLogger_raw": 30 * DAY,
    "PowerLogger_1m": 90 * DAY,
    "PowerLogger_5m": 365 * DAY,
    "PowerLogger_1h": 0,
}
WRITER = "telegraf-bridge writer token for sink cloud-main (Telegraf writes with it)"
READER = "telegraf-bridge reader token for sink cloud-main (Grafana reads with it)"
NOWHERE = "http://127.0.0.1:9"  # for tests that only render: nothing listens there


def _settings(url: str, extra: str = "", org: str = "home") -> tuple[dict, Layout, list[str]]:
    text = f"""
{extra}
sinks:
  - name: cloud-main
    type: influxdb_v2
    url: {url}
    organization: {org}
    bucket: solar
    token_env: BRIDGE_TEST_TOKEN
"""
    settings = load_settings(None, {"BRIDGE_TEST_TOKEN": ADMIN}, text=text, base_dir=Path.cwd())
    layout = layout_from_settings(settings)
    sink = settings.sinks[0]
    return sink, layout, written_names(settings, layout, sink)


@dataclass
class Org:
    """One test's organization on the real server, and what the API lists in it."""

    server: InfluxD2
    name: str

    @property
    def id(self) -> str:
        return self.server.org_id_of(self.name)

    def get(self, path: str, **params: str) -> Any:
        reply = self.server.request("GET", path, params={"org": self.name, **params})
        assert reply.status == 200, reply
        return reply.json()

    def buckets(self) -> dict[str, dict[str, Any]]:
        return self.server.buckets(self.name)

    def tasks(self) -> dict[str, dict[str, Any]]:
        return {str(t["name"]): t for t in self.get("/api/v2/tasks")["tasks"]}

    def authorization(self, description: str) -> dict[str, Any] | None:
        auths = self.get("/api/v2/authorizations")["authorizations"]
        return next((a for a in auths if a.get("description") == description), None)

    def write(self, bucket: str, lines: str, token: str = ADMIN) -> Reply:
        return self.server.request(
            "POST",
            "/api/v2/write",
            params={"org": self.name, "bucket": bucket, "precision": "ns"},
            data=lines.encode(),
            token=token,
            content_type="text/plain; charset=utf-8",
        )

    def points(self, bucket: str, measurement: str) -> int:
        flux = (
            f'from(bucket: "{bucket}") |> range(start: 0)'
            f' |> filter(fn: (r) => r._measurement == "{measurement}") |> count()'
        )
        return sum(int(r["_value"]) for r in self.server.query(flux, org=self.name))


@pytest.fixture
def org(influxd2: InfluxD2) -> Iterator[Org]:
    yield Org(influxd2, influxd2.new_org("solar"))


def _admin(where: Org, token: str = ADMIN, **kw: object) -> tuple[InfluxV2Admin, Layout]:
    """The admin for the sink in ``where`` (``org=`` names another organization)."""
    kw.setdefault("org", where.name)
    sink, layout, names = _settings(where.server.url, **kw)  # type: ignore[arg-type]
    admin = InfluxV2Admin(sink, token, timeout=10, write_names=names, sleep=lambda _s: None)
    return admin, layout


def _apply(steps: list[Step]) -> list[str]:
    notes = []
    for step in steps:
        if step.status == "create":
            assert step.apply is not None
            notes.append(step.apply())
    return notes


def _setup(org: Org, secrets: Path) -> tuple[InfluxV2Admin, Layout, list[str]]:
    admin, layout = _admin(org)
    admin.connect()
    notes = _apply(admin.plan(layout, secrets))
    return admin, layout, notes


def _scope(auth: dict[str, Any], names: dict[str, str]) -> set[tuple[str, str]]:
    return {(p["action"], names[p["resource"]["id"]]) for p in auth["permissions"]}


# -- setup-influxdb --------------------------------------------------------------------------------


def test_setup_creates_the_seed_buckets_tasks_and_scoped_tokens(org: Org, tmp_path: Path) -> None:
    admin, layout = _admin(org)
    admin.connect()
    steps = admin.plan(layout, tmp_path / "secrets")
    assert [(s.what.split()[0], s.status) for s in steps] == (
        [("bucket", "create")] * 4
        + [("task", "create")] * 3
        + [("token", "create")] * 2
        + [("dbrp", "create")] * 5
    )
    assert "PowerLogger_raw" not in org.buckets(), "plan changes nothing"
    notes = _apply(steps)

    buckets = org.buckets()
    retention = {
        name: sum(r["everySeconds"] for r in buckets[name]["retentionRules"])
        for name in SEED_RETENTIONS
    }
    assert retention == SEED_RETENTIONS

    tasks = org.tasks()
    assert len(tasks) == 3
    for tier in layout.aggregates:
        task = tasks[task_name(layout, tier)]
        assert task["status"] == "active"
        assert task["flux"] == task_flux(layout, tier, org.name), "stored as sent"
        assert task["every"] == tier.key
        assert task["description"]

    names = {str(b["id"]): name for name, b in buckets.items()}
    writer, reader = org.authorization(WRITER), org.authorization(READER)
    assert writer is not None and reader is not None
    assert _scope(writer, names) == {("write", "PowerLogger_raw"), ("write", "solar")}
    assert _scope(reader, names) == {("read", n) for n in [*SEED_RETENTIONS, "solar"]}

    for role, auth in (("writer", writer), ("reader", reader)):
        path = token_file(tmp_path / "secrets", "cloud-main", role)
        assert path.name == f"cloud_main_{role}_token"
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_bytes() == auth["token"].encode(), "the token as-is, no newline"
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    joined = "\n".join(notes)
    assert "cloud_main_writer_token" in joined and "shows a token only once" in joined
    assert writer["token"] not in joined and reader["token"] not in joined


def test_a_second_run_creates_nothing(org: Org, tmp_path: Path) -> None:
    admin, layout, _ = _setup(org, tmp_path)
    auths = org.get("/api/v2/authorizations")["authorizations"]
    before = (org.buckets().keys(), org.tasks().keys(), len(auths))
    steps = admin.plan(layout, tmp_path)
    assert [s.status for s in steps] == ["present"] * 14, [(s.what, s.detail) for s in steps]
    assert all(s.apply is None for s in steps)
    auths = org.get("/api/v2/authorizations")["authorizations"]
    assert (org.buckets().keys(), org.tasks().keys(), len(auths)) == before


def test_a_bucket_with_another_retention_is_a_mismatch_and_is_left_alone(
    org: Org, tmp_path: Path
) -> None:
    org.server.create_bucket("PowerLogger_1m", org=org.name, retention_s=7 * DAY)
    admin, layout = _admin(org)
    admin.connect()
    steps = {s.what: s for s in admin.plan(layout, tmp_path)}
    step = steps["bucket PowerLogger_1m"]
    assert step.status == "mismatch" and step.apply is None
    assert "retention 7d" in step.detail and "wants 90d" in step.detail
    _apply(list(steps.values()))
    rules = org.buckets()["PowerLogger_1m"]["retentionRules"]
    assert [r["everySeconds"] for r in rules] == [7 * DAY]
    rows = {c.name: c for c in admin.checks(layout)}
    assert rows["bucket PowerLogger_1m"].ok is False
    assert "7d" in rows["bucket PowerLogger_1m"].detail


def test_a_task_with_another_script_or_inactive_is_a_mismatch(org: Org, tmp_path: Path) -> None:
    admin, layout, _ = _setup(org, tmp_path)
    tasks = org.tasks()
    one_minute = tasks[task_name(layout, layout.tier("1m"))]
    five_minutes = tasks[task_name(layout, layout.tier("5m"))]
    edited = one_minute["flux"].replace("fn: count", "fn: sum")
    for task, change in ((one_minute, {"flux": edited}), (five_minutes, {"status": "inactive"})):
        reply = org.server.request("PATCH", f"/api/v2/tasks/{task['id']}", body=change)
        assert reply.status == 200, reply
    steps = {s.what.split(": ")[-1]: s for s in admin.plan(layout, tmp_path)}
    assert steps["PowerLogger_raw -> PowerLogger_1m"].status == "mismatch"
    assert "different script" in steps["PowerLogger_raw -> PowerLogger_1m"].detail
    assert steps["PowerLogger_1m -> PowerLogger_5m"].status == "mismatch"
    assert "inactive" in steps["PowerLogger_1m -> PowerLogger_5m"].detail
    assert steps["PowerLogger_5m -> PowerLogger_1h"].status == "present"
    assert org.tasks()[one_minute["name"]]["flux"] == edited, "never edited back"


def test_a_token_file_lost_is_written_again_from_the_oss_listing(org: Org, tmp_path: Path) -> None:
    admin, layout, _ = _setup(org, tmp_path)
    path = token_file(tmp_path, "cloud-main", "reader")
    token = path.read_bytes()
    path.unlink()
    steps = {s.what: s for s in admin.plan(layout, tmp_path)}
    step = next(s for w, s in steps.items() if "reader" in w)
    assert step.status == "create" and "missing" in step.detail
    assert step.apply is not None
    note = step.apply()
    assert path.read_bytes() == token and token.decode() not in note
    path.write_text("a token of an authorization deleted long ago")
    step = next(s for s in admin.plan(layout, tmp_path) if "reader" in s.what)
    assert step.status == "create" and "holds another token" in step.detail


def test_the_writer_may_write_every_tier_when_the_plugin_computes_them(
    org: Org, tmp_path: Path
) -> None:
    # With an InfluxDB 3 sink the plugin aggregates, and its tier rows reach this sink too.
    text = f"""
sinks:
  - {{name: cloud-main, type: influxdb_v2, url: {org.server.url}, organization: {org.name},
      bucket: solar, token_env: T}}
  - {{name: core3, type: influxdb_v3, url: {NOWHERE}, database: d, token_env: T}}
"""
    settings = load_settings(None, {"T": ADMIN}, text=text, base_dir=Path.cwd())
    layout = layout_from_settings(settings)
    sink = settings.sinks[0]
    admin = InfluxV2Admin(sink, ADMIN, write_names=written_names(settings, layout, sink))
    admin.connect()
    _apply(admin.plan(layout, tmp_path))
    writer = org.authorization(WRITER)
    assert writer is not None
    names = {str(b["id"]): name for name, b in org.buckets().items()}
    assert _scope(writer, names) == {("write", n) for n in [*SEED_RETENTIONS, "solar"]}


# -- InfluxQL mappings (DBRP) -----------------------------------------------------------------------


def _influxql(org: Org, token: str, db: str, query: str) -> list[list[Any]]:
    """InfluxQL through the v1 /query API, as Grafana sends it; the rows of the first series.

    The API has no organization parameter: the token's organization holds the mappings.
    """
    reply = org.server.request("GET", "/query", params={"db": db, "q": query}, token=token)
    assert reply.status == 200, reply
    (result,) = reply.json()["results"]
    assert "error" not in result, result
    series = result.get("series") or [{"values": []}]
    return list(series[0]["values"])


def test_setup_maps_every_tier_so_influxql_reaches_it(org: Org, tmp_path: Path) -> None:
    admin, layout, notes = _setup(org, tmp_path)
    buckets = org.buckets()
    listed = org.get("/api/v2/dbrps", orgID=org.id)["content"]
    got = {(m["database"], m["retention_policy"]): m for m in listed if not m["virtual"]}
    assert got.keys() == {("solar", rp) for rp in ["autogen", *SEED_RETENTIONS]}
    assert got[("solar", "autogen")]["bucketID"] == buckets["solar"]["id"]
    assert got[("solar", "autogen")]["default"] is True
    for tier in SEED_RETENTIONS:
        assert got[("solar", tier)]["bucketID"] == buckets[tier]["id"]
        assert got[("solar", tier)]["default"] is False
    assert any("InfluxQL solar/PowerLogger_1m reads bucket PowerLogger_1m" in n for n in notes)

    now = time.time_ns()
    row = f"PowerPulse,PulseType=Import pulses=3i,energy_wh=3.0,power_w=180.0 {now}\n"
    assert org.write("PowerLogger_1m", row).status == 204
    assert org.write("solar", f"demo,site=x power_w=5.5 {now}\n").status == 204
    # As the InfluxQL dashboards ask, with the reader token Grafana gets: the tier as a
    # retention policy of the sink's database.
    reader = token_file(tmp_path, "cloud-main", "reader").read_text()
    tier = _influxql(org, reader, "solar", 'SELECT "pulses" FROM "PowerLogger_1m"."PowerPulse"')
    assert [v[1] for v in tier] == [3]
    assert [v[1] for v in _influxql(org, reader, "solar", 'SELECT "power_w" FROM "demo"')] == [5.5]

    # Deleting a tier takes its mapping with it (InfluxDB removes a bucket's mappings); setup
    # restores both.
    admin.delete_tier(layout, "PowerLogger_1h")
    dbrps = {s.what: s for s in admin.plan(layout, tmp_path) if s.what.startswith("dbrp ")}
    assert dbrps["dbrp solar/PowerLogger_1h"].status == "create"
    _apply(admin.plan(layout, tmp_path))
    dbrps = {s.what: s for s in admin.plan(layout, tmp_path) if s.what.startswith("dbrp ")}
    assert [s.status for s in dbrps.values()] == ["present"] * 5
    assert {c.name: c.ok for c in admin.checks(layout)}["InfluxQL mappings"] is True


def test_a_mapping_to_another_bucket_is_a_mismatch_and_is_left_alone(
    org: Org, tmp_path: Path
) -> None:
    admin, layout, _ = _setup(org, tmp_path)
    buckets = org.buckets()
    listed = org.get("/api/v2/dbrps", orgID=org.id)["content"]
    five = next(m for m in listed if m["retention_policy"] == "PowerLogger_5m")
    assert org.server.request("DELETE", f"/api/v2/dbrps/{five['id']}", params={"orgID": org.id})
    elsewhere = {
        "orgID": org.id,
        "bucketID": buckets["PowerLogger_1h"]["id"],
        "database": "solar",
        "retention_policy": "PowerLogger_5m",
        "default": False,
    }
    created = org.server.request("POST", "/api/v2/dbrps", body=elsewhere)
    assert created.status == 201, created
    steps = {s.what: s for s in admin.plan(layout, tmp_path)}
    step = steps["dbrp solar/PowerLogger_5m"]
    assert step.status == "mismatch" and step.apply is None
    assert "maps to bucket PowerLogger_1h" in step.detail and "dbrp delete" in step.detail
    row = {c.name: c for c in admin.checks(layout)}["InfluxQL mappings"]
    assert row.ok is False and "solar/PowerLogger_5m does not map to bucket PowerLogger_5m" in (
        row.detail
    )
    _apply(list(steps.values()))
    after = org.get("/api/v2/dbrps", orgID=org.id, rp="PowerLogger_5m")["content"]
    assert [m["bucketID"] for m in after if not m["virtual"]] == [buckets["PowerLogger_1h"]["id"]]


# -- verify ----------------------------------------------------------------------------------------


def test_checks_fail_before_setup_and_pass_after(org: Org, tmp_path: Path) -> None:
    admin, layout = _admin(org)
    admin.connect()
    before = {c.name: c for c in admin.checks(layout)}
    assert before["bucket PowerLogger_raw"].ok is False
    assert before["bucket PowerLogger_raw"].detail == "does not exist"
    assert "setup-influxdb" in before["bucket PowerLogger_raw"].next_step
    assert before[f"task {task_name(layout, layout.tier('1m'))}"].ok is False
    assert before["writer token"].ok is False
    assert before["test write"].ok is None and "skipped" in before["test write"].detail

    _apply(admin.plan(layout, tmp_path))
    after = admin.checks(layout)
    assert [c.ok for c in after] == [True] * len(after), [(c.name, c.detail) for c in after]
    assert len(after) == 4 + 3 + 2 + 1 + 1
    write = next(c for c in after if c.name == "test write")
    assert "read back and deleted" in write.detail
    # The marker was read back from the server (ok above) and the delete API removed it.
    assert org.points("PowerLogger_raw", "bridge_verify") == 0


def _wait_for_run(org: Org, task_id: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = org.server.request("GET", f"/api/v2/tasks/{task_id}/runs/{run_id}").json()
        if run.get("status") in ("success", "failed", "canceled"):
            return dict(run)
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} of task {task_id} did not finish")


def test_a_failed_last_run_fails_its_check(org: Org, tmp_path: Path) -> None:
    """A real failure: the 1h task's source bucket is gone when the task runs."""
    admin, layout, _ = _setup(org, tmp_path)
    five = org.buckets()["PowerLogger_5m"]
    assert org.server.request("DELETE", f"/api/v2/buckets/{five['id']}").status == 204
    task = org.tasks()[task_name(layout, layout.tier("1h"))]
    started = org.server.request("POST", f"/api/v2/tasks/{task['id']}/runs", body={})
    assert started.status == 201, started
    assert _wait_for_run(org, task["id"], started.json()["id"])["status"] == "failed"
    row = next(c for c in admin.checks(layout) if c.name == f"task {task['name']}")
    assert row.ok is False and "last run failed" in row.detail
    assert "PowerLogger_5m" in row.detail


# -- the tokens it hands out -----------------------------------------------------------------------


def test_the_writer_token_writes_raw_pulses_and_is_refused_for_the_1h_bucket(
    org: Org, tmp_path: Path
) -> None:
    _setup(org, tmp_path)
    writer = token_file(tmp_path, "cloud-main", "writer").read_text()
    # Recent: the real server refuses (422) a point older than the bucket's retention.
    line = f"PowerPulse,PulseType=Import Pulse=1i {time.time_ns()}\n"
    assert org.write("PowerLogger_raw", line, writer).status == 204
    assert org.write("solar", "m v=1 1\n", writer).status == 204
    refused = org.write("PowerLogger_1h", line, writer)
    assert (refused.status, refused.json()) == (
        403,
        {"code": "forbidden", "message": "insufficient permissions for write"},
    )
    assert org.points("PowerLogger_raw", "PowerPulse") == 1
    assert org.points("PowerLogger_1h", "PowerPulse") == 0
    reader = token_file(tmp_path, "cloud-main", "reader").read_text()
    assert org.write("PowerLogger_raw", line, reader).status == 403
    assert org.points("PowerLogger_raw", "PowerPulse") == 1
    # A scoped token administers nothing, and sees only what it may read.
    body = {"orgID": org.id, "name": "x", "retentionRules": []}
    created = org.server.request("POST", "/api/v2/buckets", body=body, token=writer)
    assert created.status == 401 and created.json()["code"] == "unauthorized", created
    params = {"org": org.name, "limit": "100"}
    seen = org.server.request("GET", "/api/v2/buckets", params=params, token=writer)
    assert seen.status == 200 and seen.json()["buckets"] == []
    listed = org.server.request("GET", "/api/v2/buckets", params=params, token=reader).json()
    assert sorted(b["name"] for b in listed["buckets"]) == sorted([*SEED_RETENTIONS, "solar"])


# -- delete-buckets --------------------------------------------------------------------------------


def test_usage_counts_points_and_delete_tier_removes_bucket_and_its_tasks(
    org: Org, tmp_path: Path
) -> None:
    admin, layout, _ = _setup(org, tmp_path)
    now = time.time_ns()
    raw = "".join(f"PowerPulse,PulseType=Import Pulse=1i {now + i}\n" for i in range(7))
    row = f"PowerPulse,PulseType=Import pulses=3i,energy_wh=3.0,power_w=180.0 {now}\n"
    assert org.write("PowerLogger_raw", raw).status == 204
    assert org.write("PowerLogger_1m", row).status == 204
    usage = {u.name: u for u in admin.usage(layout)}
    assert [(u.exists, u.points) for u in usage.values()] == [
        (True, 7),
        (True, 1),
        (True, 0),
        (True, 0),
    ]
    assert "retention 30d" in usage["PowerLogger_raw"].detail

    admin.delete_tier(layout, "PowerLogger_raw")
    assert "PowerLogger_raw" not in org.buckets()
    tasks = org.tasks()
    assert task_name(layout, layout.tier("1m")) not in tasks
    assert task_name(layout, layout.tier("5m")) in tasks
    usage = {u.name: u for u in admin.usage(layout)}
    assert usage["PowerLogger_raw"].exists is False and usage["PowerLogger_raw"].points is None
    admin.delete_tier(layout, "PowerLogger_raw")  # already gone: nothing to do
    with pytest.raises(AdminError, match="not one of the tiers"):
        admin.delete_tier(layout, "solar")
    # Re-created, the bucket starts empty (its points went with it).
    _apply(admin.plan(layout, tmp_path))
    assert org.points("PowerLogger_raw", "PowerPulse") == 0


# -- connection problems ---------------------------------------------------------------------------


def test_a_bad_token_is_an_admin_error_that_never_shows_the_token(org: Org) -> None:
    bad = "Sekr3t-not-the-admin-token-" + "x" * 40
    admin, _ = _admin(org, token=bad)
    with pytest.raises(AuthFailed) as info:  # verify's "credentials" row, not "connection"
        admin.connect()
    text = str(info.value) + "\n".join(info.value.next_steps)
    assert bad not in text and bad[4:12] not in text
    assert "Sekr…" in text and "401" in str(info.value)
    assert any("all-access" in s for s in info.value.next_steps)
    assert any("organization" in s for s in info.value.next_steps)


def test_unreachable_server_and_unknown_org(org: Org) -> None:
    admin, _ = _admin(org, org="nobody")
    with pytest.raises(AdminError, match="organization 'nobody' not found"):
        admin.connect()
    sink, _, _ = _settings(NOWHERE)
    with pytest.raises(Unreachable, match=r"cannot reach http://127\.0\.0\.1:9") as info:
        InfluxV2Admin(sink, ADMIN, timeout=2).connect()
    assert ADMIN not in str(info.value) + "".join(info.value.next_steps)
    sink, _, _ = _settings(org.server.url, org=org.name)
    with pytest.raises(AdminError, match="no token"):
        InfluxV2Admin(sink, None).connect()


def test_the_organization_may_be_given_by_id(org: Org, tmp_path: Path) -> None:
    admin, layout = _admin(org, org=org.id)
    admin.connect()
    _apply(admin.plan(layout, tmp_path))
    task = org.tasks()[task_name(layout, layout.tier("5m"))]
    assert f'org: "{org.name}"' in task["flux"]


def test_pagination_does_not_hide_a_tier_among_many_buckets(org: Org, tmp_path: Path) -> None:
    for i in range(150):
        org.server.create_bucket(f"0ther_{i:03d}", org=org.name)
    admin, layout, _ = _setup(org, tmp_path)
    # InfluxDB lists buckets by name: "0ther_..." before "PowerLogger_...", on the first page.
    page = org.server.request(
        "GET", "/api/v2/buckets", params={"orgID": org.id, "limit": "100"}
    ).json()
    assert len(page["buckets"]) == 100 and "next" in page["links"]
    assert "PowerLogger_raw" not in {b["name"] for b in page["buckets"]}
    assert [s.status for s in admin.plan(layout, tmp_path)] == ["present"] * 14
    assert {c.name: c.ok for c in admin.checks(layout)}["bucket PowerLogger_1h"] is True


# -- the generated Flux ----------------------------------------------------------------------------


def _balanced(flux: str) -> bool:
    """Brackets balance outside string literals (as far as Flux can be checked without Flux)."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    in_string = False
    i = 0
    while i < len(flux):
        ch = flux[i]
        if in_string:
            if ch == "\\":
                i += 1  # the escaped character cannot end the string
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return False
        i += 1
    return not stack and not in_string


def test_the_task_flux_has_the_required_shape() -> None:
    extra = """
downsampling:
  lookback: 650s
sources:
  - name: meter
    plugin: gpio_pulse
    options:
      channels:
        - {name: Import, pin: 20, impulses_per_kwh: 1000}
        - {name: Export, pin: 26, impulses_per_kwh: 800}
        - {name: Generate, pin: 21, impulses_per_kwh: 1000}
"""
    _, layout, _ = _settings(NOWHERE, extra)
    for tier in layout.aggregates:
        flux = task_flux(layout, tier, 'we"ird org')
        assert _balanced(flux), flux
        assert f'to(bucket: "{tier.name}", org: "we\\"ird org"' in flux
        assert f'from(bucket: "{layout.tier(str(tier.source)).name}")' in flux
        assert 'timeSrc: "_start"' in flux and "createEmpty: false" in flux
        assert 'tagColumns: ["PulseType"]' in flux
        assert flux.startswith(f'option task = {{name: "{task_name(layout, tier)}", every: ')
        # The range starts on a window boundary: lookback rounded up to whole windows.
        assert lookback_seconds(layout, tier) % tier.every_s == 0
        assert lookback_seconds(layout, tier) >= layout.lookback_for(tier)
        power = flux_float(3600 / tier.every_s)
        assert f"power_w: r.energy_wh * {power}" in flux
    one = task_flux(layout, layout.tier("1m"), "home")
    assert "range(start: -11m)" in one  # 650 s -> 11 whole minutes
    assert 'r._field == "Pulse"' in one and "fn: count" in one
    # Per-channel Wh per pulse: 1000 imp/kWh -> 1.0 Wh, 800 imp/kWh -> 1.25 Wh.
    assert '(if r.PulseType == "Import" or r.PulseType == "Generate" then 1.0 else 1.25)' in one
    # Only declared channels are counted (an unknown one has no Wh constant).
    assert (
        '(r.PulseType == "Import" or r.PulseType == "Export" or r.PulseType == "Generate"))' in one
    )
    five = task_flux(layout, layout.tier("5m"), "home")
    assert "fn: sum" in five and 'r._field == "energy_wh"' in five and "pivot(" in five
    assert _balanced(count_flux("b", "m", "f")) and not _balanced("map(fn: (r) => ({r})")


def test_one_constant_when_every_channel_has_the_same_wh() -> None:
    _, layout, _ = _settings(NOWHERE)
    flux = task_flux(layout, layout.tier("1m"), "home")
    assert "float(v: r.pulses) * 1.0}" in flux and "if r.PulseType" not in flux
    assert flux_float(1e-05) == "0.00001" and flux_float(2) == "2.0"
