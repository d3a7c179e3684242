"""Run ``taptap observe`` as a child: its stdout lines to a callback, its stderr to our log.

Why a child process and not a library: taptap is the decoder people trust and update (Rust,
from crates.io); wrapping its CLI keeps the protocol knowledge in one place. The child must not
outlive us (it would hold the serial port and make the next start fail with "busy"), so it
gets SIGTERM from the kernel when the thread that started it dies, and we stop it on close.
"""

from __future__ import annotations

import ctypes
import logging
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

from telegraf_bridge.plugins.common import worth_logging

log = logging.getLogger("telegraf_bridge.plugins.taptap")

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 5.0
# env_logger's default format: "[2026-11-23T10:00:00Z ERROR taptap::observer] message".
_ENV_LOGGER = re.compile(r"\[(?:\S+\s+)?(ERROR|WARN|INFO|DEBUG|TRACE)\s+([^\]\s]*)\s*\]\s?(.*)")
_LEVELS = {
    "ERROR": logging.ERROR,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
    "TRACE": logging.DEBUG,
}
_DIGITS = re.compile(r"\d+")
MAX_STDERR_KINDS = 256


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class StderrRelay:
    """Relays taptap's log lines at their own level, each kind sparingly.

    taptap logs one line per discarded report (e.g. before its slot clock is known), so one
    kind of message (digits ignored) is logged the 1st, 10th, 100th ... time, as skips are.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._seen: dict[str, int] = {}
        self.last_error = ""

    def line(self, raw: str) -> None:
        """Log one stderr line of the child."""
        text = raw.rstrip("\r\n")
        if not text.strip():
            return
        match = _ENV_LOGGER.match(text)
        if match:
            level = _LEVELS[match.group(1)]
            message = match.group(3)
        else:
            # A panic message or anything else not from env_logger: an error if it says so.
            lowered = text.lower()
            level = logging.ERROR if ("panick" in lowered or "error" in lowered) else logging.INFO
            message = text
        if level >= logging.WARNING:
            self.last_error = message[:300]
        kind = f"{level}:{_DIGITS.sub('#', message)[:120]}"
        if kind not in self._seen and len(self._seen) >= MAX_STDERR_KINDS:
            self._seen.clear()
        count = self._seen.get(kind, 0) + 1
        self._seen[kind] = count
        if worth_logging(count):
            suffix = f" (occurrence {count})" if count > 1 else ""
            self._logger.log(level, "taptap: %s%s", message, suffix)


class TaptapProcess:
    """One run of the child: started once, read to the end, stopped once."""

    def __init__(
        self,
        argv: Sequence[str],
        on_line: Callable[[bytes], None],
        on_skip: Callable[[str, str], None],
        stderr: StderrRelay,
        *,
        max_line_bytes: int,
        stop_event: threading.Event,
    ) -> None:
        self.argv = list(argv)
        self._on_line = on_line
        self._on_skip = on_skip
        self._stderr = stderr
        self._max = max_line_bytes
        self._stop = stop_event
        self._proc: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self.started_at = 0.0

    def start(self) -> None:
        """Start the child; raises OSError when it cannot be executed."""
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        self.started_at = time.monotonic()
        out, err = self._proc.stdout, self._proc.stderr
        if out is None or err is None:  # pragma: no cover - both are PIPE above
            raise OSError("taptap's output pipes were not created")
        self._threads = [
            threading.Thread(target=self._read_stdout, args=(out,), name="taptap-out", daemon=True),
            threading.Thread(target=self._read_stderr, args=(err,), name="taptap-err", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def finished(self) -> bool:
        """Whether the child has exited and all its output has been read."""
        if self._proc is None or self._proc.poll() is None:
            return False
        return not any(t.is_alive() for t in self._threads)

    @property
    def returncode(self) -> int | None:
        """The exit status (negative: killed by that signal); None while running."""
        return self._proc.returncode if self._proc is not None else None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; joins the reader threads."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for thread in self._threads:
            thread.join(STOP_GRACE_S)

    # -- readers (their own threads) --------------------------------------------------------

    def _read_stdout(self, stream: IO[bytes]) -> None:
        limit = self._max
        skipping = False
        try:
            while True:
                chunk = stream.readline(limit + 1)
                if not chunk:
                    return
                complete = chunk.endswith(b"\n")
                if skipping:
                    skipping = not complete
                    continue
                if len(chunk) > limit:
                    # Longer than any report can be: drop it whole, up to its newline.
                    self._on_skip("line_too_long", f"a line of more than {limit} bytes")
                    skipping = not complete
                    continue
                if not complete:
                    # The child died mid-line (or closed stdout): a partial report is no report.
                    self._on_skip("truncated_line", f"{len(chunk)} bytes without a newline")
                    continue
                self._on_line(chunk)
                if self._stop.is_set():
                    return
        except (OSError, ValueError):
            return
        finally:
            stream.close()

    def _read_stderr(self, stream: IO[bytes]) -> None:
        try:
            for raw in stream:
                self._stderr.line(raw[:4096].decode("utf-8", "replace"))
        except (OSError, ValueError):
            return
        finally:
            stream.close()
