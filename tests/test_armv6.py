"""The Pi Zero build, on an emulated ARM1176: the ARMv6 Telegraf and Debian armel's Python.

No Pi is needed: ``qemu-arm -cpu arm1176`` emulates the Pi Zero's core, and that CPU model
raises SIGILL on ARMv7-only instructions (a control below proves it does), so code that runs
here runs on a Pi Zero. The Telegraf is the one Dockerfile.armv6 ships: ``telegraf/build.sh``
with GOOS=linux GOARCH=arm GOARM=6, cached in ~/.cache/telegraf-bridge. `make test` builds it
first (target ``telegraf-armv6``); when it is missing the module fixture builds it, which can
take minutes (hence the long timeout). The Python is Debian armel's CPython 3.11, unpacked by
scripts/armel-python.sh (Debian's archive) with the edge packages of docs/edge-dependencies.md
(PyPI) on its path.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from _support import MANIFEST_IMPORT_PROBE, REPO, load_script, render_yaml
from rig import TelegrafProcess, wait_for
from telegraf_bridge.plugins.manifests import MANIFESTS

from telegraf_bridge import paths
from telegraf_bridge.testing import ParsedPoint, parse_lines

pytestmark = [pytest.mark.telegraf, pytest.mark.timeout(1200)]

# Captured at import, before conftest's isolated_env points the caches into tmp_path: the
# build must use (and fill) the developer's real caches, not a throwaway one per test.
_ORIGINAL_ENV = dict(os.environ)
_TARGET = {"GOOS": "linux", "GOARCH": "arm", "GOARM": "6"}
_BUILD = REPO / "telegraf" / "build.sh"
_MAX_BYTES = 30 * 1024 * 1024

# ELF constants (System V ABI and the ARM ELF supplement).
_EM_ARM = 40
_EF_ARM_EABIMASK = 0xFF000000
_EF_ARM_EABI_VER5 = 0x05000000
_SHT_SYMTAB = 2


def _qemu() -> list[str]:
    qemu = shutil.which("qemu-arm")
    if qemu is None:
        pytest.fail("qemu-arm is not installed; `make system-deps` installs Debian's qemu-user")
    return [qemu, "-cpu", "arm1176"]


def _run_arm(
    binary: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_qemu(), str(binary), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def armv6_telegraf() -> Path:
    """The cached ARMv6 build; built here (minutes, once) when `make telegraf-armv6` has not."""
    env = {**_ORIGINAL_ENV, **_TARGET}
    probe = subprocess.run(
        ["bash", str(_BUILD), "--path-only"], capture_output=True, text=True, check=False, env=env
    )
    if probe.returncode == 0:
        return Path(probe.stdout.strip())
    started = time.monotonic()
    build = subprocess.run(
        ["bash", str(_BUILD)], capture_output=True, text=True, check=False, env=env, timeout=1100
    )
    if build.returncode != 0:
        pytest.fail(f"the ARMv6 build failed:\n{build.stderr[-4000:]}")
    print(f"cold ARMv6 Telegraf build: {time.monotonic() - started:.0f} s")
    return Path(build.stdout.strip().splitlines()[-1])


@pytest.fixture
def arm_wrapper(armv6_telegraf: Path, tmp_path: Path) -> Path:
    """An executable that runs the ARMv6 Telegraf under qemu, usable wherever a binary is."""
    wrapper = tmp_path / "telegraf-arm1176"
    command = " ".join(f"'{part}'" for part in [*_qemu(), str(armv6_telegraf)])
    wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _elf_sections(data: bytes) -> dict[str, int]:
    """Section name -> section type, from a 32-bit little-endian ELF's section headers."""
    shoff, _flags, _ehsize, _phentsize, _phnum, shentsize, shnum, shstrndx = struct.unpack_from(
        "<IIHHHHHH", data, 0x20
    )

    def header(index: int) -> tuple[int, int, int, int]:
        name, kind, _f, _a, offset, size = struct.unpack_from(
            "<IIIIII", data, shoff + index * shentsize
        )
        return name, kind, offset, size

    _n, _k, str_offset, str_size = header(shstrndx)
    names = data[str_offset : str_offset + str_size]
    sections = {}
    for index in range(shnum):
        name, kind, _o, _s = header(index)
        sections[names[name : names.index(b"\0", name)].decode()] = kind
    return sections


