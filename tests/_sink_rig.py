"""One seeded sink per kind for the monitoring commands: the real influxd 1.x (v1), the real
influxd 2.x (v2, one fresh organization per test) and the InfluxDB 3 fake (v3).

Each :class:`Backend` writes line protocol through the server's own write API and renders the
bridge.yaml sink that points at it, so a test reads the same for every sink type.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rig import FakeInfluxV3, InfluxD1, InfluxD2
from rig.influxd2 import OPERATOR_TOKEN

V2_TOKEN = OPERATOR_TOKEN
V3_TOKEN = "canary-v3-token"
KINDS = ("v1", "v2", "v3")


@dataclass
class Backend:
    """A sink with data: ``write`` line protocol (ns timestamps), ``config`` the bridge.yaml."""

    kind: str
    url: str
    write_url: str
    headers: dict[str, str]
    sink_yaml: str
    env: dict[str, str]

    def write(self, lines: list[str]) -> None:
        body = ("\n".join(lines) + "\n").encode()
        req = urllib.request.Request(self.write_url, data=body, headers=self.headers, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 204

    def config(self, tmp_path: Path, extra: str = "") -> Path:
        path = tmp_path / f"bridge-{self.kind}.yaml"
        path.write_text(f"sinks:\n{self.sink_yaml}{extra}", encoding="utf-8")
        return path


def make_backend(kind: str, request: pytest.FixtureRequest) -> Backend:
    """A fresh database (v1), a fresh organization with bucket ``solar`` (v2) or a fresh
    database (v3). Only the server of ``kind`` is started (its session fixture, looked up here).
    """
    db = f"mon_{uuid.uuid4().hex[:8]}"
    if kind == "v1":
        influxd: InfluxD1 = request.getfixturevalue("influxd")
        influxd.query(f'CREATE DATABASE "{db}"', method="POST")
        return Backend(
            kind,
            influxd.url,
            f"{influxd.url}/write?db={db}&precision=ns",
            {},
            f"  - name: influx1\n    type: influxdb_v1\n    url: {influxd.url}\n    database: {db}\n",
            {},
        )
    if kind == "v2":
        server: InfluxD2 = request.getfixturevalue("influxd2")
        org = server.new_org("solar")
        return Backend(
            kind,
            server.url,
            f"{server.url}/api/v2/write?org={org}&bucket=solar&precision=ns",
            {"Authorization": f"Token {V2_TOKEN}"},
            f"  - name: cloud\n    type: influxdb_v2\n    url: {server.url}\n"
            f"    organization: {org}\n    bucket: solar\n    token_env: TEST_V2_TOKEN\n",
            {"TEST_V2_TOKEN": V2_TOKEN},
        )
    fake_v3: FakeInfluxV3 = request.getfixturevalue("fake_v3")
    return Backend(
        kind,
        fake_v3.url,
        f"{fake_v3.url}/api/v3/write_lp?db={db}&precision=nanosecond",
        {"Authorization": f"Bearer {V3_TOKEN}"},
        f"  - name: core\n    type: influxdb_v3\n    url: {fake_v3.url}\n    database: {db}\n"
        "    token_env: TEST_V3_TOKEN\n",
        {"TEST_V3_TOKEN": V3_TOKEN},
    )


def kinds(*names: str) -> list[object]:
    """``names`` as fixture params, the v2 one marked ``influxd2`` (``-m influxd2`` selects it)."""
    return [pytest.param(n, marks=pytest.mark.influxd2) if n == "v2" else n for n in names]


@pytest.fixture(params=kinds(*KINDS))
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """Each sink kind in turn, with its token variable set."""
    made = make_backend(request.param, request)
    for key, value in made.env.items():
        monkeypatch.setenv(key, value)
    yield made


def ago(minutes: float) -> int:
    """Integer ns timestamp ``minutes`` before now."""
    return time.time_ns() - int(minutes * 60e9)
