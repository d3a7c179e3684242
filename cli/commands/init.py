"""``bridge-cli init``: write a commented starter bridge.yaml, or a seed's own."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click
from telegraf_bridge.cli.seed_templates import SEEDS, next_steps
from telegraf_bridge.plugins.common import write_atomic


def starter_text() -> str:
    """The starter config shipped with the package (also ``bridge-cli run``'s default)."""
    return resources.files("telegraf_bridge.cli").joinpath("starter.yaml").read_text("utf-8")


@click.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default="bridge.yaml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option(
    "--seed",
    type=click.Choice(sorted(SEEDS)),
    help="Write the sources and sinks of the system you move from, reading its own "
    "environment variables: 000 SmartSolar (ndjson_tail, InfluxDB Cloud), 001 Hoymiles "
    "(hoymiles, InfluxDB 3), 002 IoTFlow (iotflow, InfluxDB 2.x), 003 PowerLogger "
    "(gpio_pulse, InfluxDB 2.x tiers), 004 tigo-ingest (taptap, InfluxDB 1.x).",
)
def command(path: Path, force: bool, seed: str | None) -> None:
    """Write a commented bridge.yaml to PATH (default: ./bridge.yaml).

    Without --seed it is the demo starter (simulated sources, a local file sink). With
    --seed NNN it is that seed's sources and sinks, with the seed's variable names as ${VAR}
    references, followed by the next steps: the variables to export, then check-config and
    run. An existing PATH is kept unless --force is given.
    """
    if path.exists() and not force:
        raise click.ClickException(f"{path} already exists; use --force to overwrite it")
    if path.parent != Path() and not path.parent.is_dir():
        raise click.ClickException(f"directory {path.parent} does not exist; create it first")
    if seed is None:
        write_atomic(path, starter_text(), mode=0o644)
        click.echo(
            f"wrote {path}; next: bridge-cli render-config --config {path} --output telegraf.conf"
        )
        return
    chosen = SEEDS[seed]
    write_atomic(path, chosen.text(), mode=0o644)
    click.echo(f"wrote {path} for seed {chosen.number} ({chosen.system})")
    click.echo("next steps:")
    for number, step in enumerate(next_steps(chosen, str(path)), start=1):
        click.echo(f"  {number}. {step}")
    click.echo(f"the move-over path in full: {chosen.doc}")