def test_version_runs_on_an_emulated_arm1176(armv6_telegraf: Path) -> None:
    result = _run_arm(armv6_telegraf, "version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Telegraf {paths.telegraf_version()} "), result.stdout
    assert paths.telegraf_version() == "1.39.3"


def test_binary_is_a_small_stripped_armv6_eabi5_elf(armv6_telegraf: Path) -> None:
    data = armv6_telegraf.read_bytes()
    assert len(data) <= _MAX_BYTES, f"{len(data) / 2**20:.1f} MiB is over the 30 MB budget"
    assert data[:4] == b"\x7fELF"
    assert data[4] == 1, "not a 32-bit ELF (EI_CLASS)"
    assert data[5] == 1, "not little-endian (EI_DATA)"
    e_type, e_machine = struct.unpack_from("<HH", data, 0x10)
    (e_flags,) = struct.unpack_from("<I", data, 0x24)
    assert e_type == 2, "not an executable (ET_EXEC)"
    assert e_machine == _EM_ARM
    assert e_flags & _EF_ARM_EABIMASK == _EF_ARM_EABI_VER5, hex(e_flags)
    sections = _elf_sections(data)
    assert ".text" in sections, sorted(sections)  # the parser read real section headers
    assert ".symtab" not in sections and _SHT_SYMTAB not in sections.values(), "not stripped"
    # The Go toolchain records how it built the binary; GOARM=6 is what the Pi Zero needs.
    info = subprocess.run(
        ["go", "version", "-m", str(armv6_telegraf)],
        capture_output=True,
        text=True,
        check=True,
        env=_ORIGINAL_ENV,
    ).stdout
    settings = dict(
        line.split("\t")[2].split("=", 1)
        for line in info.splitlines()
        if line.startswith("\tbuild\t") and "=" in line
    )
    assert settings["GOARCH"] == "arm"
    assert settings["GOARM"] == "6"
    assert settings["CGO_ENABLED"] == "0"
    assert settings["-tags"].split(",") == ["custom", *paths.telegraf_build_tags()]


def test_arm1176_model_rejects_armv7_code(tmp_path: Path) -> None:
    """The control that makes the version test a proof: ARMv7 code dies on this CPU model.

    Go's runtime refuses to start a GOARM=7 binary on a CPU without VFPv3, and the ARM1176
    has only VFPv2, so the same program built for v6 runs and built for v7 faults.
    """
    (tmp_path / "go.mod").write_text("module probe\n\ngo 1.22\n")
    (tmp_path / "main.go").write_text(
        'package main\n\nimport "os"\n\nfunc main() { os.Stdout.WriteString("probe ok\\n") }\n'
    )
    results = {}
    for goarm in ("6", "7"):
        binary = tmp_path / f"probe-v{goarm}"
        subprocess.run(
            ["go", "build", "-trimpath", "-o", str(binary), "."],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            env={**_ORIGINAL_ENV, **_TARGET, "GOARM": goarm, "CGO_ENABLED": "0"},
            timeout=600,
        )
        results[goarm] = _run_arm(binary)
    assert results["6"].returncode == 0 and results["6"].stdout == "probe ok\n", results["6"]
    assert results["7"].returncode != 0, "arm1176 ran ARMv7 code: the CPU model proves nothing"
    assert "probe ok" not in results["7"].stdout


