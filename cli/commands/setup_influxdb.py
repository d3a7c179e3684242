"""``bridge-cli setup-influxdb``: create the meter-pulse tiers, their downsampling and credentials.

Seed 003's ``make setup-influxdb`` for every sink kind: it asks the backend for a plan (each
step present, to create, a mismatch or unsupported), applies the creations in order, and prints
one line per step and a summary of what it did and did not do. Nothing that exists is ever
changed, so a second run creates nothing; a mismatch (e.g. a retention that differs) is reported
with what to do and makes the command exit 1.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import click
from telegraf_bridge.cli.commands._sink_options import sink_options
from telegraf_bridge.cli.influx.admin._context import default_secrets_dir, fail, open_admin
from telegraf_bridge.cli.influx.admin.base import AdminError, Step

_MARKS = {
    "present": "✓ present",
    "planned": "+ will create",
    "created": "+ created",
    "mismatch": "✗ MISMATCH",
    "unsupported": "- unsupported",
    "failed": "✗ FAILED",
    "skipped": "· not done",
}
_WIDTH = 15
_TEXT_WIDTH = 100


def _line(outcome: str, step: Step, detail: str) -> None:
    click.echo(f"  {_MARKS[outcome]:<{_WIDTH}} {step.what}")
    indent = " " * (_WIDTH + 5)
    for line in textwrap.wrap(
        detail, _TEXT_WIDTH - len(indent), break_long_words=False, break_on_hyphens=False
    ):
        click.echo(indent + line)


@dataclass
class _Outcome:
    """What the steps came to, for the summary after the per-step lines."""

    created: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    failure: AdminError | None = None


def _apply(steps: list[Step], dry_run: bool) -> _Outcome:
    """Apply the steps to create, in order, one line each; after a failure the rest wait."""
    outcome = _Outcome()
    for step in steps:
        if step.status == "present":
            _line("present", step, step.detail)
        elif step.status == "mismatch":
            _line("mismatch", step, step.detail)
            outcome.problems.append(step.what)
        elif step.status == "unsupported":
            _line("unsupported", step, step.detail)
            outcome.unsupported.append(step.what)
        elif outcome.failure is not None:
            _line("skipped", step, "an earlier step failed")
        elif dry_run or step.apply is None:
            _line("planned", step, step.detail)
            outcome.planned.append(step.what)
        else:
            try:
                note = step.apply()
            except AdminError as exc:
                outcome.failure = exc
                _line("failed", step, str(exc))
                continue
            _line("created", step, note)
            outcome.created.append(step.what)
    return outcome


def _report(steps: list[Step], outcome: _Outcome, dry_run: bool) -> None:
    """The summary: counts, then what was not changed or not possible, then the failure."""
    present = sum(1 for s in steps if s.status == "present")
    click.echo("")
    if dry_run:
        click.echo(
            f"Dry run: {len(outcome.planned)} to create, {present} present; nothing was changed."
        )
    else:
        click.echo(f"Done: {len(outcome.created)} created, {present} already present.")
    if outcome.problems:
        click.echo(f"Not changed ({len(outcome.problems)} MISMATCH, see the lines above):")
        for what in outcome.problems:
            click.echo(f"  - {what}")
    if outcome.unsupported:
        click.echo(f"Not possible on this server ({len(outcome.unsupported)}):")
        for what in outcome.unsupported:
            click.echo(f"  - {what}")
    failure = outcome.failure
    if failure is not None:
        click.echo(f"{_MARKS['failed']}: {failure}")
        for number, hint in enumerate(failure.next_steps, start=1):
            click.echo(f"  {number}. {hint}")


@click.command("setup-influxdb")
@sink_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what would be created without changing anything on the server or on disk.",
)
@click.option(
    "--secrets-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for new writer/reader passwords and tokens (files mode 0600); "
    "default: secrets/ next to the config file, or ./secrets without one.",
)
@click.option(
    "--cq-resample-every",
    "resample_every",
    type=click.IntRange(min=1),
    default=None,
    hidden=True,
    help="Seconds between runs of InfluxDB 1.x continuous queries (tests only); default: "
    "each tier's window.",
)
def command(
    config_path: Path | None,
    sink_name: str | None,
    dry_run: bool,
    secrets_dir: Path | None,
    resample_every: int | None,
) -> None:
    """Create the meter-pulse storage tiers of a sink (seed 003's make setup-influxdb).

    The raw, 1m, 5m and 1h tiers of `downsampling` in bridge.yaml become buckets with Flux
    tasks (InfluxDB v2/Cloud), retention policies with continuous queries (InfluxDB 1.x) or
    databases whose aggregates the gpio_pulse plugin writes (InfluxDB 3). A writer credential
    (for Telegraf) and a reader credential (for Grafana) are created where the server supports
    them and written to --secrets-dir; the report names the files, never the secrets. On
    InfluxDB v2 the InfluxQL mappings (DBRP) that let the InfluxQL dashboards read every tier
    as a retention policy of the sink bucket's database are created too.

    Idempotent: what exists is reported as present and never changed. Exit status 1 when
    something differs from the layout (MISMATCH) or a step fails.
    """
    try:
        admin = open_admin(config_path, sink_name, resample_every_s=resample_every)
    except AdminError as exc:
        fail(exc)
    directory = secrets_dir if secrets_dir is not None else default_secrets_dir(config_path)
    suffix = " (dry run: nothing is changed)" if dry_run else ""
    try:
        admin.backend.connect()
    except AdminError as exc:
        click.echo(admin.header("setup-influxdb") + suffix)
        fail(exc)
    # After connect: the header then names the server's edition where it tells one.
    click.echo(admin.header("setup-influxdb") + suffix)
    try:
        steps = admin.backend.plan(admin.layout, directory)
    except AdminError as exc:
        fail(exc)

    outcome = _apply(steps, dry_run)
    _report(steps, outcome, dry_run)
    if outcome.problems or outcome.failure is not None:
        click.get_current_context().exit(1)
