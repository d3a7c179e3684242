"""The command line every plugin shares: ``--config FILE`` and the execd options in it.

Options common to all plugins (top level of the plugin's TOML file):

- ``signal``: ``"none"`` (own schedule, default) or ``"STDIN"`` (gather on each newline);
  must match the execd ``signal`` in telegraf.conf.
- ``interval``: gather interval on the own schedule (default ``"10s"``, or the plugin's own).
- ``state_dir``: where state files live (default ``/var/lib/telegraf-bridge/state``).
- ``instance``: name that keys this instance's state (default: the plugin name).
- ``time_floor``: RFC 3339 instant; points stamped before it are refused.
- ``require_clock_sync``: hold gathers while the kernel says the clock is unsynchronised.
- ``debug``: log at debug level.
- ``commit_delay``: how long after Telegraf read a batch it counts as in Telegraf's disk buffer
  (default ``"30s"``); until then the batch is kept (the journal, or ndjson_tail's position).
- ``journal_sync_interval``: how often a journal is fsynced (default ``"5s"``): the power-cut
  exposure window of sources that acknowledge nothing.
- ``buffer_directory`` / ``buffer_max_size_mb``: Telegraf's disk buffer and the cap that it
  and the journals stay within (0: no cap); render-config writes both from the agent.

Sources that cannot read their data again (all but ndjson_tail) keep a journal,
``<state_dir>/<name>-<instance>.journal/`` (:mod:`._journaled_writer`).

Every instance reports its skips, holds and points in ``<state_dir>/<name>-<instance>.status
.json`` (:mod:`._status`), written when they change (at most every 5 s) and at exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal as signals
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from telegraf_bridge.plugins.common._args import parse_args
from telegraf_bridge.plugins.common._cap import JOURNAL_SUFFIX, BufferCap
from telegraf_bridge.plugins.common._clock import DEFAULT_TIME_FLOOR, ClockGuard, parse_time_floor
from telegraf_bridge.plugins.common._config import ConfigError, Section, load_toml
from telegraf_bridge.plugins.common._journal import Journal, JournalBusy
from telegraf_bridge.plugins.common._journaled_writer import (
    DEFAULT_COMMIT_DELAY_S,
    DEFAULT_SYNC_INTERVAL_S,
    JournaledWriter,
    segment_bytes_for,
)
from telegraf_bridge.plugins.common._lineprotocol import LineProtocolSerializer, SkipCounter
from telegraf_bridge.plugins.common._log import setup_logging
from telegraf_bridge.plugins.common._runner import LineWriter, Runner, Source
from telegraf_bridge.plugins.common._status import STATUS_SUFFIX, StatusReporter
from telegraf_bridge.plugins.common._wakeup import Wakeup

from telegraf_bridge import paths

DEFAULT_STATE_DIR = str(paths.STATE_DIR)
# Set by `bridge-cli check-config` so a test run never moves a live file position or counter.
STATE_OVERRIDE_ENV = "TELEGRAF_BRIDGE_STATE_DIR"
EXIT_CONFIG = 2
# How long a plugin lingers after closing its pipes, so Telegraf reads end-of-file before the
# exit (see close_pipes_before_exit).
PIPE_CLOSE_GRACE_S = 0.2

log = logging.getLogger("telegraf_bridge.plugin")


@dataclass
class PluginContext:
    """What a plugin's factory gets: its config section and the shared services."""

    name: str
    config: Section
    state_dir: Path
    instance: str
    serializer: LineProtocolSerializer
    clock_guard: ClockGuard
    interval_s: float
    writer: LineWriter
    wakeup: Wakeup
    # The source's newest checkpoint from its journal (b"" when none; see Runner).
    checkpoint: bytes = b""

    def state_path(self, suffix: str = "state") -> Path:
        """The state file of this plugin instance."""
        return self.state_dir / f"{self.name}-{self.instance}.{suffix}.json"


