"""Atomic file writes for the CLI: the same function the plugins' state files use."""

from telegraf_bridge.plugins.common._state import write_atomic

__all__ = ["write_atomic"]