def _every_plugin_yaml(tmp_path: Path) -> str:
    """A bridge.yaml that makes the templates emit every plugin the custom build has."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "influxdb_token").write_text("file-token")
    registry_dir = tmp_path / "iotflow"
    registry_dir.mkdir()
    (registry_dir / "mqtt_password").write_text("mqtt-password")
    doc = {
        "agent": {
            "interval": "10s",
            "buffer_strategy": "disk",
            "buffer_directory": str(tmp_path / "buffer"),
            "buffer_max_size_mb": 500,
            "state_directory": str(tmp_path / "state"),
            "internal_metrics": True,  # inputs.internal
            "health_listen": "127.0.0.1:18080",  # outputs.health
        },
        "sources": [  # inputs.execd with parsers.influx, once per plugin
            {"name": "demo", "plugin": "demo"},
            {"name": "meter", "plugin": "gpio_pulse", "options": {"backend": "sim"}},
            {"name": "smartsolar", "plugin": "ndjson_tail", "options": {"files": ["/x/*.ndjson"]}},
            {"name": "dtu", "plugin": "hoymiles", "options": {"host": "127.0.0.1"}},
            {"name": "tigo", "plugin": "taptap", "options": {"tcp": "127.0.0.1"}},
            {
                # inputs.mqtt_consumer, parsers.json, processors.converter/lookup, and a
                # secretstores.docker for the broker password file.
                "name": "iotflow",
                "plugin": "iotflow",
                "options": {
                    "registry": str(registry_dir / "devices.yaml"),
                    "string_tags": ["sensor_type"],
                    "mqtt": {"servers": ["tcp://127.0.0.1:1883"]},
                },
            },
        ],
        "sinks": [
            {
                "name": "cloud",
                "type": "influxdb_v2",
                "url": "https://eu-central-1-1.aws.cloud2.influxdata.com",
                "organization": "my-org",
                "bucket": "solar",
                "token_env": "INFLUX_TOKEN",
            },
            {
                "name": "home",
                "type": "influxdb_v1",
                "url": "http://127.0.0.1:8086",
                "database": "solar",
                "username": "writer",
                "password_env": "INFLUXDB_PASSWORD",
            },
            {
                "name": "v3",
                "type": "influxdb_v3",
                "url": "http://127.0.0.1:8181",
                "database": "hoymiles",
                "token_file": str(secrets / "influxdb_token"),  # secretstores.docker
            },
            {"name": "lp", "type": "file", "path": str(tmp_path / "out.lp")},
            {"name": "js", "type": "file", "path": str(tmp_path / "out.json"), "format": "json"},
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _plugins_in(conf: str) -> set[str]:
    """Build tags a rendered config needs: its plugin tables plus its data formats."""
    tables = set(re.findall(r"^\[\[(\w+\.\w+)\]\]", conf, re.M))
    formats = set()
    for block in re.split(r"^\[\[", conf, flags=re.M)[1:]:
        kind = block.split(".", 1)[0]
        for fmt in re.findall(r'^\s*data_format = "(\w+)"', block, re.M):
            formats.add(("parsers." if kind == "inputs" else "serializers.") + fmt)
    return tables | formats


_CHECK_ENV = {"INFLUX_TOKEN": "env-token", "INFLUXDB_PASSWORD": "env-password"}


def test_config_with_every_plugin_passes_config_check_on_arm1176(
    armv6_telegraf: Path, tmp_path: Path
) -> None:
    conf = render_yaml(_every_plugin_yaml(tmp_path), tmp_path / "out")
    text = conf.read_text()
    assert _plugins_in(text) == set(paths.telegraf_build_tags()), "not every plugin rendered"
    result = _run_arm(
        armv6_telegraf,
        "config",
        "check",
        "--strict-env-handling",
        "--config",
        str(conf),
        env=_CHECK_ENV,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Loading config" in output, output  # it really read the file
    assert not [line for line in output.splitlines() if "E! " in line], output


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('[[outputs.influxdb_v2]]\n  urls = ["http://127.0.0.1:1"]\n  bukket = "x"\n', "bukket"),
        ("[[inputs.cpu]]\n[[outputs.file]]\n", "undefined but requested input: cpu"),
    ],
    ids=["unknown-option", "plugin-not-in-build"],
)
def test_broken_config_is_rejected_on_arm1176(
    armv6_telegraf: Path, tmp_path: Path, body: str, reason: str
) -> None:
    conf = tmp_path / "telegraf.conf"
    conf.write_text(body)
    result = _run_arm(
        armv6_telegraf, "config", "check", "--strict-env-handling", "--config", str(conf)
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert reason in output, output


def _demo_doc(tmp_path: Path, out: Path, python: Path | None = None) -> dict[str, Any]:
    """bridge.yaml for the demo plugin into a file, with a disk buffer, every second."""
    agent: dict[str, Any] = {
        "interval": "1s",
        "flush_interval": "1s",
        "buffer_strategy": "disk",
        "buffer_directory": str(tmp_path / "buffer"),
        "state_directory": str(tmp_path / "state"),
        "require_clock_sync": False,
        "health_listen": "",
    }
    if python is not None:
        agent["python"] = str(python)
    return {
        "agent": agent,
        "sources": [{"name": "demo", "plugin": "demo", "options": {"devices": 2}}],
        "sinks": [{"name": "local", "type": "file", "path": str(out)}],
    }


def _demo_points(out: Path) -> list[ParsedPoint]:
    """The demo's points in the file sink, complete lines only."""
    text = out.read_text() if out.exists() else ""
    complete = text[: text.rfind("\n") + 1]
    return [p for p in parse_lines(complete) if p.measurement == "demo"]


