"""``bridge-cli migrate-ndjson``: JSON-array files -> NDJSON, safely and idempotently."""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
from telegraf_bridge.cli.config_model import SourceConfig
from telegraf_bridge.cli.context import bridge_context
from telegraf_bridge.cli.ndjson_migration import NotMigratable, migrate, output_path, skip_reason
from telegraf_bridge.cli.ndjson_preview import SkipPreview
from telegraf_bridge.cli.settings import InvalidConfig, Settings
from telegraf_bridge.plugins.common import ConfigError
from telegraf_bridge.plugins.common._clock import DEFAULT_TIME_FLOOR
from telegraf_bridge.plugins.manifests import sources_of
from telegraf_bridge.plugins.ndjson_tail.manifest import MANIFEST as NDJSON_TAIL


@dataclass
class _Rules:
    """Where the preview's rules come from: the ndjson_tail sources of --config, or defaults."""

    time_floor: str = DEFAULT_TIME_FLOOR
    sources: list[SourceConfig] = field(default_factory=list)

    def options_for(self, path: Path) -> tuple[dict[str, object], str]:
        """The options of the source whose ``files`` globs match ``path`` (else the first)."""
        names = {str(path), str(path.absolute())}
        for source in self.sources:
            globs = source.options.get("files") or []
            if isinstance(globs, list) and any(
                fnmatch.fnmatch(n, str(g)) for g in globs for n in names
            ):
                return dict(source.options), f"source {source.name}"
        if self.sources:
            first = self.sources[0]
            return dict(first.options), f"source {first.name} (no files glob matched)"
        return {}, "ndjson_tail's defaults"


def _rules(config_path: Path | None) -> _Rules:
    if config_path is None:
        return _Rules()
    try:
        settings: Settings = bridge_context().settings(config_path)
    except InvalidConfig as exc:
        raise click.ClickException(str(exc)) from None
    sources = sources_of(settings.active_sources(), NDJSON_TAIL)
    return _Rules(settings.agent.time_floor, sources)


def _preview(rules: _Rules, path: Path) -> tuple[SkipPreview, str]:
    options, where = rules.options_for(path)
    options.pop("files", None)
    try:
        return SkipPreview(options, rules.time_floor), where
    except ConfigError as exc:
        raise click.ClickException(f"{where}: {exc}") from None


@click.command("migrate-ndjson")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--delete-backup", is_flag=True, help="Remove each <file>.bak once its NDJSON is complete."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="bridge.yaml whose agent.time_floor and ndjson_tail source options decide which "
    "records the preview counts as skipped; default: the plugin's defaults.",
)
def command(paths: tuple[Path, ...], delete_backup: bool, config_path: Path | None) -> None:
    """Convert JSON-array files (PATHS) into NDJSON for ndjson_tail.

    Each file is streamed into <name>.ndjson beside it (bounded memory), fsynced, and only then
    is the original renamed to <file>.bak. Running it again, also over a whole directory
    (data/*), is harmless: files that are already NDJSON, its own backups (*.bak) and
    temporary files (*.migrating) and directories are skipped, each with the reason. A file
    that is not an array of objects is left untouched and reported; the exit status is 1 if
    any file was refused.

    Every converted record is also checked with ndjson_tail's rules (time_floor, timestamp,
    field containers, field types, with --config's values): what the plugin would skip is
    printed with its count and the option that keeps it.
    """
    rules = _rules(config_path)
    migrated = skipped = refused = 0
    for path in paths:
        if path.is_dir():
            click.echo(f"skip {path}: a directory (name the files in it, e.g. {path}/*.json)")
            skipped += 1
            continue
        if not path.is_file():
            click.echo(f"refused {path}: no such file", err=True)
            refused += 1
            continue
        reason = skip_reason(path)
        if reason is not None:
            click.echo(f"skip {path}: {reason}")
            skipped += 1
            continue
        preview, where = _preview(rules, output_path(path))
        size = path.stat().st_size
        try:
            with click.progressbar(length=size, label=path.name, file=sys.stderr) as bar:
                outcome = migrate(path, bar.update, preview.feed)
        except NotMigratable as exc:
            click.echo(f"refused {path}: {exc}", err=True)
            refused += 1
            continue
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"failed {path}: {exc}", err=True)
            refused += 1
            continue
        if outcome.status == "already-ndjson":
            click.echo(f"skip {path}: already NDJSON (starts with '{{'), nothing to do")
            skipped += 1
            continue
        migrated += 1
        click.echo(
            f"migrated {path} -> {outcome.output} "
            f"({outcome.records} records; backup {outcome.backup})"
        )
        _report(preview, where)
        if delete_backup and outcome.backup is not None:
            outcome.backup.unlink()
            click.echo(f"deleted backup {outcome.backup}")
    click.echo(f"{migrated} migrated, {skipped} skipped, {refused} refused")
    if refused:
        raise click.ClickException(f"{refused} file(s) not migrated")


def _report(preview: SkipPreview, where: str) -> None:
    """What ndjson_tail will make of the records just written."""
    messages = preview.messages()
    if not messages:
        click.echo(
            f"  ndjson_tail ({where}, time_floor {preview.floor_text}) will read all "
            f"{preview.records} records"
        )
        return
    click.echo(
        f"  ndjson_tail ({where}, time_floor {preview.floor_text}) will write "
        f"{preview.kept} of {preview.records} records:"
    )
    for message in messages:
        click.echo(f"  {message}")
