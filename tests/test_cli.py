"""bridge-cli: version, help, init, config reference, and `run` with the real Telegraf."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from _support import REPO
from click.testing import CliRunner
from telegraf_bridge.cli.commands.config_reference import reference_markdown
from telegraf_bridge.cli.main import cli

from telegraf_bridge import __version__
from telegraf_bridge.testing import parse_lines


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"bridge-cli {__version__}\n"


def _all_commands() -> list[list[str]]:
    """Every command and every subcommand of a group, so a new one cannot miss its help."""
    found = []
    for name, command in sorted(cli.commands.items()):
        found.append([name])
        if isinstance(command, click.Group):
            found += [[name, sub] for sub in sorted(command.commands)]
    return found


@pytest.mark.parametrize("command", _all_commands(), ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output and len(result.output.splitlines()) > 4


def test_init_writes_a_starter_that_validates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "bridge.yaml"
    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(target)]).exit_code == 0
    assert "sources:" in target.read_text()
    again = runner.invoke(cli, ["init", str(target)])
    assert again.exit_code == 1 and "already exists; use --force" in again.output
    render = runner.invoke(
        cli, ["render-config", "--config", str(target), "--output", str(tmp_path / "t.conf")]
    )
    assert render.exit_code == 0, render.output


def test_configuration_reference_is_up_to_date() -> None:
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == reference_markdown(), "run `make docs` and commit docs/configuration.md"


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["render-config", "--config", str(tmp_path / "nope.yaml"), "--output", "x"]
    )
    assert result.exit_code == 1
    assert "does not exist" in result.output


@pytest.mark.telegraf
def test_run_shows_progress_and_stops_cleanly_after_duration(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "telegraf_bridge.cli.main", "run", "--duration", "7"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "points written:" in proc.stdout
    assert "stopped (duration of 7s reached)" in proc.stdout
    written = parse_lines((tmp_path / "var" / "metrics.lp").read_text())
    assert len(written) >= 4
    measurements = {p.measurement for p in written}
    assert {"demo", "smartsolar", "PowerPulse"} <= measurements
    # The meter's window rows appear when a minute boundary passes during the run.
    assert measurements <= {"demo", "smartsolar", "PowerPulse", "PowerMeter", "gpio_pulse_status"}
    reported = int(proc.stdout.rsplit("stopped", 1)[1].split("; ")[1].split(" ")[0])
    assert reported == len(written)
    state = tmp_path / "var" / "state" / "demo-demo.state.json"
    assert state.exists(), "the plugin saved its state on the graceful stop"


def test_docs_name_the_plugin_config_directory_render_uses(tmp_path: Path) -> None:
    """Issue 15, finding 13: README, the reference and the code agree on `<stem>.plugins/`."""
    from telegraf_bridge.cli.render import plugin_config_dir
    from telegraf_bridge.cli.settings import load_settings

    settings = load_settings(
        None, env={}, text="sinks: [{name: f, type: file, path: x}]\n", base_dir=tmp_path
    )
    assert plugin_config_dir(settings, tmp_path / "telegraf.conf").name == "telegraf.plugins"
    for doc in (REPO / "README.md", REPO / "docs" / "configuration.md"):
        text = doc.read_text()
        assert "`telegraf.plugins/`" in text, doc
        assert "<output>.d/" not in text and "<output>.plugins/" not in text, doc


def test_run_help_names_bridge_config() -> None:
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert "BRIDGE_CONFIG" in result.output
    assert "--json" in result.output
    assert "--no-preflight" in result.output
