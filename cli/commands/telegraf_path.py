"""``bridge-cli telegraf-path``: which Telegraf binary the bundle runs."""

from __future__ import annotations

import click
from telegraf_bridge.cli.telegraf_bin import TelegrafNotFound, telegraf_path, telegraf_version


@click.command("telegraf-path")
@click.option("--version", "show_version", is_flag=True, help="Also print its version.")
def command(show_version: bool) -> None:
    """Print the Telegraf binary in use (TELEGRAF_BIN overrides the cached custom build)."""
    try:
        binary = telegraf_path()
    except TelegrafNotFound as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{binary} {telegraf_version(binary)}" if show_version else str(binary))
