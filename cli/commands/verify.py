"""``bridge-cli verify``: checks that everything the configured setup needs is in place.

Seed 003's ``make verify`` as one table, one row per check, in the order a problem must be
fixed: the config, the Python packages (and the taptap program) the configured sources need,
the Telegraf binary, the sink's reachability and credentials, then, for a config with a
gpio_pulse source, what the sink's backend checks (tiers, downsampling, a real test write that
is read back): the tiers belong to meter pulses, so other configs get no tier rows. A row
whose precondition failed is skipped rather than failing again. Every failure comes with a
next step; the exit status is 1 if any check failed. Tokens and passwords are never shown
(at most a token's first 4 characters).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import click
from telegraf_bridge.cli.commands._sink_options import sink_options
from telegraf_bridge.cli.config_model import InfluxSink, SourceConfig, V1Sink
from telegraf_bridge.cli.influx.admin._context import MARK_FAIL, MARK_OK, MARK_SKIP, load
from telegraf_bridge.cli.influx.admin._http import AuthFailed, Unreachable, token_hint
from telegraf_bridge.cli.influx.admin.base import AdminError, Check
from telegraf_bridge.cli.influx.admin.registry import admin_token, backend_for
from telegraf_bridge.cli.influx.sinks import select_sink
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.cli.settings import Settings
from telegraf_bridge.cli.telegraf_bin import TelegrafNotFound, telegraf_path, telegraf_version
from telegraf_bridge.cli.tiers import layout_from_settings, written_names
from telegraf_bridge.plugins.manifests import manifest_of

from telegraf_bridge import paths


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def package_checks(settings: Settings) -> Iterator[Check]:
    """One row per library (or external program) an enabled source needs (its manifest's)."""
    found_any = False
    for source in settings.active_sources():
        manifest = manifest_of(source.plugin)
        if manifest is None:
            continue
        options = source.options
        for modules, hint in manifest.requirements(options):
            found_any = True
            name = f"python package {' or '.join(modules)}"
            present = [m for m in modules if _importable(m)]
            if present:
                yield Check(name, True, f"{present[0]} importable (source {source.name})")
            else:
                yield Check(name, False, f"needed by source {source.name}: not installed", hint)
        if manifest.program is not None:
            found_any = True
            yield program_check(source, manifest.name, manifest.program(options))
    if not found_any:
        yield Check("python packages", True, "the configured sources need no extra package")


def program_check(source: SourceConfig, plugin: str, named: tuple[str, str]) -> Check:
    """The program the source will start: a path must be executable, a name on PATH."""
    program, option = named
    check = f"program {plugin}"
    where = shutil.which(program)
    if where:
        return Check(check, True, f"{where} (source {source.name}, {option})")
    install = f"cargo install {plugin} --locked"
    if os.sep in program:
        detail = f"{program} (from {option}) is not an executable file"
        fix = f"install {plugin} there ({install}) or correct {option}"
    else:
        detail = f"{program} (from {option}) not found on PATH"
        fix = f"{install}, or set {option} to the program's full path"
    return Check(check, False, f"{detail} (source {source.name})", fix)


def telegraf_check() -> Check:
    """The binary the bundle runs, at the pinned version."""
    wanted = paths.telegraf_version()
    try:
        binary = telegraf_path()
    except TelegrafNotFound as exc:
        return Check("telegraf", False, str(exc), "run make setup, or set TELEGRAF_BIN")
    version = telegraf_version(binary)
    if version.lstrip("v") != wanted.lstrip("v"):
        return Check(
            "telegraf",
            False,
            f"{binary} is {version}, the bundle pins {wanted}",
            f"run make setup (builds Telegraf {wanted}) or point TELEGRAF_BIN at it",
        )
    return Check("telegraf", True, f"{binary} ({version})")


def _credential(sink: InfluxSink, env: Mapping[str, str]) -> str:
    """How the sink authenticates, for the report: a user name or a token's short prefix."""
    if isinstance(sink, V1Sink):
        return f"user {sink.username}" if sink.username else "no user set"
    try:
        token = admin_token(sink, env)
    except AdminError:
        return "token unavailable"
    where = sink.token_env or sink.token_file or "nowhere"
    return f"token {token_hint(token)} from {where}" if token else "no token"


def sink_checks(
    settings: Settings, sink_name: str | None, env: Mapping[str, str]
) -> Iterator[Check]:
    """Connection, credentials, then the backend's own rows."""
    try:
        sink = select_sink(settings, sink_name)
    except SinkError as exc:
        yield Check("sink", False, str(exc), "add an InfluxDB sink to bridge.yaml or fix --sink")
        return
    layout = layout_from_settings(settings)
    try:
        backend = backend_for(sink, env, write_names=written_names(settings, layout, sink))
    except AdminError as exc:
        yield Check("credentials", False, str(exc), "; ".join(exc.next_steps))
        return
    where = backend.target()
    credential = _credential(sink, env)
    try:
        backend.connect()
    except Unreachable as exc:
        yield Check("connection", False, str(exc), "; ".join(exc.next_steps) or "start the server")
        yield Check("credentials", None, "skipped: the server did not answer")
        return
    except AuthFailed as exc:
        yield Check("connection", True, where)
        yield Check("credentials", False, f"{credential}: {exc}", "; ".join(exc.next_steps))
        return
    except AdminError as exc:
        yield Check(
            "connection + credentials",
            False,
            f"{credential}: {exc}",
            "; ".join(exc.next_steps) or "check the sink's url and credentials",
        )
        return
    yield Check("connection", True, where)
    yield Check("credentials", True, f"{credential}: accepted by the server")
    if not layout.gpio_sources:
        # The tiers, their downsampling and the test write into the raw tier exist for meter
        # pulses only: a config without a gpio_pulse source has nothing to check there.
        yield Check(
            "tiers",
            None,
            "skipped: no enabled gpio_pulse source (the downsampling tiers are for meter pulses)",
        )
        return
    try:
        yield from backend.checks(layout)
    except AdminError as exc:
        yield Check("server checks", False, str(exc), "; ".join(exc.next_steps))


def _print(rows: list[Check]) -> None:
    width = max(len(r.name) for r in rows)
    for row in rows:
        mark = MARK_OK if row.ok else MARK_SKIP if row.ok is None else MARK_FAIL
        click.echo(f"  {mark}  {row.name:<{width}}  {row.detail}")
    failed = [r for r in rows if r.ok is False]
    if failed:
        click.echo("")
        click.echo("Next steps:")
        for number, row in enumerate(failed, start=1):
            click.echo(f"  {number}. {row.name}: {row.next_step or 'see the detail above'}")


@click.command("verify")
@sink_options
def command(config_path: Path | None, sink_name: str | None) -> None:
    """Check that everything is set up correctly (seed 003's make verify).

    One row per check: config valid, Python packages needed by the configured sources (e.g.
    gpiod or RPi.GPIO for gpio_pulse, per its backend option), the taptap program of a taptap
    source (the first word of its command, i.e. TAPTAP_CMD, or its taptap option), the
    Telegraf binary and its pinned version, the sink's connection and credentials. With an
    enabled gpio_pulse source also each storage tier, the downsampling, and a real test write
    that is read back. Failed rows end with a next step. Exit status 1 if any check fails.
    """
    env = os.environ
    rows: list[Check] = []
    click.echo(f"verify: {config_path or 'config from the environment'}")
    try:
        settings, layout = load(config_path, env)
    except AdminError as exc:
        rows.append(Check("config", False, str(exc), "; ".join(exc.next_steps)))
        rows.append(telegraf_check())
        rows.append(Check("sink", None, "skipped: the config is not valid"))
    else:
        sources = len(settings.active_sources())
        sinks = len(settings.active_sinks())
        tiers = f", {len(layout.tiers)} tiers" if layout.gpio_sources else ""
        rows.append(Check("config", True, f"valid: {sources} source(s), {sinks} sink(s){tiers}"))
        rows.extend(package_checks(settings))
        rows.append(telegraf_check())
        rows.extend(sink_checks(settings, sink_name, env))
    _print(rows)
    if any(r.ok is False for r in rows):
        click.get_current_context().exit(1)
