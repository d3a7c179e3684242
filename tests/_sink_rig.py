"""One seeded sink per kind for the monitoring commands: real influxd (v1), the v2 and v3 fakes.

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

from telegraf_bridge.testing import FakeInfluxV2, FakeInfluxV3, InfluxD1

V2_TOKEN = "canary-v2-token"
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


def make_backend(
    kind: str, influxd: InfluxD1, fake_v2: FakeInfluxV2, fake_v3: FakeInfluxV3
) -> Backend:
    """A fresh database (v1), the fixture bucket (v2) or a fresh database (v3)."""
    db = f"mon_{uuid.uuid4().hex[:8]}"
    if kind == "v1":
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
        return Backend(
            kind,
            fake_v2.url,
            f"{fake_v2.url}/api/v2/write?org=test-org&bucket=solar&precision=ns",
            {"Authorization": f"Token {V2_TOKEN}"},
            f"  - name: cloud\n    type: influxdb_v2\n    url: {fake_v2.url}\n"
            "    organization: test-org\n    bucket: solar\n    token_env: TEST_V2_TOKEN\n",
            {"TEST_V2_TOKEN": V2_TOKEN},
        )
    return Backend(
        kind,
        fake_v3.url,
        f"{fake_v3.url}/api/v3/write_lp?db={db}&precision=nanosecond",
        {"Authorization": f"Bearer {V3_TOKEN}"},
        f"  - name: core\n    type: influxdb_v3\n    url: {fake_v3.url}\n    database: {db}\n"
        "    token_env: TEST_V3_TOKEN\n",
        {"TEST_V3_TOKEN": V3_TOKEN},
    )


@pytest.fixture(params=KINDS)
def backend(
    request: pytest.FixtureRequest,
    influxd: InfluxD1,
    fake_v2: FakeInfluxV2,
    fake_v3: FakeInfluxV3,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Backend]:
    """Each sink kind in turn, with its token variable set."""
    made = make_backend(request.param, influxd, fake_v2, fake_v3)
    for key, value in made.env.items():
        monkeypatch.setenv(key, value)
    yield made


def ago(minutes: float) -> int:
    """Integer ns timestamp ``minutes`` before now."""
    return time.time_ns() - int(minutes * 60e9)
