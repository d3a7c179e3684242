"""``bridge-cli delete-data``: delete one device's points in a time range, after confirmation.

Seed 002 (IoTFlow) had ``DELETE /api/v1/influxdb/device/{id}/data?start=&stop=``. Here the
command first counts what would go (and from which sink), asks for confirmation (``--yes``
skips it; without a terminal it refuses rather than guess), deletes, then counts again to
prove the points are gone. InfluxDB 1.x and v2/Cloud can do this; InfluxDB 3 cannot delete
points at all, and the command says so and exits 1 instead of pretending (see
:mod:`telegraf_bridge.cli.influx.devices` for each server's delete and its limits).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from telegraf_bridge.cli.commands._sink_options import sink_options
from telegraf_bridge.cli.commands.query import (
    device_options,
    open_device_queries,
    points_text,
    time_arg,
    timeout_option,
    window_of,
)
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.plugins.common import format_rfc3339_ns


def _interactive() -> bool:
    """Whether a person can answer the prompt: standard input is a terminal.

    Piped input is refused on purpose: ``yes | bridge-cli delete-data`` should not delete
    anything that a script did not ask for with ``--yes``.
    """
    return sys.stdin.isatty()


@click.command("delete-data")
@sink_options
@device_options
@click.option(
    "--start",
    required=True,
    help="Start (included): now, a duration before now (-1h, -7d) or RFC 3339.",
)
@click.option(
    "--stop",
    required=True,
    help="Stop (excluded): now, a duration before now or an RFC 3339 time.",
)
@click.option("--yes", is_flag=True, help="Delete without asking (for scripts).")
@timeout_option
def command(  # noqa: PLR0917 - click passes every option positionally
    config_path: Path | None,
    sink_name: str | None,
    device: str,
    measurement: str | None,
    start: str,
    stop: str,
    yes: bool,
    timeout: float | None,
) -> None:
    """Delete a device's points between --start and --stop (optionally one --measurement).

    Shows how many points will be deleted from which sink and asks for confirmation (--yes
    skips it; without a terminal and without --yes it refuses). Afterwards it counts again
    and reports how many were deleted. InfluxDB 1.x and v2/Cloud only: InfluxDB 3 cannot
    delete points by time range (exit 1 with the alternatives). This cannot be undone.

    Example: bridge-cli delete-data --device esp32_001 --start 2024-01-01 --stop 2024-01-02
    """
    now_ns = time.time_ns()
    window = window_of(time_arg(start, now_ns, "--start"), time_arg(stop, now_ns, "--stop"))
    sink, queries = open_device_queries(config_path, sink_name, timeout)
    where = f"sink {sink.name} ({queries.describe()})"
    if queries.delete_refusal:
        raise click.ClickException(f"{where}: {queries.delete_refusal}")
    scope = f"device {device!r}" + (
        f" in measurement {measurement!r}" if measurement is not None else ""
    )
    span = (
        f"from {format_rfc3339_ns(window.start_ns)} (included) "
        f"to {format_rfc3339_ns(window.stop_ns)} (excluded)"
    )
    try:
        before = queries.count(device, measurement, window)
    except SinkError as exc:
        if exc.reason != "not_found":
            raise click.ClickException(str(exc)) from None
        click.echo(f"Nothing to delete on {where}: {exc}")
        return
    click.echo(f"{where}: {points_text(before)} of {scope} {span}.")
    if before == 0:
        click.echo("Nothing to delete.")
        return
    if queries.delete_note:
        click.echo(f"Note: {queries.delete_note}")
    if not yes:
        if not _interactive():
            raise click.ClickException(
                "refusing to delete without confirmation: standard input is not a terminal. "
                "Run it in a terminal to be asked, or pass --yes."
            )
        if not click.confirm(
            f"Delete these {points_text(before)}? This cannot be undone", default=False
        ):
            click.echo("Aborted: nothing was deleted.", err=True)
            click.get_current_context().exit(1)
    try:
        queries.delete(device, measurement, window)
        after = queries.count(device, measurement, window)
    except SinkError as exc:
        raise click.ClickException(str(exc)) from None
    deleted = max(before - after, 0)
    if after:
        raise click.ClickException(
            f"deleted {points_text(deleted)}, but {points_text(after)} of {scope} remain {span} on "
            f"{where}: the server did not apply the delete to them, or they were written "
            "meanwhile. Run the command again to retry."
        )
    click.echo(f"Deleted {points_text(deleted)} of {scope} from sink {sink.name}; none remain.")
