"""The real Telegraf running a config, for tests: started, watched, and always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

from rig.managed import Managed
from rig.ports import wait_for


class TelegrafProcess(Managed):
    """``telegraf --config FILE`` with its log in ``workdir``; SIGTERM (then SIGKILL) on stop."""

    def __init__(
        self,
        binary: Path | str,
        config: Path,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.binary = str(binary)
        self.config = Path(config)
        self.workdir = Path(workdir)
        self.env = {**os.environ, **(env or {})}
        self.extra_args = extra_args
        self.log_path = self.workdir / "telegraf.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "--config", str(self.config), "--strict-env-handling", *self.extra_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        wait_for(lambda: text in self.log(), timeout=timeout, what=f"{text!r} in Telegraf's log")

    def stop(self, *, timeout: float = 30.0) -> int | None:
        """Graceful stop (SIGTERM); SIGKILL after ``timeout``. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL Telegraf and its plugin processes (its whole session)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
