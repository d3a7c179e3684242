"""Plugin manifests: every plugin declares itself in its folder, and cli/ names no plugin.

Also the two repository-wide rules that came with them: default locations live only in
``telegraf_bridge.paths``, and every ``noqa`` says why.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _support import MANIFEST_IMPORT_PROBE, REPO
from telegraf_bridge.cli import device_nodes, schema
from telegraf_bridge.plugins.manifests import MANIFESTS, device_globs

from telegraf_bridge import paths


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_every_plugin_folder_has_a_manifest_in_the_registry() -> None:
    folders = sorted(
        p.parent.name for p in (REPO / "plugins").glob("*/plugin.py") if p.parent.name != "common"
    )
    assert sorted(MANIFESTS) == folders
    for name, manifest in MANIFESTS.items():
        assert manifest.name == name
        assert manifest.module == f"telegraf_bridge.plugins.{name}"
        assert importlib.util.find_spec(f"{manifest.module}.__main__") is not None
        options = importlib.import_module(f"{manifest.module}.options")
        assert manifest.path_keys == options.PATH_KEYS
        assert manifest.at_cap, f"{name}: say what the source does at the buffer cap"


def test_schema_and_device_nodes_come_from_the_manifests() -> None:
    (plugin,) = [o for o in schema.SOURCE if o.key == "plugin"]
    assert plugin.choices == tuple(MANIFESTS)
    (interval,) = [o for o in schema.SOURCE if o.key == "interval"]
    assert "(`hoymiles`: 60s)" in interval.doc
    assert set(device_globs()) == {
        "gpiochip*",
        "gpiomem",
        "ttyUSB*",
        "ttyACM*",
        "ttyAMA*",
        "serial[0-9]*",
    }


def test_device_nodes_of_every_plugin_are_granted(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("gpiomem", "ttyACM0", "serial0", "sda"):
        (dev / name).write_text("")
        (dev / name).chmod(0o600)
    _gids, warnings = device_nodes.device_groups(dev)
    assert [w.split(" ")[0] for w in warnings] == [
        str(dev / "gpiomem"),
        str(dev / "serial0"),
        str(dev / "ttyACM0"),
    ]


def test_manifests_import_pure() -> None:
    """No device library, no cli, no file, socket or process at import (a Pi Zero imports them)."""
    result = subprocess.run(
        [sys.executable, "-c", MANIFEST_IMPORT_PROBE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == f"{len(MANIFESTS)} [] [] []"


def test_cli_has_no_plugin_name_branch() -> None:
    names = "|".join(re.escape(n) for n in MANIFESTS)
    branch = re.compile(rf"""[=!]=\s*["']({names})["']|["']({names})["']\s*[=!]=""")
    found = []
    for path in _python_files("cli"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if branch.search(line):
                found.append(f"{_rel(path)}:{number}: {line.strip()}")
    assert found == [], "put plugin knowledge in plugins/<name>/manifest.py"


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """Every string constant of a module except docstrings (documentation may name paths)."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_default_locations_live_only_in_paths() -> None:
    defaults = (str(paths.DATA_DIR), str(paths.CONFIG_DIR))
    assert defaults == ("/var/lib/telegraf-bridge", "/etc/telegraf-bridge")
    found = [
        f"{_rel(path)}:{line}: {value!r}"
        for path in _python_files("cli", "plugins", "telegraf", "scripts", "src")
        if path != REPO / "src/telegraf_bridge/paths.py"
        for line, value in _string_literals(path)
        if any(d in value for d in defaults)
    ]
    assert found == [], "name default locations in src/telegraf_bridge/paths.py"


def test_every_noqa_gives_its_reason() -> None:
    """``# noqa: CODE - reason``: a suppressed rule says why it does not apply."""
    noqa = re.compile(r"#\s*noqa\b(?!.* - \S)")
    found = []
    for path in _python_files(
        "cli", "plugins", "telegraf", "scripts", "src", "tests", "benchmarks"
    ):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if noqa.search(line):
                found.append(f"{_rel(path)}:{number}: {line.strip()}")
    assert found == []


@pytest.mark.parametrize(
    ("source", "wanted"),
    [
        ({"plugin": "gpio_pulse", "options": {}}, [("gpiod", "RPi.GPIO")]),
        ({"plugin": "gpio_pulse", "options": {"backend": "sim"}}, []),
        ({"plugin": "gpio_pulse", "options": {"backend": "gpiod"}}, [("gpiod",)]),
        ({"plugin": "gpio_pulse", "options": {"backend": "rpi"}}, [("RPi.GPIO",)]),
        ({"plugin": "hoymiles", "options": {}}, [("hoymiles_modbus",)]),
        ({"plugin": "hoymiles", "options": {"transport": "wifi"}}, [("hoymiles_wifi",)]),
        ({"plugin": "taptap", "options": {}}, []),
        ({"plugin": "demo", "options": {}}, []),
    ],
)
def test_verify_hooks_match_what_verify_checks_today(
    source: dict[str, object], wanted: list[tuple[str, ...]]
) -> None:
    """The manifests' verify hooks name the libraries verify checks for each source."""
    manifest = MANIFESTS[str(source["plugin"])]
    options = source["options"]
    assert isinstance(options, dict)
    hooked = manifest.requirements(options)
    assert [modules for modules, _hint in hooked] == wanted
    assert all(hint.startswith("pip install") or "apt" in hint for _m, hint in hooked)


@pytest.mark.parametrize(
    ("options", "wanted"),
    [
        ({}, ("taptap", "options.taptap")),
        ({"command": ["/opt/taptap", "observe"]}, ("/opt/taptap", "options.command (TAPTAP_CMD)")),
        ({"command": "taptap observe"}, ("taptap", "options.command (TAPTAP_CMD)")),
        ({"taptap": "tt"}, ("tt", "options.taptap")),
    ],
)
def test_taptap_program_hook_names_the_program_and_its_option(
    options: dict[str, object], wanted: tuple[str, str]
) -> None:
    program = MANIFESTS["taptap"].program
    assert program is not None
    assert program(options) == wanted
    assert [m.name for m in MANIFESTS.values() if m.program is not None] == ["taptap"]
