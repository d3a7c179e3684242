"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from telegraf_bridge.cli import render
from telegraf_bridge.cli.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
HELPERS = Path(__file__).resolve().parent / "helpers"
GOLDEN = Path(__file__).resolve().parent / "golden"
# Read at import, before conftest's isolated_env drops every BRIDGE_* variable for the test:
# `make soak` sets BRIDGE_SOAK=1 for the long fault runs.
SOAK = bool(os.environ.get("BRIDGE_SOAK"))

# Imports every plugin manifest and prints: how many, the heavy or cli modules that came with
# them, and the files, sockets and processes opened (a manifest must need none of them).
MANIFEST_IMPORT_PROBE = """
import sys

opened, network = [], []


def audit(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        name = args[0] if isinstance(args[0], str) else args[0].decode()
        if not name.endswith((".py", ".pyc")):
            opened.append(name)
    elif event.startswith(("socket.", "subprocess.", "os.system")):
        network.append(event)


sys.addaudithook(audit)
from telegraf_bridge.plugins import manifests

heavy = sorted(
    m for m in sys.modules
    if m.split(".")[0] in ("click", "jinja2", "watchdog", "serial", "gpiod", "RPi", "pymodbus",
                           "hoymiles_modbus", "hoymiles_wifi", "paho")
    or m.startswith("telegraf_bridge.cli")
)
print(len(manifests.MANIFESTS), heavy, opened, network)
"""


def render_yaml(text: str, out_dir: Path, env: dict[str, str] | None = None) -> Path:
    """Render a bridge.yaml text into out_dir/telegraf.conf (with its plugin configs)."""
    merged = {**os.environ, **(env or {})}
    settings = load_settings(None, merged, text=text, base_dir=out_dir)
    output = out_dir / "telegraf.conf"
    render.write(render.render(settings, output), output)
    return output


TRICKY_POINTS = {
    "types": {"count": "integer", "total": "unsigned"},
    "points": [
        {
            "measurement": "e2e",
            "tags": {"site": "roof, south=1", "device": "inv 1"},
            "fields": {"power_w": 1234.5, "count": 7, "total": 9, "ok": True, "note": 'say "hi"'},
            "time_ns": 1_800_000_000_000_000_001,
        },
        {
            "measurement": "e2e",
            "tags": {"site": "Zürich ☀", "device": "back\\slash"},
            "fields": {"power_w": 0.0, "count": -3, "total": 0, "ok": False, "note": "a\\b,c=d e"},
            "time_ns": 1_800_000_000_000_000_002,
        },
        {
            "measurement": "e2e",
            "tags": {"site": "x", "device": "newline"},
            "fields": {
                "power_w": 1e-7,
                "count": 2**62,
                "total": 2**63,
                "ok": True,
                "note": "line1\nline2 e2e,site=evil power_w=666 1",
            },
            "time_ns": 1_800_000_000_000_000_003,
        },
    ],
}

TRICKY_EXPECTED = [
    (
        {"site": "roof, south=1", "device": "inv 1"},
        {"power_w": 1234.5, "count": 7, "total": 9, "ok": True, "note": 'say "hi"'},
    ),
    (
        {"site": "Zürich ☀", "device": "back\\slash"},
        {"power_w": 0.0, "count": -3, "total": 0, "ok": False, "note": "a\\b,c=d e"},
    ),
    (
        {"site": "x", "device": "newline"},
        {
            "power_w": 1e-7,
            "count": 2**62,
            "total": 2**63,
            "ok": True,
            "note": "line1\\nline2 e2e,site=evil power_w=666 1",
        },
    ),
]


def emitter_input(points_file: Path) -> str:
    """An [[inputs.execd]] block running tests/helpers/emit_points.py on ``points_file``."""
    command = [sys.executable, str(HELPERS / "emit_points.py"), str(points_file)]
    quoted = ", ".join('"' + c.replace("\\", "\\\\") + '"' for c in command)
    return f"""
[[inputs.execd]]
  alias = "emitter"
  command = [{quoted}]
  signal = "none"
  data_format = "influx"
"""


def fast_agent_yaml(tmp_path: Path) -> str:
    """An agent section that flushes quickly and keeps everything under tmp_path."""
    return f"""
agent:
  interval: 1s
  flush_interval: 1s
  buffer_strategy: disk
  buffer_directory: {tmp_path / "buffer"}
  state_directory: {tmp_path / "state"}
  require_clock_sync: false
  health_listen: ""
"""


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py as a module (scripts/ is no package), loaded once per session."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
