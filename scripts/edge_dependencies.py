#!/usr/bin/env python3
"""Resolve and vet the Python packages a Pi Zero (ARMv6) installs; write the docs' list.

Why: PyPI has almost no ARMv6 wheels, so on a Pi Zero every dependency installs either from a
pure-Python wheel or by building its sdist on the device. An sdist that needs Rust, CMake or a
Fortran compiler (or, without a system package, a C compiler) does not install there. This
resolves the edge set with pip's own resolver *as a Pi Zero would* (environment markers and
wheel tags of CPython 3.11 on linux armv6l), then builds every sdist in the set with a PATH
holding nothing but Python, and records how each package installs.

Usage:
  scripts/edge_dependencies.py            print the resolved set and each verdict; exit 1 on
                                          a package that does not install on ARMv6
  scripts/edge_dependencies.py --write    also rewrite docs/edge-dependencies.md

Downloads, builds and verdicts are cached under ~/.cache/telegraf-bridge/edge-deps (or
$TELEGRAF_BRIDGE_CACHE/edge-deps), keyed by name and version, so a rerun only resolves again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "edge-dependencies.md"

# The extras a Pi Zero installs (Dockerfile.armv6: `pip install ".[gpio,hoymiles,mqtt]"`).
EDGE_EXTRAS = ("gpio", "hoymiles", "mqtt")
# The extras it does not, and why (shown in the doc).
OTHER_EXTRAS = {
    "hoymiles-wifi": "cryptography is a Rust extension: no ARMv6 wheel on PyPI, Rust to build",
    "fast": "orjson is a Rust extension; ndjson_tail falls back to the standard library's json",
    "admin": "influxdb-client, for `bridge-cli` database administration from a workstation",
    "v3": "influxdb3-python brings pyarrow (C++), for administration from a workstation",
    "dev": "tests and linters",
}
# CPython 3.11 on Raspberry Pi OS / Debian bookworm (armhf/armel) on an ARM1176, as
# packaging.markers.default_environment() reports it there.
TARGET_MARKERS = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "os_name": "posix",
    "platform_machine": "armv6l",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.11.2",
    "python_version": "3.11",
    "sys_platform": "linux",
}
TARGET_TAGS = (
    *("--platform", "linux_armv6l", "--python-version", "3.11"),
    *("--implementation", "cp", "--abi", "cp311"),
)

# C extensions without a pure fallback that the edge set may still contain, each with why it
# is acceptable and what the ARMv6 image does. The check builds them a second time with gcc
# (and binutils) as the only tools, so "needs a C compiler" never hides "needs more".
NEEDS_C_COMPILER = {
    # gpiod (libgpiod v2 bindings, gpio extra): its sdist bundles libgpiod's C sources, so it
    # builds with gcc and the Python headers alone (no libgpiod-dev). Debian bookworm ships
    # only python3-libgpiod 1.6.3-1+b3 (armel: `apt-cache policy python3-libgpiod:armel`),
    # the v1 API, which gpio_pulse refuses; Raspberry Pi OS bookworm is built from the same
    # release (its own archive is not reachable from here to check). So Dockerfile.armv6
    # installs gcc, libc6-dev and python3-dev in its build stage, builds gpiod there and
    # copies the venv into a runtime without a compiler; on a bare Pi Zero:
    # `apt install gcc python3-dev` before `pip install`.
    "gpiod": "bundles libgpiod; Debian's python3-libgpiod is the v1 API",
}

# Bump to invalidate cached verdicts when the vetting logic changes.
_VERDICT_FORMAT = 3
_COMPILED = re.compile(r"\.(so|pyd|dylib|a)$")
# Patches pip, in its own process, so its resolver evaluates environment markers for the
# target (pip evaluates them for the running interpreter, even with --platform), and lets
# sdists through with --platform (a Pi Zero builds them; pip's guard assumes it cannot).
_PIP_DRIVER = """
import json, sys
from pip._vendor.packaging import markers
from pip._internal.cli import cmdoptions
target = json.loads(sys.argv[1])
host = markers.default_environment
markers.default_environment = lambda: {**host(), **target}
cmdoptions.check_dist_restriction = lambda options, check_target=False: None
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@dataclass(frozen=True)
class Resolved:
    """One distribution pip picked for the target: the file it would install."""

    name: str
    version: str
    filename: str

    @property
    def requirement(self) -> str:
        """What pip is asked for: this exact version from PyPI, or a local file (tests)."""
        if Path(self.filename).is_absolute():
            return self.filename
        return f"{self.name}=={self.version}"

    @property
    def is_sdist(self) -> bool:
        """Whether pip found no wheel for ARMv6 and would build this one."""
        return not self.filename.endswith(".whl")