def test_demo_pipeline_runs_through_the_armv6_telegraf(arm_wrapper: Path, tmp_path: Path) -> None:
    """execd -> influx parser -> disk buffer -> file output, all in the emulated ARMv6 binary.

    The demo plugin itself is the host's Python: qemu-user hands execve of a non-ARM binary to
    the kernel, so only Telegraf is emulated.
    """
    out = tmp_path / "metrics.lp"
    doc = _demo_doc(tmp_path, out)
    conf = render_yaml(yaml.safe_dump(doc), tmp_path / "out")

    with TelegrafProcess(arm_wrapper, conf, tmp_path / "tg") as telegraf:
        wait_for(lambda: len(_demo_points(out)) >= 4, timeout=60, what="demo points in the file")
        assert telegraf.running()
        # Read while running: execd logs its pipes closing at shutdown as E!, which is noise.
        log = telegraf.log()
    assert not [line for line in log.splitlines() if "E! " in line], log
    devices = {p.tags["device"] for p in _demo_points(out)}
    assert len(devices) == 2, devices


# --- Debian armel's CPython 3.11 on the emulated ARM1176 (what Dockerfile.armv6 runs) ---------


def _bundle_tree(site: Path) -> None:
    """telegraf_bridge laid out as the wheel installs it (scripts/typecheck.sh does the same)."""
    package = site / "telegraf_bridge"
    package.mkdir()
    for item in (REPO / "src" / "telegraf_bridge").iterdir():
        if item.name != "__pycache__":
            (package / item.name).symlink_to(item)
    for folder in ("cli", "plugins", "templates", "telegraf"):
        (package / folder).symlink_to(REPO / folder)


