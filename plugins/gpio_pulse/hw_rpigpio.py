"""Edge capture with the RPi.GPIO API, as seed 003 did (or the drop-in ``rpi-lgpio``).

Kept for systems that already run RPi.GPIO; ``gpiod`` is the better backend. What RPi.GPIO
cannot do, and what the errors here therefore say:

- Its edge detection goes through /sys/class/gpio with GPIO numbers that assume the header's
  chip starts at 0. Since Linux 6.6 (Raspberry Pi OS from March 2024) that chip starts at 512,
  so ``add_event_detect`` fails with RuntimeError("Failed to add edge detection").
- It maps the SoC's GPIO registers, and the Pi 5's header lives on the RP1 chip instead: setup
  fails with "Cannot determine SOC peripheral base address" (or edge detection fails as above).

In both cases the fix is ``backend = "gpiod"``, or replacing RPi.GPIO with ``rpi-lgpio``, which
provides the same ``RPi.GPIO`` module on top of the GPIO character device.

Timestamps are ``time.time_ns()`` taken in the callback, on RPi.GPIO's own event thread: the
library hands over no kernel timestamp, so an edge is placed when its callback runs (usually
well under a millisecond later, longer on a busy Pi Zero).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from telegraf_bridge.plugins.gpio_pulse.backend import (
    GROUP_HINT,
    INSTALL_HINT,
    BackendError,
    EdgeSink,
)
from telegraf_bridge.plugins.gpio_pulse.channels import Channel

log = logging.getLogger(__name__)

USE_GPIOD = (
    'use backend = "gpiod" instead, or replace RPi.GPIO with the drop-in rpi-lgpio (pip '
    "uninstall RPi.GPIO; pip install rpi-lgpio); for gpiod, " + INSTALL_HINT
)


def load_rpigpio() -> ModuleType:
    """The ``RPi.GPIO`` module, or BackendError saying why it is not usable here.

    ``importlib`` (not an import statement) so tests can put an autospec'd module in
    ``sys.modules`` without also patching the ``RPi`` package's attribute.
    """
    try:
        return importlib.import_module("RPi.GPIO")
    except ImportError as exc:
        raise BackendError(
            f"RPi.GPIO is not installed ({exc}); {USE_GPIOD}",
            reason="RPi.GPIO is not installed",
        ) from exc
    except RuntimeError as exc:
        # The C extension (and rpi-lgpio) refuse to load where no Raspberry Pi revision is found.
        raise BackendError(
            f"RPi.GPIO refuses to load ({exc}): it found no Raspberry Pi board revision; "
            f"{USE_GPIOD}",
            reason=f"RPi.GPIO refuses to load ({exc})",
        ) from exc


def open_rpigpio(channels: Sequence[Channel]) -> RpiGpioBackend:
    """The RPi.GPIO backend; pins are claimed by ``start``."""
    return RpiGpioBackend(load_rpigpio(), channels)


class RpiGpioBackend:
    """Edge callbacks from RPi.GPIO's event thread, one ``add_event_detect`` per channel."""

    name = "rpi"

    def __init__(
        self,
        gpio: ModuleType,
        channels: Sequence[Channel],
        *,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.gpio = gpio
        self.channels = list(channels)
        self.index = {c.pin: i for i, c in enumerate(self.channels)}
        self.wall_ns = wall_ns
        self._on_edge: EdgeSink | None = None
        self._set_up: list[int] = []
        self._detecting: list[int] = []
        self._problem: str | None = None

    def start(self, on_edge: EdgeSink) -> None:
        """Set the pins up as inputs and add edge detection; BackendError on failure."""
        if self._set_up:
            raise BackendError("the RPi.GPIO backend is already running; stop() it first")
        gpio = self.gpio
        edges = {"rising": gpio.RISING, "falling": gpio.FALLING, "both": gpio.BOTH}
        pulls = {"up": gpio.PUD_UP, "down": gpio.PUD_DOWN, "none": gpio.PUD_OFF}
        self._problem = None
        self._on_edge = on_edge
        channel: Channel | None = None
        try:
            gpio.setwarnings(False)  # "channel already in use" warnings: errors say more
            gpio.setmode(gpio.BCM)
            for channel in self.channels:
                gpio.setup(channel.pin, gpio.IN, pull_up_down=pulls[channel.pull])
                self._set_up.append(channel.pin)
                # RPi.GPIO's C parser takes bouncetime as an int > 0: leave it out for none
                # (None is a TypeError there) and round sub-millisecond debounce up to 1 ms.
                extra: dict[str, Any] = {}
                if channel.debounce_s > 0:
                    extra["bouncetime"] = max(1, round(channel.debounce_s * 1000))
                gpio.add_event_detect(
                    channel.pin, edges[channel.edge], callback=self._callback, **extra
                )
                self._detecting.append(channel.pin)
        except (RuntimeError, ValueError) as exc:
            self.stop()
            raise _setup_error(exc, channel) from exc

    def stop(self) -> None:
        """Remove edge detection and reset the pins; idempotent."""
        self._on_edge = None
        gpio = self.gpio
        for pin in self._detecting:
            try:
                gpio.remove_event_detect(pin)
            except (RuntimeError, ValueError) as exc:
                log.debug("remove_event_detect(%d): %s", pin, exc)
        self._detecting = []
        if self._set_up:
            try:
                gpio.cleanup(self._set_up)
            except (RuntimeError, ValueError) as exc:
                log.debug("cleanup(%s): %s", self._set_up, exc)
            self._set_up = []

    def problem(self) -> str | None:
        """A failure inside the edge callback, if any (RPi.GPIO would only print it)."""
        return self._problem

    def _callback(self, pin: int) -> None:
        t_ns = self.wall_ns()
        on_edge = self._on_edge
        if on_edge is None:
            return
        try:
            on_edge(self.index[pin], t_ns)
        except Exception as exc:
            self._problem = f"handling an edge on GPIO{pin} failed: {exc!r}"
            self._on_edge = None


def _setup_error(exc: Exception, channel: Channel | None) -> BackendError:
    """RPi.GPIO's RuntimeError texts, turned into what is wrong and what to do."""
    text = str(exc)
    where = f"GPIO{channel.pin} ({channel.name})" if channel is not None else "the GPIO pins"
    lowered = text.lower()
    if "failed to add edge detection" in lowered:
        return BackendError(
            f"RPi.GPIO cannot detect edges on {where} ({text}): RPi.GPIO's edge detection "
            "does not work on Linux 6.6 or later nor on a Raspberry Pi 5 (on older kernels "
            "this also means no write access to /sys/class/gpio: group gpio); " + USE_GPIOD,
            reason=f"RPi.GPIO edge detection failed on {where} (kernel >= 6.6 or Pi 5)",
        )
    if "peripheral base address" in lowered or "mmap of gpio registers" in lowered:
        return BackendError(
            f"RPi.GPIO does not support this board ({text}); on a Raspberry Pi 5 only the "
            "GPIO character device works: " + USE_GPIOD,
            reason=f"RPi.GPIO does not support this board ({text})",
        )
    if "no access to /dev/mem" in lowered or "permission" in lowered:
        return BackendError(
            f"RPi.GPIO has no access to the GPIO device ({text}); {GROUP_HINT} (RPi.GPIO "
            "uses /dev/gpiomem; never run the plugin as root for this)",
            reason=f"RPi.GPIO has no access to the GPIO device ({text})",
        )
    if "busy" in lowered or "in use" in lowered:
        return BackendError(
            f"{where} is in use by another process or a kernel driver ({text}); stop it or "
            "wire the meter to a free pin",
        )
    return BackendError(f"RPi.GPIO could not set up {where}: {text}; {USE_GPIOD}")
