"""setup-influxdb / verify / delete-buckets on InfluxDB v2 and Cloud, against the loopback fake.

FakeInfluxV2 answers the management API as the official v2 API documents it (see
testing/_fake_v2_admin.py); the real influxd 2 (built by `make influxdb2`) runs setup-influxdb
and verify in test_influxd2_e2e.py, and moving the rest here onto it is issue 17's work. It stores tasks but runs no
Flux, so the task tests check the stored script against what the layout requires.
"""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from telegraf_bridge.cli.influx_admin._http import AuthFailed, Unreachable
from telegraf_bridge.cli.influx_admin._v2_flux import (
    count_flux,
    flux_float,
    lookback_seconds,
    task_flux,
    task_name,
)
from telegraf_bridge.cli.influx_admin.base import AdminError, Step
from telegraf_bridge.cli.influx_admin.v2 import InfluxV2Admin, token_file
from telegraf_bridge.cli.settings import load_settings
from telegraf_bridge.cli.tiers import Layout, layout_from_settings, written_names

from telegraf_bridge.testing import FakeInfluxV2

ADMIN = "adm1n-Token-0123456789abcdefghijklmnopqrstuvwxyz=="
ORG = "home"
DAY = 86400
SEED_RETENTIONS = {
    "PowerLogger_raw": 30 * DAY,
    "PowerLogger_1m": 90 * DAY,
    "PowerLogger_5m": 365 * DAY,
    "PowerLogger_1h": 0,
}


def _settings(url: str, extra: str = "", org: str = ORG) -> tuple[dict, Layout, list[str]]:
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


@pytest.fixture
def fake() -> Iterator[FakeInfluxV2]:
    with FakeInfluxV2(token=ADMIN, org=ORG, buckets=("solar",)) as server:
        yield server  # type: ignore[misc]


def _admin(fake: FakeInfluxV2, token: str = ADMIN, **kw: object) -> tuple[InfluxV2Admin, Layout]:
    sink, layout, names = _settings(fake.url, **kw)  # type: ignore[arg-type]
    admin = InfluxV2Admin(sink, token, timeout=5, write_names=names, sleep=lambda _s: None)
    return admin, layout


def _apply(steps: list[Step]) -> list[str]:
    notes = []
    for step in steps:
        if step.status == "create":
            assert step.apply is not None
            notes.append(step.apply())
    return notes


def _setup(fake: FakeInfluxV2, secrets: Path) -> tuple[InfluxV2Admin, Layout, list[str]]:
    admin, layout = _admin(fake)
    admin.connect()
    notes = _apply(admin.plan(layout, secrets))
    return admin, layout, notes


