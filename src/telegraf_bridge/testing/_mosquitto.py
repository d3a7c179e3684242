"""A real Mosquitto broker (Debian's package) on a free loopback port, for tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import Self

from telegraf_bridge.testing._managed import Managed, stop_process
from telegraf_bridge.testing._ports import free_port, wait_for


def find_mosquitto() -> str | None:
    """The broker binary; Debian installs it in /usr/sbin, outside a user's PATH."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


class Mosquitto(Managed):
    """``mosquitto -c`` with a generated config: loopback only, anonymous unless told otherwise."""

    def __init__(self, workdir: Path, *, extra_config: str = "") -> None:
        found = find_mosquitto()
        if not found:
            raise RuntimeError("mosquitto is not installed: run `make setup`")
        self.binary = found
        self.workdir = Path(workdir)
        self.port = free_port()
        self.extra_config = extra_config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        allow = "" if "allow_anonymous" in self.extra_config else "allow_anonymous true\n"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n{allow}persistence false\n{self.extra_config}\n"
        )
        log = (self.workdir / "mosquitto.log").open("wb")
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        wait_for(self._listening, timeout=20, what=f"mosquitto on port {self.port}")
        return self

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"mosquitto exited: {(self.workdir / 'mosquitto.log').read_text(errors='replace')}"
            )
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)
