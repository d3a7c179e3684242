"""setup-influxdb / verify / delete-buckets against the REAL InfluxDB 1.x server (influxd).

Every test has a database of its own on the session's influxd. The downsampling test watches
influxd's own continuous-query engine (run-interval 1 s in the InfluxD1 helper; the CQs are
created with RESAMPLE EVERY 1s through the hidden --cq-resample-every option) turn raw pulses
into the 1m, 5m and 1h tiers, and compares every row with what the tier definition says.
"""

from __future__ import annotations

import stat
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rig import InfluxD1, wait_for
from telegraf_bridge.cli.main import cli

pytestmark = pytest.mark.influxd

MINUTE = 60_000_000_000
HOUR = 60 * MINUTE
TIERS = {
    "PowerLogger_raw": "720h0m0s",
    "PowerLogger_1m": "2160h0m0s",
    "PowerLogger_5m": "8760h0m0s",
    "PowerLogger_1h": "0s",
}


def _config(tmp_path: Path, influxd: InfluxD1, db: str, *, extra: str = "") -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        f"""
{extra}
sources:
  - name: meter
    plugin: gpio_pulse
    options:
      backend: sim
      channels:
        - {{name: Import, pin: 20}}
        - {{name: Export, pin: 26, impulses_per_kwh: 800}}
sinks:
  - name: {_sink(db)}
    type: influxdb_v1
    url: {influxd.url}
    database: {db}
""",
        encoding="utf-8",
    )
    return path


def _sink(db: str) -> str:
    """A sink name per test: InfluxDB users are server-wide, and the tests share one server."""
    return "s-" + db.removeprefix("adm_")


def _run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def _rows(influxd: InfluxD1, query: str, db: str) -> list[dict[str, Any]]:
    out = []
    for series in influxd.query(query, db=db):
        for values in series.get("values", []):
            row = dict(zip(series["columns"], values, strict=True))
            row.update(series.get("tags") or {})
            out.append(row)
    return out


def _policies(influxd: InfluxD1, db: str) -> dict[str, str]:
    return {
        r["name"]: r["duration"] for r in _rows(influxd, f'SHOW RETENTION POLICIES ON "{db}"', db)
    }


def _cq_names(influxd: InfluxD1, db: str) -> set[str]:
    return {
        values[0]
        for series in influxd.query("SHOW CONTINUOUS QUERIES")
        if series["name"] == db
        for values in series.get("values", [])
    }


@pytest.fixture
def db() -> str:
    return f"adm_{uuid.uuid4().hex[:8]}"


