"""``bridge-cli migrate-ndjson``: JSON-array files -> NDJSON, safely and idempotently."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from telegraf_bridge.cli.ndjson_migration import NotMigratable, migrate


@click.command("migrate-ndjson")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--delete-backup", is_flag=True, help="Remove each <file>.bak once its NDJSON is complete."
)
def command(paths: tuple[Path, ...], delete_backup: bool) -> None:
    """Convert JSON-array files (PATHS) into NDJSON for ndjson_tail.

    Each file is streamed into <name>.ndjson beside it (bounded memory), fsynced, and only then
    is the original renamed to <file>.bak. Files that are already NDJSON are skipped, so
    running it twice is harmless. A file that is not an array of objects is left untouched
    and reported; the exit status is 1 if any file was refused.
    """
    refused = 0
    for path in paths:
        if not path.is_file():
            click.echo(f"skip {path}: no such file", err=True)
            refused += 1
            continue
        size = path.stat().st_size
        try:
            with click.progressbar(length=size, label=path.name, file=sys.stderr) as bar:
                outcome = migrate(path, bar.update)
        except NotMigratable as exc:
            click.echo(f"refused {path}: {exc}", err=True)
            refused += 1
            continue
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"failed {path}: {exc}", err=True)
            refused += 1
            continue
        if outcome.status == "already-ndjson":
            click.echo(f"ok {path}: already NDJSON, nothing to do")
            continue
        click.echo(
            f"migrated {path} -> {outcome.output} "
            f"({outcome.records} records; backup {outcome.backup})"
        )
        if delete_backup and outcome.backup is not None:
            outcome.backup.unlink()
            click.echo(f"deleted backup {outcome.backup}")
    if refused:
        raise click.ClickException(f"{refused} file(s) not migrated")
