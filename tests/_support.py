"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from telegraf_bridge.cli import render
from telegraf_bridge.cli.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
HELPERS = Path(__file__).resolve().parent / "helpers"
GOLDEN = Path(__file__).resolve().parent / "golden"


def render_yaml(text: str, out_dir: Path, env: dict[str, str] | None = None) -> Path:
    """Render a bridge.yaml text into out_dir/telegraf.conf (with its plugin configs)."""
    merged = {**os.environ, **(env or {})}
    settings = load_settings(None, merged, text=text)
    output = out_dir / "telegraf.conf"
    render.write(render.render(settings, output), output)
    return output


def python_exe() -> str:
    return sys.executable


def which_or_fail(tool: str) -> str:
    found = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if not found:
        pytest.fail(f"{tool} is not installed; run `make setup`")
    return found
