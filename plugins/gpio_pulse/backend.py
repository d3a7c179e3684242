"""The edge-capture interface of gpio_pulse, and the choice of a hardware backend.

A backend turns pin edges into ``on_edge(channel index, edge time)`` calls on a thread of its
own; everything after that (bounce filtering, counting, output) is the plugin's. Two hardware
backends exist because Raspberry Pi systems in the field differ:

- ``gpiod`` (libgpiod v2, the kernel's GPIO character device): timestamps taken in the
  kernel's interrupt handler, kernel debounce, works on every Pi including the Pi 5 and on
  kernels >= 6.6. The preferred backend.
- ``rpi`` (RPi.GPIO, or the drop-in ``rpi-lgpio``): what seed 003 used; kept for systems that
  already have it. Its edge detection fails on a Pi 5 and on kernels >= 6.6 (see hw_rpigpio).

``"auto"`` never falls back to simulation: a pulse counter that silently invents pulses
because a library is missing would write fiction into the energy history.

The GPIO libraries are optional extras, so nothing here imports them at module level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from telegraf_bridge.plugins.gpio_pulse.channels import Channel

log = logging.getLogger(__name__)

EdgeSink = Callable[[int, int], None]
"""``(channel index into the channels list, edge time in ns since the Unix epoch)``."""

KINDS = ("auto", "gpiod", "rpi")
INSTALL_HINT = (
    "install the libgpiod v2 Python bindings with pip install 'telegraf-bridge[gpio]' "
    "(on Debian 13 / Raspberry Pi OS trixie or later also sudo apt install python3-libgpiod; "
    "bookworm's python3-libgpiod is the old v1 API and does not work)"
)
GROUP_HINT = (
    "the user running the plugin needs group gpio: sudo usermod -aG gpio USER, then log in "
    "again (in a container, pass the device, e.g. --device /dev/gpiochip0, and its group)"
)


class BackendError(Exception):
    """Edge capture cannot start; the message says what is wrong and how to fix it.

    ``reason`` is a short form without the fix, used when ``"auto"`` lists why each library
    was passed over and then gives the fixes once.
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


class Backend(Protocol):
    """What the plugin needs from an edge source (the sim backend follows it too)."""

    name: str

    def start(self, on_edge: EdgeSink) -> None:
        """Claim the lines and start capturing on the backend's own thread(s).

        Raises BackendError when the lines cannot be claimed.
        """

    def stop(self) -> None:
        """Stop capturing and release the lines; idempotent."""

    def problem(self) -> str | None:
        """A fatal problem the capture thread met since start, or None while all is well."""


def open_backend(kind: str, channels: Sequence[Channel], *, chip: str = "auto") -> Backend:
    """The hardware backend for ``kind`` ("auto", "gpiod" or "rpi"), not yet started.

    ``chip`` is a GPIO character device such as ``/dev/gpiochip4``, or "auto" to find the
    Raspberry Pi header's chip; RPi.GPIO has no notion of chips and ignores it.
    """
    # Imported on use: the hardware modules import BackendError and EdgeSink from here.
    from telegraf_bridge.plugins.gpio_pulse import hw_gpiod, hw_rpigpio  # noqa: PLC0415 - import cycle

    if kind == "sim":
        raise ValueError('backend "sim" is built by the plugin itself, not by open_backend')
    if kind == "gpiod":
        return hw_gpiod.open_gpiod(channels, chip=chip)
    if kind == "rpi":
        if chip != "auto":
            log.warning('chip = %r is ignored with backend = "rpi" (RPi.GPIO has no chips)', chip)
        return hw_rpigpio.open_rpigpio(channels)
    if kind != "auto":
        raise ValueError(f"unknown GPIO backend {kind!r}: expected one of {', '.join(KINDS)}")
    try:
        return hw_gpiod.open_gpiod(channels, chip=chip)
    except BackendError as gpiod_error:
        try:
            backend = hw_rpigpio.open_rpigpio(channels)
        except BackendError as rpi_error:
            raise BackendError(
                'backend = "auto" found no usable GPIO library: '
                f"gpiod: {gpiod_error.reason}; RPi.GPIO: {rpi_error.reason}. "
                f"To fix: {INSTALL_HINT}; {GROUP_HINT}. "
                'To try the plugin without hardware, set backend = "sim" explicitly'
            ) from gpiod_error
        log.info('backend = "auto": gpiod is not usable (%s); using RPi.GPIO', gpiod_error.reason)
        return backend
