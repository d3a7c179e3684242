"""The Dockerfiles, checked without a container engine: linted, and their parts run directly.

hadolint (the pip-distributed binary) lints both files; the Telegraf stage's RUN line is run
as written with the platform arguments BuildKit would pass; the venv stage's install is
repeated into a fresh virtual environment from the source tree (not an editable install, so a
file missing from the package data shows), and that venv's entrypoint and health probe run the
real Telegraf.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _support import REPO
from rig import free_port, wait_for

BIN = Path(sys.executable).parent
HADOLINT = BIN / "hadolint"
DOCKERFILES = ("Dockerfile", "Dockerfile.armv6")
# Read at import: the isolated_env fixture points the cache into tmp_path for each test.
REAL_CACHE = os.environ.get("TELEGRAF_BRIDGE_CACHE") or str(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "telegraf-bridge"
)
ELF_MACHINE = {"amd64": 62, "arm": 40, "arm64": 183}


@dataclass
class Stage:
    """One FROM ... block: its base image, name and instructions (continuations joined)."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def stages(path: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())
    result: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--platform")]
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else ""
            result.append(Stage(base=words[0], name=name))
        else:
            result[-1].instructions.append((keyword, re.sub(r"\s+", " ", rest)))
    return result


def _pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


# -- lint -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_is_clean(name: str) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(REPO / name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_what_it_should(tmp_path: Path) -> None:
    """The linter really runs: a Dockerfile with the classic mistakes fails."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN cd /tmp && apt-get install curl\nUSER root\n")
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    for rule in ("DL3007", "DL3003", "DL3002"):
        assert rule in result.stdout


# -- structure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_package_folder_is_copied_into_the_venv_stage(name: str) -> None:
    venv = next(s for s in stages(REPO / name) if s.name == "venv")
    copied = {arg.split()[0].rstrip("/") for arg in venv.args("COPY")}
    copied |= {w for arg in venv.args("COPY") for w in arg.split()[:-1]}
    package_dirs = _pyproject()["tool"]["setuptools"]["package-dir"]  # type: ignore[index]
    top_level = {str(d).split("/")[0] for d in package_dirs.values()}
    assert top_level <= copied, f"{name} misses {top_level - copied}"
    assert {"pyproject.toml", "README.md"} <= copied


@pytest.mark.parametrize(
    ("name", "extras"),
    [
        ("Dockerfile", {"gpio", "hoymiles", "hoymiles-wifi", "mqtt"}),
        # The Pi Zero image leaves out hoymiles-wifi: cryptography has no ARMv6 wheel and
        # needs Rust to build (docs/edge-dependencies.md).
        ("Dockerfile.armv6", {"gpio", "hoymiles", "mqtt"}),
    ],
)
def test_the_images_install_the_extras_that_exist(name: str, extras: set[str]) -> None:
    text = (REPO / name).read_text()
    match = re.search(r'pip install --no-cache-dir "/src\[([^\]]+)\]"', text)
    assert match, f"{name} does not install the bundle from /src"
    assert set(match.group(1).split(",")) == extras
    known = set(_pyproject()["project"]["optional-dependencies"])  # type: ignore[index]
    assert extras <= known


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runtime_stage_runs_the_entrypoint_as_designed(name: str) -> None:
    runtime = stages(REPO / name)[-1]
    assert runtime.name == ""
    assert runtime.args("ENTRYPOINT") == ['["/usr/bin/tini", "--", "bridge-entrypoint"]']
    (healthcheck,) = runtime.args("HEALTHCHECK")
    assert healthcheck.endswith('CMD ["bridge-healthprobe"]')
    assert runtime.args("VOLUME") == ['["/var/lib/telegraf-bridge"]']
    assert "USER" not in dict(runtime.instructions)  # root only until the entrypoint drops it
    env = " ".join(runtime.args("ENV"))
    assert "TELEGRAF_BIN=/usr/local/bin/telegraf" in env
    assert "BRIDGE_CONFIG=" not in env  # a named, missing config is an error, not the demo
    scripts = _pyproject()["project"]["scripts"]  # type: ignore[index]
    assert {"bridge-entrypoint", "bridge-healthprobe"} <= set(scripts)
    assert any("useradd --system --uid 10001" in arg for arg in runtime.args("RUN"))


def test_armv6_runtime_is_debian_armel() -> None:
    bases = [s.base for s in stages(REPO / "Dockerfile.armv6")]
    assert bases[0].startswith("golang:")
    assert bases[1:] == ["arm32v5/debian:bookworm-slim"] * 2


def test_dockerignore_keeps_caches_and_secrets_out() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var", ".env", "*.token", "secrets", "telegraf.conf"} <= ignored


# -- the Telegraf stage, run as written ----------------------------------------------------------


def _run_telegraf_stage(name: str, tmp_path: Path, env: dict[str, str]) -> Path:
    (run_line,) = stages(REPO / name)[0].args("RUN")
    dest = tmp_path / "telegraf"
    script = run_line.replace("TELEGRAF_BRIDGE_CACHE=/cache", f"TELEGRAF_BRIDGE_CACHE={REAL_CACHE}")
    script = re.sub(r'install -m 0755 "\$out" /telegraf$', f'install -m 0755 "$out" {dest}', script)
    assert str(dest) in script, "the stage's last step changed; update this test"
    result = subprocess.run(
        ["sh", "-ec", script],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dest


def _elf(path: Path) -> tuple[int, int]:
    """(ELF class: 1 = 32-bit, 2 = 64-bit; e_machine)."""
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF"
    return head[4], int.from_bytes(head[18:20], "little")


@pytest.mark.telegraf
@pytest.mark.timeout(1800)
def test_multiarch_telegraf_stage_builds_for_the_target(tmp_path: Path) -> None:
    binary = _run_telegraf_stage("Dockerfile", tmp_path, {"TARGETARCH": "amd64"})
    assert _elf(binary) == (2, ELF_MACHINE["amd64"])
    version = subprocess.run(
        [str(binary), "version"], capture_output=True, text=True, check=True, timeout=30
    )
    assert "Telegraf 1.39.3" in version.stdout


@pytest.mark.telegraf
@pytest.mark.timeout(1800)
def test_armv6_telegraf_stage_cross_compiles_for_arm(tmp_path: Path) -> None:
    """The first build takes minutes; `make test` builds it before pytest (telegraf-armv6)."""
    binary = _run_telegraf_stage("Dockerfile.armv6", tmp_path, {})
    assert _elf(binary) == (1, ELF_MACHINE["arm"])


# -- the venv stage, repeated from the source tree ---------------------------------------------


@pytest.mark.telegraf
@pytest.mark.timeout(900)
def test_image_venv_runs_entrypoint_and_probe(tmp_path: Path, telegraf_bin: Path) -> None:
    venv = tmp_path / "opt-bridge"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    text = (REPO / "Dockerfile").read_text()
    extras = re.search(r'"/src\[([^\]]+)\]"', text)
    assert extras
    install = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--no-cache-dir",
            f"{REPO}[{extras.group(1)}]",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=800,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    data = tmp_path / "data"
    listen = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "INFLUX"))}
    env.update(
        PATH=f"{venv / 'bin'}:{os.environ['PATH']}",
        TELEGRAF_BIN=str(telegraf_bin),
        BRIDGE_DATA_DIR=str(data),
        BRIDGE_RUN_AS="root",
        BRIDGE_AGENT_HEALTH_LISTEN=listen,
        BRIDGE_AGENT_INTERVAL="1s",
        BRIDGE_AGENT_FLUSH_INTERVAL="1s",
    )
    proc = subprocess.Popen(
        [str(venv / "bin" / "bridge-entrypoint")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    metrics = data / "metrics.lp"
    try:
        wait_for(
            lambda: (metrics.exists() and metrics.stat().st_size > 0) or proc.poll() is not None,
            timeout=90,
            what="points from the image's venv",
        )
        assert proc.poll() is None, proc.communicate()[0]
        probe = subprocess.run(
            [str(venv / "bin" / "bridge-healthprobe")],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert probe.returncode == 0, probe.stdout
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    # The plugins ran from the image's venv, not from the checkout's.
    assert f"{venv}/bin/python" in output
    assert metrics.read_text().startswith("demo,")
