"""Edge capture through the kernel's GPIO character device with libgpiod v2 (PyPI ``gpiod``).

Why this is the preferred backend: the kernel timestamps every edge in its interrupt handler
and queues it (up to 1024 per request) in a buffer that a slow reader cannot lose silently
(every event carries a per-line sequence number, so gaps are counted), debounce runs in the
kernel, and the character device is the one GPIO interface that works on every Raspberry Pi
including the Pi 5 and on kernels >= 6.6.

Timestamps: the kernel stamps events with CLOCK_MONOTONIC unless asked otherwise. They are
converted to wall-clock (CLOCK_REALTIME) nanoseconds by adding ``time.time_ns() -
time.monotonic_ns()`` sampled right after each batch is read. ``event_clock=REALTIME`` is not
used because the flag only exists since Linux 5.11 (the v2 uAPI itself since 5.10, which some
deployed Raspberry Pi OS images still run) and it would buy nothing: both ways an edge gets the
wall clock as it stands within milliseconds of the edge, so a wall-clock step (NTP setting the
clock of an RTC-less Pi after boot) misplaces at most the edges of the one batch read across
it. Python's ``time.monotonic_ns`` reads the same CLOCK_MONOTONIC as the kernel's events.

Thread ownership: libgpiod objects need external synchronisation, so after ``start`` only the
capture thread touches the line request, and it releases the lines itself when it ends.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from telegraf_bridge.plugins.common import worth_logging
from telegraf_bridge.plugins.gpio_pulse.backend import (
    GROUP_HINT,
    INSTALL_HINT,
    BackendError,
    EdgeSink,
)
from telegraf_bridge.plugins.gpio_pulse.channels import Channel

if TYPE_CHECKING:
    import gpiod

log = logging.getLogger(__name__)

CONSUMER = "telegraf-bridge"
DEV_DIR = Path("/dev")
# Labels of the chip that carries the 40-pin header's GPIO0-27, best first. On a Pi 5 the
# header is on the RP1 south bridge; its SoC's own chips (gpio-brcmstb@...) are not the header.
HEADER_LABELS = ("pinctrl-rp1", "pinctrl-bcm2712", "pinctrl-bcm2711", "pinctrl-bcm2835")
# Fallback for boards with an unknown label: the header needs GPIO0-27.
MIN_HEADER_LINES = 28
# The kernel caps a request's event buffer at 16 events per line for its 64 lines: ask for
# the most, so a reader delayed by a busy Pi Zero loses nothing.
EVENT_BUFFER_SIZE = 1024
# How often the capture thread looks at its stop flag: bounds how long stop() waits.
POLL = timedelta(seconds=0.25)
STOP_TIMEOUT_S = 2.0


def load_gpiod() -> ModuleType:
    """The libgpiod v2 module, or BackendError saying what to install."""
    try:
        import gpiod  # noqa: PLC0415 - optional extra, imported on use
    except ImportError as exc:
        raise BackendError(
            f"the gpiod module (libgpiod v2 bindings) is not installed ({exc}); {INSTALL_HINT}",
            reason="the gpiod module is not installed",
        ) from exc
    if not hasattr(gpiod, "request_lines") or not hasattr(gpiod, "LineSettings"):
        version = getattr(gpiod, "__version__", None) or "1.x"
        raise BackendError(
            f"the installed gpiod module ({version}, from {getattr(gpiod, '__file__', '?')}) "
            "is the libgpiod v1 API (Debian bookworm's python3-libgpiod); telegraf-bridge needs "
            "v2: pip install 'telegraf-bridge[gpio]' (gpiod>=2.1) in the plugin's environment",
            reason=f"the installed gpiod module is the old v1 API ({version})",
        )
    module: ModuleType = gpiod
    return module


def chip_path(chip: str) -> Path:
    """An explicit chip as a path: ``/dev/gpiochip4`` as is, ``gpiochip4`` under /dev."""
    path = Path(chip)
    return path if path.is_absolute() else DEV_DIR / path


def _chip_number(path: Path) -> int:
    digits = path.name.removeprefix("gpiochip")
    return int(digits) if digits.isdigit() else 1 << 30


def _permission_error(path: Path | str, exc: OSError) -> BackendError:
    return BackendError(
        f"no permission to open {path} ({exc.strerror or exc}); {GROUP_HINT}",
        reason=f"no permission to open {path}",
    )


def _is_permission(exc: OSError) -> bool:
    return isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM)


@dataclass(frozen=True)
class ChipChoice:
    """The chip to request lines from, with what its info says."""

    path: Path
    label: str
    num_lines: int


def _chip_info(module: ModuleType, path: Path) -> ChipChoice:
    with module.Chip(str(path)) as chip:
        info = chip.get_info()
    return ChipChoice(path, str(info.label), int(info.num_lines))


def _explicit_chip(module: ModuleType, chip: str) -> ChipChoice:
    """The chip the config names; one that cannot be opened is an error that says why."""
    path = chip_path(chip)
    try:
        return _chip_info(module, path)
    except OSError as exc:
        if _is_permission(exc):
            raise _permission_error(path, exc) from exc
        raise BackendError(
            f'cannot open GPIO chip {path} ({exc.strerror or exc}); set chip = "auto" or '
            "one of the chips gpiodetect lists",
            reason=f"cannot open {path} ({exc.strerror or exc})",
        ) from exc


def _open_chips(module: ModuleType) -> tuple[list[ChipChoice], list[tuple[Path, OSError]]]:
    """Every /dev/gpiochip* that opens, and those this user may not open."""
    seen: set[Path] = set()
    found: list[ChipChoice] = []
    denied: list[tuple[Path, OSError]] = []
    # The Pi 5 has /dev/gpiochip4 as a symlink to the RP1 chip on newer kernels: open each
    # device once, under its first (lowest-numbered) name.
    for path in sorted(DEV_DIR.glob("gpiochip*"), key=_chip_number):
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        try:
            found.append(_chip_info(module, path))
        except OSError as exc:
            if _is_permission(exc):
                denied.append((path, exc))
            else:
                log.debug("skipping %s: %s", path, exc)
    return found, denied


def _header_chip(found: list[ChipChoice]) -> ChipChoice | None:
    """The Raspberry Pi header's chip by its label, else the first chip with enough lines."""
    for label in HEADER_LABELS:
        for choice in found:
            if choice.label == label:
                return choice
    for choice in found:
        if choice.num_lines >= MIN_HEADER_LINES:
            log.info(
                "no Raspberry Pi GPIO chip label found; using %s (%s, %d lines)",
                choice.path,
                choice.label,
                choice.num_lines,
            )
            return choice
    return None


