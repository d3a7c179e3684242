"""setup-influxdb / verify / delete-buckets on InfluxDB 3, against the loopback fake.

InfluxDB 3 cannot be installed here, so FakeInfluxV3 answers as the server's HTTP API does
(routes, status codes, error bodies and the Core limits, see its docstring). The first tests
pin the fake's management API itself; the rest drive the commands through it.
"""

from __future__ import annotations

import json
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rig import FakeInfluxV3
from telegraf_bridge.cli.main import cli

TOKEN = "apiv3_canary-admin-token-0123456789"
TIERS = ("PowerLogger_raw", "PowerLogger_1m", "PowerLogger_5m", "PowerLogger_1h")


def _http(
    method: str,
    url: str,
    body: Any = None,
    *,
    token: str | None = TOKEN,
    content_type: str = "application/json",
) -> tuple[int, str]:
    data = None
    headers = {}
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def core() -> Iterator[FakeInfluxV3]:
    with FakeInfluxV3(token=TOKEN) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def enterprise() -> Iterator[FakeInfluxV3]:
    with FakeInfluxV3(token=TOKEN, edition="enterprise") as fake:
        yield fake  # type: ignore[misc]


# -- the fake's management API -----------------------------------------------------------------


def test_fake_configure_database_answers_like_the_server(core: FakeInfluxV3) -> None:
    url = f"{core.url}/api/v3/configure/database"
    assert _http("POST", url, {"db": "a"}, token=None) == (401, "")
    assert _http("POST", url, {"db": "a"}, content_type="text/plain")[0] == 415
    assert _http("POST", url, {"db": "a", "retention_period": "30d"}) == (200, "")
    assert _http("POST", url, {"db": "a"}) == (
        409,
        "attempted to create a resource that already exists",
    )
    status, text = _http("POST", url, {"db": "bad name"})
    assert status == 400 and json.loads(text)["error"].startswith("invalid character")
    assert _http("POST", url, {"db": "b", "retention_period": "soon"})[0] == 400
    assert _http("GET", url)[0] == 400, "format is required"
    status, text = _http("GET", url + "?format=json")
    assert status == 200
    assert json.loads(text) == [{"iox::database": "_internal"}, {"iox::database": "a"}]
    status, text = _http(
        "GET",
        f"{core.url}/api/v3/query_influxql?db=a&q=SHOW+RETENTION+POLICIES&format=json",
    )
    assert json.loads(text) == [{"iox::database": "a", "name": "autogen", "duration": "720h0m0s"}]
    assert _http("DELETE", url + "?db=zzz") == (404, "the requested resource was not found")
    assert _http("DELETE", url + "?db=a") == (200, "")
    assert core.databases == set() and core.deleted[0].startswith("a-")
    assert _http("POST", f"{core.url}/api/v3/enterprise/configure/token", {})[0] == 404


def test_fake_core_creates_databases_on_write_up_to_its_limit(core: FakeInfluxV3) -> None:
    for name in ("d1", "d2", "d3", "d4", "d5"):
        assert (
            _http(
                "POST",
                f"{core.url}/api/v3/write_lp?db={name}",
                "m v=1i 1",
                content_type="text/plain",
            )[0]
            == 204
        )
    status, text = _http(
        "POST", f"{core.url}/api/v3/write_lp?db=d6", "m v=1i 1", content_type="text/plain"
    )
    assert status == 422
    assert json.loads(text)["data"][0]["error_message"] == (
        "Adding a new database would exceed limit of 5 databases"
    )
    status, text = _http("POST", f"{core.url}/api/v3/configure/database", {"db": "d6"})
    assert status == 422 and "exceed limit of 5" in json.loads(text)["error"]
    assert "d6" not in core.databases


def test_fake_enterprise_resource_tokens_are_scoped(enterprise: FakeInfluxV3) -> None:
    url = f"{enterprise.url}/api/v3/enterprise/configure/token"
    doc = {
        "token_name": "w",
        "permissions": [
            {"resource_type": "db", "resource_identifier": ["a"], "actions": ["write"]}
        ],
    }
    status, text = _http("POST", url, doc)
    assert status == 201
    token = json.loads(text)["token"]
    assert _http("POST", url, doc) == (409, "token name already exists, w")
    write = f"{enterprise.url}/api/v3/write_lp?db="
    assert _http("POST", write + "a", "m v=1i 1", token=token, content_type="text/plain")[0] == 204
    assert _http("POST", write + "b", "m v=1i 1", token=token, content_type="text/plain")[0] == 403
    assert (
        _http("GET", f"{enterprise.url}/api/v3/configure/database?format=json", token=token)[0]
        == 403
    )


# -- the commands ------------------------------------------------------------------------------


def _config(tmp_path: Path, fake: FakeInfluxV3, *, gpio: bool = True) -> Path:
    source = (
        """
sources:
  - name: meter
    plugin: gpio_pulse
    options: {backend: sim}
"""
        if gpio
        else ""
    )
    path = tmp_path / "bridge.yaml"
    path.write_text(
        source
        + f"""
sinks:
  - name: v3
    type: influxdb_v3
    url: {fake.url}
    database: solar
    token_env: V3_ADMIN_TOKEN
""",
        encoding="utf-8",
    )
    return path


def _run(monkeypatch: pytest.MonkeyPatch, *args: str, input: str | None = None) -> Result:
    monkeypatch.setenv("V3_ADMIN_TOKEN", TOKEN)
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert TOKEN not in result.output
    return result


