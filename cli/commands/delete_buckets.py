"""``bridge-cli delete-buckets``: delete the meter-pulse tiers and all their data.

Seed 003's ``make delete-buckets``: it lists every tier with the points it holds, asks for the
word DELETE to be typed (or --yes), skips tiers that do not exist and reports each deletion as
it goes. Without --yes and without anything to read on standard input (a cron job, CI) it
refuses instead of deleting.
"""

from __future__ import annotations

from pathlib import Path

import click
from telegraf_bridge.cli.commands._sink_options import sink_options
from telegraf_bridge.cli.influx.admin._context import Admin, fail, open_admin
from telegraf_bridge.cli.influx.admin.base import AdminError, TierUsage

CONFIRM_WORD = "DELETE"


def _list_tiers(usage: list[TierUsage]) -> None:
    """Every tier with what deleting it destroys (its points), before anything is asked."""
    width = max(len(u.name) for u in usage)
    click.echo("")
    click.echo("DANGER: this permanently deletes these tiers and every point in them:")
    for entry in usage:
        if not entry.exists:
            amount = "missing (skipped)"
        elif entry.points is None:
            amount = "exists (points not counted)"
        else:
            amount = f"{entry.points} points"
        extra = f"  [{entry.detail}]" if entry.detail and entry.exists else ""
        click.echo(f"  {entry.name:<{width}}  {amount}{extra}")


def _confirm_or_exit() -> None:
    """Go on only when DELETE is typed; no readable answer (cron, CI) is a refusal, exit 1."""
    try:
        answer = click.prompt(f"Type {CONFIRM_WORD} to confirm", default="", show_default=False)
    except click.Abort:
        click.echo("")
        click.echo(
            f"Refusing to delete: no confirmation could be read (no terminal or input). "
            f"Run it interactively and type {CONFIRM_WORD}, or pass --yes.",
            err=True,
        )
        click.get_current_context().exit(1)
    if answer.strip() != CONFIRM_WORD:
        click.echo(f"Aborted: {CONFIRM_WORD} was not typed; nothing was deleted.", err=True)
        click.get_current_context().exit(1)


def _delete_tiers(admin: Admin, usage: list[TierUsage]) -> None:
    """Delete each existing tier in order, reporting as it goes; the first failure stops."""
    total = len(usage)
    deleted = 0
    for index, entry in enumerate(usage, start=1):
        if not entry.exists:
            click.echo(f"skipping {entry.name} ({index}/{total}): does not exist")
            continue
        click.echo(f"deleting {entry.name} ({index}/{total})... ", nl=False)
        try:
            admin.backend.delete_tier(admin.layout, entry.name)
        except AdminError as exc:
            click.echo("FAILED")
            fail(exc)
        click.echo("done")
        deleted += 1
    click.echo(f"Deleted {deleted} of {total} tiers.")


@click.command("delete-buckets")
@sink_options
@click.option(
    "--yes",
    is_flag=True,
    help="Delete without asking (for scripts); without it, DELETE must be typed.",
)
def command(config_path: Path | None, sink_name: str | None, yes: bool) -> None:
    """Delete the meter-pulse tiers of a sink, with all their data (seed 003's make delete-buckets).

    Lists each tier (bucket, retention policy or database) with the points it holds, then asks
    you to type DELETE. InfluxDB 1.x: the retention policy and the continuous queries that
    write into it are dropped; v2/Cloud: the bucket (its task too); InfluxDB 3: the database.
    Missing tiers are skipped. This cannot be undone.
    """
    try:
        admin = open_admin(config_path, sink_name)
    except AdminError as exc:
        fail(exc)
    try:
        admin.backend.connect()
    except AdminError as exc:
        click.echo(admin.header("delete-buckets"))
        fail(exc)
    click.echo(admin.header("delete-buckets"))
    try:
        usage = admin.backend.usage(admin.layout)
    except AdminError as exc:
        fail(exc)

    _list_tiers(usage)
    if not any(u.exists for u in usage):
        click.echo("Nothing to delete: none of the tiers exists.")
        return
    click.echo("This cannot be undone.")
    if not yes:
        _confirm_or_exit()
    _delete_tiers(admin, usage)