def test_setup_creates_tiers_cqs_and_users_and_a_second_run_is_a_noop(
    influxd: InfluxD1, tmp_path: Path, db: str
) -> None:
    config = _config(tmp_path, influxd, db)
    dry = _run("setup-influxdb", "--config", str(config), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "will create" in dry.output and "nothing was changed" in dry.output
    assert db not in {r["name"] for r in _rows(influxd, "SHOW DATABASES", db)}
    assert not (tmp_path / "secrets").exists(), "a dry run writes no secrets"

    first = _run("setup-influxdb", "--config", str(config))
    assert first.exit_code == 0, first.output
    assert _policies(influxd, db) == {"autogen": "0s", **TIERS}
    assert _cq_names(influxd, db) == {
        "PowerLogger_1m_cq_1",
        "PowerLogger_1m_cq_2",
        "PowerLogger_5m_cq",
        "PowerLogger_1h_cq",
    }
    prefix = _sink(db).replace("-", "_")
    writer, reader = f"{prefix}_writer", f"{prefix}_reader"
    users = {r["user"] for r in _rows(influxd, "SHOW USERS", db)}
    assert {writer, reader} <= users
    grants = {
        user: {
            r["database"]: r["privilege"] for r in _rows(influxd, f'SHOW GRANTS FOR "{user}"', db)
        }
        for user in (writer, reader)
    }
    assert grants == {writer: {db: "WRITE"}, reader: {db: "READ"}}
    for role in ("writer", "reader"):
        secret = tmp_path / "secrets" / f"{prefix}_{role}_password"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        text = secret.read_text()
        assert len(text) >= 24 and not text.endswith("\n")
        assert text not in first.output, "passwords are never printed"
        assert str(secret) in first.output, "the report says where the password is"

    second = _run("setup-influxdb", "--config", str(config))
    assert second.exit_code == 0, second.output
    assert "Done: 0 created, 11 already present." in second.output
    assert "+ created" not in second.output


def test_a_policy_with_another_duration_is_a_mismatch_and_left_alone(
    influxd: InfluxD1, tmp_path: Path, db: str
) -> None:
    influxd.query(f'CREATE DATABASE "{db}"', method="POST")
    influxd.query(
        f'CREATE RETENTION POLICY "PowerLogger_1m" ON "{db}" DURATION 7d REPLICATION 1',
        method="POST",
    )
    result = _run("setup-influxdb", "--config", str(_config(tmp_path, influxd, db)))
    assert result.exit_code == 1, result.output
    assert "MISMATCH" in result.output and "exists with 7d" in result.output
    assert "ALTER RETENTION POLICY" in result.output
    policies = _policies(influxd, db)
    assert policies["PowerLogger_1m"] == "168h0m0s", "never altered"
    assert policies["PowerLogger_5m"] == TIERS["PowerLogger_5m"], "the rest is still created"


def test_a_continuous_query_with_other_text_is_a_mismatch(
    influxd: InfluxD1, tmp_path: Path, db: str
) -> None:
    config = _config(tmp_path, influxd, db)
    assert _run("setup-influxdb", "--config", str(config)).exit_code == 0
    influxd.query(f'DROP CONTINUOUS QUERY "PowerLogger_5m_cq" ON "{db}"', method="POST")
    influxd.query(
        f'CREATE CONTINUOUS QUERY "PowerLogger_5m_cq" ON "{db}" BEGIN SELECT sum("pulses") '
        f'AS pulses INTO "{db}"."PowerLogger_5m"."PowerPulse" FROM '
        f'"{db}"."PowerLogger_1m"."PowerPulse" GROUP BY time(5m), "PulseType" END',
        method="POST",
    )
    result = _run("setup-influxdb", "--config", str(config))
    assert result.exit_code == 1
    assert "MISMATCH" in result.output and "DROP CONTINUOUS QUERY" in result.output
    verify = _run("verify", "--config", str(config))
    assert verify.exit_code == 1
    assert "continuous query differs" in verify.output


def _write_raw(influxd: InfluxD1, db: str, lines: list[str]) -> None:
    request = urllib.request.Request(
        f"{influxd.url}/write?db={db}&rp=PowerLogger_raw&precision=ns",
        data="\n".join(lines).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def _by_window(rows: list[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    return {(r["time"], r["PulseType"]): r for r in rows}


def test_continuous_queries_downsample_raw_pulses_into_every_tier(
    influxd: InfluxD1, tmp_path: Path, db: str
) -> None:
    # Lookback 3h: the pulses lie in an hour window that ended up to 90 minutes ago.
    config = _config(tmp_path, influxd, db, extra="downsampling:\n  lookback: 3h")
    setup = _run("setup-influxdb", "--config", str(config), "--cq-resample-every", "1")
    assert setup.exit_code == 0, setup.output

    now = time.time_ns()
    hour = (now - 30 * MINUTE) // HOUR * HOUR
    wh = {"Import": 1.0, "Export": 1.25}  # 1000 and 800 impulses per kWh
    pulses: dict[tuple[int, str], int] = {}
    lines = []
    for m in range(15):  # 15 complete minutes, hour + 5 min .. hour + 20 min
        start = hour + (5 + m) * MINUTE
        for channel, count in (("Import", m % 4 + 1), ("Export", 2 if m % 3 == 0 else 1)):
            pulses[(start, channel)] = count
            for j in range(count):
                lines.append(f"PowerPulse,PulseType={channel} Pulse=1i {start + j * 7_000_000_001}")
    _write_raw(influxd, db, lines)

    def expected(window_ns: int) -> dict[tuple[int, str], tuple[int, float, float]]:
        sums: dict[tuple[int, str], int] = {}
        for (start, channel), count in pulses.items():
            key = (start // window_ns * window_ns, channel)
            sums[key] = sums.get(key, 0) + count
        per_hour = 3600e9 / window_ns
        return {
            key: (count, count * wh[key[1]], count * wh[key[1]] * per_hour)
            for key, count in sums.items()
        }

    def tier(name: str) -> dict[tuple[int, str], tuple[int, float, float]]:
        rows = _rows(
            influxd,
            f'SELECT pulses, energy_wh, power_w FROM "{db}"."{name}"."PowerPulse" '
            f'WHERE time >= {hour} GROUP BY "PulseType"',
            db,
        )
        return {k: (r["pulses"], r["energy_wh"], r["power_w"]) for k, r in _by_window(rows).items()}

    want = {"PowerLogger_1m": expected(MINUTE), "PowerLogger_5m": expected(5 * MINUTE)}
    want["PowerLogger_1h"] = expected(HOUR)

    def converged() -> bool:
        return all(tier(name) == rows for name, rows in want.items())

    try:
        wait_for(converged, timeout=40, what="the CQs to fill the 1m, 5m and 1h tiers")
    except Exception:
        for name, rows in want.items():
            print(name, "want", rows, "got", tier(name))
        raise
    assert len(want["PowerLogger_1m"]) == 30 and len(want["PowerLogger_5m"]) == 6
    assert want["PowerLogger_1h"] == {
        (hour, "Import"): (36, 36.0, 36.0),
        (hour, "Export"): (20, 25.0, 25.0),
    }
    for name in ("PowerLogger_1m", "PowerLogger_5m", "PowerLogger_1h"):
        types = {
            values[0]: values[1]
            for series in influxd.query(f'SHOW FIELD KEYS FROM "{name}"."PowerPulse"', db=db)
            for values in series["values"]
        }
        assert types == {"energy_wh": "float", "power_w": "float", "pulses": "integer"}, name


def test_verify_fails_with_next_steps_before_setup_and_passes_after(
    influxd: InfluxD1, tmp_path: Path, db: str
) -> None:
    config = _config(tmp_path, influxd, db)
    before = _run("verify", "--config", str(config))
    assert before.exit_code == 1, before.output
    assert "✗  database" in before.output
    assert "Next steps:" in before.output and "setup-influxdb" in before.output
    assert "✓  config" in before.output and "✓  telegraf" in before.output
    assert "✓  connection" in before.output

    assert _run("setup-influxdb", "--config", str(config)).exit_code == 0
    after = _run("verify", "--config", str(config))
    assert after.exit_code == 0, after.output
    assert "✗" not in after.output
    assert "read back, deleted" in after.output
    assert _rows(influxd, "SHOW MEASUREMENTS", db) == [], "the marker point is gone again"


def test_verify_reports_an_unreachable_server(tmp_path: Path, db: str, influxd: InfluxD1) -> None:
    config = _config(tmp_path, influxd, db)
    text = config.read_text().replace(influxd.url, "http://127.0.0.1:9")
    config.write_text(text)
    result = _run("verify", "--config", str(config))
    assert result.exit_code == 1
    assert "✗  connection" in result.output and "-  credentials" in result.output


def _setup_with_data(influxd: InfluxD1, tmp_path: Path, db: str) -> Path:
    config = _config(tmp_path, influxd, db)
    assert _run("setup-influxdb", "--config", str(config)).exit_code == 0
    _write_raw(
        influxd,
        db,
        [f"PowerPulse,PulseType=Import Pulse=1i {time.time_ns() - i}" for i in range(3)],
    )
    return config


def test_delete_buckets_refuses_wrong_input_and_no_input(
    influxd: InfluxD1, tmp_path: Path, db: str
) -> None:
    config = _setup_with_data(influxd, tmp_path, db)
    wrong = _run("delete-buckets", "--config", str(config), input="delete\n")
    assert wrong.exit_code == 1
    assert "PowerLogger_raw  3 points" in wrong.output
    assert "nothing was deleted" in wrong.output
    closed = _run("delete-buckets", "--config", str(config), input="")
    assert closed.exit_code == 1 and "--yes" in closed.output
    assert set(_policies(influxd, db)) == {"autogen", *TIERS}


def test_delete_buckets_after_typing_delete_drops_policies_and_cqs(
    influxd: InfluxD1, tmp_path: Path, db: str
) -> None:
    config = _setup_with_data(influxd, tmp_path, db)
    influxd.query(f'DROP RETENTION POLICY "PowerLogger_5m" ON "{db}"', method="POST")
    result = _run("delete-buckets", "--config", str(config), input="DELETE\n")
    assert result.exit_code == 0, result.output
    assert "deleting PowerLogger_raw (1/4)... done" in result.output
    assert "deleting PowerLogger_1m (2/4)... done" in result.output
    assert "skipping PowerLogger_5m (3/4): does not exist" in result.output
    assert "deleting PowerLogger_1h (4/4)... done" in result.output
    assert set(_policies(influxd, db)) == {"autogen"}
    # The CQs writing into the deleted tiers went with them; the skipped tier's CQ is left.
    assert _cq_names(influxd, db) == {"PowerLogger_5m_cq"}


def test_delete_buckets_with_yes_asks_nothing(influxd: InfluxD1, tmp_path: Path, db: str) -> None:
    config = _setup_with_data(influxd, tmp_path, db)
    result = _run("delete-buckets", "--config", str(config), "--yes")
    assert result.exit_code == 0, result.output
    assert "Type DELETE" not in result.output
    assert set(_policies(influxd, db)) == {"autogen"}
    again = _run("delete-buckets", "--config", str(config), "--yes")
    assert again.exit_code == 0 and "Nothing to delete" in again.output


def test_with_authentication_setup_needs_an_admin_and_verify_names_bad_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second influxd, started with auth-enabled = true (the first user is the admin)."""
    with InfluxD1(tmp_path / "auth-influxd", auth_enabled=True) as server:
        db = "authdb"
        config = _config(tmp_path, server, db)
        text = config.read_text().replace(
            "database: authdb", "database: authdb\n    username: admin\n    password_env: PW"
        )
        config.write_text(text)

        monkeypatch.setenv("PW", "not-the-password-123")
        wrong = _run("verify", "--config", str(config))
        assert wrong.exit_code == 1
        assert "✓  connection" in wrong.output and "✗  credentials" in wrong.output
        assert "not-the-password-123" not in wrong.output

        monkeypatch.setenv("PW", server.admin[1])
        setup = _run("setup-influxdb", "--config", str(config))
        assert setup.exit_code == 0, setup.output
        assert server.admin[1] not in setup.output
        assert _run("verify", "--config", str(config)).exit_code == 0

        # Telegraf's writer: it may write, but neither administer nor read the schema.
        writer = f"{_sink(db).replace('-', '_')}_writer"
        password = (tmp_path / "secrets" / f"{writer}_password").read_text()
        config.write_text(text.replace("username: admin", f"username: {writer}"))
        monkeypatch.setenv("PW", password)
        refused = _run("setup-influxdb", "--config", str(config))
        assert refused.exit_code == 1
        assert "requires admin privilege" in refused.output and "admin user" in refused.output
        as_writer = _run("verify", "--config", str(config))
        assert as_writer.exit_code == 0, as_writer.output
        assert "may not read it back (WRITE only)" in as_writer.output
        assert password not in as_writer.output + refused.output