def find_chip(module: ModuleType, chip: str = "auto") -> ChipChoice:
    """The explicit ``chip``, or the Raspberry Pi header's chip among /dev/gpiochip*."""
    if chip != "auto":
        return _explicit_chip(module, chip)
    found, denied = _open_chips(module)
    choice = _header_chip(found)
    if choice is not None:
        return choice
    if denied:
        raise _permission_error(", ".join(str(p) for p, _ in denied), denied[0][1])
    if found:
        listing = ", ".join(f"{c.path} ({c.label}, {c.num_lines} lines)" for c in found)
        raise BackendError(
            f"none of the GPIO chips looks like a Raspberry Pi header: {listing}; set chip = "
            '"/dev/gpiochipN" to the one the meter is wired to',
            reason=f"no Raspberry Pi header chip among {listing}",
        )
    raise BackendError(
        f"no GPIO chip found ({DEV_DIR}/gpiochip*): not a Raspberry Pi, or a container started "
        "without the device (docker run --device /dev/gpiochip0; on a Pi 5 /dev/gpiochip4 too)",
        reason=f"no GPIO chip found ({DEV_DIR}/gpiochip*)",
    )


def line_settings(module: ModuleType, channel: Channel) -> gpiod.LineSettings:
    """What one channel asks of its line: input, its edge(s), its pull, kernel debounce."""
    line = module.line
    edge = {
        "rising": line.Edge.RISING,
        "falling": line.Edge.FALLING,
        "both": line.Edge.BOTH,
    }[channel.edge]
    bias = {
        "up": line.Bias.PULL_UP,
        "down": line.Bias.PULL_DOWN,
        "none": line.Bias.DISABLED,
    }[channel.pull]
    # Direction must be INPUT: the kernel rejects edge detection and bias on an "as is" line.
    settings: gpiod.LineSettings = module.LineSettings(
        direction=line.Direction.INPUT,
        edge_detection=edge,
        bias=bias,
        debounce_period=timedelta(microseconds=round(channel.debounce_s * 1e6)),
    )
    return settings


