"""Atomic file writes with a given mode, for rendered configs that may name secrets."""

from __future__ import annotations

import os
from pathlib import Path

from telegraf_bridge.plugins.common._state import fsync_dir


def write_atomic(path: Path, content: str, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``content`` so readers see the old or the new file, never a mix.

    The temporary file is created with ``mode`` from the start (never world-readable, even for
    an instant) in the target's directory, fsynced, then renamed over the target.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
