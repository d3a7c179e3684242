"""``bridge-cli check-config``: let the real Telegraf judge a config, and say what it would lose.

Two calling conventions: ``check-config FILE`` (a rendered telegraf.conf) and ``check-config
--config bridge.yaml`` (rendered into a temporary directory first). Both run the preflight
(:mod:`telegraf_bridge.cli.preflight`), Telegraf's own check, and a short ``telegraf --test``
whose per-source points and skips come from the plugins' status files
(:mod:`telegraf_bridge.cli.source_status`): "test run: OK" is printed only when no source
skipped or held anything.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import tomllib
from pathlib import Path

import click
import yaml
from telegraf_bridge.cli import preflight, render, source_status
from telegraf_bridge.cli.context import bridge_context
from telegraf_bridge.cli.settings import InvalidConfig, Settings
from telegraf_bridge.cli.telegraf_bin import TelegrafNotFound, telegraf_path
from telegraf_bridge.plugins.common._main import STATE_OVERRIDE_ENV


def _errors(text: str) -> list[str]:
    """Telegraf's error lines; a normal stop has none (plugins close their pipes first)."""
    return [line for line in text.splitlines() if re.search(r"\bE! ", line)]


def env_refs(config_text: str) -> list[str]:
    """The ``${VAR}`` names a rendered config reads, outside comments."""
    body = "\n".join(line for line in config_text.splitlines() if not line.lstrip().startswith("#"))
    return sorted(set(re.findall(r"(?<!\$)\$\{(\w+)\}", body)))


def _token_file_problems(config_text: str) -> list[str]:
    """Problems with the token files that docker secret stores in the config point at."""
    try:
        doc = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError:
        return []  # Telegraf's own check reports syntax errors better
    stores = {
        s.get("id"): Path(s.get("path", "/run/secrets"))
        for s in doc.get("secretstores", {}).get("docker", [])
    }
    problems = []
    for store_id, key in re.findall(r"@\{(\w+):(\w+)\}", config_text):
        if store_id in stores:
            problem = render.token_file_problem(stores[store_id] / key)
            if problem:
                problems.append(problem)
    return problems


