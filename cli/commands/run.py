"""``bridge-cli run``: render a config and run the real Telegraf with it, telling the truth.

What it shows comes from Telegraf itself (its counters and its log, see
:mod:`telegraf_bridge.cli.run_tally`), per sink and per source, and every ``W!``/``E!`` line
reaches the console, grouped with a count. It exits non-zero when a sink dropped points or never
accepted a write, so "0 points, OK" can no longer hide a refused token.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
from telegraf_bridge.cli import dir_lock, envmap, preflight, render, source_status
from telegraf_bridge.cli.commands.init import starter_text
from telegraf_bridge.cli.config_model import FileSink, Sink
from telegraf_bridge.cli.context import bridge_context
from telegraf_bridge.cli.run_console import Console, progress_line, status_table
from telegraf_bridge.cli.run_tally import RunTally
from telegraf_bridge.cli.settings import InvalidConfig, Settings
from telegraf_bridge.cli.telegraf_bin import TelegrafNotFound, telegraf_path
from telegraf_bridge.cli.telegraf_log import LogDigest, LogFollower, parse_line

EXIT_FAILED = 1
_PR_SET_PDEATHSIG = 1
# Telegraf's own warning on every start with the disk buffer; it says nothing about the data.
_BENIGN = ("Using disk-write-through buffer strategy",)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _demo_settings() -> Settings:
    """The embedded demo: local files only, whatever the environment says."""
    settings = bridge_context().settings(None, env={}, text=starter_text(), base_dir=Path.cwd())
    files: list[Sink] = [s for s in settings.sinks if isinstance(s, FileSink)]
    return dataclasses.replace(settings, sinks=files)


def _settings(config_path: Path | None) -> Settings:
    if config_path is not None:
        return bridge_context().settings(config_path)
    seeds = envmap.seed_variables(os.environ)
    if seeds:
        listing = "; ".join(f"seed {seed}: {', '.join(names)}" for seed, names in seeds.items())
        first = next(iter(seeds)).split()[0]
        raise click.UsageError(
            f"variables of a system this bundle replaces are set ({listing}). Without --config, "
            "`run` only runs the demo, and never into a database configured from the "
            f"environment. Write your setup with `bridge-cli init --seed {first}`, then run "
            "`bridge-cli run --config bridge.yaml`."
        )
    return _demo_settings()


def _exit_with_parent() -> None:
    """In the child before exec: SIGTERM when ``run`` dies, so Telegraf never outlives it."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class _Feeds:
    """What ``run`` reads while Telegraf runs: its status counters and its log files."""

    tally: RunTally
    prefix: str
    status: LogFollower
    logs: list[LogFollower]
    digest: LogDigest

    def drain(self, show: Callable[[str], None]) -> None:
        """Feed new counters and log lines to the tally; show each new warning or error once."""
        for raw in self.status.new_lines():
            self.tally.feed_status(raw, self.prefix)
        for follower in self.logs:
            for raw in follower.new_lines():
                line = parse_line(raw)
                if line is None:
                    continue
                self.tally.feed_log(line)
                visible = line.level in ("E", "W") and not line.message.startswith(_BENIGN)
                if visible and self.digest.add(line):
                    show(line.text)


def _read_sources(tally: RunTally, settings: Settings, since_ns: int) -> None:
    statuses = source_status.source_statuses(
        Path(settings.agent.state_directory), settings.active_sources()
    )
    tally.feed_sources(statuses, since_ns)


def _repeated(digest: LogDigest) -> list[tuple[str, int]]:
    """The log lines Telegraf wrote during the run (benign ones left out), with their counts."""
    return [
        (g.first.text, g.count)
        for g in digest.groups.values()
        if not g.first.message.startswith(_BENIGN)
    ]


def _summary(tally: RunTally, digest: LogDigest, why: str) -> dict[str, object]:
    """The JSON form of the run's outcome (``--json``)."""
    return {
        "stopped": why,
        "sources": [s.as_dict() for s in tally.sources.values()],
        "sinks": [s.as_dict() for s in tally.sinks.values()],
        "warnings": [{"line": line, "count": count} for line, count in _repeated(digest)],
        "problems": tally.problems(),
    }


