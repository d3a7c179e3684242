"""The import diet of the plugins' start-up: heavy modules that must not come back.

Every plugin is its own Python process under Telegraf, so a module the shared shim imports is
paid six times on a device running all six (benchmarks/edge_footprint.py measures the
bundle). Each entry of ``DENIED`` names a module that once came with every plugin's start-up
without being needed there, what pulled it in, and where it is imported now. A plugin that
really needs one on its start-up path (taptap runs its decoder with subprocess; iotflow's
HTTP listener is http.server) is listed in ``NEEDED_BY``; anything else failing here is a
heavy import to make lazy again, not an entry to add.

Figures (anonymous memory per process, CPython 3.11 amd64, measured with
/proc/self/smaps_rollup) are what each cost when it was removed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from telegraf_bridge.plugins.common._args import _argparse, _plain, parse_args
from telegraf_bridge.plugins.manifests import MANIFESTS

from telegraf_bridge._version import __version__

DENIED = {
    # The plain `--config FILE` is read by plugins/common/_args.py; argparse (0.75 MiB with
    # what its help formatter imports: shutil, bz2, lzma, locale) only for help and mistakes.
    "argparse": "the command line (plugins/common/_args.py reads the plain case)",
    "shutil": "argparse's help formatter",
    "gettext": "argparse",
    # _clock used ctypes.util.find_library("c"), which imports subprocess, shutil and tempfile
    # and runs `ldconfig -p` at every probe; adjtimex now comes from ctypes.CDLL(None).
    "ctypes.util": "the clock probe (plugins/common/_clock.py)",
    "tempfile": "ctypes.util",
    "subprocess": "ctypes.util",
    # telegraf_bridge.paths imports it inside the two functions that read package data.
    "importlib.resources": "telegraf_bridge.paths (templates_dir, telegraf_dir)",
    # Only a config with an unknown key needs a suggestion (Section.check_unknown).
    "difflib": "plugins/common/_config.py",
    # Device and server libraries come with the transport or listener that uses them.
    "asyncio": "pymodbus, imported when hoymiles' modbus transport is built",
    "ssl": "http.client (iotflow's listener)",
    "email": "http.server (iotflow's listener)",
    # The CLI's dependencies never come with a plugin (tests/_support.py checks the manifests).
    "click": "bridge-cli",
    "jinja2": "bridge-cli",
}
NEEDED_BY = {
    "taptap": {"subprocess", "shutil"},  # runs the taptap decoder; shutil.which finds it
    "iotflow": {"ssl", "email", "shutil"},  # http.server and http.client import them
}
PROBE = "import sys, {module}; print(' '.join(sorted(sys.modules)))"


def _modules_after(code: str, *args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, *args, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return {m for m in result.stdout.split() if m}


def _denied(plugin: str) -> dict[str, str]:
    return {m: why for m, why in DENIED.items() if m not in NEEDED_BY.get(plugin, set())}


@pytest.mark.parametrize("plugin", sorted(MANIFESTS))
def test_plugin_start_up_imports_no_denied_module(plugin: str) -> None:
    modules = _modules_after(PROBE.format(module=f"telegraf_bridge.plugins.{plugin}.plugin"))
    back = {m: why for m, why in _denied(plugin).items() if m in modules}
    assert not back, f"{plugin} imports again: {back}"


def test_the_probe_sees_a_denied_module() -> None:
    """The control: the same probe reports a module that is imported."""
    assert {"argparse", "shutil"} <= _modules_after(
        "import argparse, sys; argparse.ArgumentParser(); print(' '.join(sorted(sys.modules)))"
    )


def test_a_real_start_up_loads_no_denied_module(tmp_path: Path) -> None:
    """Not only the import: parsing `--config FILE`, loading it and a gather, end to end."""
    config = tmp_path / "demo.conf"
    config.write_text(f'state_dir = "{tmp_path}"\nrequire_clock_sync = false\n')
    command = ["-m", "telegraf_bridge.plugins.demo", "--config", str(config), "--once"]
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *command],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("demo,")
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "telegraf_bridge.plugins.demo.plugin" in imported
    back = {m: why for m, why in _denied("demo").items() if m in imported}
    assert not back, f"demo's start-up imports again: {back}"


PLAIN = [
    [],
    ["--config", "demo.conf"],
    ["--config", "a.conf", "--once", "--debug", "--ignore-stdin", "--config", "b.conf"],
    ["--once", "--once"],
    ["--config", ""],
]
NOT_PLAIN = [["--config=demo.conf", "--once"], ["--conf", "demo.conf"], ["--debu"]]


@pytest.mark.parametrize("argv", PLAIN + NOT_PLAIN, ids=" ".join)
def test_plain_command_line_reads_as_argparse_reads_it(argv: list[str]) -> None:
    assert parse_args("demo", argv) == _argparse("demo", argv)
    assert (_plain(argv) is not None) == (argv in PLAIN)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--version"], f"bridge-demo {__version__}"),
        (["--help"], "usage: bridge-demo"),
        (["--config"], "argument --config: expected one argument"),
        (["--config", "-x"], "argument --config: expected one argument"),
        (["stray"], "unrecognized arguments: stray"),
    ],
)
def test_help_version_and_mistakes_still_go_to_argparse(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args("demo", argv)
    out = capsys.readouterr()
    assert expected in out.out + out.err
