"""One Python process running several sources: the plugin host.

Each plugin normally is its own process under Telegraf's execd, and each such process pays for
an interpreter and the shim's imports (about 9 MiB of a 10-20 MiB process, measured by
benchmarks/edge_footprint.py) whatever the source does. The host runs several sources in one
process, each exactly as :func:`._main.plugin_main` would run it alone: built by
:func:`._main.prepare` from its own, unchanged config file, so it keeps its own state, journal
(``<state_dir>/<plugin>-<instance>.journal/``), status file, interval and signal.

Config (TOML), ``python -m telegraf_bridge.plugins.host --config host.toml``::

    [[sources]]
    name = "pv"                    # names the source in the host's log lines
    plugin = "demo"                # plugins/<plugin>/plugin.py's SPEC
    config = "/etc/telegraf-bridge/plugins/pv.toml"
    # restart_delay = "10s"        # as execd's: before a failed source is built again

What is shared and why it is safe:

- stdout: every batch is one ``write`` under one lock (:class:`SharedOutput`), so lines never
  interleave. Each writer's delivery tracking (:mod:`._delivery`) reads the pipe's unread
  bytes (``FIONREAD``) against its own byte count: bytes other sources wrote after it can only
  make it think less of its own data was read, never more, so commits stay late, never early.
- stdin: one reader; a newline prompts every source whose ``signal`` is ``"STDIN"``, and
  end-of-file (Telegraf stopping) or SIGTERM/SIGINT stops every source.
- A source that fails (its config, its factory, or an exception out of its runner) is closed
  (state saved, journal released), logged with its name and built again after its
  ``restart_delay``, as execd would restart its process; the others do not notice. Only
  Telegraf going away (a broken pipe) stops them all. A crash of the process itself (a C
  extension's fault, the OOM killer) still stops every hosted source; Telegraf restarts the
  host, and the journals and file positions replay what was not yet safe, as for one plugin.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal as signals
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from telegraf_bridge.plugins.common._args import parse_args
from telegraf_bridge.plugins.common._config import ConfigError, Section, load_toml
from telegraf_bridge.plugins.common._journal import JournalBusy
from telegraf_bridge.plugins.common._log import setup_logging
from telegraf_bridge.plugins.common._main import (
    EXIT_CONFIG,
    Instance,
    PluginSpec,
    close_pipes_before_exit,
    load_config,
    prepare,
)

log = logging.getLogger("telegraf_bridge.host")
THREAD_PREFIX = "source-"

DEFAULT_RESTART_DELAY_S = 10.0


class SourceTag(logging.Filter):
    """Names the source in the log lines of its runner's thread: ``[logger:source]``.

    Threads a source starts itself (a journal keeper, an HTTP listener's) are not named.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        thread = threading.current_thread().name
        if thread.startswith(THREAD_PREFIX):
            record.name = f"{record.name}:{thread.removeprefix(THREAD_PREFIX)}"
        return True


class SharedOutput:
    """stdout shared by the hosted sources' writers: one ``write`` + ``flush`` at a time.

    Remembers a broken pipe (Telegraf gone), which stops the whole host.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.broken = threading.Event()

    def fileno(self) -> int:
        return self._stream.fileno()

    def write(self, data: bytes) -> int:
        with self._lock:
            try:
                written = self._stream.write(data)
                self._stream.flush()
            except BrokenPipeError:
                self.broken.set()
                raise
        return written

    def flush(self) -> None:
        """Each write is flushed already."""


@dataclass(frozen=True)
class HostedSource:
    """One ``[[sources]]`` entry of the host's config."""

    name: str
    plugin: str
    config: Path
    restart_delay_s: float


def load_host_config(path: Path) -> list[HostedSource]:
    """The sources of the host's config file; raises ConfigError naming the file and key."""
    top = Section(load_toml(path), str(path))
    entries = top.raw("sources")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected one or more [[sources]] tables")
    sources = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: sources[{index}] must be a table")
        section = Section(entry, f"{path}: sources[{index}]")
        config_text = section.string("config", "")
        source = HostedSource(
            name=section.string("name", ""),
            plugin=section.string("plugin", ""),
            # A relative path is anchored at the host's config file, not at the cwd.
            config=path.parent / config_text if config_text else Path(),
            restart_delay_s=section.duration("restart_delay", DEFAULT_RESTART_DELAY_S, minimum=0.0),
        )
        section.check_unknown()
        for key in ("name", "plugin"):
            if not getattr(source, key):
                raise ConfigError(f"{section.where}.{key} is required")
        if not config_text:
            raise ConfigError(f"{section.where}.config is required: the source's config file")
        sources.append(source)
    top.check_unknown()
    names = [s.name for s in sources]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{path}: source names must be unique, repeated: {repeated}")
    return sources


def plugin_spec(plugin: str) -> PluginSpec:
    """``telegraf_bridge.plugins.<plugin>.plugin.SPEC``; ConfigError for an unknown plugin."""
    module_name = f"telegraf_bridge.plugins.{plugin}.plugin"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ConfigError(f"unknown plugin {plugin!r}: no module {module_name}") from None
        raise
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, PluginSpec):
        raise ConfigError(f"plugin {plugin!r} cannot be hosted: {module_name} has no SPEC")
    return spec