@dataclass(frozen=True)
class Verdict:
    """How a resolved distribution installs on ARMv6, and whether that is acceptable."""

    name: str
    version: str
    how: str
    ok: bool
    detail: str = ""


def cache_dir(env: dict[str, str] | None = None) -> Path:
    """~/.cache/telegraf-bridge/edge-deps, honouring TELEGRAF_BRIDGE_CACHE like build.sh."""
    env = dict(os.environ) if env is None else env
    root = env.get("TELEGRAF_BRIDGE_CACHE")
    if not root:
        xdg = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".cache")
        root = str(Path(xdg) / "telegraf-bridge")
    return Path(root) / "edge-deps"


def edge_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The core dependencies plus the requirements of the extras a Pi Zero installs."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project["optional-dependencies"]
    missing = [e for e in (*EDGE_EXTRAS, *OTHER_EXTRAS) if e not in extras]
    if missing:
        raise SystemExit(f"pyproject.toml has no extra(s) {missing}; update {__file__}")
    unknown = sorted(set(extras) - set(EDGE_EXTRAS) - set(OTHER_EXTRAS))
    if unknown:
        raise SystemExit(
            f"new extra(s) {unknown}: decide in {__file__} whether a Pi Zero uses them"
        )
    return [*project["dependencies"], *(r for e in EDGE_EXTRAS for r in extras[e])]


def _network_env() -> dict[str, str]:
    """The variables that let pip reach PyPI here (index, proxy, CA bundle), and no others.

    Local wheel directories (PIP_FIND_LINKS) are dropped: the question is what PyPI offers.
    """
    keep = ("PIP_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_", "REQUESTS_CA_BUNDLE")
    return {
        k: v
        for k, v in os.environ.items()
        if k.upper().startswith(keep) and k.upper() not in {"PIP_FIND_LINKS", "PIP_NO_INDEX"}
    }


