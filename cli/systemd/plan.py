"""The install plan: every input checked and the units rendered before anything is written.

``install-systemd`` writes nothing until :func:`make_plan` has checked that the config renders
with the env file alone (as the service will see it), that the service user exists and can run
both programs and write every directory the service writes, and that the health check's
options are valid for ``bridge-cli healthcheck``.
"""

from __future__ import annotations

import os
import pwd
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import click
from telegraf_bridge.cli import render
from telegraf_bridge.cli.commands import healthcheck
from telegraf_bridge.cli.commands.check_config import env_refs
from telegraf_bridge.cli.config_model import FileSink, TokenSink
from telegraf_bridge.cli.context import bridge_context
from telegraf_bridge.cli.influx.sinks import select_sink
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.cli.measurements import NoClearMeasurement, default_measurement
from telegraf_bridge.cli.settings import InvalidConfig, Settings
from telegraf_bridge.cli.systemd import host
from telegraf_bridge.cli.systemd.envfile import env_file_notes, load_env_file
from telegraf_bridge.cli.systemd.errors import InstallError
from telegraf_bridge.cli.systemd.units import (
    ENV_TEMPLATE,
    HEALTHCHECK_UNIT,
    SERVICE_UNIT,
    TIMER_UNIT,
    environment,
    render_units,
)
from telegraf_bridge.cli.telegraf_bin import telegraf_version

# systemd's StateDirectory= root: directories below it are created and owned by systemd.
STATE_ROOT = Path("/var/lib")


@dataclass
class Options:
    """The command line, as given."""

    config: Path
    user: str | None
    allow_root: bool
    groups: tuple[str, ...]
    data_dir: Path
    env_file: Path
    unit_dir: Path
    telegraf: Path | None
    healthcheck_args: str
    no_healthcheck: bool


@dataclass
class Plan:
    """The units to write and what they need, all checked; nothing written yet."""

    units: dict[str, str]
    env_file: Path
    env_text: str | None  # the new env file, or None when one exists
    env_names: list[str]
    make_dirs: list[Path]
    user: pwd.struct_passwd
    summary: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)


@dataclass
class _Host:
    """The options resolved against this host: absolute paths, the user, the programs."""

    config: Path
    data_dir: Path
    env_file: Path
    user: pwd.struct_passwd
    groups: list[str]
    bridge_cli: Path
    telegraf: Path

    @property
    def output(self) -> Path:
        """The telegraf.conf the service renders (in the data directory)."""
        return self.data_dir / "telegraf.conf"


def _is_state_dir(path: Path) -> bool:
    return path.is_relative_to(STATE_ROOT) and path != STATE_ROOT


def _writable_dirs(
    settings: Settings, rendered: render.Rendered, output: Path, data_dir: Path
) -> list[Path]:
    """Every directory Telegraf, its plugins and render-config write to, outermost only."""

    def absolute(value: str | Path) -> Path:
        path = Path(value)
        return Path(os.path.normpath(path if path.is_absolute() else data_dir / path))

    found = [data_dir, output.parent]
    agent = settings.agent
    found.extend(absolute(d) for d in (agent.buffer_directory, agent.state_directory) if d)
    if agent.logfile:
        found.append(absolute(agent.logfile).parent)
    for sink in settings.active_sinks():
        if isinstance(sink, FileSink):
            found.append(absolute(sink.path).parent)
    found.extend(absolute(p).parent for p in rendered.plugin_configs)
    outermost: list[Path] = []
    for path in sorted(set(found), key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(kept) for kept in outermost):
            outermost.append(path)
    return outermost


def _healthcheck_argv(
    bridge_cli: Path, config: Path, settings: Settings, extra: str
) -> tuple[list[str], list[str]]:
    """The health check's command line, with ``extra`` validated by healthcheck's own parser."""
    try:
        args = shlex.split(extra)
    except ValueError as exc:
        raise InstallError(f"--healthcheck-args: {exc}") from None
    if any(a == "--config" or a.startswith("--config=") for a in args):
        raise InstallError("--healthcheck-args: leave out --config; the units use --config's file")
    if {"-h", "--help"} & set(args):
        raise InstallError("--healthcheck-args: --help is not an option for a unit")
    try:
        ctx = healthcheck.command.make_context("healthcheck", list(args))
    except click.ClickException as exc:
        raise InstallError(f"--healthcheck-args: {exc.format_message()}") from None
    try:
        select_sink(settings, ctx.params["sink_name"])
    except SinkError as exc:
        raise InstallError(f"--healthcheck-args: {exc}") from None
    argv = [str(bridge_cli), "healthcheck", "--config", str(config), "--service", SERVICE_UNIT]
    if settings.agent.health_listen:
        argv.append("--telegraf-health")
    notes = []
    if ctx.params["measurement"] is None:
        # The timer would fail every run if the config does not say which measurement to watch.
        try:
            watched = default_measurement(settings)
        except NoClearMeasurement as exc:
            raise InstallError(
                f"--healthcheck-args: {exc}; e.g. --healthcheck-args '--measurement NAME'"
            ) from None
        notes.append(
            f"the health check watches measurement {watched} (from the config's sources); pass "
            "--healthcheck-args '--measurement NAME' for another"
        )
    return argv + args, notes


