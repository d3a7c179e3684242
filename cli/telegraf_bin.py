"""Find the Telegraf binary the bundle runs, and run it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from telegraf_bridge import paths


class TelegrafNotFound(RuntimeError):
    """No usable Telegraf binary; the message says what to do."""


def _cached_build() -> Path | None:
    script = paths.telegraf_dir() / "build.sh"
    if not script.exists():
        return None
    result = subprocess.run(
        ["bash", str(script), "--path-only"],
        capture_output=True,
        text=True,
        check=False,
    )
    candidate = Path(result.stdout.strip()) if result.stdout.strip() else None
    if result.returncode == 0 and candidate and os.access(candidate, os.X_OK):
        return candidate
    return None


def telegraf_path() -> Path:
    """``$TELEGRAF_BIN``, else the cached custom build, else ``telegraf`` on PATH."""
    explicit = os.environ.get(paths.TELEGRAF_BIN_ENV)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise TelegrafNotFound(f"{paths.TELEGRAF_BIN_ENV}={explicit} is not an executable file")
        return path
    cached = _cached_build()
    if cached:
        return cached
    on_path = shutil.which("telegraf")
    if on_path:
        return Path(on_path)
    raise TelegrafNotFound(
        "no Telegraf binary found: run `make setup` (builds Telegraf "
        f"{paths.telegraf_version()} into {paths.cache_root()}), install telegraf on PATH, "
        f"or set {paths.TELEGRAF_BIN_ENV}"
    )


def telegraf_version(binary: Path) -> str:
    """The version a binary reports, e.g. ``1.39.3``."""
    result = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    match = re.search(r"Telegraf (\S+)", result.stdout)
    return match.group(1) if match else "unknown"