@dataclass(frozen=True)
class DeliveryOptions:
    """The shim's delivery options (see the module docstring)."""

    commit_delay_s: float
    sync_interval_s: float
    buffer_directory: Path | None
    buffer_max_size_mb: int

    @classmethod
    def parse(cls, config: Section) -> DeliveryOptions:
        """Read them from a plugin's config; raises ConfigError."""
        directory = config.string("buffer_directory", "")
        return cls(
            commit_delay_s=config.duration("commit_delay", DEFAULT_COMMIT_DELAY_S, minimum=0.0),
            sync_interval_s=config.duration(
                "journal_sync_interval", DEFAULT_SYNC_INTERVAL_S, minimum=0.0
            ),
            buffer_directory=Path(directory) if directory else None,
            buffer_max_size_mb=config.integer("buffer_max_size_mb", 0, minimum=0),
        )

    def cap(self, state_dir: Path | None, in_flight: Callable[[], int]) -> BufferCap:
        """The cap over Telegraf's buffer and the journals in ``state_dir``."""
        return BufferCap(
            self.buffer_max_size_mb * 1024 * 1024,
            self.buffer_directory,
            state_dir,
            in_flight=in_flight,
        )

    def journaled_writer(
        self, stream: BinaryIO, serializer: LineProtocolSerializer, directory: Path
    ) -> JournaledWriter:
        """A writer journaling into ``directory`` (opened by the caller)."""
        cap_bytes = self.buffer_max_size_mb * 1024 * 1024 if self.buffer_directory else 0
        writer = JournaledWriter(
            stream,
            serializer,
            Journal(directory, segment_bytes=segment_bytes_for(cap_bytes)),
            commit_delay_s=self.commit_delay_s,
            sync_interval_s=self.sync_interval_s,
        )
        writer.cap = self.cap(directory.parent, writer.unread_bytes)
        return writer


@dataclass(frozen=True)
class PluginSpec:
    """How a plugin runs: what :func:`plugin_main` and the plugin host need from it.

    ``journal``: keep a delivery journal (every source that cannot read its data again);
    ndjson_tail passes False, its files are its journal.
    """

    name: str
    factory: Callable[[PluginContext], Source]
    default_interval_s: float = 10.0
    journal: bool = True

    def main(self, argv: Sequence[str] | None = None) -> int:
        """The plugin's console script and ``python -m``: :func:`plugin_main`."""
        return plugin_main(
            self.name,
            self.factory,
            argv,
            default_interval_s=self.default_interval_s,
            journal=self.journal,
        )


def load_config(name: str, path: Path | None) -> Section:
    """The plugin's config file as a :class:`Section` (empty without one); raises ConfigError."""
    return Section(load_toml(path) if path else {}, name)


@dataclass
class Instance:
    """One source built from its config and ready to run (:func:`prepare`)."""

    ctx: PluginContext
    source: Source
    runner: Runner
    reporter: StatusReporter

    def run(self) -> int:
        """Run until stopped; the journal and the status file are closed whatever happens."""
        writer = self.ctx.writer
        try:
            status = self.runner.run()
        finally:
            if isinstance(writer, JournaledWriter):
                writer.close()
            self.reporter.close()
        skipped = self.ctx.serializer.counter.snapshot()
        if skipped:
            log.info("skip/sanitise counts at exit: %s", skipped)
        return status