def _http(
    url: str, token: str, *, method: str = "POST", body: bytes | None = None
) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=body, method=method, headers={"Authorization": f"Token {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw.startswith(b"{") else {}
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else {}


# -- setup-influxdb --------------------------------------------------------------------------------


def test_setup_creates_the_seed_buckets_tasks_and_scoped_tokens(
    fake: FakeInfluxV2, tmp_path: Path
) -> None:
    admin, layout = _admin(fake)
    admin.connect()
    steps = admin.plan(layout, tmp_path / "secrets")
    assert [(s.what.split()[0], s.status) for s in steps] == (
        [("bucket", "create")] * 4 + [("task", "create")] * 3 + [("token", "create")] * 2
    )
    assert fake.admin.bucket("PowerLogger_raw") is None, "plan changes nothing"
    notes = _apply(steps)

    buckets = {name: fake.admin.bucket(name) for name in SEED_RETENTIONS}
    assert {n: b.retention_s for n, b in buckets.items() if b} == SEED_RETENTIONS

    tasks = sorted(fake.admin.tasks.values(), key=lambda t: t.name)
    assert len(tasks) == 3
    for tier in layout.aggregates:
        task = fake.admin.task_named(task_name(layout, tier))
        assert task is not None and task.status == "active"
        assert task.flux == task_flux(layout, tier, ORG)
        assert task.every == {"1m": "1m", "5m": "5m", "1h": "1h"}[tier.key]
        assert task.description

    ids = {name: b.id for name, b in buckets.items() if b}
    solar = fake.admin.bucket("solar")
    assert solar is not None
    writer = fake.admin.authorization_described(
        "telegraf-bridge writer token for sink cloud-main (Telegraf writes with it)"
    )
    reader = fake.admin.authorization_described(
        "telegraf-bridge reader token for sink cloud-main (Grafana reads with it)"
    )
    assert writer is not None and reader is not None
    scope = {(p["action"], p["resource"]["type"], p["resource"]["id"]) for p in writer.permissions}
    assert scope == {
        ("write", "buckets", ids["PowerLogger_raw"]),
        ("write", "buckets", solar.id),
    }
    scope = {(p["action"], p["resource"]["type"], p["resource"]["id"]) for p in reader.permissions}
    assert scope == {("read", "buckets", i) for i in [*ids.values(), solar.id]}

    for role, auth in (("writer", writer), ("reader", reader)):
        path = token_file(tmp_path / "secrets", "cloud-main", role)
        assert path.name == f"cloud_main_{role}_token"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes() == auth.token.encode(), "the token as-is, no newline"
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    joined = "\n".join(notes)
    assert "cloud_main_writer_token" in joined and "shows a token only once" in joined
    assert writer.token not in joined and reader.token not in joined


def test_a_second_run_creates_nothing(fake: FakeInfluxV2, tmp_path: Path) -> None:
    admin, layout, _ = _setup(fake, tmp_path)
    before = (len(fake.admin.buckets), len(fake.admin.tasks), len(fake.admin.authorizations))
    steps = admin.plan(layout, tmp_path)
    assert [s.status for s in steps] == ["present"] * 9, [(s.what, s.detail) for s in steps]
    assert all(s.apply is None for s in steps)
    after = (len(fake.admin.buckets), len(fake.admin.tasks), len(fake.admin.authorizations))
    assert after == before


def test_a_bucket_with_another_retention_is_a_mismatch_and_is_left_alone(
    fake: FakeInfluxV2, tmp_path: Path
) -> None:
    fake.admin.add_bucket("PowerLogger_1m", 7 * DAY)
    admin, layout = _admin(fake)
    admin.connect()
    steps = {s.what: s for s in admin.plan(layout, tmp_path)}
    step = steps["bucket PowerLogger_1m"]
    assert step.status == "mismatch" and step.apply is None
    assert "retention 7d" in step.detail and "wants 90d" in step.detail
    _apply(list(steps.values()))
    bucket = fake.admin.bucket("PowerLogger_1m")
    assert bucket is not None and bucket.retention_s == 7 * DAY
    rows = {c.name: c for c in admin.checks(layout)}
    assert rows["bucket PowerLogger_1m"].ok is False
    assert "7d" in rows["bucket PowerLogger_1m"].detail


def test_a_task_with_another_script_or_inactive_is_a_mismatch(
    fake: FakeInfluxV2, tmp_path: Path
) -> None:
    admin, layout, _ = _setup(fake, tmp_path)
    one_minute = fake.admin.task_named(task_name(layout, layout.tier("1m")))
    five_minutes = fake.admin.task_named(task_name(layout, layout.tier("5m")))
    assert one_minute is not None and five_minutes is not None
    one_minute.flux = one_minute.flux.replace("fn: count", "fn: sum")
    five_minutes.status = "inactive"
    steps = {s.what.split(": ")[-1]: s for s in admin.plan(layout, tmp_path)}
    assert steps["PowerLogger_raw -> PowerLogger_1m"].status == "mismatch"
    assert "different script" in steps["PowerLogger_raw -> PowerLogger_1m"].detail
    assert steps["PowerLogger_1m -> PowerLogger_5m"].status == "mismatch"
    assert "inactive" in steps["PowerLogger_1m -> PowerLogger_5m"].detail
    assert steps["PowerLogger_5m -> PowerLogger_1h"].status == "present"
    assert one_minute.flux.count("fn: sum") == 1, "never edited"


def test_a_token_file_lost_is_written_again_from_the_oss_listing(
    fake: FakeInfluxV2, tmp_path: Path
) -> None:
    admin, layout, _ = _setup(fake, tmp_path)
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
    fake: FakeInfluxV2, tmp_path: Path
) -> None:
    # With an InfluxDB 3 sink the plugin aggregates, and its tier rows reach this sink too.
    text = f"""
sinks:
  - {{name: cloud-main, type: influxdb_v2, url: {fake.url}, organization: {ORG}, bucket: solar,
      token_env: T}}
  - {{name: core3, type: influxdb_v3, url: {fake.url}, database: d, token_env: T}}
"""
    settings = load_settings(None, {"T": ADMIN}, text=text, base_dir=Path.cwd())
    layout = layout_from_settings(settings)
    sink = settings.sinks[0]
    admin = InfluxV2Admin(sink, ADMIN, write_names=written_names(settings, layout, sink))
    admin.connect()
    _apply(admin.plan(layout, tmp_path))
    writer = fake.admin.authorization_described(
        "telegraf-bridge writer token for sink cloud-main (Telegraf writes with it)"
    )
    assert writer is not None
    names = {b.id: b.name for b in fake.admin.buckets.values()}
    scope = {(p["action"], names[p["resource"]["id"]]) for p in writer.permissions}
    assert scope == {("write", n) for n in [*SEED_RETENTIONS, "solar"]}


# -- verify ----------------------------------------------------------------------------------------


def test_checks_fail_before_setup_and_pass_after(fake: FakeInfluxV2, tmp_path: Path) -> None:
    admin, layout = _admin(fake)
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
    assert len(after) == 4 + 3 + 2 + 1
    write = next(c for c in after if c.name == "test write")
    assert "read back and deleted" in write.detail
    # The marker really went through the write API and was removed by the delete API.
    writes = [r for r in fake.requests if "bridge_verify" in r.body]
    assert writes and writes[-1].status == 204
    assert [p for _, p in fake.stored("PowerLogger_raw") if p.measurement == "bridge_verify"] == []


def test_a_failed_last_run_fails_its_check(fake: FakeInfluxV2, tmp_path: Path) -> None:
    admin, layout, _ = _setup(fake, tmp_path)
    task = fake.admin.task_named(task_name(layout, layout.tier("1h")))
    assert task is not None
    task.last_run_status, task.last_run_error = "failed", 'bucket "PowerLogger_5m" not found'
    row = next(c for c in admin.checks(layout) if c.name == f"task {task.name}")
    assert row.ok is False and "PowerLogger_5m" in row.detail


# -- the tokens it hands out -----------------------------------------------------------------------


def test_the_writer_token_writes_raw_pulses_and_is_refused_for_the_1h_bucket(
    fake: FakeInfluxV2, tmp_path: Path
) -> None:
    _setup(fake, tmp_path)
    writer = token_file(tmp_path, "cloud-main", "writer").read_text()
    line = b"PowerPulse,PulseType=Import Pulse=1i 1700000000000000000\n"
    base = f"{fake.url}/api/v2/write?org={ORG}&precision=ns&bucket="
    assert _http(base + "PowerLogger_raw", writer, body=line)[0] == 204
    assert _http(base + "solar", writer, body=b"m v=1 1\n")[0] == 204
    status, body = _http(base + "PowerLogger_1h", writer, body=line)
    assert (status, body) == (
        403,
        {"code": "forbidden", "message": "insufficient permissions for write"},
    )
    assert len(fake.stored("PowerLogger_raw")) == 1 and fake.stored("PowerLogger_1h") == []
    reader = token_file(tmp_path, "cloud-main", "reader").read_text()
    assert _http(base + "PowerLogger_raw", reader, body=line)[0] == 403
    # A scoped token administers nothing, and sees only what it may read.
    org_id = fake.admin.org_id
    body = json.dumps({"orgID": org_id, "name": "x", "retentionRules": []}).encode()
    assert _http(f"{fake.url}/api/v2/buckets", writer, body=body) == (
        401,
        {"code": "unauthorized", "message": f"write:orgs/{org_id}/buckets is unauthorized"},
    )
    assert _http(f"{fake.url}/api/v2/buckets", writer, method="GET")[1]["buckets"] == []
    listed = _http(f"{fake.url}/api/v2/buckets?limit=100", reader, method="GET")[1]["buckets"]
    assert sorted(b["name"] for b in listed) == sorted([*SEED_RETENTIONS, "solar"])


# -- delete-buckets --------------------------------------------------------------------------------


def test_usage_counts_points_and_delete_tier_removes_bucket_and_its_tasks(
    fake: FakeInfluxV2, tmp_path: Path
) -> None:
    admin, layout, _ = _setup(fake, tmp_path)
    raw = "".join(
        f"PowerPulse,PulseType=Import Pulse=1i {1700000000000000000 + i}\n" for i in range(7)
    )
    row = "PowerPulse,PulseType=Import pulses=3i,energy_wh=3.0,power_w=180.0 1700000000000000000\n"
    base = f"{fake.url}/api/v2/write?org={ORG}&bucket="
    assert _http(base + "PowerLogger_raw", ADMIN, body=raw.encode())[0] == 204
    assert _http(base + "PowerLogger_1m", ADMIN, body=row.encode())[0] == 204
    usage = {u.name: u for u in admin.usage(layout)}
    assert [(u.exists, u.points) for u in usage.values()] == [
        (True, 7),
        (True, 1),
        (True, 0),
        (True, 0),
    ]
    assert "retention 30d" in usage["PowerLogger_raw"].detail

    admin.delete_tier(layout, "PowerLogger_raw")
    assert fake.admin.bucket("PowerLogger_raw") is None
    assert fake.admin.task_named(task_name(layout, layout.tier("1m"))) is None
    assert fake.admin.task_named(task_name(layout, layout.tier("5m"))) is not None
    usage = {u.name: u for u in admin.usage(layout)}
    assert usage["PowerLogger_raw"].exists is False and usage["PowerLogger_raw"].points is None
    admin.delete_tier(layout, "PowerLogger_raw")  # already gone: nothing to do
    with pytest.raises(AdminError, match="not one of the tiers"):
        admin.delete_tier(layout, "solar")
    # Re-created, the bucket starts empty (its points went with it).
    _apply(admin.plan(layout, tmp_path))
    assert fake.stored("PowerLogger_raw") == []


# -- connection problems ---------------------------------------------------------------------------


def test_a_bad_token_is_an_admin_error_that_never_shows_the_token(fake: FakeInfluxV2) -> None:
    bad = "Sekr3t-not-the-admin-token-" + "x" * 40
    admin, _ = _admin(fake, token=bad)
    with pytest.raises(AuthFailed) as info:  # verify's "credentials" row, not "connection"
        admin.connect()
    text = str(info.value) + "\n".join(info.value.next_steps)
    assert bad not in text and bad[4:12] not in text
    assert "Sekr…" in text and "401" in str(info.value)
    assert any("all-access" in s for s in info.value.next_steps)
    assert any("organization" in s for s in info.value.next_steps)


def test_unreachable_server_and_unknown_org(fake: FakeInfluxV2) -> None:
    admin, _ = _admin(fake, org="nobody")
    with pytest.raises(AdminError, match="organization 'nobody' not found"):
        admin.connect()
    sink, _, _ = _settings("http://127.0.0.1:9")
    with pytest.raises(Unreachable, match=r"cannot reach http://127\.0\.0\.1:9") as info:
        InfluxV2Admin(sink, ADMIN, timeout=2).connect()
    assert ADMIN not in str(info.value) + "".join(info.value.next_steps)
    sink, _, _ = _settings(fake.url)
    with pytest.raises(AdminError, match="no token"):
        InfluxV2Admin(sink, None).connect()


def test_the_organization_may_be_given_by_id(fake: FakeInfluxV2, tmp_path: Path) -> None:
    admin, layout = _admin(fake, org=fake.admin.org_id)
    admin.connect()
    _apply(admin.plan(layout, tmp_path))
    task = fake.admin.task_named(task_name(layout, layout.tier("5m")))
    assert task is not None and f'org: "{ORG}"' in task.flux


def test_pagination_does_not_hide_a_tier_among_many_buckets(
    fake: FakeInfluxV2, tmp_path: Path
) -> None:
    for i in range(150):
        fake.admin.add_bucket(f"other_{i:03d}")
    admin, layout, _ = _setup(fake, tmp_path)
    # The tiers were created last: they sit on the second page of 100.
    listing = _http(
        f"{fake.url}/api/v2/buckets?orgID={fake.admin.org_id}&limit=100", ADMIN, method="GET"
    )[1]
    assert len(listing["buckets"]) == 100 and "next" in listing["links"]
    assert "PowerLogger_raw" not in {b["name"] for b in listing["buckets"]}
    assert [s.status for s in admin.plan(layout, tmp_path)] == ["present"] * 9
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


def test_the_task_flux_has_the_required_shape(fake: FakeInfluxV2) -> None:
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
    _, layout, _ = _settings(fake.url, extra)
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
    one = task_flux(layout, layout.tier("1m"), ORG)
    assert "range(start: -11m)" in one  # 650 s -> 11 whole minutes
    assert 'r._field == "Pulse"' in one and "fn: count" in one
    # Per-channel Wh per pulse: 1000 imp/kWh -> 1.0 Wh, 800 imp/kWh -> 1.25 Wh.
    assert '(if r.PulseType == "Import" or r.PulseType == "Generate" then 1.0 else 1.25)' in one
    # Only declared channels are counted (an unknown one has no Wh constant).
    assert (
        '(r.PulseType == "Import" or r.PulseType == "Export" or r.PulseType == "Generate"))' in one
    )
    five = task_flux(layout, layout.tier("5m"), ORG)
    assert "fn: sum" in five and 'r._field == "energy_wh"' in five and "pivot(" in five
    assert _balanced(count_flux("b", "m", "f")) and not _balanced("map(fn: (r) => ({r})")


def test_one_constant_when_every_channel_has_the_same_wh(fake: FakeInfluxV2) -> None:
    _, layout, _ = _settings(fake.url)
    flux = task_flux(layout, layout.tier("1m"), ORG)
    assert "float(v: r.pulses) * 1.0}" in flux and "if r.PulseType" not in flux
    assert flux_float(1e-05) == "0.00001" and flux_float(2) == "2.0"


# -- the fake itself follows the API -----------------------------------------------------------------


def test_fake_bucket_api_errors(fake: FakeInfluxV2) -> None:
    org_id = fake.admin.org_id
    body = json.dumps({"orgID": org_id, "name": "solar", "retentionRules": []}).encode()
    assert _http(f"{fake.url}/api/v2/buckets", ADMIN, body=body) == (
        422,
        {"code": "conflict", "message": "bucket with name solar already exists"},
    )
    short = json.dumps(
        {"orgID": org_id, "name": "s", "retentionRules": [{"type": "expire", "everySeconds": 60}]}
    ).encode()
    assert _http(f"{fake.url}/api/v2/buckets", ADMIN, body=short)[0] == 422
    assert _http(f"{fake.url}/api/v2/buckets?limit=101", ADMIN, method="GET") == (
        400,
        {"code": "invalid", "message": "limit must be between 1 and 100"},
    )
    assert _http(f"{fake.url}/api/v2/buckets", "nope", method="GET") == (
        401,
        {"code": "unauthorized", "message": "unauthorized access"},
    )
    assert _http(f"{fake.url}/api/v2/buckets/xyz", ADMIN, method="DELETE")[0] == 400
    assert _http(f"{fake.url}/api/v2/buckets/{'0' * 16}", ADMIN, method="DELETE") == (
        404,
        {"code": "not found", "message": "bucket not found"},
    )
    assert _http(f"{fake.url}/api/v2/orgs?org=other", ADMIN, method="GET")[0] == 404
    missing = json.dumps({"orgID": org_id, "status": "active"}).encode()
    assert _http(f"{fake.url}/api/v2/tasks", ADMIN, body=missing) == (
        400,
        {"code": "invalid", "message": "failed to decode request: missing flux"},
    )


def test_fake_delete_removes_only_matching_points(fake: FakeInfluxV2) -> None:
    lines = (
        b"a,t=x v=1 1000000000\na,t=y v=1 1000000000\nb,t=x v=1 1000000000\na,t=x v=1 9000000000\n"
    )
    assert _http(f"{fake.url}/api/v2/write?org={ORG}&bucket=solar", ADMIN, body=lines)[0] == 204
    delete = {
        "start": "1970-01-01T00:00:00Z",
        "stop": "1970-01-01T00:00:05Z",
        "predicate": '_measurement="a" AND t="x"',
    }
    url = f"{fake.url}/api/v2/delete?org={ORG}&bucket=solar"
    assert _http(url, ADMIN, body=json.dumps(delete).encode())[0] == 204
    left = sorted((p.measurement, p.tags["t"], t) for t, p in fake.stored("solar"))
    assert left == [("a", "x", 9000000000), ("a", "y", 1000000000), ("b", "x", 1000000000)]
    bad = {**delete, "predicate": '_measurement="a" OR t="x"'}
    assert _http(url, ADMIN, body=json.dumps(bad).encode())[0] == 400
    assert _http(url, ADMIN, body=b'{"stop": "1970-01-01T00:00:05Z"}')[0] == 400


def test_fake_task_listing_pages_with_after(fake: FakeInfluxV2) -> None:
    org_id = fake.admin.org_id
    for i in range(3):
        flux = (
            f'option task = {{name: "t{i}", every: 1h}}\nfrom(bucket: "solar") |> range(start: -1h)'
        )
        body = json.dumps({"orgID": org_id, "flux": flux}).encode()
        status, task = _http(f"{fake.url}/api/v2/tasks", ADMIN, body=body)
        assert status == 201 and task["name"] == f"t{i}" and task["every"] == "1h"
    status, page = _http(f"{fake.url}/api/v2/tasks?orgID={org_id}&limit=2", ADMIN, method="GET")
    assert [t["name"] for t in page["tasks"]] == ["t0", "t1"] and "after=" in page["links"]["next"]
    status, rest = _http(fake.url + page["links"]["next"], ADMIN, method="GET")
    assert [t["name"] for t in rest["tasks"]] == ["t2"] and "next" not in rest["links"]