def _print_summary(
    console: Console, tally: RunTally, digest: LogDigest, why: str, files: list[str]
) -> None:
    for src in tally.sources.values():
        skipped = sum(src.skips.values())
        console.line(
            f"source {src.name} ({src.plugin}): {src.points} point(s)"
            + (f", {skipped} skipped" if skipped else "")
            + (f"; held: {src.held}" if src.held else "")
        )
        for line in source_status.skip_lines(src.skips):
            console.line(f"  skipped {line}")
    sinks = list(tally.sinks.values())
    for sink in sinks:
        console.line(
            f"sink {sink.name} ({sink.kind}): {sink.total_written} written, "
            f"{sink.buffered} buffered, {sink.total_dropped} dropped, {sink.errors} error(s)"
        )
    for line, count in _repeated(digest):
        if count > 1:
            console.line(f"{line}  (x{count})")
    for problem in tally.problems():
        console.line(f"FAILED: {problem}")
    written = sum(s.total_written for s in sinks)
    where = ", ".join(files) or ", ".join(s.name for s in sinks)
    console.line(f"stopped ({why}); {written} point(s) written to {where}")


@click.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="BRIDGE_CONFIG",
    help="bridge.yaml to run (env: BRIDGE_CONFIG); default: the embedded demo, which writes "
    "to local files only.",
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
@click.option(
    "--no-preflight",
    is_flag=True,
    help="Start without checking the sinks' credentials, the health port and the clock.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the final summary as one JSON object on stdout (progress goes to stderr).",
)
def command(
    config_path: Path | None, duration: float, workdir: Path, no_preflight: bool, as_json: bool
) -> None:
    """Render the config and run Telegraf with every source in it, showing what happens.

    Per sink: points written, buffered and dropped, and write errors, from Telegraf's own
    counters and log; per source: points and skipped records. Telegraf's warnings and errors
    are shown as they happen, each once with a count. Ctrl-C, SIGTERM, SIGHUP (a closed SSH
    session), a closed stdout or --duration stop Telegraf gracefully, which lets every plugin
    save its state.

    Before Telegraf starts, a preflight checks each InfluxDB sink (reachable, credentials
    accepted by a read-only request), the health port and the clock, one line each with its
    fix. A refused credential stops `run` before any point is sent (InfluxDB 1.x outputs drop
    what a sink refuses); a busy health port only loses the health endpoint, never data.

    Without --config it runs the embedded demo into local files only; when variables of a
    system this bundle replaces (INFLUX_TOKEN, INFLUXDB_HOST, ...) are set it refuses and
    names `bridge-cli init --seed`.

    Exit status: 0 when every sink accepted what it was given; 1 when a sink dropped points
    or never accepted a write, preflight failed, or Telegraf failed; 2 for a usage or config
    error.
    """
    console = Console(sys.stderr if as_json else sys.stdout)
    try:
        binary = telegraf_path()
    except TelegrafNotFound as exc:
        raise click.ClickException(str(exc)) from None
    try:
        settings = _settings(config_path)
        unset = [name for name in settings.referenced_env() if name not in os.environ]
        if unset:
            raise click.ClickException(
                f"{', '.join(unset)} referenced by the config but not set; export "
                f"{'it' if len(unset) == 1 else 'them'} (Telegraf would send an empty credential)"
            )
        if not no_preflight:
            findings = preflight.preflight(settings)
            preflight.print_findings(findings, console.line, quiet_ok=True)
            if preflight.has_failures(findings):
                raise click.ClickException(
                    "preflight failed: fix the lines above (or pass --no-preflight)"
                )
            settings = preflight.health_fallback(settings, findings)
        output = workdir.resolve() / "telegraf.conf"
        status = render.RunStatus(path=str(workdir.resolve() / "run-status.json"))
        rendered = render.render(
            settings,
            output,
            config_source=str(config_path or "embedded demo"),
            run_status=status,
        )
    except InvalidConfig as exc:
        raise click.ClickException(str(exc)) from None
    agent = settings.agent
    try:
        locks = dir_lock.lock_directories(
            [Path(agent.buffer_directory), Path(agent.state_directory)]
        )
    except dir_lock.DirectoryBusy as exc:
        raise click.ClickException(str(exc)) from None
    try:
        render.write(rendered, output)
        _run(_Launch(settings, binary, output, status, locks), duration, console, as_json)
    finally:
        dir_lock.release(locks)