def _pip(args: list[str], cache: Path, *, env: dict[str, str] | None = None) -> str:
    """Run pip (target markers patched in) and return its output; raise with it on failure."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("PIP_")}
    result = subprocess.run(
        [sys.executable, "-c", _PIP_DRIVER, json.dumps(TARGET_MARKERS), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**(base if env is None else env), **_network_env()},
        timeout=900,
        cwd=cache,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args[:2])} failed:\n{output[-6000:]}")
    return output


def resolve(requirements: list[str], cache: Path) -> list[Resolved]:
    """What pip resolves ``requirements`` to for CPython 3.11 on linux armv6l, from PyPI."""
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as work:
        report = Path(work) / "report.json"
        _pip(
            [
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--disable-pip-version-check",
                "--report",
                str(report),
                "--cache-dir",
                str(cache / "pip"),
                *TARGET_TAGS,
                *requirements,
            ],
            cache,
        )
        data = json.loads(report.read_text())
    seen = data["environment"]
    wrong = {k: seen.get(k) for k, v in TARGET_MARKERS.items() if seen.get(k) != v}
    if wrong:
        raise RuntimeError(f"pip did not evaluate markers for the target: {wrong}")
    found = [
        Resolved(
            name=_canonical(item["metadata"]["name"]),
            version=item["metadata"]["version"],
            filename=item["download_info"]["url"].rsplit("/", 1)[-1],
        )
        for item in data["install"]
    ]
    return sorted(found, key=lambda r: r.name)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_tags(filename: str) -> tuple[str, str, str]:
    python, abi, platform = filename[: -len(".whl")].split("-")[-3:]
    return python, abi, platform


def _shim(root: Path, tools: tuple[str, ...]) -> Path:
    """A directory holding only python (this interpreter) and the named host tools."""
    shim = root / "shim"
    shim.mkdir()
    for name in ("python", "python3"):
        (shim / name).symlink_to(sys.executable)
    for tool in tools:
        found = _which(tool)
        if found is None:
            raise RuntimeError(f"{tool} is not installed; it is needed to vet C extensions")
        (shim / tool).symlink_to(found)
    return shim


def _which(tool: str) -> str | None:
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / tool
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def build_sdist(
    dist: Resolved, cache: Path, tools: tuple[str, ...] = ()
) -> tuple[Path | None, str]:
    """Build ``dist`` from its sdist with PATH = python plus ``tools``: (wheel or None, log).

    No Rust, cargo, cmake, gfortran, gcc or pkg-config is reachable unless named in ``tools``,
    so a build that needs one fails or falls back to pure Python, as on a bare Pi Zero.
    """
    cache.mkdir(parents=True, exist_ok=True)
    label = "-".join(tools) or "python-only"
    out = cache / "wheels" / f"{dist.name}-{dist.version}" / label
    wheels = sorted(out.glob("*.whl")) if out.is_dir() else []
    if wheels:
        return wheels[0], "(cached build)"
    with tempfile.TemporaryDirectory(dir=cache) as work:
        root = Path(work)
        shim = _shim(root, tools)
        env = {
            "PATH": str(shim),
            "HOME": str(root / "home"),
            "TMPDIR": str(root),
            "LANG": "C.UTF-8",
        }
        try:
            log = _pip(
                [
                    "wheel",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "--no-binary",
                    dist.name,
                    # A cache per tool set: pip reuses wheels it built, and a wheel built with
                    # gcc must never stand in for a build without it.
                    "--cache-dir",
                    str(cache / f"pip-{label}"),
                    "--wheel-dir",
                    str(root / "out"),
                    dist.requirement,
                ],
                root,
                env=env,
            )
        except RuntimeError as exc:
            return None, str(exc)
        built = sorted((root / "out").glob("*.whl"))
        out.mkdir(parents=True, exist_ok=True)
        for wheel in built:
            wheel.rename(out / wheel.name)
    return out / built[0].name, log


def _compiled_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return [n for n in archive.namelist() if _COMPILED.search(n)]


def top_level_modules(wheel: Path) -> list[str]:
    """The importable top-level names a wheel installs."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        listed = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        if listed:
            return archive.read(listed[0]).decode().split()
    tops = {n.split("/", 1)[0] for n in names if "/" in n and ".dist-info" not in n.split("/")[0]}
    tops |= {n[:-3] for n in names if "/" not in n and n.endswith(".py")}
    return sorted(t for t in tops if t.isidentifier())


def import_check(wheel: Path, cache: Path) -> str:
    """Install ``wheel`` alone into a temp dir and import its modules from there; "" if fine."""
    with tempfile.TemporaryDirectory(dir=cache) as work:
        target = Path(work) / "site"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)  # a wheel is a zip of its site-packages layout
        # Private top-level modules may be the accelerator's stub (PyYAML's _yaml raises
        # without its C extension, by design); the public ones must import.
        modules = [m for m in top_level_modules(wheel) if not m.startswith("_")]
        probe = (
            "import importlib, sys\n"
            f"sys.path.insert(0, {str(target)!r})\n"
            f"for name in {modules!r}:\n"
            "    module = importlib.import_module(name)\n"
            f"    assert module.__file__.startswith({str(target)!r}), module.__file__\n"
        )
        # -S: not this venv's site-packages, where the package may already be installed.
        result = subprocess.run(
            [sys.executable, "-S", "-c", probe], capture_output=True, text=True, check=False
        )
        if result.returncode != 0 or not modules:
            return f"import of {modules or 'no module'} failed: {result.stderr[-2000:]}"
    return ""