def prepare(
    spec: PluginSpec,
    config: Section,
    *,
    stream: BinaryIO,
    once: bool = False,
    watch_stdin: bool = True,
) -> Instance:
    """Build the source of ``config`` and everything around it.

    Raises ConfigError or JournalBusy, with nothing left open. ``--once`` keeps no journal:
    its output goes to a terminal, not to Telegraf.
    """
    name = spec.name
    signal = config.string("signal", "none", choices=("none", "STDIN"))
    interval_s = config.duration("interval", spec.default_interval_s, minimum=0.001)
    state_dir = Path(config.string("state_dir", DEFAULT_STATE_DIR))
    if os.environ.get(STATE_OVERRIDE_ENV):
        state_dir = Path(os.environ[STATE_OVERRIDE_ENV])
    instance = config.string("instance", name)
    floor_text = config.string("time_floor", DEFAULT_TIME_FLOOR)
    try:
        floor_ns = parse_time_floor(floor_text)
    except ValueError:
        raise ConfigError(
            f"{name}.time_floor = {floor_text!r} is invalid: expected an RFC 3339 time"
        ) from None
    guard = ClockGuard(floor_ns=floor_ns, require_sync=config.boolean("require_clock_sync", True))
    serializer = LineProtocolSerializer(time_floor_ns=floor_ns, counter=SkipCounter())
    delivery = DeliveryOptions.parse(config)
    writer: LineWriter
    if spec.journal and not once:
        writer = delivery.journaled_writer(
            stream, serializer, state_dir / f"{name}-{instance}{JOURNAL_SUFFIX}"
        )
    else:
        writer = LineWriter(stream, serializer)
    checkpoint = writer.open() if isinstance(writer, JournaledWriter) else b""
    ctx = PluginContext(
        name=name,
        config=config,
        state_dir=state_dir,
        instance=instance,
        serializer=serializer,
        clock_guard=guard,
        interval_s=interval_s,
        writer=writer,
        wakeup=Wakeup(),
        checkpoint=checkpoint,
    )
    try:
        source = spec.factory(ctx)
        config.check_unknown()
    except BaseException:
        # The process exits here when it runs one source; a host carries on and may build
        # this source again, which needs the journal's lock released.
        if isinstance(writer, JournaledWriter):
            writer.close()
        raise
    runner = Runner(
        source,
        writer,
        signal="STDIN" if signal == "STDIN" else "none",
        interval_s=interval_s,
        clock_guard=guard,
        watch_stdin=watch_stdin,
        once=once,
    )
    ctx.wakeup.bind(runner.request_gather)
    reporter = StatusReporter(
        ctx.state_path(STATUS_SUFFIX),
        plugin=name,
        instance=instance,
        counter=serializer.counter,
        writer=writer,
        guard=guard,
    )
    if isinstance(writer, JournaledWriter):
        runner.on_start.append(writer.start)
    if not once:
        runner.on_start.append(reporter.start)
    return Instance(ctx, source, runner, reporter)


def plugin_main(
    name: str,
    factory: Callable[[PluginContext], Source],
    argv: Sequence[str] | None = None,
    *,
    default_interval_s: float = 10.0,
    journal: bool = True,
) -> int:
    """Parse arguments, load config, build the source and run it; returns the exit status.

    ``journal``: see :class:`PluginSpec`.
    """
    spec = PluginSpec(name, factory, default_interval_s, journal)
    args = parse_args(name, sys.argv[1:] if argv is None else argv)
    # A SIGTERM while the source starts (a listener may already accept connections) must stop
    # the plugin cleanly, not kill it: noted here, honoured once the runner exists.
    early_stop: list[str] = []
    if threading.current_thread() is threading.main_thread():
        signals.signal(
            signals.SIGTERM, lambda signum, _f: early_stop.append(signals.Signals(signum).name)
        )
    setup_logging(debug=args.debug)
    try:
        config = load_config(name, args.config)
        setup_logging(debug=args.debug or config.boolean("debug", False))
        instance = prepare(
            spec,
            config,
            stream=sys.stdout.buffer,
            once=args.once,
            watch_stdin=not args.ignore_stdin,
        )
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    except JournalBusy as exc:
        log.error("%s", exc)
        return 1
    if early_stop:
        instance.runner.request_stop(f"received {early_stop[0]} while starting")
    status = instance.run()
    close_pipes_before_exit()
    return status


def close_pipes_before_exit() -> None:
    """Flush, then close our ends of Telegraf's stdout and stderr pipes, then pause briefly.

    Telegraf's execd reads our stdout while Go's ``exec.Cmd.Wait`` closes that pipe once we
    have exited: when our exit wins that race, Telegraf logs ``E! Error in plugin: read |0:
    file already closed`` on every normal stop. Closing the pipes first lets Telegraf read
    end-of-file while we still run; the pause gives its reader time to see it. Both now point
    at /dev/null, so Python's final flush cannot print a BrokenPipeError traceback either
    (Telegraf would log its lines as errors).
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            stream.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(ValueError, OSError):
                os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)
    time.sleep(PIPE_CLOSE_GRACE_S)
