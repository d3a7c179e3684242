"""The execd side of a plugin: when to gather, how to write, when to stop.

Telegraf's execd input starts the plugin, reads line protocol from its stdout, logs its stderr,
and either writes a newline to its stdin at every interval (``signal = "STDIN"``) or leaves it
to its own schedule (``signal = "none"``). On shutdown it closes stdin, then sends SIGTERM, then
SIGKILL. This module implements exactly that contract once, for every plugin.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import logging
import math
import signal as signals
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import BinaryIO, Literal, Protocol, TextIO

from telegraf_bridge.plugins.common._clock import ClockGuard
from telegraf_bridge.plugins.common._lineprotocol import LineProtocolSerializer, Point

log = logging.getLogger("telegraf_bridge.runner")

SignalMode = Literal["STDIN", "none"]
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux only
PIPE_SIZE = 1 << 20
Emit = Callable[[Point], None]


class Source(Protocol):
    """What a plugin provides: one gather per prompt, and a close that saves its state."""

    def gather(self, emit: Emit) -> bool | None:
        """Collect points and pass each to ``emit``; called from the runner's thread only.

        Returning True means more data is waiting: the runner gathers again at once, so a
        source can work through a backlog in bounded batches.
        """

    def close(self) -> None:
        """Save state and release devices; called once, last."""


class LineWriter:
    """Writes serialised batches to stdout: whole lines only, flushed after every batch.

    Thread-safe, so plugins with their own reader threads (a tailed file, a child process) can
    write as data arrives. A batch is written with one ``write`` call under a lock, so lines
    from two threads never interleave.
    """

    def __init__(self, stream: BinaryIO, serializer: LineProtocolSerializer) -> None:
        self._stream = stream
        self.serializer = serializer
        self._lock = threading.Lock()
        self.points_written = 0
        self.bytes_written = 0
        try:
            self._fd: int | None = stream.fileno()
        except (OSError, ValueError, AttributeError):
            self._fd = None
        self._grow_pipe()

    def _grow_pipe(self) -> None:
        """Ask for a 1 MiB pipe to Telegraf (Linux default: 64 KiB).

        The plugin then prepares its next batch while Telegraf parses the last one, instead of
        blocking in write(). Not a pipe, or above /proc/sys/fs/pipe-max-size: the default stays.
        """
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._fd, F_SETPIPE_SZ, PIPE_SIZE)

    def unread_bytes(self) -> int:
        """Bytes written that the reader (Telegraf) has not read yet; 0 when not a pipe."""
        if self._fd is None:
            return 0
        buf = array.array("i", [0])
        try:
            fcntl.ioctl(self._fd, termios.FIONREAD, buf, True)
        except OSError:
            return 0
        return int(buf[0])

    # Whether a batch that could not be written to stdout is still kept (JournaledWriter).
    journaled = False
    # At the disk-buffer cap (only a journal can hold data back; see _journaled_writer).
    holding = False
    # Telegraf has gone, and batches are kept for the next start (a journal again): without a
    # journal a vanished Telegraf raises from write_points instead.
    output_gone = False

    def journal_status(self) -> dict[str, int | float | bool]:
        """The journal's figures (none: this writer keeps no journal; see _journaled_writer)."""
        return {}

    def journal_fields(self) -> dict[str, int | float | bool]:
        """The journal's figures as status-point fields (``journal_entries``, ...)."""
        return {f"journal_{key}": value for key, value in self.journal_status().items()}

    def write_points(
        self,
        points: Iterable[Point],
        *,
        meta: bytes = b"",
        durable: bool = False,
    ) -> int:
        """Serialise and write ``points``; returns how many lines were written.

        Raises BrokenPipeError when Telegraf has gone away: the caller must then not treat
        the points as delivered. ``meta`` and ``durable`` matter to the journaled writer only.
        """
        return self.write_lines(self.serializer.lines(points), meta=meta, durable=durable)

    def write_lines(self, lines: Sequence[str], *, meta: bytes = b"", durable: bool = False) -> int:
        """Write lines already serialised; as :meth:`write_points` otherwise.

        For a source that renders its own lines (ndjson_tail's fast path), by the rules of
        this writer's serializer.
        """
        del meta, durable  # the journaled writer's
        if not lines:
            return 0
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        with self._lock:
            self._stream.write(payload)
            self._stream.flush()
            self.points_written += len(lines)
            self.bytes_written += len(payload)
        return len(lines)