@pytest.fixture(scope="module")
def armel_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A ``python`` that is Debian armel's CPython 3.11 under ``qemu-arm -cpu arm1176``.

    Its path holds the bundle and the documented edge set (docs/edge-dependencies.md) as a Pi
    Zero installs it: pure-Python wheels, sdists built with Python alone. gpiod, the one C
    extension, is left out: the image builds it with gcc. Returns the wrapper and the
    top-level modules of the installed packages.
    """
    setup = subprocess.run(
        ["bash", str(REPO / "scripts" / "armel-python.sh")],
        capture_output=True,
        text=True,
        check=False,
        env=_ORIGINAL_ENV,
        timeout=600,
    )
    if setup.returncode != 0:
        pytest.fail(f"scripts/armel-python.sh failed:\n{setup.stderr[-3000:]}")
    root = Path(setup.stdout.strip().splitlines()[-1])
    edge = load_script("edge_dependencies")
    cache = edge.cache_dir(_ORIGINAL_ENV)
    site = tmp_path_factory.mktemp("armel") / "site"
    modules: list[str] = []
    for name, version in edge.documented(
        (REPO / "docs" / "edge-dependencies.md").read_text()
    ).items():
        if name in edge.NEEDS_C_COMPILER:
            continue
        wheel = edge.pure_wheel(name, version, cache)
        assert wheel is not None, f"{name} {version} has no pure-Python wheel or build"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)  # a wheel is a zip of its site-packages layout
        modules += [m for m in edge.top_level_modules(wheel) if not m.startswith("_")]
    _bundle_tree(site)
    wrapper = site.parent / "python3-armel"
    qemu = " ".join(f"'{part}'" for part in [*_qemu(), "-L", str(root)])
    wrapper.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH='{site}' PYTHONDONTWRITEBYTECODE=1 PYTHONNOUSERSITE=1 "
        f"exec {qemu} '{root}/usr/bin/python3.11' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    return wrapper, sorted(modules)


def test_armel_python_is_cpython_311_on_armv6l(armel_python: tuple[Path, list[str]]) -> None:
    python, _modules = armel_python
    probe = "import platform, sys; print(platform.machine(), sys.implementation.name, *sys.version_info[:2])"
    result = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["armv6l", "cpython", "3", "11"]


def test_edge_packages_work_on_armel_python(armel_python: tuple[Path, list[str]]) -> None:
    python, modules = armel_python
    assert {"click", "jinja2", "yaml", "watchdog", "serial", "pymodbus", "paho"} <= set(modules)
    probe = f"""
import importlib
for name in {modules!r}:
    importlib.import_module(name)
import yaml, jinja2, paho.mqtt.client, watchdog.observers
assert not yaml.__with_libyaml__  # the pure-Python PyYAML, as built without a compiler
assert yaml.safe_load("a: [1, 2.5]") == {{"a": [1, 2.5]}}
assert jinja2.Template("{{{{ x|upper }}}}").render(x="pi") == "PI"
print(watchdog.observers.Observer.__name__, paho.mqtt.client.Client.__name__)
"""
    result = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["InotifyObserver", "Client"], result.stdout


def test_plugin_manifests_import_pure_on_armel_python(
    armel_python: tuple[Path, list[str]],
) -> None:
    """bridge-cli reads every plugin's manifest on a Pi Zero: no device library, file or socket."""
    python, _modules = armel_python
    result = subprocess.run(
        [str(python), "-c", MANIFEST_IMPORT_PROBE],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{len(MANIFESTS)} [] [] []"


def test_pi_zero_stack_end_to_end(
    armel_python: tuple[Path, list[str]], arm_wrapper: Path, tmp_path: Path
) -> None:
    """bridge-cli renders on armel Python; the ARMv6 Telegraf runs the demo on armel Python.

    Everything on the data path is ARM code on the emulated ARM1176: Telegraf, the Python
    interpreter, and the execd plugin it starts (the rendered command is the armel python).
    """
    python, _modules = armel_python
    out = tmp_path / "metrics.lp"
    doc = _demo_doc(tmp_path, out, python=python)
    bridge_yaml = tmp_path / "bridge.yaml"
    bridge_yaml.write_text(yaml.safe_dump(doc))
    conf = tmp_path / "out" / "telegraf.conf"
    render = subprocess.run(
        [
            str(python),
            "-m",
            "telegraf_bridge.cli.main",
            "render-config",
            "--config",
            str(bridge_yaml),
            "--output",
            str(conf),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert render.returncode == 0, render.stdout + render.stderr
    assert f'command = ["{python}", "-m", "telegraf_bridge.plugins.demo"' in conf.read_text()

    with TelegrafProcess(arm_wrapper, conf, tmp_path / "tg") as telegraf:
        wait_for(lambda: len(_demo_points(out)) >= 4, timeout=120, what="demo points in the file")
        log = telegraf.log()
    assert not [line for line in log.splitlines() if "E! " in line], log
    points = _demo_points(out)
    assert {p.tags["device"] for p in points} == {"demo-1", "demo-2"}
    for point in points:
        assert isinstance(point.fields["energy_wh"], int)
        assert isinstance(point.fields["power_w"], float)
        assert point.time_ns is not None and point.time_ns % 1_000_000_000 == 0