def test_setup_on_core_creates_the_tier_databases_and_reports_what_core_cannot_do(
    core: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, core)
    result = _run(monkeypatch, "setup-influxdb", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert core.retention == {
        "PowerLogger_raw": 30 * 86400,
        "PowerLogger_1m": 90 * 86400,
        "PowerLogger_5m": 365 * 86400,
        "PowerLogger_1h": None,
    }
    assert "InfluxDB 3 Core" in result.output
    assert "computed by the gpio_pulse plugin (meter)" in result.output
    assert result.output.count("- unsupported") == 2, "writer and reader tokens need Enterprise"
    assert "named admin token" in result.output
    again = _run(monkeypatch, "setup-influxdb", "--config", str(config))
    assert again.exit_code == 0
    assert "Done: 0 created, 5 already present." in again.output


def test_setup_without_a_gpio_source_says_nothing_computes_the_aggregates(
    core: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(
        monkeypatch, "setup-influxdb", "--config", str(_config(tmp_path, core, gpio=False))
    )
    assert result.exit_code == 0
    assert "no gpio_pulse source is configured" in result.output


def test_a_database_with_another_retention_is_a_mismatch(
    core: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{core.url}/api/v3/configure/database"
    assert _http("POST", url, {"db": "PowerLogger_1m", "retention_period": "7d"})[0] == 200
    result = _run(monkeypatch, "setup-influxdb", "--config", str(_config(tmp_path, core)))
    assert result.exit_code == 1
    assert "MISMATCH" in result.output and "exists with 7d" in result.output
    assert core.retention["PowerLogger_1m"] == 7 * 86400
    assert core.retention["PowerLogger_5m"] == 365 * 86400


def test_core_database_limit_stops_setup_with_a_next_step(
    core: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("solar", "other"):
        assert _http("POST", f"{core.url}/api/v3/configure/database", {"db": name})[0] == 200
    result = _run(monkeypatch, "setup-influxdb", "--config", str(_config(tmp_path, core)))
    assert result.exit_code == 1
    assert "✗ FAILED" in result.output and "allows 5 databases" in result.output
    assert core.databases == {
        "solar",
        "other",
        "PowerLogger_raw",
        "PowerLogger_1m",
        "PowerLogger_5m",
    }


def test_setup_on_enterprise_creates_scoped_writer_and_reader_tokens(
    enterprise: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(monkeypatch, "setup-influxdb", "--config", str(_config(tmp_path, enterprise)))
    assert result.exit_code == 0, result.output
    writer = (tmp_path / "secrets" / "v3_writer_token").read_text()
    reader = (tmp_path / "secrets" / "v3_reader_token").read_text()
    for path in (tmp_path / "secrets").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (
        writer.startswith("apiv3_") and writer not in result.output and reader not in result.output
    )
    by_name = {t.name: t for t in enterprise.tokens.values()}
    # With an InfluxDB 3 sink the plugin writes every tier itself, so the writer needs them all.
    assert by_name["v3-writer"].permissions == (
        (frozenset({*TIERS, "solar"}), frozenset({"write"})),
    )
    assert by_name["v3-reader"].permissions == (
        (frozenset({*TIERS, "solar"}), frozenset({"read"})),
    )
    write = f"{enterprise.url}/api/v3/write_lp?db=PowerLogger_raw"
    line = "PowerPulse,PulseType=Import Pulse=1i 1"
    assert _http("POST", write, line, token=writer, content_type="text/plain")[0] == 204
    assert _http("POST", write, line, token=reader, content_type="text/plain")[0] == 403
    again = _run(monkeypatch, "setup-influxdb", "--config", str(_config(tmp_path, enterprise)))
    assert again.exit_code == 0 and "0 created" in again.output


def test_verify_fails_before_setup_and_passes_after_with_a_kept_marker_row(
    core: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, core)
    before = _run(monkeypatch, "verify", "--config", str(config))
    assert before.exit_code == 1
    assert "database missing" in before.output and "Next steps:" in before.output
    assert "apiv…" in before.output, "the token shows only as a short prefix"
    assert _run(monkeypatch, "setup-influxdb", "--config", str(config)).exit_code == 0
    after = _run(monkeypatch, "verify", "--config", str(config))
    assert after.exit_code == 0, after.output
    assert "cannot delete single points" in after.output
    markers = [p for t, p in core.stored("PowerLogger_raw") if p.measurement == "bridge_verify"]
    assert len(markers) == 1 and markers[0].fields == {"ok": 1}


def test_verify_with_a_wrong_token_fails_on_credentials(
    core: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, core)
    monkeypatch.setenv("V3_ADMIN_TOKEN", "apiv3_wrong-token-abcdefgh")
    result = CliRunner().invoke(cli, ["verify", "--config", str(config)])
    assert result.exit_code == 1
    assert "✓  connection" in result.output and "✗  credentials" in result.output
    assert "wrong-token" not in result.output


def test_delete_buckets_shows_counts_and_deletes_the_databases(
    core: FakeInfluxV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, core)
    assert _run(monkeypatch, "setup-influxdb", "--config", str(config)).exit_code == 0
    now = time.time_ns()
    lines = "\n".join(f"PowerPulse,PulseType=Import Pulse=1i {now - i}" for i in range(4))
    assert (
        _http(
            "POST",
            f"{core.url}/api/v3/write_lp?db=PowerLogger_raw",
            lines,
            content_type="text/plain",
        )[0]
        == 204
    )
    result = _run(monkeypatch, "delete-buckets", "--config", str(config), input="DELETE\n")
    assert result.exit_code == 0, result.output
    assert "PowerLogger_raw  4 points  [PowerPulse 4]" in result.output
    assert "PowerLogger_1m   0 points  [no tables]" in result.output
    assert "deleting PowerLogger_1h (4/4)... done" in result.output
    assert core.databases == set()
    assert core.stored("PowerLogger_raw") == []
