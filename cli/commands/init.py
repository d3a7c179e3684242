"""``bridge-cli init``: write a commented starter bridge.yaml."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click
from telegraf_bridge.cli.fsutil import write_atomic


def starter_text() -> str:
    """The starter config shipped with the package (also ``bridge-cli run``'s default)."""
    return resources.files("telegraf_bridge.cli").joinpath("starter.yaml").read_text("utf-8")


@click.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default="bridge.yaml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def command(path: Path, force: bool) -> None:
    """Write a commented starter bridge.yaml to PATH (default: ./bridge.yaml)."""
    if path.exists() and not force:
        raise click.ClickException(f"{path} already exists; use --force to overwrite it")
    write_atomic(path, starter_text(), mode=0o644)
    click.echo(
        f"wrote {path}; next: bridge-cli render-config --config {path} --output telegraf.conf"
    )