def _resolve(opts: Options, notes: list[str]) -> _Host:
    """The options checked against this host, in the order a user fixes them."""
    config = host.absolute(opts.config)
    if not config.is_file():
        raise InstallError(
            f"config {config} does not exist; write one with `bridge-cli init {config}` "
            "(or copy an example from examples/) and pass it with --config"
        )
    data_dir = host.absolute(opts.data_dir)
    env_file = host.absolute(opts.env_file)
    user = host.lookup_user(opts.user, opts.allow_root)
    groups, group_notes = host.supplementary_groups(opts.groups)
    notes += group_notes
    return _Host(
        config=config,
        data_dir=data_dir,
        env_file=env_file,
        user=user,
        groups=groups,
        bridge_cli=host.bridge_cli(),
        telegraf=host.telegraf_binary(opts.telegraf),
    )


def _render(where: _Host, env_values: dict[str, str]) -> tuple[Settings, render.Rendered]:
    """The config loaded and rendered as the service will: with the env file alone."""
    try:
        settings = bridge_context().settings(where.config, env_values, base_dir=where.data_dir)
        rendered = render.render(settings, where.output, config_source=str(where.config))
    except InvalidConfig as exc:
        raise InstallError(f"the config does not render:\n{exc}") from None
    return settings, rendered


def _check_access(where: _Host, settings: Settings, rw_paths: list[Path]) -> list[str]:
    """Refuse a service user who cannot do its job; notes for what could not be checked."""
    token_files = [
        Path(k.token_file)
        for k in settings.active_sinks()
        if isinstance(k, TokenSink) and k.token_file
    ]
    problems, skipped = host.access_problems(
        where.user, [where.bridge_cli, where.telegraf], [where.config, *token_files], rw_paths
    )
    if problems:
        raise InstallError(
            "the service user cannot do its job:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return skipped


def _health_check(
    opts: Options, where: _Host, settings: Settings, notes: list[str]
) -> list[str] | None:
    """The health check's command line, or None (with a note) when its units are left out."""
    if opts.no_healthcheck:
        notes.append("health check units not written (--no-healthcheck)")
        return None
    if not settings.active_influx_sinks():
        notes.append(
            "the config has no InfluxDB sink for `bridge-cli healthcheck` to query; the health "
            "check units are not written (they would fail every run)"
        )
        return None
    health_argv, health_notes = _healthcheck_argv(
        where.bridge_cli, where.config, settings, opts.healthcheck_args
    )
    notes += health_notes
    return health_argv


def _context(
    where: _Host, writable: list[Path], health_argv: list[str] | None, env_names: list[str]
) -> dict[str, object]:
    """What the unit templates interpolate."""
    bridge_cli, config, output = str(where.bridge_cli), str(where.config), str(where.output)
    return {
        "config": where.config,
        "user": where.user.pw_name,
        "groups": where.groups,
        "data_dir": where.data_dir,
        "env_file": where.env_file,
        "telegraf": where.telegraf,
        "service_unit": SERVICE_UNIT,
        "healthcheck_unit": HEALTHCHECK_UNIT,
        "timer_unit": TIMER_UNIT,
        "render_argv": [
            bridge_cli,
            "render-config",
            "--config",
            config,
            "--output",
            output,
            "--base-dir",
            str(where.data_dir),
            "--quiet",
        ],
        "check_argv": [bridge_cli, "check-config", "--skip-test", output],
        "telegraf_argv": [str(where.telegraf), "--config", output, "--strict-env-handling"],
        "healthcheck_argv": health_argv or [],
        "state_dirs": [str(p.relative_to(STATE_ROOT)) for p in writable if _is_state_dir(p)],
        "rw_paths": [p for p in writable if not _is_state_dir(p)],
        "names": env_names,
    }


def _summary(where: _Host) -> list[tuple[str, str]]:
    """The lines printed before anything else: what the units will use."""
    groups = where.groups
    return [
        ("config", str(where.config)),
        ("user", where.user.pw_name + (f" (groups: {' '.join(groups)})" if groups else "")),
        ("bridge-cli", str(where.bridge_cli)),
        ("telegraf", f"{where.telegraf} ({telegraf_version(where.telegraf)})"),
        ("data dir", str(where.data_dir)),
        ("env file", str(where.env_file)),
    ]


def make_plan(opts: Options) -> Plan:
    """Check every input and render the units; writes nothing."""
    notes: list[str] = []
    where = _resolve(opts, notes)
    env_values = load_env_file(where.env_file, notes)
    settings, rendered = _render(where, env_values)
    env_names = sorted(set(settings.referenced_env()) | set(env_refs(rendered.telegraf_conf)))
    writable = _writable_dirs(settings, rendered, where.output, where.data_dir)
    rw_paths = [p for p in writable if not _is_state_dir(p)]
    notes += _check_access(where, settings, rw_paths)
    health_argv = _health_check(opts, where, settings, notes)
    context = _context(where, writable, health_argv, env_names)
    env = environment()
    units = render_units(env, context, with_healthcheck=bool(health_argv))
    env_file = where.env_file
    env_text = None if env_file.exists() else env.get_template(ENV_TEMPLATE).render(context)
    notes += env_file_notes(env_file, env_names, env_values)
    return Plan(
        units=units,
        env_file=env_file,
        env_text=env_text,
        env_names=env_names,
        make_dirs=[p for p in rw_paths if not p.exists()],
        user=where.user,
        summary=_summary(where),
        notes=notes,
    )