class Runner:
    """Drives a :class:`Source` under Telegraf's execd protocol.

    Gather prompts that arrive while a gather is running are coalesced into one follow-up
    gather, never queued: a slow device must not build up a backlog of polls.
    """

    def __init__(
        self,
        source: Source,
        writer: LineWriter,
        *,
        signal: SignalMode = "none",
        interval_s: float = 10.0,
        clock_guard: ClockGuard | None = None,
        stdin: TextIO | None = None,
        watch_stdin: bool = True,
        once: bool = False,
    ) -> None:
        if signal not in ("STDIN", "none"):
            raise ValueError(f"signal must be 'STDIN' or 'none', got {signal!r}")
        if interval_s <= 0:
            raise ValueError("interval must be positive")
        self.source = source
        self.writer = writer
        self.signal = signal
        self.interval_s = interval_s
        self.clock_guard = clock_guard
        self.once = once
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._gather_requested = False
        self._lock = threading.Lock()
        self._stdin = stdin if stdin is not None else sys.stdin
        self._watch_stdin = watch_stdin
        self.gathers = 0
        self.prompts = 0
        # Called once the signal handlers are in place (the status reporter starts here, so
        # nothing widens the window in which SIGTERM still has its default action).
        self.on_start: list[Callable[[], None]] = []

    # -- control -----------------------------------------------------------------------------

    def request_gather(self) -> None:
        """Ask for one gather; repeated requests before it starts count as one."""
        with self._lock:
            self.prompts += 1
            self._gather_requested = True
        self._wake.set()

    def request_stop(self, why: str = "") -> None:
        """Stop after the current gather; state is saved by ``close``."""
        if not self.stop_event.is_set() and why:
            log.info("stopping: %s", why)
        self.stop_event.set()
        self._wake.set()

    def _read_stdin(self) -> None:
        try:
            for _line in self._stdin:
                if self.signal == "STDIN":
                    self.request_gather()
        except (OSError, ValueError):
            pass
        self.request_stop("stdin closed")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.request_stop(f"received {signals.Signals(signum).name}")

    # -- loop --------------------------------------------------------------------------------

    def _next_tick(self, now: float) -> float:
        return (math.floor(now / self.interval_s) + 1) * self.interval_s

    def _gather_once(self) -> bool:
        """One gather; False when the output is gone and the plugin must stop."""
        if self.clock_guard is not None and not self.clock_guard.is_sane():
            return True
        batch: list[Point] = []
        more = False
        try:
            more = bool(self.source.gather(batch.append))
            # A source that keeps a checkpoint of its counters hands it over with the points
            # they produced, so a journal stores both in one write (see gpio_pulse).
            checkpoint: Callable[[], bytes] | None = getattr(self.source, "checkpoint", None)
            meta = checkpoint() if checkpoint is not None and batch else b""
            self.writer.write_points(batch, meta=meta)
        except (BrokenPipeError, ValueError, OSError) as exc:
            if isinstance(exc, BrokenPipeError) or "closed file" in str(exc):
                # A warning, not an error: Telegraf closes our pipes when it shuts down (and
                # logs its own failure if it crashed); state is saved next either way.
                log.warning("cannot write to stdout (%s); Telegraf has gone away", exc)
                return False
            log.exception("gather failed; will try again at the next interval")
        except Exception:
            log.exception("gather failed; will try again at the next interval")
        self.gathers += 1
        if more and not self.stop_event.is_set():
            self.request_gather()
        return True

    def run(self) -> int:
        """Run until stdin closes or SIGTERM/SIGINT; returns the exit status."""
        if threading.current_thread() is threading.main_thread():
            signals.signal(signals.SIGTERM, self._on_signal)
            signals.signal(signals.SIGINT, self._on_signal)
        for hook in self.on_start:
            hook()
        if self._watch_stdin and not self.once:
            threading.Thread(target=self._read_stdin, name="stdin", daemon=True).start()
        status = 0
        try:
            if self.once:
                return 0 if self._gather_once() else 1
            if self.signal == "none":
                self.request_gather()
            deadline = self._next_tick(time.time())
            while not self.stop_event.is_set():
                timeout = None if self.signal == "STDIN" else max(0.0, deadline - time.time())
                self._wake.wait(timeout)
                self._wake.clear()
                if self.stop_event.is_set():
                    break
                with self._lock:
                    due = self._gather_requested
                    self._gather_requested = False
                if self.signal == "none" and time.time() >= deadline:
                    due = True
                    deadline = self._next_tick(time.time())
                if due and not self._gather_once():
                    status = 1
                    break
        finally:
            try:
                self.source.close()
            except Exception:
                log.exception("saving state at shutdown failed")
                status = 1
        return status
