"""A real Mosquitto broker (Debian's package) on a free loopback port, for tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Self

from rig.managed import Managed, stop_process
from rig.ports import free_port, wait_for


def find_mosquitto() -> str | None:
    """The broker binary; Debian installs it in /usr/sbin, outside a user's PATH."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


class Mosquitto(Managed):
    """``mosquitto -c`` with a generated config: loopback only, anonymous unless told otherwise."""

    def __init__(
        self,
        workdir: Path,
        *,
        extra_config: str = "",
        port: int | None = None,
        persistence: bool = False,
    ) -> None:
        """``extra_config`` may bring its own ``listener`` line (then on ``port``).

        With ``persistence`` the broker keeps sessions and queued QoS 1 messages in
        ``workdir`` across :meth:`restart`, as a production broker does.
        """
        found = find_mosquitto()
        if not found:
            raise RuntimeError("mosquitto is not installed: run `make setup`")
        self.binary = found
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.extra_config = extra_config
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        # Started as root, Mosquitto would drop to its own user, which cannot read files in
        # pytest's private (0700) temporary directories.
        lines = ["user root"] if os.geteuid() == 0 else []
        if "listener " not in self.extra_config:
            lines.append(f"listener {self.port} 127.0.0.1")
        if "allow_anonymous" not in self.extra_config:
            lines.append("allow_anonymous true")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        else:
            lines.append("persistence false")
        conf.write_text("\n".join([*lines, self.extra_config]) + "\n")
        log = (self.workdir / "mosquitto.log").open("ab")
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

    def restart(self) -> None:
        """Stop (SIGTERM: a persistent broker saves its sessions) and start on the same port."""
        self.stop()
        self.start()
