"""What the poll loop needs from a transport, and how a failed poll is reported."""

from __future__ import annotations

from typing import Protocol

from telegraf_bridge.plugins.hoymiles.snapshot import Snapshot


class PollError(Exception):
    """The DTU could not be read this time (refused, timed out, garbage, not ready)."""


class Transport(Protocol):
    """A way to read one snapshot from a DTU."""

    name: str
    endpoint: str

    def poll(self) -> Snapshot:
        """One complete reading, or :class:`PollError`."""

    def close(self) -> None:
        """Release sockets or loops."""
