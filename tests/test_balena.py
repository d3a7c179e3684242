"""The balena fleet project (deploy/balena/): compose subset, balena.yml, push.sh, fleet config.

`balena push` builds the docker-compose.yml at the root of the pushed folder, and the device
supervisor runs a subset of Compose 2.x (its docker-compose reference and the supervisor's
feature labels): these tests hold the fleet's file to that subset, to the Compose schema and to
compose-go's loader, and check that push.sh assembles what `balena push` needs.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from _support import REPO
from click.testing import CliRunner
from compose_load import harness
from telegraf_bridge.cli.main import cli

from telegraf_bridge import __version__

BALENA = REPO / "deploy" / "balena"
COMPOSE = BALENA / "docker-compose.yml"
PUSH = BALENA / "push.sh"

# The service fields the balena supervisor supports (its docker-compose.yml reference).
SUPPORTED_SERVICE_KEYS = frozenset(
    [
        "build",
        "cap_add",
        "cap_drop",
        "cgroup_parent",
        "command",
        "cpu_shares",
        "cpu_quota",
        "cpus",
        "cpuset",
        "devices",
        "depends_on",
        "dns",
        "dns_opt",
        "dns_search",
        "domainname",
        "entrypoint",
        "environment",
        "expose",
        "extra_hosts",
        "group_add",
        "healthcheck",
        "hostname",
        "image",
        "init",
        "ipc",
        "labels",
        "mac_address",
        "mem_limit",
        "mem_reservation",
        "network_mode",
        "networks",
        "oom_kill_disable",
        "oom_score_adj",
        "pid",
        "pids_limit",
        "ports",
        "privileged",
        "read_only",
        "restart",
        "security_opt",
        "shm_size",
        "stop_grace_period",
        "stop_signal",
        "sysctls",
        "tmpfs",
        "ulimits",
        "user",
        "userns_mode",
        "volumes",
        "working_dir",
    ]
)
SUPPORTED_BUILD_KEYS = frozenset(
    ["context", "dockerfile", "args", "cache_from", "extra_hosts", "labels", "shm_size", "target"]
)
# Labels the supervisor acts on (supervisor's feature table); any other io.balena.* is a typo.
BALENA_LABELS = frozenset(
    [
        *(
            f"io.balena.features.{f}"
            for f in [
                "balena-socket",
                "dbus",
                "sysfs",
                "procfs",
                "kernel-modules",
                "firmware",
                "journal-logs",
                "supervisor-api",
                "balena-api",
                "gpu",
                "bind-mount",
            ]
        ),
        "io.balena.update.strategy",
        "io.balena.update.handover-timeout",
    ]
)
UPDATE_STRATEGIES = (
    "download-then-kill",
    "kill-then-download",
    "delete-then-download",
    "hand-over",
)


def label_problems(name: str, labels: dict[str, str] | list[str]) -> list[str]:
    """balena labels the supervisor does not know, and update strategies it does not have."""
    if isinstance(labels, list):
        labels = dict(label.split("=", 1) for label in labels)
    problems = []
    for label, value in labels.items():
        if label.startswith(("io.balena.", "io.resin.")) and label not in BALENA_LABELS:
            problems.append(f"{name}: unknown balena label {label}")
        if label == "io.balena.update.strategy" and value not in UPDATE_STRATEGIES:
            problems.append(f"{name}: update strategy {value}")
    return problems


def service_problems(name: str, service: dict, volumes: set[str]) -> list[str]:
    """What in one service the balena supervisor would not run as written."""
    problems = []
    unsupported = set(service) - SUPPORTED_SERVICE_KEYS
    if unsupported:
        problems.append(f"{name}: unsupported fields {sorted(unsupported)}")
    build = service.get("build")
    if isinstance(build, dict) and set(build) - SUPPORTED_BUILD_KEYS:
        problems.append(
            f"{name}: unsupported build fields {sorted(set(build) - SUPPORTED_BUILD_KEYS)}"
        )
    if isinstance(build, dict) and str(build.get("context", ".")).startswith(("/", "..", "http")):
        problems.append(f"{name}: build context must be a folder of the project")
    for volume in service.get("volumes") or []:
        if not isinstance(volume, str):
            problems.append(f"{name}: long volume syntax {volume}")
            continue
        source = volume.split(":")[0]
        if source.startswith(("/", ".", "~")) or source not in volumes:
            problems.append(f"{name}: bind mount or undeclared volume {source!r}")
    depends = service.get("depends_on")
    if depends is not None and not isinstance(depends, list):
        problems.append(f"{name}: depends_on must be a list (no conditions)")
    if service.get("network_mode", "bridge") not in ("bridge", "host", "none") and not str(
        service.get("network_mode")
    ).startswith("service:"):
        problems.append(f"{name}: network_mode {service['network_mode']}")
    return problems + label_problems(name, service.get("labels") or {})


def balena_problems(text: str) -> list[str]:
    """What in a compose file the balena supervisor would not run as written."""
    problems = []
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    if "$" in code:
        problems.append("variable interpolation ($): the supervisor does not interpolate")
    doc = yaml.safe_load(text)
    extra = set(doc) - {"version", "services", "volumes", "networks"}
    if extra:
        problems.append(f"top-level keys balena does not support: {sorted(extra)}")
    if not str(doc.get("version", "2")).startswith("2"):
        problems.append("compose version 3 fields are not supported (use 2.x)")
    volumes = set(doc.get("volumes") or {})
    for name, service in doc["services"].items():
        problems += service_problems(name, service, volumes)
    return problems


def test_fleet_compose_uses_only_what_the_balena_supervisor_supports() -> None:
    assert balena_problems(COMPOSE.read_text()) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("      - bridge-data:/data", "      - ./data:/data", "bind mount"),
        ("      BRIDGE_DATA_DIR: /data", "      BRIDGE_DATA_DIR: ${DATA}", "interpolation"),
        ("    restart: always", "    restart: always\n    container_name: bridge", "unsupported"),
        ("io.balena.update.strategy", "io.balena.features.gpio", "unknown balena label"),
        ("      context: .", "      context: ..", "build context"),
        ('version: "2.4"', 'version: "3.8"', "version 3"),
    ],
)
def test_the_balena_check_catches_a_broken_copy(old: str, new: str, problem: str) -> None:
    text = COMPOSE.read_text()
    assert old in text
    problems = balena_problems(text.replace(old, new, 1))
    assert any(problem in p for p in problems), problems


def test_fleet_compose_validates_against_the_compose_spec_and_loads_in_compose_go() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert harness.schema_errors(doc) == []
    broken = {**doc, "services": {"bridge": {**doc["services"]["bridge"], "devices": "/dev/x"}}}
    assert harness.schema_errors(broken), "the schema accepted devices as a string"
    loaded = harness.load([COMPOSE])
    assert loaded.returncode == 0, loaded.stderr
    (name,) = loaded.project["services"]
    bridge = loaded.project["services"][name]
    assert name == "bridge" and bridge["restart"] == "always"
    assert bridge["build"]["dockerfile"] == "Dockerfile.armv6"
    assert bridge["environment"]["BRIDGE_DATA_DIR"] == "/data"
    (mount,) = bridge["volumes"]
    assert (mount["type"], mount["source"], mount["target"]) == ("volume", "bridge-data", "/data")
    # Least privilege: the GPIO device nodes, not a privileged container.
    assert not bridge.get("privileged")
    devices = {d["source"] for d in bridge["devices"]}
    assert "/dev/gpiochip0" in devices


def test_balena_yml_has_what_balena_reads() -> None:
    doc = yaml.safe_load((BALENA / "balena.yml").read_text())
    assert doc["name"] == "telegraf-bridge" and doc["type"] == "sw.application"
    assert doc["description"]
    data = doc["data"]
    assert data["defaultDeviceType"] == "raspberry-pi"  # Pi Zero W (and Pi 1): ARMv6
    assert "raspberry-pi" in data["supportedDeviceTypes"]
    variables: dict[str, Any] = {}
    for entry in data["applicationEnvironmentVariables"]:
        assert isinstance(entry, dict) and len(entry) == 1, entry
        variables.update(entry)
    wanted = {"INFLUX_TOKEN", "INFLUX_ORG", "INFLUX_BUCKET", "INFLUX_URL", "BRIDGE_CONFIG_YAML"}
    assert wanted <= set(variables)
    assert variables["INFLUX_TOKEN"] == "", "no token in balena.yml"
    assert variables["INFLUX_URL"].startswith("https://") and variables["INFLUX_BUCKET"]
    documented = (REPO / "docs" / "balena.md").read_text()
    for name in variables:
        assert f"`{name}`" in documented, f"docs/balena.md does not explain {name}"


@pytest.fixture
def assembled() -> Iterator[Path]:
    result = subprocess.run(
        [str(PUSH), "--dry-run", "myorg/solar-pis"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_push_dry_run_assembles_a_folder_balena_push_can_build(assembled: Path) -> None:
    assert (assembled / "docker-compose.yml").read_text() == COMPOSE.read_text()
    balena_yml = (assembled / "balena.yml").read_text()
    assert balena_yml.startswith((BALENA / "balena.yml").read_text())
    assert yaml.safe_load(balena_yml)["version"] == __version__
    for needed in ("Dockerfile.armv6", "pyproject.toml", "src/telegraf_bridge/__init__.py"):
        assert (assembled / needed).is_file(), needed
    for package in ("cli", "plugins", "templates", "telegraf"):
        assert (assembled / package / "__init__.py").is_file(), package
    # The build context of the fleet's compose file is the folder's root.
    build = yaml.safe_load((assembled / "docker-compose.yml").read_text())["services"]["bridge"]
    assert (assembled / build["build"]["context"] / build["build"]["dockerfile"]).is_file()
    # Only committed sources: no virtualenv, caches or local .env.
    for absent in (".venv", ".git", ".env", "build", "telegraf_bridge.egg-info"):
        assert not (assembled / absent).exists(), absent


def test_push_runs_balena_push_with_the_assembled_folder(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    fake = tmp_path / "balena"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {calls}\nls "$4" > {calls}.ls\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    result = subprocess.run(
        [str(PUSH), "myorg/solar-pis", "--", "--nocache"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "BALENA": str(fake)},
    )
    assert result.returncode == 0, result.stderr
    args = calls.read_text().splitlines()
    assert args[:3] == ["push", "myorg/solar-pis", "--source"] and args[4:] == ["--nocache"]
    assert {"docker-compose.yml", "balena.yml", "Dockerfile.armv6"} <= set(
        Path(f"{calls}.ls").read_text().split()
    )
    shutil.rmtree(args[3], ignore_errors=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [([], "name the fleet"), (["a", "b"], "one fleet only"), (["--bogus", "a"], "unknown option")],
)
def test_push_refuses_unclear_arguments(args: list[str], message: str) -> None:
    result = subprocess.run(
        [str(PUSH), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and message in result.stderr


@pytest.mark.telegraf
def test_fleet_config_renders_with_the_seed_variables_and_passes_telegraf(tmp_path: Path) -> None:
    """deploy/balena/bridge.yaml as BRIDGE_CONFIG_YAML, with seed 000's fleet variables."""
    text = (BALENA / "bridge.yaml").read_text()
    assert re.findall(r"(?m)^\s+(?:buffer|state)_directory: (\S+)", text) == [
        "/data/buffer",
        "/data/state",
    ]
    config = tmp_path / "bridge.yaml"
    config.write_text(text.replace("/data/", f"{tmp_path}/data/"))
    env = {
        "INFLUX_TOKEN": "fleet-token-value",
        "INFLUX_ORG": "solar-org",
        "INFLUX_BUCKET": "smartsolar",
        "INFLUX_URL": "https://eu-central-1-1.aws.cloud2.influxdata.com",
    }
    output = tmp_path / "out" / "telegraf.conf"
    runner = CliRunner()
    rendered = runner.invoke(
        cli, ["render-config", "--config", str(config), "--output", str(output)], env=env
    )
    assert rendered.exit_code == 0, rendered.output
    conf = output.read_text()
    assert 'urls = ["https://eu-central-1-1.aws.cloud2.influxdata.com"]' in conf
    assert 'organization = "solar-org"' in conf and 'token = "${INFLUX_TOKEN}"' in conf
    assert "fleet-token-value" not in conf
    assert (
        f"{tmp_path}/data/smartsolar-v1/*.ndjson"
        in output.with_suffix(".plugins").joinpath("smartsolar.toml").read_text()
    )
    checked = runner.invoke(cli, ["check-config", "--skip-test", str(output)], env=env)
    assert checked.exit_code == 0, checked.output
