"""What the poll loop needs from a transport, and how a failed poll is reported."""

from __future__ import annotations

import logging
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


def quiet_library_log(name: str) -> None:
    """Keep a device library's own error lines out of Telegraf's log (unless debugging).

    pymodbus logs an error for every refused connection and hoymiles-wifi one for every bad
    checksum: a DTU that is off for the night would put an ``E!`` line in Telegraf's log at
    each poll. The poll loop reports the same failure itself, once when it starts and once
    when it ends, with the library's message as the reason.
    """
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger(name).setLevel(logging.CRITICAL)