def open_gpiod(channels: Sequence[Channel], *, chip: str = "auto") -> GpiodBackend:
    """Load libgpiod, pick the chip and check the pins exist on it; lines are claimed later."""
    module = load_gpiod()
    choice = find_chip(module, chip)
    for channel in channels:
        if channel.pin >= choice.num_lines:
            raise BackendError(
                f"channel {channel.name}: GPIO{channel.pin} does not exist on {choice.path} "
                f"({choice.label}, {choice.num_lines} lines); use the BCM (GPIO) number, "
                "not the physical pin number",
            )
    return GpiodBackend(module, choice, channels)


class GpiodBackend:
    """Reads edge events of all channels from one line request on one thread."""

    name = "gpiod"

    def __init__(
        self,
        module: ModuleType,
        chip: ChipChoice,
        channels: Sequence[Channel],
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.module = module
        self.chip = chip
        self.channels = list(channels)
        self.index = {c.pin: i for i, c in enumerate(self.channels)}
        self.wall_ns = wall_ns
        self.monotonic_ns = monotonic_ns
        # Edges the kernel dropped because its buffer was full, per channel (seqno gaps).
        self.lost = [0] * len(self.channels)
        self._overflow_runs = 0
        self._last_seqno = [0] * len(self.channels)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._problem: str | None = None

    # -- the interface -----------------------------------------------------------------------

    def start(self, on_edge: EdgeSink) -> None:
        """Claim the lines and start the capture thread; BackendError when they are not free."""
        if self._thread is not None:
            raise BackendError("the gpiod backend is already running; stop() it first")
        request = self._request()
        # A fresh flag per run: a thread that outlived stop()'s join keeps seeing its own.
        self._stopping = threading.Event()
        self._problem = None
        self._thread = threading.Thread(
            target=self._run,
            args=(request, on_edge, self._stopping),
            name="gpio-gpiod",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """End the capture thread (within POLL) which then releases the lines; idempotent."""
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return
        thread.join(timeout=STOP_TIMEOUT_S)
        if thread.is_alive():
            log.warning("the gpiod capture thread did not stop within %.0f s", STOP_TIMEOUT_S)
        self._thread = None

    def problem(self) -> str | None:
        """Why the capture thread ended on its own, if it did."""
        return self._problem

    # -- claiming the lines ------------------------------------------------------------------

    def _request(self) -> gpiod.LineRequest:
        config: dict[Iterable[int | str] | int | str, gpiod.LineSettings | None] = {
            c.pin: line_settings(self.module, c) for c in self.channels
        }
        path = str(self.chip.path)
        try:
            request: gpiod.LineRequest = self.module.request_lines(
                path, config=config, consumer=CONSUMER, event_buffer_size=EVENT_BUFFER_SIZE
            )
        except OSError as exc:
            raise self._request_error(exc) from exc
        except ValueError as exc:
            raise BackendError(f"{path} refused the pins: {exc}") from exc
        return request

    def _request_error(self, exc: OSError) -> BackendError:
        path = self.chip.path
        if _is_permission(exc):
            return _permission_error(path, exc)
        if exc.errno == errno.EBUSY:
            return BackendError(self._busy_message())
        if exc.errno == errno.EINVAL:
            return BackendError(
                f"the kernel rejected the line settings on {path} ({exc.strerror}): edge "
                "detection with bias and debounce needs the GPIO character device v2 (Linux "
                f"5.10 or later); pins {self._pins()}",
            )
        if exc.errno == errno.ENOTTY:
            return BackendError(
                f"the kernel does not speak the GPIO character device v2 on {path} "
                f"({exc.strerror}): libgpiod v2 needs Linux 5.10 or later; update the system "
                'or use backend = "rpi"',
            )
        if exc.errno in (errno.ENOENT, errno.ENODEV):
            return BackendError(
                f'GPIO chip {path} has gone ({exc.strerror}); set chip = "auto" or check '
                "the device is passed to the container",
            )
        return BackendError(f"cannot claim pins {self._pins()} on {path}: {exc}")

    def _busy_message(self) -> str:
        """Which pins another process or a kernel driver holds, as far as the chip tells."""
        held: list[str] = []
        try:
            with self.module.Chip(str(self.chip.path)) as chip:
                for channel in self.channels:
                    info = chip.get_line_info(channel.pin)
                    if info.used:
                        consumer = info.consumer or "unnamed"
                        held.append(f"GPIO{channel.pin} ({channel.name}) by {consumer!r}")
        except OSError as exc:
            log.debug("cannot read line info of %s: %s", self.chip.path, exc)
        what = ", ".join(held) if held else f"one of pins {self._pins()}"
        return (
            f"{what} is in use on {self.chip.path}: another process (another gpio_pulse, "
            "a script using RPi.GPIO or gpiozero) or a kernel driver (a dtoverlay such as "
            "w1-gpio) holds the line; stop it or wire the meter to a free pin"
        )

    def _pins(self) -> str:
        return ", ".join(f"GPIO{c.pin} ({c.name})" for c in self.channels)

    # -- the capture thread ------------------------------------------------------------------

    def _run(self, request: Any, on_edge: EdgeSink, stopping: threading.Event) -> None:
        try:
            while not stopping.is_set():
                if not request.wait_edge_events(POLL):
                    continue
                events = request.read_edge_events()
                offset = self._realtime_offset_ns()
                for event in events:
                    index = self.index[event.line_offset]
                    self._count_gap(index, event.line_seqno)
                    on_edge(index, event.timestamp_ns + offset)
        except Exception as exc:
            self._problem = f"reading edge events from {self.chip.path} failed: {exc!r}"
            log.debug("gpiod capture thread failed", exc_info=True)
        finally:
            try:
                request.release()
            except Exception:  # releasing a dead request must not mask why it died
                log.debug("releasing the gpiod request failed", exc_info=True)

    def _realtime_offset_ns(self) -> int:
        """CLOCK_REALTIME minus CLOCK_MONOTONIC now, the wall read between two monotonic reads."""
        before = self.monotonic_ns()
        wall = self.wall_ns()
        after = self.monotonic_ns()
        return wall - (before + after) // 2

    def _count_gap(self, index: int, seqno: int) -> None:
        last = self._last_seqno[index]
        self._last_seqno[index] = seqno
        if seqno <= last + 1:
            return
        self.lost[index] += seqno - last - 1
        self._overflow_runs += 1
        if worth_logging(self._overflow_runs):
            channel = self.channels[index]
            log.warning(
                "GPIO%d (%s): the kernel's edge buffer overflowed, %d edge(s) lost so far "
                "(the reader fell behind; overflow #%d)",
                channel.pin,
                channel.name,
                self.lost[index],
                self._overflow_runs,
            )
