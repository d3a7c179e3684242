"""``bridge-cli run``: render a config and run the real Telegraf with it, showing progress."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from telegraf_bridge.cli import render
from telegraf_bridge.cli.commands.init import starter_text
from telegraf_bridge.cli.settings import InvalidConfig, load_settings
from telegraf_bridge.cli.telegraf_bin import TelegrafNotFound, telegraf_path


class _LineCounter:
    """Counts lines appended to a file without re-reading it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines = 0

    def poll(self) -> int:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return self.lines
        self.offset += len(chunk)
        self.lines += chunk.count(b"\n")
        return self.lines


@click.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="BRIDGE_CONFIG",
    help="bridge.yaml to run; default: the embedded starter config (demo source, file sink).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    envvar="DURATION",
    default=0,
    help="Stop after this many seconds; 0 runs until Ctrl-C (env: DURATION).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var"),
    show_default=True,
    help="Where the rendered config and Telegraf's log go.",
)
def command(config_path: Path | None, duration: float, workdir: Path) -> None:
    """Render the config and run Telegraf with every source in it, showing points written.

    Progress counts the lines in the file sinks. Ctrl-C (or --duration) stops Telegraf
    gracefully, which lets every plugin save its state.
    """
    try:
        binary = telegraf_path()
    except TelegrafNotFound as exc:
        raise click.ClickException(str(exc)) from None
    try:
        if config_path is None:
            settings = load_settings(None, text=starter_text(), base_dir=Path.cwd())
        else:
            settings = load_settings(config_path)
        output = workdir.resolve() / "telegraf.conf"
        rendered = render.render(
            settings, output, config_source=str(config_path or "embedded starter config")
        )
    except InvalidConfig as exc:
        raise click.ClickException(str(exc)) from None
    render.write(rendered, output)
    for note in settings.notes:
        click.echo(f"note: {note}")
    for key in ("buffer_directory", "state_directory"):
        Path(settings.agent[key]).mkdir(parents=True, exist_ok=True)
    files = [Path(s["path"]) for s in settings.active_sinks() if s["type"] == "file"]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
    counters = [_LineCounter(p) for p in files]
    for counter in counters:
        counter.offset = counter.path.stat().st_size if counter.path.exists() else 0
    log_path = workdir.resolve() / "telegraf.log"
    sinks = ", ".join(f"{s['name']} ({s['type']})" for s in settings.active_sinks())
    click.echo(f"telegraf {binary}\nconfig   {output}\nsinks    {sinks}\nlog      {log_path}")

    stop = {"why": ""}

    def on_signal(signum: int, _frame: object) -> None:
        stop["why"] = signal.Signals(signum).name

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            [str(binary), "--config", str(output), "--strict-env-handling"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        interactive = sys.stdout.isatty()
        last_print = 0.0
        total = 0
        while not stop["why"]:
            time.sleep(0.5)
            elapsed = time.monotonic() - started
            total = sum(c.poll() for c in counters)
            if proc.poll() is not None:
                stop["why"] = f"telegraf exited with status {proc.returncode}"
                break
            if duration and elapsed >= duration:
                stop["why"] = f"duration of {duration:g}s reached"
            if interactive or elapsed - last_print >= 5 or stop["why"]:
                line = f"{elapsed:6.1f}s  points written: {total}"
                click.echo(("\r" + line) if interactive else line, nl=not interactive)
                last_print = elapsed
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    total = sum(c.poll() for c in counters)
    if interactive:
        click.echo("")
    click.echo(f"stopped ({stop['why']}); {total} point(s) written to {', '.join(map(str, files))}")
    if proc.returncode not in (0, -signal.SIGTERM) and not stop["why"].startswith("duration"):
        raise click.ClickException(f"Telegraf failed; see {log_path}")
