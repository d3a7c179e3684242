"""Every Python package a Pi Zero (ARMv6) installs does install there.

The edge set is pip's real resolution against PyPI for CPython 3.11 on linux armv6l
(scripts/edge_dependencies.py patches pip's marker environment to the target's, since pip
evaluates markers for the running interpreter even with --platform). Each distribution must
be a pure-Python wheel, or an sdist that builds with nothing on PATH but Python (pure, or a
C accelerator that falls back to pure Python), or an allowlisted C extension that builds with
gcc alone. Needs network access to PyPI; builds are cached in ~/.cache/telegraf-bridge.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from _support import REPO, load_script

# Captured at import, before conftest's isolated_env points the caches into tmp_path, so a
# rerun reuses the builds (keyed by name and version) instead of redoing them.
_ORIGINAL_ENV = dict(os.environ)


edge = load_script("edge_dependencies")
CACHE: Path = edge.cache_dir(_ORIGINAL_ENV)


@pytest.fixture(scope="module")
def resolved() -> list[Any]:
    return list(edge.resolve(edge.edge_requirements(), CACHE))


def test_edge_set_is_the_core_plus_the_pi_zero_extras(resolved: list[Any]) -> None:
    names = {d.name for d in resolved}
    # Direct requirements (gpiod's marker is platform_system == 'Linux': true on the Pi).
    assert {"click", "jinja2", "pyyaml", "watchdog", "pyserial"} <= names
    assert {"gpiod", "hoymiles-modbus", "paho-mqtt"} <= names
    # Never on the edge: Rust (cryptography, orjson) and workstation-only clients.
    assert not names & {"cryptography", "orjson", "influxdb-client", "influxdb3-python"}
    assert not names & {"pyarrow", "hoymiles-wifi", "protobuf"}


def test_markers_are_evaluated_for_armv6l_linux() -> None:
    """The control for the marker patch: on this x86_64 host pip alone would pick the other."""
    picked = edge.resolve(
        [
            "pyserial; platform_machine == 'armv6l' and platform_system == 'Linux'",
            "paho-mqtt; platform_machine == 'x86_64'",
            "plum-py; sys_platform == 'win32'",
        ],
        CACHE,
    )
    assert [d.name for d in picked] == ["pyserial"]


def test_every_distribution_installs_on_armv6(resolved: list[Any]) -> None:
    verdicts = [edge.vet(dist, CACHE) for dist in resolved]
    failures = [f"{v.name} {v.version}: {v.how}\n{v.detail}" for v in verdicts if not v.ok]
    assert not failures, "\n\n".join(failures)
    # An allowlisted C extension must still need its compiler: a stale entry is a hole.
    by_name = {v.name: v for v in verdicts}
    for name in edge.NEEDS_C_COMPILER:
        assert name in by_name, f"{name} is allowlisted but no longer in the edge set"
        assert "C extension" in by_name[name].how, by_name[name]


def test_a_c_extension_without_fallback_is_rejected(tmp_path: Path) -> None:
    """The control for the vetting: an sdist whose C code has no pure fallback fails."""
    src = tmp_path / "cext_probe-1.0"
    src.mkdir()
    (src / "probe.c").write_text(
        "#include <Python.h>\n"
        'static struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "probe", NULL, -1, NULL};\n'
        "PyMODINIT_FUNC PyInit_probe(void) { return PyModule_Create(&m); }\n"
    )
    (src / "setup.py").write_text(
        "from setuptools import Extension, setup\n"
        "setup(name='cext-probe', version='1.0', ext_modules=[Extension('probe', ['probe.c'])])\n"
    )
    sdist = tmp_path / "cext_probe-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(src, arcname=src.name)
    verdict = edge.vet(edge.Resolved("cext-probe", "1.0", str(sdist)), tmp_path / "cache")
    assert not verdict.ok, verdict
    assert "does not build with Python alone" in verdict.how
    assert "gcc" in verdict.detail, verdict.detail  # it failed for the compiler, not the network


def test_doc_lists_the_resolved_set(resolved: list[Any]) -> None:
    doc = (REPO / "docs" / "edge-dependencies.md").read_text()
    documented = set(edge.documented(doc))
    missing = sorted({d.name for d in resolved} - documented)
    assert not missing, (
        f"docs/edge-dependencies.md lacks {missing}: run scripts/edge_dependencies.py --write"
    )