def _stop_telegraf(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (Telegraf's graceful stop: plugins save state, outputs flush), then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _silence_closed_stdout() -> None:
    """After ``run | head`` the interpreter's last flush must not print a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@dataclass(frozen=True)
class _Launch:
    """Everything prepared before Telegraf starts."""

    settings: Settings
    binary: Path
    output: Path
    status: render.RunStatus
    locks: list[int]


@dataclass
class _Session:
    """One run of Telegraf: what it reads, where it shows it, and why it stopped."""

    launch: _Launch
    feeds: _Feeds
    console: Console
    log_path: Path
    files: list[str]
    started: float = field(default_factory=time.monotonic)
    started_ns: int = field(default_factory=time.time_ns)
    why: str = ""

    def on_signal(self, signum: int, _frame: object) -> None:
        """A stop signal ends the watch (the first reason is kept)."""
        self.why = self.why or f"received {signal.Signals(signum).name}"

    def read_sources(self) -> None:
        """The plugins' status files since the start, into the tally."""
        _read_sources(self.feeds.tally, self.launch.settings, self.started_ns)


def _session(launch: _Launch, console: Console) -> _Session:
    """Prepare what ``run`` reads (log, counters, sinks' files) and say what runs where."""
    settings, binary, output = launch.settings, launch.binary, launch.output
    for note in settings.notes:
        console.line(f"note: {note}")
    files = [s.path for s in settings.active_sinks() if isinstance(s, FileSink)]
    for path in files:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    log_path = output.parent / "telegraf.log"
    logs = [LogFollower(log_path)]
    if settings.agent.logfile:
        logs.append(LogFollower(Path(settings.agent.logfile)))
    tally = RunTally(
        {s.name: s.type for s in settings.active_sinks()},
        {s.name: s.plugin for s in settings.active_sources()},
    )
    status_path = Path(launch.status.path)
    status_path.unlink(missing_ok=True)
    feeds = _Feeds(
        tally, launch.status.prefix, LogFollower(status_path, from_end=False), logs, LogDigest()
    )
    sinks = ", ".join(f"{s.name} ({s.type})" for s in settings.active_sinks())
    console.line(f"telegraf {binary}\nconfig   {output}\nsinks    {sinks}\nlog      {log_path}")
    return _Session(launch, feeds, console, log_path, files)


def _start(session: _Session) -> subprocess.Popen[bytes]:
    """Start Telegraf, its output into the log; the directory locks name its pid."""
    launch = session.launch
    with session.log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            [str(launch.binary), "--config", str(launch.output), "--strict-env-handling"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=launch.locks,
            preexec_fn=_exit_with_parent,  # noqa: PLW1509 - only a prctl, before any thread
        )
    for fd in launch.locks:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{proc.pid}\n".encode(), 0)
    return proc


def _watch(session: _Session, proc: subprocess.Popen[bytes], duration: float) -> None:
    """Show what Telegraf does until it exits, ``duration`` passes or a stop is asked for."""
    console = session.console
    last_table = last_sources = -10.0
    while not session.why:
        time.sleep(0.5)
        elapsed = time.monotonic() - session.started
        session.feeds.drain(console.line)
        if proc.poll() is not None:
            session.why = f"telegraf exited with status {proc.returncode}"
            break
        if duration and elapsed >= duration:
            session.why = f"duration of {duration:g}s reached"
        if console.broken:
            session.why = "the console's output was closed"
        if elapsed - last_sources >= 2:
            session.read_sources()
            last_sources = elapsed
        if console.interactive and elapsed - last_table >= 1:
            console.table(status_table(session.feeds.tally, elapsed))
            last_table = elapsed
        elif not console.interactive and elapsed - last_table >= 5:
            console.line(progress_line(session.feeds.tally, elapsed))
            last_table = elapsed


def _finish(session: _Session, proc: subprocess.Popen[bytes], as_json: bool) -> None:
    """The summary (and JSON); exit 1 when Telegraf failed or a sink has a problem."""
    console = session.console
    console.done()
    tally, digest = session.feeds.tally, session.feeds.digest
    _print_summary(console, tally, digest, session.why, session.files)
    if as_json:
        summary = _summary(tally, digest, session.why)
        with contextlib.suppress(BrokenPipeError, OSError):
            click.echo(json.dumps(summary, sort_keys=True))
    failed = proc.returncode not in (0, -signal.SIGTERM) and not session.why.startswith(
        ("duration", "received", "the console")
    )
    if failed:
        console.line(f"Telegraf failed; see {session.log_path}")
    if console.broken:
        _silence_closed_stdout()
    if failed or tally.problems():
        sys.exit(EXIT_FAILED)


def _run(launch: _Launch, duration: float, console: Console, as_json: bool) -> None:
    session = _session(launch, console)
    previous = {sig: signal.signal(sig, session.on_signal) for sig in _STOP_SIGNALS}
    session.started, session.started_ns = time.monotonic(), time.time_ns()
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = _start(session)
        _watch(session, proc, duration)
        _stop_telegraf(proc)
        session.feeds.drain(console.line)
        session.read_sources()
    finally:
        if proc is not None:
            _stop_telegraf(proc)  # also when this loop failed: never leave Telegraf behind
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _finish(session, proc, as_json)