def vet(dist: Resolved, cache: Path) -> Verdict:
    """How ``dist`` installs on ARMv6 (cached per name and version)."""
    record = cache / "verdicts" / f"{dist.name}-{dist.version}-{Path(dist.filename).name}.json"
    if record.exists():
        saved = json.loads(record.read_text())
        if saved.pop("format", None) == _VERDICT_FORMAT:
            return Verdict(**saved)
    verdict = _vet(dist, cache)
    if verdict.ok:  # a failure is retried next time: it may have been the network
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"format": _VERDICT_FORMAT, **asdict(verdict)}, indent=1))
    return verdict


def _verdict(dist: Resolved, how: str, ok: bool, detail: str = "") -> Verdict:
    return Verdict(dist.name, dist.version, how, ok, detail)


def _vet_wheel(dist: Resolved) -> Verdict:
    """A wheel installs on ARMv6 only when it is pure Python."""
    _python, abi, platform = _wheel_tags(dist.filename)
    if abi == "none" and platform == "any":
        return _verdict(dist, f"pure-Python wheel ({dist.filename})", True)
    return _verdict(dist, f"binary wheel {dist.filename}", False, "not a pure-Python wheel")


def _vet_python_build(dist: Resolved, cache: Path, wheel: Path) -> Verdict:
    """An sdist that built without a compiler: pure, or its pure-Python fallback must import."""
    compiled = _compiled_files(wheel)
    if compiled:
        return _verdict(dist, "sdist", False, f"built compiled files with no compiler: {compiled}")
    if wheel.name.endswith("-none-any.whl"):
        return _verdict(dist, "sdist, builds a pure-Python wheel", True)
    problem = import_check(wheel, cache)
    if problem:
        return _verdict(dist, "sdist, pure fallback", False, problem)
    return _verdict(
        dist,
        "sdist; without a compiler its C accelerator is skipped and the pure-Python "
        "fallback imports",
        True,
    )


def _vet_c_build(dist: Resolved, cache: Path) -> Verdict:
    """An sdist known to need a C compiler: it must build with gcc alone, and import."""
    wheel, log = build_sdist(dist, cache, tools=("gcc", "cc", "as", "ld"))
    if wheel is None:
        return _verdict(
            dist, "sdist, C extension", False, "does not build with gcc alone:\n" + log[-3000:]
        )
    problem = import_check(wheel, cache)
    if problem:
        return _verdict(dist, "sdist, C extension", False, problem)
    return _verdict(
        dist,
        f"sdist with a C extension: needs gcc and python3-dev ({NEEDS_C_COMPILER[dist.name]})",
        True,
    )


def _vet(dist: Resolved, cache: Path) -> Verdict:
    if not dist.is_sdist:
        return _vet_wheel(dist)
    wheel, log = build_sdist(dist, cache)
    if wheel is not None:
        return _vet_python_build(dist, cache, wheel)
    if dist.name not in NEEDS_C_COMPILER:
        return _verdict(dist, "sdist that does not build with Python alone", False, log[-3000:])
    return _vet_c_build(dist, cache)


_GPIOD_NOTE = """\
The only package here that needs a compiler is `gpiod`, the libgpiod v2 bindings of the `gpio`
extra: its sdist bundles libgpiod's C sources and builds with gcc and the Python headers alone.
Debian bookworm ships only `python3-libgpiod` 1.6.3 (the v1 API, which `gpio_pulse` refuses;
Raspberry Pi OS bookworm is built from the same release), so Dockerfile.armv6 installs
`gcc libc6-dev python3-dev` in its build stage only; on a bare Pi Zero run
`sudo apt install gcc python3-dev` before `pip install 'telegraf-bridge[gpio]'`. A Pi Zero
without the `gpio` extra needs no compiler.
"""


