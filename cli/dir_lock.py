"""One Telegraf per buffer and state directory: an advisory lock that a second one runs into.

Two Telegrafs on one buffer directory append to the same write-ahead logs, and two copies of a
plugin on one state directory overwrite each other's file positions and meter totals. So
``bridge-cli run`` and the container entrypoint take an exclusive ``flock`` on a lock file in
each directory before they start Telegraf, and hand the open lock to Telegraf itself: the lock
lasts exactly as long as the Telegraf that uses the directories, also when ``run`` is killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = ".telegraf-bridge.lock"


class DirectoryBusy(Exception):
    """Another process holds the lock on a directory."""


def _holder(fd: int) -> str:
    """The pid written by the process that holds the lock, as text ("" when unknown)."""
    with contextlib.suppress(OSError):
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return ""


def lock_directories(directories: list[Path]) -> list[int]:
    """Lock each directory (creating it); returns the open lock descriptors.

    Raises :class:`DirectoryBusy`, naming the directory and the holder's pid, and releases what
    it had locked so far. The descriptors are inheritable so Telegraf can keep them (pass them in
    ``pass_fds``, or leave them open across ``exec``).
    """
    held: list[int] = []
    for directory in dict.fromkeys(Path(d).resolve() for d in directories):
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            release(held)
            who = f"pid {pid}" if pid else "another process"
            raise DirectoryBusy(
                f"{directory} is in use by another Telegraf of this bundle ({who}); stop it "
                "first, or give this config its own agent.buffer_directory and "
                "agent.state_directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.set_inheritable(fd, True)
        held.append(fd)
    return held


def release(fds: list[int]) -> None:
    """Close lock descriptors (the lock goes with the last process that has them open)."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
