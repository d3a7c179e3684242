"""`pip install .` (a real wheel, not an editable install) gives a working bridge-cli.

The wheel is what the container images and a Pi install: the tests' own servers (tests/rig)
must not ship in it, only the helpers a plugin author's tests use (telegraf_bridge.testing).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import rig
from _support import REPO

from telegraf_bridge import __version__


def _image_sources() -> list[str]:
    """What the Dockerfile copies from the build context (``COPY`` without ``--from``)."""
    names: set[str] = set()
    for line in (REPO / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not parts[1].startswith("--"):
            names.update(part.rstrip("/") for part in parts[1:-1])
    return sorted(names)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the image's sources, built from a copy of them as `docker build` does.

    Not in the checkout: setuptools reuses build/lib, where a module deleted from the sources
    since an earlier build stays and ships.
    """
    src = tmp_path_factory.mktemp("src")
    for name in _image_sources():
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO / name, src / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("telegraf_bridge-*.whl")
    return found


def test_wheel_maps_every_folder_under_one_import_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.startswith("telegraf_bridge-")}
    assert top == {"telegraf_bridge"}, "no generic top-level names (cli, plugins) in site-packages"
    for expected in (
        "telegraf_bridge/cli/main.py",
        "telegraf_bridge/plugins/common/_lineprotocol.py",
        "telegraf_bridge/plugins/demo/sample.conf",
        "telegraf_bridge/plugins/hoymiles/sample.conf",
        "telegraf_bridge/plugins/hoymiles/dashboards/hoymiles-influxql.json",
        "telegraf_bridge/plugins/hoymiles/dashboards/hoymiles-sql.json",
        "telegraf_bridge/plugins/taptap/sample.conf",
        "telegraf_bridge/plugins/taptap/dashboards/taptap-influxql.json",
        "telegraf_bridge/plugins/taptap/dashboards/taptap-sql.json",
        "telegraf_bridge/plugins/gpio_pulse/sample.conf",
        "telegraf_bridge/plugins/gpio_pulse/README.md",
        "telegraf_bridge/plugins/gpio_pulse/dashboards/gpio_pulse-influxql.json",
        "telegraf_bridge/plugins/iotflow/sample.conf",
        "telegraf_bridge/plugins/iotflow/README.md",
        "telegraf_bridge/plugins/iotflow/dashboards/iotflow-influxql.json",
        "telegraf_bridge/plugins/iotflow/dashboards/iotflow-sql.json",
        "telegraf_bridge/templates/telegraf.conf.j2",
        "telegraf_bridge/templates/inputs/mqtt_consumer.toml.j2",
        "telegraf_bridge/templates/processors/iotflow.toml.j2",
        "telegraf_bridge/templates/outputs/influxdb_v3.toml.j2",
        "telegraf_bridge/templates/systemd/telegraf-bridge.service.j2",
        "telegraf_bridge/templates/systemd/telegraf-bridge-healthcheck.service.j2",
        "telegraf_bridge/templates/systemd/telegraf-bridge-healthcheck.timer.j2",
        "telegraf_bridge/templates/systemd/bridge.env.j2",
        "telegraf_bridge/cli/commands/install_systemd.py",
        "telegraf_bridge/cli/systemd/plan.py",
        "telegraf_bridge/telegraf/VERSION",
        "telegraf_bridge/telegraf/build.sh",
        "telegraf_bridge/telegraf/entrypoint.py",
        "telegraf_bridge/telegraf/healthprobe.py",
        "telegraf_bridge/telegraf/container.yaml",
        "telegraf_bridge/cli/starter.yaml",
        *(f"telegraf_bridge/cli/seeds/00{n}.yaml" for n in range(5)),
    ):
        assert expected in names


# A plugin author's helpers: run a source with plugin_main's context, read its line protocol.
PUBLIC_TESTING = ["__init__.py", "_lineprotocol.py", "_plugin.py"]


def test_wheel_ships_no_test_server(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    testing = sorted(
        n.removeprefix("telegraf_bridge/testing/")
        for n in names
        if n.startswith("telegraf_bridge/testing/")
    )
    assert testing == PUBLIC_TESTING
    # Whatever a module is called, none defines one of the servers of tests/rig.
    servers = "|".join(name for name in rig.__all__ if name[0].isupper())
    defines = re.compile(rf"^class (Fake\w+|{servers})\b", re.M)
    shipped = [n for n in names if n.endswith(".py") and defines.search(archive.read(n).decode())]
    assert not shipped, f"test servers in the wheel: {shipped}"


def test_wheel_installs_into_a_fresh_venv_and_runs(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", str(wheel)], check=True, capture_output=True
    )
    version = subprocess.run(
        [str(env_dir / "bin" / "bridge-cli"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == f"bridge-cli {__version__}"
    plugin = subprocess.run(
        [str(py), "-m", "telegraf_bridge.plugins.demo", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert __version__ in plugin.stdout
    script = subprocess.run(
        [str(env_dir / "bin" / "bridge-demo"), "--help"], capture_output=True, text=True, check=True
    )
    assert "--config" in script.stdout
    init = subprocess.run(
        [str(env_dir / "bin" / "bridge-cli"), "init", str(tmp_path / "bridge.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote" in init.stdout and (tmp_path / "bridge.yaml").exists()
    # The shipped helpers import with the runtime dependencies alone (the edge images' set).
    helpers = subprocess.run(
        [str(py), "-c", "import telegraf_bridge.testing as t; print(*t.__all__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert helpers.stdout.split() == [
        "LineProtocolError",
        "ParsedPoint",
        "parse_line",
        "parse_lines",
        "plugin_ctx",
    ]
