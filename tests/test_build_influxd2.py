"""scripts/build-influxd2.sh's contract without building: the cached path, an own binary, and a
clear error naming the missing tool (the build itself runs in `make setup`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from _support import REPO

SCRIPT = REPO / "scripts" / "build-influxd2.sh"


def _script(
    *args: str, env: dict[str, str], path: str | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "INFLUXD2_BIN"}
    if path is not None:
        base["PATH"] = path
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_path_only_names_the_cache_entry_and_fails_while_it_is_not_built(tmp_path: Path) -> None:
    result = _script("--path-only", env={"TELEGRAF_BRIDGE_CACHE": str(tmp_path)})
    assert result.returncode == 1, result.stderr
    out = Path(result.stdout.strip())
    assert out.parent.parent == tmp_path / "influxd2"
    assert out.name == "influxd" and out.parent.name.startswith("v2.7.12-linux-")
    assert not out.parent.exists(), "--path-only builds nothing"


def test_an_own_binary_replaces_the_build_and_a_wrong_one_is_named(tmp_path: Path) -> None:
    own = tmp_path / "influxd"
    own.write_text("#!/bin/sh\n")
    own.chmod(0o755)
    result = _script(env={"INFLUXD2_BIN": str(own), "TELEGRAF_BRIDGE_CACHE": str(tmp_path)})
    assert (result.returncode, result.stdout.strip()) == (0, str(own)), result.stderr
    wrong = _script(env={"INFLUXD2_BIN": str(tmp_path / "nope")})
    assert wrong.returncode == 3
    assert f"INFLUXD2_BIN={tmp_path / 'nope'} is not an executable file" in wrong.stderr


def test_a_missing_rust_toolchain_is_named_before_anything_is_fetched(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    go = shutil.which("go")
    assert go is not None
    (bin_dir / "go").symlink_to(go)
    # Only Go and the base system: no cargo, no rustc (rustup puts them in ~/.cargo/bin).
    path = f"{bin_dir}:/usr/bin:/bin"
    assert shutil.which("cargo", path=path) is None
    result = _script(env={"TELEGRAF_BRIDGE_CACHE": str(tmp_path / "cache")}, path=path)
    assert result.returncode == 3
    assert "cargo rustc not on PATH" in result.stderr
    assert "https://rustup.rs" in result.stderr and "INFLUXD2_BIN" in result.stderr
    assert not (tmp_path / "cache").exists(), "nothing written on error"
