"""``bridge-cli render-config``: bridge.yaml (+ environment) -> telegraf.conf."""

from __future__ import annotations

import os
from pathlib import Path

import click
from telegraf_bridge.cli import render
from telegraf_bridge.cli.config_model import TokenSink
from telegraf_bridge.cli.context import bridge_context
from telegraf_bridge.cli.settings import InvalidConfig


@click.command("render-config")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BRIDGE_CONFIG",
    required=True,
    help="bridge.yaml to render (env: BRIDGE_CONFIG).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BRIDGE_OUTPUT",
    default="telegraf.conf",
    show_default=True,
    help="telegraf.conf to write (mode 0600, atomically; env: BRIDGE_OUTPUT).",
)
@click.option(
    "--base-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory relative paths in the config resolve against "
    "[default: the config file's directory].",
)
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
def command(config_path: Path, output: Path, base_dir: Path | None, quiet: bool) -> None:
    """Render telegraf.conf and the plugin configs from a bridge.yaml.

    Environment variables override the file; tokens are written only as references
    (${VAR} or a token-file secret store), never as values. Relative paths (buffer, state,
    log, file sinks, token files, plugin paths such as ndjson_tail's files) become absolute
    under the config file's directory (or --base-dir), so the rendered config means the same
    files wherever it is run from. Nothing is written unless the whole config is valid.
    """
    try:
        settings = bridge_context().settings(config_path, base_dir=base_dir)
        rendered = render.render(settings, output, config_source=str(config_path))
    except InvalidConfig as exc:
        raise click.ClickException(str(exc)) from None
    written = render.write(rendered, output)
    if quiet:
        return
    for note in settings.notes:
        click.echo(f"note: {note}", err=True)
    for path in written:
        click.echo(f"wrote {path}")
    for sink in settings.active_sinks():
        if not isinstance(sink, TokenSink) or not sink.token_file:
            continue
        problem = render.token_file_problem(Path(sink.token_file))
        if problem:
            click.echo(f"warning: {problem}", err=True)
    for name in settings.referenced_env():
        if name not in os.environ:
            click.echo(f"warning: {name} is not set here; Telegraf needs it at start-up", err=True)
