"""End to end into the loopback InfluxDB v2 and v3 fakes, for what only a fake can show: the
exact requests Telegraf sends (points, Authorization, gzip, parameters) and Telegraf retrying
through scripted 503/429 outages with Retry-After (InfluxDB Cloud's rate limiting). No InfluxDB 3
server can be obtained here; what the real influxd 2 stores of the same points is checked in
test_influxd2_e2e.py, and a refused token runs against it below."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _support import TRICKY_EXPECTED, TRICKY_POINTS, emitter_input, fast_agent_yaml, render_yaml
from rig import FakeInfluxV2, FakeInfluxV3, InfluxD2, TelegrafProcess, wait_for

pytestmark = pytest.mark.telegraf

V2_TOKEN = "canary-v2-token"
V3_TOKEN = "canary-v3-token-from-file"
# A '$' in a value must reach the server literally (bridge.yaml writes it as $${HOME}).
BUCKET = "so${HOME}lar"


def _run(
    tmp_path: Path,
    telegraf_bin: Path,
    v2: FakeInfluxV2 | InfluxD2,
    v3: FakeInfluxV3,
    *,
    org: str = "test-org",
) -> TelegrafProcess:
    points_file = tmp_path / "points.json"
    points_file.write_text(json.dumps(TRICKY_POINTS))
    token_file = tmp_path / "secrets" / "influxdb_token"
    token_file.parent.mkdir()
    token_file.write_text(V3_TOKEN)  # check-config refuses a trailing newline (see its test)
    yaml_text = (
        fast_agent_yaml(tmp_path)
        + f"""
sinks:
  - name: cloud
    type: influxdb_v2
    url: {v2.url}
    organization: {org}
    bucket: {json.dumps(BUCKET.replace("${", "$${"))}
    token_env: BRIDGE_TEST_V2_TOKEN
  - name: core3
    type: influxdb_v3
    url: {v3.url}
    database: solar
    token_file: {token_file}
"""
    )
    conf = render_yaml(yaml_text, tmp_path / "out")
    text = conf.read_text()
    assert V2_TOKEN not in text and V3_TOKEN not in text
    conf.write_text(text + emitter_input(points_file))
    return TelegrafProcess(
        telegraf_bin, conf, tmp_path / "tg", env={"BRIDGE_TEST_V2_TOKEN": V2_TOKEN}
    )


def _as_expected(points: list) -> dict[str, tuple[dict[str, str], dict[str, object], int]]:
    return {p.tags["device"]: (p.tags, p.fields, p.time_ns) for p in points}


def _want() -> dict[str, tuple[dict[str, str], dict[str, object], int]]:
    return {
        tags["device"]: (tags, fields, point["time_ns"])
        for (tags, fields), point in zip(TRICKY_EXPECTED, TRICKY_POINTS["points"], strict=True)
    }


def test_fakes_receive_exactly_the_points_sent(telegraf_bin: Path, tmp_path: Path) -> None:
    with (
        FakeInfluxV2(token=V2_TOKEN, org="test-org", buckets=(BUCKET,)) as v2,
        FakeInfluxV3(token=V3_TOKEN) as v3,
        _run(tmp_path, telegraf_bin, v2, v3) as telegraf,  # type: ignore[arg-type]
    ):
        wait_for(
            lambda: len(v2.accepted_points()) >= 3 and len(v3.accepted_points()) >= 3,
            timeout=60,
            what="3 points in both fakes",
        )
        assert "E! " not in telegraf.log()
    assert _as_expected(v2.accepted_points()) == _want()
    assert _as_expected(v3.accepted_points()) == _want()
    assert all(p.unsigned == frozenset({"total"}) for p in v2.accepted_points())

    first_v2 = next(r for r in v2.requests if r.status == 204)
    assert first_v2.headers["Authorization"] == f"Token {V2_TOKEN}"
    assert first_v2.headers.get("Content-Encoding") == "gzip"
    assert first_v2.params["org"] == "test-org" and first_v2.params["bucket"] == BUCKET
    first_v3 = next(r for r in v3.requests if r.status == 204)
    assert first_v3.headers["Authorization"] == f"Bearer {V3_TOKEN}"
    assert first_v3.params["db"] == "solar"
    assert v3.databases == {"solar"}


def test_telegraf_retries_through_503_and_429_without_loss(
    telegraf_bin: Path, tmp_path: Path
) -> None:
    with (
        FakeInfluxV2(token=V2_TOKEN, org="test-org", buckets=(BUCKET,)) as v2,
        FakeInfluxV3(token=V3_TOKEN) as v3,
    ):
        v2.fail_next(503, count=2, retry_after=1)
        v3.fail_next(429, count=2, retry_after=1)
        with _run(tmp_path, telegraf_bin, v2, v3):  # type: ignore[arg-type]
            wait_for(
                lambda: len(v2.accepted_points()) >= 3 and len(v3.accepted_points()) >= 3,
                timeout=60,
                what="3 points in both fakes after the outage",
            )
    assert [r.status for r in v2.requests][:2] == [503, 503]
    assert [r.status for r in v3.requests][:2] == [429, 429]
    assert _as_expected(v2.accepted_points()) == _want()
    assert _as_expected(v3.accepted_points()) == _want()


@pytest.mark.influxd2
def test_wrong_token_is_refused_with_401_and_nothing_is_stored(
    influxd2: InfluxD2, telegraf_bin: Path, tmp_path: Path
) -> None:
    """The v2 half against the real influxd 2 (this process's token is not one of its own)."""
    org = influxd2.new_org(BUCKET)
    with (
        FakeInfluxV3(token="another-token") as v3,
        _run(tmp_path, telegraf_bin, influxd2, v3, org=org) as telegraf,
    ):
        wait_for(
            lambda: any(r.status == 401 for r in v3.requests),
            timeout=60,
            what="401 answers from the v3 fake",
        )
        wait_for(
            lambda: telegraf.log().count("401 Unauthorized") >= 2,
            timeout=30,
            what="both sinks' 401 in the log",
        )
    assert v3.accepted_points() == []
    assert influxd2.count(BUCKET, "e2e", "power_w", org=org) == 0
