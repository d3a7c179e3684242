"""Every filesystem location the bundle uses, in one place.

The defaults on a device (data under ``/var/lib``, configuration under ``/etc``) are named
once here: the schema's defaults, the plugins' fallback state directory, the container
entrypoint and health probe and ``install-systemd`` all read them from this module, so a
packager who moves them changes one file. Standard library only: the health probe and every
plugin import it, on a Pi Zero too.

Tests point the build and cache locations into ``tmp_path`` through the environment variables
named here, so a test run never touches the developer's cache or state.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "TELEGRAF_BRIDGE_CACHE"
TELEGRAF_BIN_ENV = "TELEGRAF_BIN"

# What Telegraf and the plugins write: the disk buffer, the plugins' state, rendered configs.
DATA_DIR = Path("/var/lib/telegraf-bridge")
BUFFER_DIR = DATA_DIR / "buffer"
STATE_DIR = DATA_DIR / "state"
# What the administrator writes: bridge.yaml, the environment file, iotflow's device registry.
CONFIG_DIR = Path("/etc/telegraf-bridge")
CONFIG_FILE = CONFIG_DIR / "bridge.yaml"
ENV_FILE = CONFIG_DIR / "bridge.env"
DEVICE_REGISTRY = CONFIG_DIR / "devices.yaml"


def cache_root() -> Path:
    """Where builds (the custom Telegraf) are cached: outside any checkout, shared by clones."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "telegraf-bridge"


def templates_dir() -> Path:
    """The Jinja2 templates shipped inside the package."""
    from importlib import resources  # noqa: PLC0415 - lazy: a plugin never calls this

    return Path(str(resources.files("telegraf_bridge.templates")))


def telegraf_dir() -> Path:
    """The pinned Telegraf version, its plugin list and its build script."""
    from importlib import resources  # noqa: PLC0415 - lazy: a plugin never calls this

    return Path(str(resources.files("telegraf_bridge.telegraf")))


def telegraf_version() -> str:
    """The Telegraf version the bundle pins (telegraf/VERSION)."""
    return (telegraf_dir() / "VERSION").read_text(encoding="utf-8").strip()


def telegraf_build_tags() -> list[str]:
    """Plugin build tags of the custom Telegraf (telegraf/plugins.txt), without ``custom``."""
    lines = (telegraf_dir() / "plugins.txt").read_text(encoding="utf-8").splitlines()
    return sorted(
        line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
    )
