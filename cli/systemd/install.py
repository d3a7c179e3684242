"""Writing a checked :class:`~.plan.Plan`: unit files, directories, the env file, systemctl.

An installed unit that differs is never replaced silently: the diff is shown and ``--force``
is needed; the env file (the user's secrets) is never replaced at all.
"""

from __future__ import annotations

import difflib
import os
import shlex
import subprocess
from pathlib import Path

import click
from telegraf_bridge.cli.systemd.envfile import ENV_FILE_MODE, create_env_file
from telegraf_bridge.cli.systemd.errors import InstallError
from telegraf_bridge.cli.systemd.plan import Plan
from telegraf_bridge.cli.systemd.units import (
    HEALTHCHECK_UNIT,
    SERVICE_UNIT,
    TIMER_UNIT,
    started_units,
)
from telegraf_bridge.plugins.common import write_atomic

UNIT_MODE = 0o644
DATA_DIR_MODE = 0o750
# Where `systemctl` finds units an administrator installs; --enable is refused elsewhere.
SYSTEM_UNIT_DIRS = (
    Path("/etc/systemd/system"),
    Path("/run/systemd/system"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
    Path("/lib/systemd/system"),
)


def print_dry_run(plan: Plan, unit_dir: Path) -> None:
    """Every file install would write, with its mode; nothing is written."""
    for name, text in plan.units.items():
        click.echo(f"\n# {unit_dir / name} (mode {UNIT_MODE:04o})\n{text}", nl=False)
    if plan.env_text is not None:
        click.echo(f"\n# {plan.env_file} (mode {ENV_FILE_MODE:04o})\n{plan.env_text}", nl=False)
    click.echo("")
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    click.echo("dry run: nothing written")


def _diffs(plan: Plan, unit_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """(new units, changed units, unchanged units) against what ``unit_dir`` holds."""
    new, changed, same = [], [], []
    for name, text in plan.units.items():
        path = unit_dir / name
        if not path.exists():
            new.append(name)
        elif path.read_text(encoding="utf-8") == text:
            same.append(name)
        else:
            changed.append(name)
    return new, changed, same


def _diff_text(path: Path, new_text: str) -> str:
    old = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(
            old, new_text.splitlines(keepends=True), f"{path} (installed)", f"{path} (new)"
        )
    )


def _check_unit_dir(unit_dir: Path, enable: bool) -> None:
    """Refuse a unit directory this process cannot write or systemd does not load."""
    if not unit_dir.is_dir():
        raise InstallError(f"unit directory {unit_dir} does not exist")
    if not os.access(unit_dir, os.W_OK):
        raise InstallError(f"cannot write to {unit_dir}: run with sudo, or see --dry-run")
    if enable and unit_dir not in SYSTEM_UNIT_DIRS:
        raise InstallError(f"--enable: systemd does not load units from {unit_dir}")


def _refuse_changed(plan: Plan, unit_dir: Path, changed: list[str]) -> None:
    """Show how installed units differ and refuse (a local edit is never overwritten silently)."""
    for name in changed:
        click.echo(_diff_text(unit_dir / name, plan.units[name]), nl=False)
    raise InstallError(
        f"{', '.join(changed)} differ(s) from the installed file(s) (diff above); nothing "
        "written. Re-run with --force to replace, or keep local changes in a drop-in "
        "(systemctl edit)"
    )


def _write(plan: Plan, unit_dir: Path, write: list[str], same: list[str]) -> None:
    """The directories, the units that are new or changed, and a missing env file."""
    for path in plan.make_dirs:
        path.mkdir(parents=True, exist_ok=True, mode=DATA_DIR_MODE)
        if os.geteuid() == 0:
            os.chown(path, plan.user.pw_uid, plan.user.pw_gid)
        click.echo(f"created {path}/ (mode {DATA_DIR_MODE:04o}, owner {plan.user.pw_name})")
    for name in write:
        write_atomic(unit_dir / name, plan.units[name], mode=UNIT_MODE)
        click.echo(f"wrote {unit_dir / name} (mode {UNIT_MODE:04o})")
    for name in same:
        click.echo(
            f"unchanged {unit_dir / name} (mode {(unit_dir / name).stat().st_mode & 0o777:04o})"
        )
    if plan.env_text is not None:
        create_env_file(plan.env_file, plan.env_text)
        click.echo(f"created {plan.env_file} (mode {ENV_FILE_MODE:04o}; variable names, no values)")
    else:
        click.echo(f"kept {plan.env_file} (exists)")


def systemctl(*args: str) -> None:
    """Run ``systemctl`` with its output shown; a failure stops the install with its status."""
    argv = ["systemctl", *args]
    click.echo("$ " + shlex.join(argv))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    except FileNotFoundError:
        raise InstallError("systemctl not found: --enable needs systemd") from None
    except subprocess.TimeoutExpired:
        raise InstallError(f"{shlex.join(argv)} did not finish within 120 s") from None
    output = (done.stdout + done.stderr).strip()
    if output:
        click.echo(output)
    if done.returncode != 0:
        raise InstallError(f"{shlex.join(argv)} failed (exit {done.returncode})")


def next_steps(plan: Plan, enabled: bool) -> list[str]:
    """The commands the user runs next (enable, status, logs, a health check now)."""
    units = started_units(plan.units)
    steps = []
    if not enabled:
        steps += ["sudo systemctl daemon-reload", f"sudo systemctl enable --now {' '.join(units)}"]
    steps += [
        f"systemctl status --no-pager -n 20 {SERVICE_UNIT}",
        f"journalctl -u {SERVICE_UNIT} -f",
    ]
    if TIMER_UNIT in plan.units:
        steps += [
            f"systemctl list-timers {TIMER_UNIT}",
            f"sudo systemctl start {HEALTHCHECK_UNIT}   # a health check now",
            f"journalctl -u {HEALTHCHECK_UNIT} -n 5 --no-pager",
        ]
    if plan.env_names:
        steps.insert(0, f"sudoedit {plan.env_file}   # set {', '.join(plan.env_names)}")
    return steps


def install(plan: Plan, unit_dir: Path, enable: bool, force: bool) -> None:
    """Write the plan into ``unit_dir`` and, with ``enable``, reload and start the units."""
    _check_unit_dir(unit_dir, enable)
    new, changed, same = _diffs(plan, unit_dir)
    if changed and not force:
        _refuse_changed(plan, unit_dir, changed)
    _write(plan, unit_dir, new + changed, same)
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    if enable:
        systemctl("daemon-reload")
        systemctl("enable", "--now", *started_units(plan.units))
        if SERVICE_UNIT in changed:
            systemctl("try-restart", SERVICE_UNIT)
    click.echo("\nNext:")
    for step in next_steps(plan, enable):
        click.echo(f"  {step}")
