"""``bridge-cli install-systemd``: systemd units for this install on a bare Linux host.

It replaces seed 004's hand-edited ``tigo-ingest.service`` and health-check units: the units
are rendered from ``templates/systemd/`` with the absolute paths of *this* install (the venv's
``bridge-cli``, the Telegraf binary, bridge.yaml), so there is nothing to adapt by hand, and
everything the units depend on is checked before a file is written: the config renders, the
user exists and can run both programs, and the directories the service writes are writable.
The work is done by :mod:`telegraf_bridge.cli.systemd`; this module is the command line.
"""

from __future__ import annotations

from pathlib import Path

import click
from telegraf_bridge.cli.systemd.host import absolute
from telegraf_bridge.cli.systemd.install import install, print_dry_run
from telegraf_bridge.cli.systemd.plan import Options, make_plan

from telegraf_bridge import paths

DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_DATA_DIR = paths.DATA_DIR
DEFAULT_ENV_FILE = paths.ENV_FILE


@click.command("install-systemd")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BRIDGE_CONFIG",
    required=True,
    help="bridge.yaml the service renders at every start (env: BRIDGE_CONFIG).",
)
@click.option(
    "--user",
    metavar="NAME",
    help="User the services run as; default: $SUDO_USER, else the current user.",
)
@click.option("--allow-root", is_flag=True, help="Allow --user root (not recommended).")
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="NAME",
    help="Extra supplementary group (repeatable); gpio and dialout are added when they exist.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Working directory: the rendered telegraf.conf and relative buffer/state paths.",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_ENV_FILE,
    show_default=True,
    help="KEY=VALUE file with the tokens; created (0600, names only, no values) when missing.",
)
@click.option(
    "--unit-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_UNIT_DIR,
    show_default=True,
    help="Where the unit files go.",
)
@click.option(
    "--telegraf",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Telegraf binary; default: $TELEGRAF_BIN, the cached custom build, or telegraf on PATH.",
)
@click.option(
    "--healthcheck-args",
    default="",
    metavar="ARGS",
    help="Options for `bridge-cli healthcheck` in the timer's unit, as one string, e.g. "
    "'--measurement dtu --max-lag-min 30 --mqtt'; checked against healthcheck's own options.",
)
@click.option("--no-healthcheck", is_flag=True, help="Do not write the health check units.")
@click.option("--dry-run", is_flag=True, help="Print the units; write nothing.")
@click.option(
    "--enable",
    is_flag=True,
    help="Also run systemctl daemon-reload and enable --now (else the commands are printed).",
)
@click.option("--force", is_flag=True, help="Overwrite unit files that differ (a diff is shown).")
def command(  # noqa: PLR0913, PLR0917 - click passes every option positionally
    config_path: Path,
    user: str | None,
    allow_root: bool,
    groups: tuple[str, ...],
    data_dir: Path,
    env_file: Path,
    unit_dir: Path,
    telegraf: Path | None,
    healthcheck_args: str,
    no_healthcheck: bool,
    dry_run: bool,
    enable: bool,
    force: bool,
) -> None:
    """Install systemd units that run Telegraf with this install's config (bare Linux hosts).

    Writes telegraf-bridge.service (renders and checks the config before every start, then
    runs Telegraf as --user with GPIO/serial group access and a hardened sandbox) and, when
    the config has an InfluxDB sink, telegraf-bridge-healthcheck.service with a timer every
    10 minutes. Paths are this install's: the venv's bridge-cli and the Telegraf binary.
    Checks everything first; refuses to replace a unit that differs unless --force.
    """
    if dry_run and enable:
        raise click.UsageError("--dry-run and --enable exclude each other")
    unit_dir = absolute(unit_dir)
    plan = make_plan(
        Options(
            config=config_path,
            user=user,
            allow_root=allow_root,
            groups=groups,
            data_dir=data_dir,
            env_file=env_file,
            unit_dir=unit_dir,
            telegraf=telegraf,
            healthcheck_args=healthcheck_args,
            no_healthcheck=no_healthcheck,
        )
    )
    for key, value in plan.summary:
        click.echo(f"{key:<11} {value}")
    if dry_run:
        print_dry_run(plan, unit_dir)
    else:
        install(plan, unit_dir, enable=enable, force=force)