class _Slot:
    """One hosted source over its life: build, run, and build again after a failure."""

    def __init__(
        self,
        hosted: HostedSource,
        output: SharedOutput,
        stopping: threading.Event,
        build: Callable[[HostedSource, SharedOutput], Instance],
    ) -> None:
        self.hosted = hosted
        self._output = output
        self._stopping = stopping
        self._build = build
        self._lock = threading.Lock()
        self.instance: Instance | None = None
        self.failures = 0
        self.thread = threading.Thread(target=self._live, name=THREAD_PREFIX + hosted.name)

    def request_stop(self, why: str) -> None:
        with self._lock:
            instance = self.instance
        if instance is not None:
            instance.runner.request_stop(why)

    def request_gather(self) -> None:
        """A newline from Telegraf: only sources with ``signal = "STDIN"`` gather on it."""
        with self._lock:
            instance = self.instance
        if instance is not None and instance.runner.signal == "STDIN":
            instance.runner.request_gather()

    def _live(self) -> None:
        while not self._stopping.is_set():
            try:
                instance = self._build(self.hosted, self._output)
            except (ConfigError, JournalBusy) as exc:
                self._failed(f"cannot start: {exc}")
                continue
            except BaseException as exc:  # a source's bug (even SystemExit) must not end the host
                self._failed(f"building it failed: {type(exc).__name__}: {exc}")
                continue
            with self._lock:
                self.instance = instance
            if self._stopping.is_set():  # stopped while it was being built
                instance.runner.request_stop()
            try:
                status = instance.run()
            except BaseException as exc:  # a source's bug (even SystemExit) must not end the host
                why = f"{type(exc).__name__}: {exc}"
            else:
                why = f"exit status {status}"
            with self._lock:
                self.instance = None
            if self._output.broken.is_set():
                self._stopping.set()  # Telegraf has gone: every source stops
                return
            if self._stopping.is_set():
                return
            self._failed(f"it stopped ({why})")

    def _failed(self, why: str) -> None:
        self.failures += 1
        delay = self.hosted.restart_delay_s
        log.error(
            "source %s (plugin %s): %s; starting it again in %gs, the other sources carry on",
            self.hosted.name,
            self.hosted.plugin,
            why,
            delay,
        )
        self._stopping.wait(delay)


def build_source(hosted: HostedSource, output: SharedOutput) -> Instance:
    """A hosted source, built as plugin_main builds a plugin (no stdin of its own)."""
    spec = plugin_spec(hosted.plugin)
    config = load_config(spec.name, hosted.config)
    config.boolean("debug", False)  # the host's level; read so it is not an unknown key
    # SharedOutput has what a LineWriter uses of a stream: write, flush and fileno.
    stream: BinaryIO = output  # type: ignore[assignment]
    return prepare(spec, config, stream=stream, watch_stdin=False)


class Host:
    """Runs the slots, feeds them Telegraf's stdin, and stops them together."""

    def __init__(
        self,
        sources: Sequence[HostedSource],
        output: SharedOutput,
        *,
        build: Callable[[HostedSource, SharedOutput], Instance] = build_source,
    ) -> None:
        self.stopping = threading.Event()
        self.slots = [_Slot(hosted, output, self.stopping, build) for hosted in sources]
        self.output = output

    def request_stop(self, why: str) -> None:
        if not self.stopping.is_set():
            log.info("stopping every source: %s", why)
        self.stopping.set()
        for slot in self.slots:
            slot.request_stop(why)

    def read_stdin(self, stdin: TextIO) -> None:
        """Each newline prompts the STDIN sources; end-of-file stops every source."""
        with contextlib.suppress(OSError, ValueError):
            for _line in stdin:
                for slot in self.slots:
                    slot.request_gather()
        self.request_stop("stdin closed")

    def run(self, stdin: TextIO | None) -> int:
        """Start every source, wait for them all; 1 when Telegraf went away, else 0."""
        for slot in self.slots:
            slot.thread.start()
        if stdin is not None:
            threading.Thread(
                target=self.read_stdin, args=(stdin,), name="stdin", daemon=True
            ).start()
        while any(slot.thread.is_alive() for slot in self.slots):
            if self.stopping.wait(0.5):
                for slot in self.slots:  # reaches a source built since the stop was asked
                    slot.request_stop("")
                for slot in self.slots:
                    slot.thread.join(1.0)
        return 1 if self.output.broken.is_set() else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m telegraf_bridge.plugins.host --config host.toml``."""
    args = parse_args("host", sys.argv[1:] if argv is None else argv)
    early_stop: list[str] = []
    host: Host | None = None

    def on_signal(signum: int, _frame: object) -> None:
        name = signals.Signals(signum).name
        if host is None:
            early_stop.append(name)
        else:
            host.request_stop(f"received {name}")

    signals.signal(signals.SIGTERM, on_signal)
    signals.signal(signals.SIGINT, on_signal)
    setup_logging(debug=args.debug)
    for handler in logging.getLogger().handlers:
        handler.addFilter(SourceTag())
    if args.once or args.config is None:
        log.error("the host runs under Telegraf: give --config host.toml (no --once)")
        return EXIT_CONFIG
    try:
        sources = load_host_config(args.config)
        for hosted in sources:
            plugin_spec(hosted.plugin)  # an unknown plugin is the host's config error
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    host = Host(sources, SharedOutput(sys.stdout.buffer))
    if early_stop:
        host.request_stop(f"received {early_stop[0]} while starting")
    status = host.run(None if args.ignore_stdin else sys.stdin)
    close_pipes_before_exit()
    return status
