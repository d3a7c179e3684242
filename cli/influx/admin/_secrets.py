"""Credentials the admin backends create: where they are stored and how they are made.

A new password or token is shown to nobody: it goes to a file of its own, mode 0600, with no
trailing newline (Telegraf's ``token_file`` and a ``password_env`` loaded from an env file take
the bytes as they are), and the report names only the file.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from telegraf_bridge.plugins.common import write_atomic

# 32 URL-safe characters: strong, and free of characters that need quoting in InfluxQL,
# shells or .env files.
_PASSWORD_BYTES = 24


def secret_file(secrets_dir: Path, sink_name: str, role: str, kind: str) -> Path:
    """``<secrets_dir>/<sink>_<role>_<kind>`` with '-' as '_' (e.g. ``influx1_writer_password``)."""
    return secrets_dir / f"{sink_name.replace('-', '_')}_{role}_{kind}"


def new_password() -> str:
    """A random password for an InfluxDB 1.x user."""
    return secrets.token_urlsafe(_PASSWORD_BYTES)


def store_secret(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` (mode 0600, atomically, no trailing newline)."""
    write_atomic(path, value, mode=0o600)


def read_secret(path: Path) -> str | None:
    """The stored secret, or None when the file is missing or empty."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return value or None
