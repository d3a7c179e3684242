"""Shared fixtures: the real Telegraf, influxd 1.x and 2.x, the InfluxDB 3 fake, isolated paths."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support import REPO
from rig import FakeInfluxV3, InfluxD1, InfluxD2, find_influxd, find_influxd2

from telegraf_bridge import paths

# Variables a developer's shell may carry that would change what a test renders.
_LEAKY_PREFIXES = ("INFLUX_", "INFLUXDB_", "BRIDGE_", "TELEGRAF_BRIDGE_")
_LEAKY_NAMES = ("RAW_BUCKET", "B1M_BUCKET", "B5M_BUCKET", "B1H_BUCKET", "DURATION")


def _resolve_telegraf() -> Path:
    explicit = os.environ.get(paths.TELEGRAF_BIN_ENV)
    if explicit:
        return Path(explicit)
    result = subprocess.run(
        ["bash", str(REPO / "telegraf" / "build.sh")], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.exit(f"cannot build Telegraf: {result.stderr[-2000:]}", returncode=3)
    return Path(result.stdout.strip().splitlines()[-1])


_TELEGRAF = _resolve_telegraf()
# Looked up before isolated_env points XDG_CACHE_HOME into each test's tmp_path.
_INFLUXD2 = find_influxd2()


@pytest.fixture(scope="session")
def telegraf_bin() -> Path:
    """The pinned custom Telegraf build (built by `make setup`, cached in ~/.cache)."""
    return _TELEGRAF


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every location into tmp_path and drop variables that would leak into renders."""
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES) or name in _LEAKY_NAMES:
            monkeypatch.delenv(name, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv(paths.CACHE_ENV, str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv(paths.TELEGRAF_BIN_ENV, str(_TELEGRAF))
    return tmp_path


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxD1]:
    """A real InfluxDB 1.x on a free loopback port, shared by the session (one db per test)."""
    if not find_influxd():
        pytest.fail("influxd is not installed; `make setup` installs Debian's influxdb package")
    with InfluxD1(tmp_path_factory.mktemp("influxd")) as server:
        yield server


@pytest.fixture(scope="session")
def influxd2_bin() -> str:
    """The influxd 2.x binary (for a test that runs a server of its own, e.g. to stop it)."""
    if not _INFLUXD2:
        pytest.fail(
            "influxd 2.x is not built; `make influxdb2` builds it into ~/.cache/telegraf-bridge"
            " (or set INFLUXD2_BIN)"
        )
    return _INFLUXD2


@pytest.fixture(scope="session")
def influxd2(tmp_path_factory: pytest.TempPathFactory, influxd2_bin: str) -> Iterator[InfluxD2]:
    """A real, onboarded InfluxDB 2.x on a free loopback port, shared by the session.

    Tests keep apart by creating their own organization (``influxd2.new_org``).
    """
    with InfluxD2(tmp_path_factory.mktemp("influxd2"), binary=influxd2_bin) as server:
        yield server


@pytest.fixture
def fake_v3() -> Iterator[FakeInfluxV3]:
    with FakeInfluxV3(token="canary-v3-token") as fake:
        yield fake  # type: ignore[misc]
