"""The test rig itself: the v2/v3 fakes answer as the official APIs document, and the real
servers that `make setup` installs (influxd, mosquitto) start on loopback and stop."""

from __future__ import annotations

import gzip
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from rig import FakeInfluxV2, FakeInfluxV3, InfluxD1, Mosquitto

LINE = b"m,t=a f=1.5,n=2i 1800000000000000000\n"


def post(
    url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], dict[str, object]]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), {}
    except urllib.error.HTTPError as err:
        payload = err.read()
        return err.code, dict(err.headers), json.loads(payload) if payload else {}


@pytest.fixture
def v2() -> FakeInfluxV2:
    with FakeInfluxV2(token="tok", org="o", buckets=("b",), max_body_bytes=1000) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def v3() -> FakeInfluxV3:
    with FakeInfluxV3(token="tok", max_body_bytes=1000) as fake:
        yield fake  # type: ignore[misc]


def test_v2_write_success_and_gzip(v2: FakeInfluxV2) -> None:
    url = f"{v2.url}/api/v2/write?org=o&bucket=b&precision=ns"
    assert post(url, LINE, {"Authorization": "Token tok"})[0] == 204
    assert (
        post(url, gzip.compress(LINE), {"Authorization": "Token tok", "Content-Encoding": "gzip"})[
            0
        ]
        == 204
    )
    assert len(v2.accepted_points()) == 2
    assert v2.accepted_points()[0].fields == {"f": 1.5, "n": 2}


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "code"),
    [
        ("/api/v2/write?org=o&bucket=b", {}, LINE, 401, "unauthorized"),
        (
            "/api/v2/write?org=o&bucket=b",
            {"Authorization": "Bearer tok"},
            LINE,
            401,
            "unauthorized",
        ),
        ("/api/v2/write?org=o&bucket=nope", {"Authorization": "Token tok"}, LINE, 404, "not found"),
        ("/api/v2/write?org=x&bucket=b", {"Authorization": "Token tok"}, LINE, 404, "not found"),
        ("/api/v2/write?bucket=b", {"Authorization": "Token tok"}, LINE, 400, "invalid"),
        ("/api/v2/write?org=o&bucket=b", {"Authorization": "Token tok"}, b"m f=\n", 400, "invalid"),
        (
            "/api/v2/write?org=o&bucket=b",
            {"Authorization": "Token tok"},
            LINE * 100,
            413,
            "request too large",
        ),
    ],
)
def test_v2_errors_follow_the_api(
    v2: FakeInfluxV2, path: str, headers: dict[str, str], body: bytes, status: int, code: str
) -> None:
    got_status, _, payload = post(v2.url + path, body, headers)
    assert (got_status, payload["code"]) == (status, code)
    assert isinstance(payload["message"], str) and payload["message"]
    assert v2.accepted_points() == []


def test_v2_type_conflict_is_422_and_drops_only_the_conflicting_point(v2: FakeInfluxV2) -> None:
    """A partial write, as influxd 2.7 answers (test_fake_v2_differential.py compares)."""
    url = f"{v2.url}/api/v2/write?org=o&bucket=b"
    assert post(url, b"m f=1.5 1\n", {"Authorization": "Token tok"})[0] == 204
    status, _, payload = post(url, b"m g=1.0 2\nm f=2i 3\n", {"Authorization": "Token tok"})
    assert status == 422 and "field type conflict" in str(payload["message"])
    assert str(payload["message"]).endswith(" dropped=1")
    assert [p.fields for p in v2.accepted_points()] == [{"f": 1.5}, {"g": 1.0}]


@pytest.mark.parametrize("status", [429, 503])
def test_v2_scripted_outage_sends_retry_after(v2: FakeInfluxV2, status: int) -> None:
    v2.fail_next(status, retry_after=7)
    got, headers, payload = post(
        f"{v2.url}/api/v2/write?org=o&bucket=b", LINE, {"Authorization": "Token tok"}
    )
    assert got == status and headers["Retry-After"] == "7" and payload["code"]
    assert (
        post(f"{v2.url}/api/v2/write?org=o&bucket=b", LINE, {"Authorization": "Token tok"})[0]
        == 204
    )


def test_v3_write_lp_success_partial_and_errors(v3: FakeInfluxV3) -> None:
    url = f"{v3.url}/api/v3/write_lp?db=solar"
    assert post(url, LINE, {"Authorization": "Bearer tok"})[0] == 204
    assert post(url, LINE, {"Authorization": "Token tok"})[0] == 204
    status, _, payload = post(url, b"m f=1.0 5\nbroken line\n", {"Authorization": "Bearer tok"})
    assert status == 400 and payload["error"] == "partial write of line protocol occurred"
    assert payload["data"][0]["line_number"] == 2  # type: ignore[index]
    assert len(v3.accepted_points()) == 3, "accept_partial (the default) keeps valid lines"
    status, _, payload = post(
        url + "&accept_partial=false", b"m f=1.0 6\nbad\n", {"Authorization": "Bearer tok"}
    )
    assert status == 400 and len(v3.accepted_points()) == 3
    assert post(url, LINE, {"Authorization": "Bearer wrong"})[0] == 401
    assert post(f"{v3.url}/api/v3/write_lp", LINE, {"Authorization": "Bearer tok"})[0] == 400
    assert post(url, LINE * 100, {"Authorization": "Bearer tok"})[0] == 413
    v3.fail_next(503, retry_after=2)
    got, headers, _ = post(url, LINE, {"Authorization": "Bearer tok"})
    assert got == 503 and headers["Retry-After"] == "2"


def test_fake_health_endpoints(v2: FakeInfluxV2) -> None:
    with urllib.request.urlopen(f"{v2.url}/health", timeout=5) as resp:
        assert json.loads(resp.read())["status"] == "pass"
    with urllib.request.urlopen(f"{v2.url}/ping", timeout=5) as resp:
        assert resp.status == 204


@pytest.mark.influxd
def test_real_influxd_answers_influxql(influxd: InfluxD1) -> None:
    influxd.query("CREATE DATABASE rigcheck", method="POST")
    names = [v[0] for s in influxd.query("SHOW DATABASES") for v in s["values"]]
    assert "rigcheck" in names
    assert influxd.url.startswith("http://127.0.0.1:")


def test_real_mosquitto_accepts_an_mqtt_connect(tmp_path: Path) -> None:
    connect = bytes([0x10, 13, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 1]) + b"t"
    with (
        Mosquitto(tmp_path / "mqtt") as broker,
        socket.create_connection(("127.0.0.1", broker.port), timeout=5) as sock,
    ):
        sock.sendall(connect)
        assert sock.recv(4) == bytes([0x20, 2, 0, 0])  # CONNACK, accepted
    assert broker.proc is not None and broker.proc.poll() is not None, "stopped at exit"