def config_check(binary: Path, config_file: Path) -> tuple[bool, str]:
    """``telegraf config check``: the verdict and Telegraf's output.

    Telegraf exits 0 on some problems it only logs (``E!``), so those count as a failure too.
    """
    check = subprocess.run(
        [str(binary), "config", "check", "--strict-env-handling", "--config", str(config_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = (check.stdout + check.stderr).strip()
    return check.returncode == 0 and not _errors(output), output


EXIT_WARNINGS = 3  # --strict: a warning (skip, hold, preflight warning) fails the check


def _bridge_yaml_hint(config_file: Path) -> str | None:
    """A message when CONFIG_FILE is a bridge.yaml rather than a rendered telegraf.conf."""
    text = config_file.read_text(encoding="utf-8", errors="replace")
    if config_file.suffix.lower() not in (".yaml", ".yml"):
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            pass
        else:
            return None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
        if not isinstance(doc, dict) or not {"agent", "sources", "sinks"} & set(doc):
            return None
    return (
        f"{config_file} is a bridge.yaml, not a rendered telegraf.conf: run "
        f"`bridge-cli check-config --config {config_file}` (renders it to a temporary "
        "directory and checks that)"
    )


def _telegraf_test(
    binary: Path, config_file: Path, settings: Settings, test_wait: int
) -> tuple[subprocess.CompletedProcess[str], dict[str, source_status.SourceStatus]]:
    """``telegraf --test`` with the plugins' state in a temporary directory, and their status."""
    with tempfile.TemporaryDirectory(prefix="bridge-check-") as state_dir:
        env = {**os.environ, STATE_OVERRIDE_ENV: state_dir}
        test = subprocess.run(
            [
                str(binary),
                "--config",
                str(config_file),
                "--test",
                "--test-wait",
                str(test_wait),
                "--strict-env-handling",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120 + test_wait,
            env=env,
        )
        statuses = source_status.source_statuses(Path(state_dir), settings.active_sources())
    return test, statuses


def _report_sources(statuses: dict[str, source_status.SourceStatus]) -> tuple[int, list[str]]:
    """Print points and skips per source; returns (records skipped, warning lines)."""
    skipped = 0
    warnings = []
    for name, status in statuses.items():
        extra = f", {status.skipped} skipped" if status.skipped else ""
        click.echo(f"  {name} ({status.plugin}): {status.points} point(s){extra}")
        for line in status.skip_lines():
            click.echo(f"    {line}")
        if status.held:
            click.echo(f"    holding data: {status.held}")
            warnings.append(f"{name} holds its data: {status.held}")
        skipped += status.skipped
    return skipped, warnings


def _summary(points: int, test_wait: int, statuses: dict[str, source_status.SourceStatus]) -> str:
    reasons: dict[str, int] = {}
    for status in statuses.values():
        for reason, count in status.skips.items():
            reasons[reason] = reasons.get(reason, 0) + count
    skipped = sum(reasons.values())
    listing = "; ".join(
        f"{reason}: {source_status.explain(reason).fix or source_status.explain(reason).meaning}"
        for reason in sorted(reasons, key=lambda r: -reasons[r])
    )
    return (
        f"test run: {points} point(s) from the inputs in {test_wait}s; {skipped} record(s) "
        f"skipped ({listing})"
    )


@click.command("check-config")
@click.argument(
    "config_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--config",
    "bridge_yaml",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A bridge.yaml: render it to a temporary directory and check that.",
)
@click.option(
    "--test",
    "show_points",
    is_flag=True,
    help="Print the test run's line protocol (the `> ` lines), as `telegraf --test` does.",
)
@click.option(
    "--test-wait",
    type=click.IntRange(0, 300),
    default=3,
    show_default=True,
    help="Seconds `telegraf --test` waits for the plugins' first points.",
)
@click.option("--skip-test", is_flag=True, help="Only parse the config; start no plugin.")
@click.option(
    "--no-preflight",
    is_flag=True,
    help="Skip the preflight (sinks' credentials, health port, clock), e.g. offline.",
)
@click.option("--strict", is_flag=True, help=f"Exit {EXIT_WARNINGS} when there is any warning.")
def command(  # noqa: PLR0917 - click passes every option positionally
    config_file: Path | None,
    bridge_yaml: Path | None,
    show_points: bool,
    test_wait: int,
    skip_test: bool,
    no_preflight: bool,
    strict: bool,
) -> None:
    """Check a config with the real Telegraf and say what would be lost.

    \b
    bridge-cli check-config telegraf.conf         a rendered telegraf.conf
    bridge-cli check-config --config bridge.yaml  render to a temporary directory, check that

    Preflight: each InfluxDB sink reachable and its credentials accepted (read-only request),
    the health port free, the clock synchronised. Then `telegraf config check
    --strict-env-handling`, then `telegraf --test`, which starts every input once with the
    plugins' state in a temporary directory and shows per source the points and every
    skipped record with its reason and the option that changes it.

    \b
    Exit status:
      0  OK, or only warnings (skipped records, held data, an unreachable sink, a busy
         health port): each is printed with its count and fix
      1  Telegraf rejects the config, the test run fails, or preflight fails (a sink
         refuses the credentials, a token variable is unset or a token file unreadable)
      3  with --strict, when there is any warning
    """  # noqa: D301 - click's \b keeps the next paragraph's line breaks
    if config_file is not None and bridge_yaml is not None:
        raise click.UsageError("give either CONFIG_FILE (a rendered telegraf.conf) or --config")
    try:
        binary = telegraf_path()
    except TelegrafNotFound as exc:
        raise click.ClickException(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="bridge-render-") as render_dir:
        if bridge_yaml is not None:
            try:
                settings = bridge_context().settings(bridge_yaml)
            except InvalidConfig as exc:
                raise click.ClickException(str(exc)) from None
            config_file = Path(render_dir) / "telegraf.conf"
            render.write(
                render.render(settings, config_file, config_source=str(bridge_yaml)), config_file
            )
            click.echo(f"rendered {bridge_yaml} into a temporary directory")
        elif config_file is not None:
            hint = _bridge_yaml_hint(config_file)
            if hint:
                raise click.ClickException(hint)
            settings = preflight.settings_from_rendered(config_file)
        else:
            raise click.UsageError(
                "give a rendered telegraf.conf (CONFIG_FILE) or --config bridge.yaml"
            )
        warnings = _check(
            binary, config_file, settings, show_points, test_wait, skip_test, no_preflight
        )
    if warnings and strict:
        click.echo(f"{len(warnings)} warning(s); --strict makes that a failure")
        raise SystemExit(EXIT_WARNINGS)


def _check(  # noqa: PLR0917 - the command's options, passed on as they came
    binary: Path,
    config_file: Path,
    settings: Settings,
    show_points: bool,
    test_wait: int,
    skip_test: bool,
    no_preflight: bool,
) -> list[str]:
    """Preflight, config check, test run; returns the warnings, raises on failure."""
    text = config_file.read_text(encoding="utf-8")
    warnings = []
    unset = [name for name in env_refs(text) if name not in os.environ]
    for name in unset:
        click.echo(f"warning: ${{{name}}} is referenced but not set in this environment")
        warnings.append(f"${{{name}}} unset")
    for problem in _token_file_problems(text):
        raise click.ClickException(problem)
    findings = [] if no_preflight else preflight.preflight(settings)
    preflight.print_findings(findings)
    warnings += [f.line() for f in findings if f.level == "warn"]

    ok, output = config_check(binary, config_file)
    if not ok:
        click.echo(output)
        raise click.ClickException(f"Telegraf rejects {config_file} (config check failed)")
    click.echo(f"config check: OK ({binary})")
    if preflight.has_failures(findings):
        failed = ", ".join(f.subject for f in findings if f.level == "fail")
        raise click.ClickException(f"preflight failed for {failed}: see the fix on each line")
    if skip_test:
        return warnings

    test, statuses = _telegraf_test(binary, config_file, settings, test_wait)
    points = [line for line in test.stdout.splitlines() if line.startswith("> ")]
    errors = _errors(test.stderr)
    if test.returncode != 0 or errors:
        click.echo(test.stderr.strip())
        raise click.ClickException(f"Telegraf --test failed for {config_file}")
    if show_points:
        for line in points:
            click.echo(line)
    skipped, held = _report_sources(statuses)
    warnings += held
    if skipped:
        click.echo(_summary(len(points), test_wait, statuses))
        warnings.append(f"{skipped} record(s) skipped")
    elif held:
        click.echo(
            f"test run: {len(points)} point(s) from the inputs in {test_wait}s; "
            f"{len(held)} source(s) hold data (see above)"
        )
    else:
        click.echo(f"test run: OK, {len(points)} point(s) from the inputs in {test_wait}s")
    return warnings
