"""The env file the units read (``EnvironmentFile=``): the tokens, never in a unit or a config.

Read the way systemd reads it, so the install-time check sees what the service will see;
created 0600 with variable names only, and never replaced (it holds the user's secrets).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_FILE_MODE = 0o600


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines as systemd's EnvironmentFile= reads them (comments skipped)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_env_file(path: Path, notes: list[str]) -> dict[str, str]:
    """The existing env file's values ({} when there is none); an unreadable one is a note."""
    if not path.is_file():
        return {}
    try:
        return read_env_file(path)
    except (OSError, UnicodeDecodeError) as exc:
        notes.append(f"cannot read {path} ({exc}); checked the config without it")
        return {}


def env_file_notes(path: Path, names: list[str], values: dict[str, str]) -> list[str]:
    """What an existing env file lacks (variables Telegraf needs) or exposes (its mode)."""
    if not (path.is_file() and os.access(path, os.R_OK)):
        return []
    notes = []
    unset = [n for n in names if not values.get(n)]
    if unset:
        notes.append(f"{path} does not set {', '.join(unset)}, which Telegraf reads at start-up")
    if path.stat().st_mode & 0o077:
        notes.append(f"{path} is readable by others: sudo chmod 600 {path}")
    return notes


def create_env_file(path: Path, text: str) -> None:
    """Create the env file with mode 0600 from the first byte; never replace an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ENV_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(ENV_FILE_MODE)