def render_doc(verdicts: list[Verdict]) -> str:
    """docs/edge-dependencies.md: the resolved set, one row per distribution."""
    rows = "\n".join(f"| {v.name} | {v.version} | {v.how} |" for v in verdicts)
    excluded = "\n".join(f"- `{name}`: {why}" for name, why in OTHER_EXTRAS.items())
    return f"""# Python dependencies on a Pi Zero (ARMv6)

Generated by `scripts/edge_dependencies.py --write`; do not edit. `tests/test_edge_dependencies.py`
fails when a package in the resolved set is missing here or does not install on ARMv6.

PyPI has next to no ARMv6 wheels, so on a Pi Zero every package installs from a pure-Python
wheel or is built from its sdist on the device. The set below is pip's own resolution of the
core dependencies plus the extras `{", ".join(EDGE_EXTRAS)}`, with the environment markers and
wheel tags of CPython 3.11 on linux armv6l, from PyPI only (Raspberry Pi OS also asks piwheels,
which can only add wheels). Each sdist was built with nothing on PATH but Python: no Rust,
CMake, Fortran or C compiler. Versions are the newest the ranges in pyproject.toml allowed when
this file was generated.

| package | version | installs on ARMv6 as |
|---|---|---|
{rows}

{_GPIOD_NOTE if any(v.name == "gpiod" for v in verdicts) else ""}
Extras a Pi Zero does not install:
{excluded}
"""


def documented(text: str) -> dict[str, str]:
    """Package name -> version, from the doc's table."""
    rows = re.finditer(r"^\| ([a-z0-9][a-z0-9-]*) \| ([^|\s]+) \|", text, re.M)
    return {m.group(1): m.group(2) for m in rows if m.group(1) != "package"}


def pure_wheel(name: str, version: str, cache: Path) -> Path | None:
    """A pure-Python wheel of ``name==version`` as a Pi Zero would install it, else None.

    The PyPI wheel when it has a pure one, otherwise the sdist built with Python alone (for
    PyYAML: without its C accelerator). None for a C extension without a pure fallback. Used
    to populate an ARMv6 site-packages for the emulated Debian armel Python in the tests.
    """
    out = cache / "wheels" / f"{name}-{version}" / "pypi"
    built = cache / "wheels" / f"{name}-{version}" / "python-only"
    for folder in (out, built):
        cached = sorted(folder.glob("*.whl")) if folder.is_dir() else []
        if cached:
            return None if _compiled_files(cached[0]) else cached[0]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as work:
        # No wheel for ARMv6 (pip fails): the sdist is what a Pi Zero builds.
        with contextlib.suppress(RuntimeError):
            _pip(
                [
                    "download",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "--only-binary",
                    ":all:",
                    "--cache-dir",
                    str(cache / "pip"),
                    "--dest",
                    work,
                    *TARGET_TAGS,
                    f"{name}=={version}",
                ],
                cache,
            )
        wheels = [w for w in Path(work).glob("*.whl") if w.name.endswith("-none-any.whl")]
        if wheels:
            out.mkdir(parents=True, exist_ok=True)
            return wheels[0].rename(out / wheels[0].name)
    wheel, _log = build_sdist(Resolved(name, version, f"{name}-{version}.tar.gz"), cache)
    if wheel is None or _compiled_files(wheel):
        return None
    return wheel


def main(argv: list[str] | None = None) -> int:
    """Resolve, vet, print; with --write also regenerate the doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {DOC.relative_to(REPO)}")
    args = parser.parse_args(argv)
    cache = cache_dir()
    resolved = resolve(edge_requirements(), cache)
    verdicts = [vet(dist, cache) for dist in resolved]
    for v in verdicts:
        status = "ok  " if v.ok else "FAIL"
        print(f"{status} {v.name} {v.version}: {v.how}")
        if not v.ok:
            print("     " + v.detail.replace("\n", "\n     "))
    if args.write:
        DOC.write_text(render_doc(verdicts))
        print(f"wrote {DOC}")
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
