"""The hardware edge backends of gpio_pulse (libgpiod v2 and RPi.GPIO) against their real APIs.

No GPIO hardware exists here (no /dev/gpiochip*, no gpio-sim in this kernel), so the libraries'
hardware entry points are replaced by AUTOSPEC'd mocks built from the real installed modules:
a call with a wrong name, argument or keyword fails the test exactly as it would fail on a Pi.

- libgpiod: the real ``gpiod`` package from PyPI (``gpiod>=2.1``, manylinux wheel, bundled
  libgpiod). Only ``gpiod.Chip`` and ``gpiod.request_lines`` are patched (``autospec=True``)
  and the line request is ``create_autospec(gpiod.LineRequest, instance=True)``; everything
  else is real: ``LineSettings``, the ``Edge``/``Bias``/``Direction`` enums, ``ChipInfo``,
  ``LineInfo`` and the ``EdgeEvent`` objects the fake kernel hands out. The settings the backend
  requests are compared as real ``LineSettings`` values.
- RPi.GPIO: the real package is a C extension whose module init raises "This module can only be
  run on a Raspberry Pi!" off a Pi, and its C functions carry no signatures, so even on a Pi
  autospec could not check calls against it. Its API is therefore taken from ``rpi-lgpio``
  (PyPI, MIT, by a Raspberry Pi OS maintainer): a pure-Python drop-in that provides the module
  ``RPi.GPIO`` with the same functions, constants (BCM=11, PUD_DOWN=21, RISING=31 ...) and real
  Python signatures. It is imported with its own ``RPI_LGPIO_REVISION`` override (read by its
  ``_get_rpi_info``, a Pi 4's revision code) and then only autospec'd, never run. The one gap
  between the two (the C parser's keyword names and int-only arguments) is checked by hand
  against RPi.GPIO 0.7.1's ``py_gpio.c`` kwlists in ``_assert_c_rpigpio_call``.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import gpiod
import pytest
from gpiod.line import Bias, Direction, Edge
from rig import wait_for
from telegraf_bridge.plugins.gpio_pulse import backend as backend_mod
from telegraf_bridge.plugins.gpio_pulse import hw_gpiod, hw_rpigpio
from telegraf_bridge.plugins.gpio_pulse.backend import BackendError, open_backend
from telegraf_bridge.plugins.gpio_pulse.channels import Channel

# Imported for its API only and then dropped from sys.modules again, so no other test in this
# process finds a working "RPi.GPIO" that this machine does not really have.
with mock.patch.dict(os.environ, {"RPI_LGPIO_REVISION": "c03111"}), mock.patch.dict(sys.modules):
    REAL_RPI_GPIO = importlib.import_module("RPi.GPIO")
assert hasattr(REAL_RPI_GPIO, "lgpio"), "expected rpi-lgpio's RPi.GPIO, not the C extension"

CHANNELS = [
    Channel("Import", 20),
    Channel("Export", 26, edge="falling", pull="up", debounce_s=0.005),
    Channel("Generate", 21, edge="both", pull="none", debounce_s=0.0),
]
REAL_CHIP = gpiod.Chip  # kept: the fixture below patches gpiod.Chip with its autospec
WALL = 1_700_000_000_123_456_789
MONO = 5_000_000_000


# -- gpiod: a fake kernel behind the real API ------------------------------------------------


class FakeLines:
    """The kernel side of one line request: scripted batches of real ``gpiod.EdgeEvent``s."""

    def __init__(self) -> None:
        self.request = mock.create_autospec(gpiod.LineRequest, instance=True)
        self.request.wait_edge_events.side_effect = self._wait
        self.request.read_edge_events.side_effect = self._read
        self.batches: deque[list[gpiod.EdgeEvent] | BaseException] = deque()
        self.waits = 0
        self.seqno: dict[int, int] = {}

    def edges(self, *items: tuple[int, int], skip: int = 0) -> None:
        """Queue one batch of ``(line offset, monotonic ns)`` edges."""
        batch = []
        for offset, ts in items:
            seq = self.seqno.get(offset, 0) + 1 + skip
            self.seqno[offset] = seq
            batch.append(
                gpiod.EdgeEvent(gpiod.EdgeEvent.Type.RISING_EDGE.value, ts, offset, seq, seq)
            )
        self.batches.append(batch)

    def _wait(self, timeout: timedelta | float | None = None) -> bool:
        self.waits += 1
        if self.batches:
            return True
        assert isinstance(timeout, timedelta)
        time.sleep(min(timeout.total_seconds(), 0.01))
        return False

    def _read(self, max_events: int | None = None) -> list[gpiod.EdgeEvent]:
        item = self.batches.popleft()
        if isinstance(item, BaseException):
            raise item
        return item


def _chip_mock(
    label: str, num_lines: int, line_info: dict[int, gpiod.LineInfo] | None = None
) -> Any:
    chip = mock.create_autospec(REAL_CHIP, instance=True)
    chip.__enter__.return_value = chip
    chip.get_info.return_value = gpiod.ChipInfo("gpiochip", label, num_lines)

    def info(line: int | str) -> gpiod.LineInfo:
        if line_info and line in line_info:
            return line_info[line]
        return _line_info(int(line), used=False, consumer="")

    chip.get_line_info.side_effect = info
    return chip


def _line_info(offset: int, *, used: bool, consumer: str) -> gpiod.LineInfo:
    return gpiod.LineInfo(offset, f"GPIO{offset}", used, consumer, 1, False, 1, 1, 1, 1, False, 0)


class FakeDev:
    """/dev with gpiochip files (in tmp_path) whose ``gpiod.Chip`` answers are scripted."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.chips: dict[str, Any] = {}
        self.opened: list[str] = []

    def add(self, name: str, label: str = "", num_lines: int = 0, **kw: Any) -> None:
        (self.root / name).touch()
        self.chips[str(self.root / name)] = kw.get("error") or _chip_mock(
            label, num_lines, kw.get("line_info")
        )

    def link(self, name: str, target: str) -> None:
        (self.root / name).symlink_to(self.root / target)
        self.chips[str(self.root / name)] = self.chips[str(self.root / target)]

    def open(self, path: str) -> Any:
        self.opened.append(path)
        chip = self.chips.get(path)
        if chip is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        if isinstance(chip, BaseException):
            raise chip
        return chip


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDev]:
    fake = FakeDev(tmp_path)
    monkeypatch.setattr(hw_gpiod, "DEV_DIR", tmp_path)
    with mock.patch.object(gpiod, "Chip", autospec=True) as chip_cls:
        chip_cls.side_effect = fake.open
        yield fake


@pytest.fixture
def lines() -> Iterator[FakeLines]:
    fake = FakeLines()
    with mock.patch.object(gpiod, "request_lines", autospec=True) as request_lines:
        request_lines.return_value = fake.request
        fake.request_lines = request_lines  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def no_rpi() -> Iterator[None]:
    with mock.patch.dict(sys.modules, {"RPi.GPIO": None}):
        yield


class Sink:
    """Collects ``on_edge`` calls like the plugin's queue does."""

    def __init__(self) -> None:
        self.edges: list[tuple[int, int]] = []

    def __call__(self, channel: int, t_ns: int) -> None:
        self.edges.append((channel, t_ns))


def _pi5(dev: FakeDev) -> None:
    """A Pi 5 on a kernel before the renumbering: SoC chips first, the header on gpiochip4."""
    dev.add("gpiochip0", "gpio-brcmstb@107d508500", 32)
    dev.add("gpiochip1", "gpio-brcmstb@107d508520", 4)
    dev.add("gpiochip4", "pinctrl-rp1", 54)


def _started(dev: FakeDev, lines: FakeLines) -> tuple[hw_gpiod.GpiodBackend, Sink]:
    _pi5(dev)
    backend = open_backend("gpiod", CHANNELS)
    assert isinstance(backend, hw_gpiod.GpiodBackend)
    backend.wall_ns = lambda: WALL
    monos = iter([MONO, MONO + 10] * 1000)
    backend.monotonic_ns = lambda: next(monos)
    sink = Sink()
    backend.start(sink)
    return backend, sink


# -- gpiod: edges ------------------------------------------------------------------------------


def test_gpiod_edges_reach_on_edge_with_channel_index_and_realtime_ns(
    dev: FakeDev, lines: FakeLines
) -> None:
    backend, sink = _started(dev, lines)
    try:
        lines.edges((21, 4_000_000_000), (20, 4_100_000_000))
        lines.edges((26, 4_900_000_000))
        wait_for(lambda: len(sink.edges) == 3, timeout=5, interval=0.01, what="3 edges")
    finally:
        backend.stop()
    # realtime = monotonic stamp + (wall - midpoint of the two monotonic reads around it)
    offset = WALL - (MONO + 5)
    assert sink.edges == [
        (2, 4_000_000_000 + offset),
        (0, 4_100_000_000 + offset),
        (1, 4_900_000_000 + offset),
    ]
    assert backend.problem() is None
    assert backend.lost == [0, 0, 0]


def test_gpiod_realtime_offset_follows_the_clocks_at_each_batch(
    dev: FakeDev, lines: FakeLines
) -> None:
    """A wall-clock step (NTP after boot) applies from the next batch on, never backwards."""
    backend, sink = _started(dev, lines)
    walls = iter([WALL, WALL + 3_600 * 10**9])
    backend.wall_ns = lambda: next(walls)
    try:
        lines.edges((20, 1_000))
        wait_for(lambda: len(sink.edges) == 1, timeout=5, interval=0.01)
        lines.edges((20, 2_000))
        wait_for(lambda: len(sink.edges) == 2, timeout=5, interval=0.01)
    finally:
        backend.stop()
    assert sink.edges[0][1] == 1_000 + WALL - (MONO + 5)
    assert sink.edges[1][1] == 2_000 + WALL + 3_600 * 10**9 - (MONO + 5)


def test_gpiod_counts_edges_the_kernel_dropped(
    dev: FakeDev, lines: FakeLines, caplog: pytest.LogCaptureFixture
) -> None:
    backend, sink = _started(dev, lines)
    try:
        lines.edges((20, 1))
        lines.edges((20, 2), skip=2)  # line_seqno jumps 1 -> 4: two events overwritten
        wait_for(lambda: len(sink.edges) == 2, timeout=5, interval=0.01)
    finally:
        backend.stop()
    assert backend.lost == [2, 0, 0]
    assert "GPIO20 (Import): the kernel's edge buffer overflowed, 2 edge(s) lost" in caplog.text


def test_gpiod_requests_each_channels_edge_bias_and_debounce(
    dev: FakeDev, lines: FakeLines
) -> None:
    backend, _ = _started(dev, lines)
    backend.stop()
    lines.request_lines.assert_called_once_with(  # type: ignore[attr-defined]
        str(dev.root / "gpiochip4"),
        config={
            20: gpiod.LineSettings(
                direction=Direction.INPUT,
                edge_detection=Edge.RISING,
                bias=Bias.PULL_DOWN,
                debounce_period=timedelta(milliseconds=2),
            ),
            26: gpiod.LineSettings(
                direction=Direction.INPUT,
                edge_detection=Edge.FALLING,
                bias=Bias.PULL_UP,
                debounce_period=timedelta(milliseconds=5),
            ),
            21: gpiod.LineSettings(
                direction=Direction.INPUT,
                edge_detection=Edge.BOTH,
                bias=Bias.DISABLED,
                debounce_period=timedelta(0),
            ),
        },
        consumer="telegraf-bridge",
        event_buffer_size=1024,
    )


# -- gpiod: stop and problems ------------------------------------------------------------------


def test_gpiod_stop_releases_the_lines_and_joins_the_thread(dev: FakeDev, lines: FakeLines) -> None:
    backend, _ = _started(dev, lines)
    thread = backend._thread
    assert thread is not None
    wait_for(lambda: lines.waits > 0, timeout=5, interval=0.01)
    # The real wait polls with POLL; the fake returns early, so check the real bound too.
    assert timedelta(seconds=0.5) >= hw_gpiod.POLL
    lines.request.wait_edge_events.assert_called_with(hw_gpiod.POLL)
    began = time.monotonic()
    backend.stop()
    assert time.monotonic() - began < 1.0
    assert not thread.is_alive()
    lines.request.release.assert_called_once_with()
    backend.stop()  # idempotent
    lines.request.release.assert_called_once_with()


def test_gpiod_capture_failure_is_reported_by_problem_not_raised(
    dev: FakeDev, lines: FakeLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    backend, sink = _started(dev, lines)
    lines.edges((20, 1))
    lines.batches.append(OSError(errno.ENODEV, "No such device"))
    wait_for(lambda: backend.problem() is not None, timeout=5, interval=0.01)
    problem = backend.problem()
    assert problem is not None
    assert "reading edge events from" in problem
    assert "No such device" in problem
    assert len(sink.edges) == 1  # the edge before the failure was delivered
    wait_for(lambda: lines.request.release.called, timeout=5, interval=0.01)
    backend.stop()
    lines.request.release.assert_called_once_with()
    assert crashed == []


def test_gpiod_on_edge_failure_is_a_problem_too(dev: FakeDev, lines: FakeLines) -> None:
    _pi5(dev)
    backend = open_backend("gpiod", CHANNELS)

    def broken(channel: int, t_ns: int) -> None:
        raise RuntimeError("queue gone")

    backend.start(broken)
    lines.edges((20, 1))
    wait_for(lambda: backend.problem() is not None, timeout=5, interval=0.01)
    backend.stop()
    assert "queue gone" in (backend.problem() or "")


def test_gpiod_permission_denied_names_the_group(dev: FakeDev, lines: FakeLines) -> None:
    _pi5(dev)
    lines.request_lines.side_effect = PermissionError(  # type: ignore[attr-defined]
        errno.EACCES, "Permission denied"
    )
    backend = open_backend("gpiod", CHANNELS)
    with pytest.raises(BackendError) as caught:
        backend.start(Sink())
    text = str(caught.value)
    assert f"no permission to open {dev.root / 'gpiochip4'}" in text
    assert "group gpio" in text
    assert "sudo usermod -aG gpio USER" in text


def test_gpiod_busy_line_names_the_pin_and_its_holder(dev: FakeDev, lines: FakeLines) -> None:
    dev.add(
        "gpiochip0",
        "pinctrl-bcm2711",
        58,
        line_info={26: _line_info(26, used=True, consumer="w1-gpio")},
    )
    lines.request_lines.side_effect = OSError(  # type: ignore[attr-defined]
        errno.EBUSY, "Device or resource busy"
    )
    backend = open_backend("gpiod", CHANNELS)
    with pytest.raises(BackendError) as caught:
        backend.start(Sink())
    text = str(caught.value)
    assert "GPIO26 (Export) by 'w1-gpio' is in use" in text
    assert "another process" in text
    assert "GPIO20" not in text


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.EINVAL, r"rejected the line settings .*Linux 5.10 or later"),
        (errno.ENOTTY, r"does not speak the GPIO character device v2 .*backend = \"rpi\""),
        (errno.ENODEV, r"has gone .*chip = \"auto\""),
        (errno.EIO, r"cannot claim pins GPIO20 \(Import\), GPIO26 \(Export\), GPIO21"),
    ],
)
def test_gpiod_other_request_errors_are_explained(
    dev: FakeDev, lines: FakeLines, code: int, expected: str
) -> None:
    _pi5(dev)
    lines.request_lines.side_effect = OSError(code, os.strerror(code))  # type: ignore[attr-defined]
    with pytest.raises(BackendError, match=expected):
        open_backend("gpiod", CHANNELS).start(Sink())


def test_gpiod_start_twice_is_refused(dev: FakeDev, lines: FakeLines) -> None:
    backend, _ = _started(dev, lines)
    try:
        with pytest.raises(BackendError, match="already running"):
            backend.start(Sink())
    finally:
        backend.stop()


# -- gpiod: chips --------------------------------------------------------------------------------


def test_chip_auto_finds_the_pi5_header_on_rp1(dev: FakeDev, lines: FakeLines) -> None:
    _pi5(dev)
    backend = open_backend("gpiod", CHANNELS)
    assert isinstance(backend, hw_gpiod.GpiodBackend)
    assert backend.chip.path == dev.root / "gpiochip4"
    assert backend.chip.label == "pinctrl-rp1"


def test_chip_auto_opens_a_symlinked_chip_once(dev: FakeDev, lines: FakeLines) -> None:
    """Newer Pi 5 kernels: RP1 is gpiochip0 and gpiochip4 is a symlink to it."""
    dev.add("gpiochip0", "pinctrl-rp1", 54)
    dev.add("gpiochip10", "gpio-brcmstb@107d508500", 32)
    dev.link("gpiochip4", "gpiochip0")
    backend = open_backend("gpiod", CHANNELS)
    assert isinstance(backend, hw_gpiod.GpiodBackend)
    assert backend.chip.path == dev.root / "gpiochip0"
    assert sorted(dev.opened) == sorted([str(dev.root / "gpiochip0"), str(dev.root / "gpiochip10")])


@pytest.mark.parametrize("label", ["pinctrl-bcm2835", "pinctrl-bcm2711"])
def test_chip_auto_finds_older_pis_by_label(dev: FakeDev, lines: FakeLines, label: str) -> None:
    dev.add("gpiochip0", "some-expander", 40)
    dev.add("gpiochip1", label, 54)
    dev.add("gpiochip2", "raspberrypi-exp-gpio", 8)
    backend = open_backend("gpiod", CHANNELS)
    assert isinstance(backend, hw_gpiod.GpiodBackend)
    assert backend.chip.label == label


def test_chip_auto_falls_back_to_the_first_chip_with_28_lines(
    dev: FakeDev, lines: FakeLines
) -> None:
    dev.add("gpiochip0", "small", 8)
    dev.add("gpiochip1", "unknown-soc", 28)
    dev.add("gpiochip2", "other", 64)
    backend = open_backend("gpiod", CHANNELS)
    assert isinstance(backend, hw_gpiod.GpiodBackend)
    assert backend.chip.path == dev.root / "gpiochip1"


def test_chip_auto_without_a_header_chip_lists_what_it_saw(dev: FakeDev, lines: FakeLines) -> None:
    dev.add("gpiochip0", "small", 8)
    with pytest.raises(BackendError, match=r"gpiochip0 \(small, 8 lines\).*chip = "):
        open_backend("gpiod", CHANNELS)


def test_chip_auto_without_any_chip_says_so(dev: FakeDev, lines: FakeLines) -> None:
    with pytest.raises(BackendError, match=r"no GPIO chip found .*--device /dev/gpiochip0"):
        open_backend("gpiod", CHANNELS)


def test_chip_auto_when_every_chip_is_denied_names_the_group(
    dev: FakeDev, lines: FakeLines
) -> None:
    dev.add("gpiochip0", error=PermissionError(errno.EACCES, "Permission denied"))
    with pytest.raises(BackendError, match="sudo usermod -aG gpio USER"):
        open_backend("gpiod", CHANNELS)


@pytest.mark.parametrize("chip", ["gpiochip4", "ABS"])
def test_explicit_chip_is_used_as_is(dev: FakeDev, lines: FakeLines, chip: str) -> None:
    _pi5(dev)
    dev.add("gpiochip0", "pinctrl-bcm2711", 58)  # a header label elsewhere does not matter
    chip = str(dev.root / "gpiochip4") if chip == "ABS" else chip
    backend = open_backend("gpiod", CHANNELS, chip=chip)
    backend.start(Sink())
    backend.stop()
    assert lines.request_lines.call_args.args == (str(dev.root / "gpiochip4"),)  # type: ignore[attr-defined]


def test_explicit_missing_chip_is_an_error(dev: FakeDev, lines: FakeLines) -> None:
    with pytest.raises(BackendError, match=r"cannot open GPIO chip .*gpiochip9 \(No such file"):
        open_backend("gpiod", CHANNELS, chip="gpiochip9")


def test_pin_beyond_the_chip_is_an_error(dev: FakeDev, lines: FakeLines) -> None:
    dev.add("gpiochip0", "pinctrl-bcm2835", 54)
    with pytest.raises(BackendError, match=r"GPIO60 does not exist .*BCM"):
        open_backend("gpiod", [Channel("Import", 60)])


def test_gpiod_not_installed_says_what_to_install() -> None:
    with (
        mock.patch.dict(sys.modules, {"gpiod": None}),
        pytest.raises(BackendError, match=r"not installed.*pip install 'telegraf-bridge\[gpio\]'"),
    ):
        open_backend("gpiod", CHANNELS)


def test_gpiod_v1_bindings_are_recognised() -> None:
    """Debian bookworm's python3-libgpiod is libgpiod 1.6: same module name, other API."""
    v1 = ModuleType("gpiod")
    v1.Chip = object  # type: ignore[attr-defined]
    v1.__version__ = "1.6.3"  # type: ignore[attr-defined]
    with (
        mock.patch.dict(sys.modules, {"gpiod": v1}),
        pytest.raises(
            BackendError,
            match=r"v1 API \(Debian bookworm's python3-libgpiod\).*pip install 'telegraf-bridge\[gpio\]'",
        ),
    ):
        open_backend("gpiod", CHANNELS)


# -- RPi.GPIO ------------------------------------------------------------------------------------

# RPi.GPIO 0.7.1 source/py_gpio.c: keyword names and the C format ("ii|..."): the leading
# arguments must be ints, passed positionally (their names differ from rpi-lgpio's).
_C_KWLISTS = {
    "setup": (("channel", "direction", "pull_up_down", "initial"), 2),
    "add_event_detect": (("gpio", "edge", "callback", "bouncetime"), 2),
}


def _assert_c_rpigpio_call(name: str, call: Any) -> None:
    kwlist, ints = _C_KWLISTS[name]
    assert len(call.args) == ints, f"{name}: pass the first {ints} arguments positionally"
    assert all(type(a) is int for a in call.args), f"{name}: C parser wants ints: {call.args}"
    positional_names = set(kwlist[:ints])
    for key, value in call.kwargs.items():
        assert key in kwlist, f"{name}: RPi.GPIO's C parser has no keyword {key!r}"
        assert key not in positional_names
        if key == "bouncetime":
            assert type(value) is int
            assert value > 0, "RPi.GPIO: Bouncetime must be greater than 0"


@pytest.fixture
def rpi() -> Iterator[Any]:
    """``RPi.GPIO`` as an autospec of rpi-lgpio's module, with the real constant values."""
    fake = mock.create_autospec(REAL_RPI_GPIO)
    for name in ("BCM", "IN", "PUD_UP", "PUD_DOWN", "PUD_OFF", "RISING", "FALLING", "BOTH"):
        setattr(fake, name, getattr(REAL_RPI_GPIO, name))
    with mock.patch.dict(sys.modules, {"RPi.GPIO": fake}):
        yield fake


def test_rpi_sets_up_each_channel_with_its_pull_edge_and_bouncetime(rpi: Any) -> None:
    channels = [*CHANNELS, Channel("Tiny", 5, debounce_s=0.0004)]
    backend = open_backend("rpi", channels)
    assert isinstance(backend, hw_rpigpio.RpiGpioBackend)
    backend.start(Sink())
    rpi.setmode.assert_called_once_with(rpi.BCM)
    assert rpi.setup.call_args_list == [
        mock.call(20, rpi.IN, pull_up_down=rpi.PUD_DOWN),
        mock.call(26, rpi.IN, pull_up_down=rpi.PUD_UP),
        mock.call(21, rpi.IN, pull_up_down=rpi.PUD_OFF),
        mock.call(5, rpi.IN, pull_up_down=rpi.PUD_DOWN),
    ]
    callback = backend._callback
    assert rpi.add_event_detect.call_args_list == [
        mock.call(20, rpi.RISING, callback=callback, bouncetime=2),
        mock.call(26, rpi.FALLING, callback=callback, bouncetime=5),
        mock.call(21, rpi.BOTH, callback=callback),  # no debounce: no bouncetime at all
        mock.call(5, rpi.RISING, callback=callback, bouncetime=1),  # rounded up to 1 ms
    ]
    for call in rpi.setup.call_args_list:
        _assert_c_rpigpio_call("setup", call)
    for call in rpi.add_event_detect.call_args_list:
        _assert_c_rpigpio_call("add_event_detect", call)


def test_rpi_callback_delivers_channel_index_and_wall_ns(rpi: Any) -> None:
    backend = open_backend("rpi", CHANNELS)
    assert isinstance(backend, hw_rpigpio.RpiGpioBackend)
    backend.wall_ns = lambda: WALL
    sink = Sink()
    backend.start(sink)
    callback = rpi.add_event_detect.call_args_list[1].kwargs["callback"]
    callback(26)  # RPi.GPIO calls back with the BCM pin number
    callback(20)
    assert sink.edges == [(1, WALL), (0, WALL)]
    backend.stop()
    callback(21)  # a late callback after stop is ignored
    assert len(sink.edges) == 2


def test_rpi_stop_removes_detection_and_cleans_up_its_pins(rpi: Any) -> None:
    backend = open_backend("rpi", CHANNELS)
    backend.start(Sink())
    backend.stop()
    assert rpi.remove_event_detect.call_args_list == [mock.call(20), mock.call(26), mock.call(21)]
    rpi.cleanup.assert_called_once_with([20, 26, 21])
    backend.stop()  # idempotent
    rpi.cleanup.assert_called_once_with([20, 26, 21])


def test_rpi_callback_failure_is_a_problem_not_a_crash(rpi: Any) -> None:
    backend = open_backend("rpi", CHANNELS)

    def broken(channel: int, t_ns: int) -> None:
        raise RuntimeError("queue gone")

    backend.start(broken)
    assert backend.problem() is None
    rpi.add_event_detect.call_args.kwargs["callback"](20)
    assert "queue gone" in (backend.problem() or "")


def test_rpi_kernel_66_edge_failure_points_to_gpiod(rpi: Any) -> None:
    """Linux >= 6.6 and the Pi 5: RPi.GPIO 0.7.1 raises exactly this RuntimeError."""
    rpi.add_event_detect.side_effect = [None, RuntimeError("Failed to add edge detection")]
    backend = open_backend("rpi", CHANNELS)
    with pytest.raises(BackendError) as caught:
        backend.start(Sink())
    text = str(caught.value)
    assert "GPIO26 (Export)" in text
    assert "Linux 6.6 or later" in text
    assert "Raspberry Pi 5" in text
    assert 'use backend = "gpiod"' in text
    assert "rpi-lgpio" in text
    # What was claimed before the failure is given back.
    rpi.remove_event_detect.assert_called_once_with(20)
    rpi.cleanup.assert_called_once_with([20, 26])


def test_rpi_on_a_pi5_points_to_gpiod(rpi: Any) -> None:
    rpi.setup.side_effect = RuntimeError("Cannot determine SOC peripheral base address")
    with pytest.raises(BackendError, match=r"Raspberry Pi 5 only the GPIO character device.*gpiod"):
        open_backend("rpi", CHANNELS).start(Sink())


def test_rpi_without_gpiomem_access_names_the_group(rpi: Any) -> None:
    rpi.setup.side_effect = RuntimeError("No access to /dev/mem.  Try running as root!")
    with pytest.raises(BackendError, match=r"group gpio: sudo usermod -aG gpio USER"):
        open_backend("rpi", CHANNELS).start(Sink())


def test_rpi_busy_pin_is_named(rpi: Any) -> None:
    rpi.setup.side_effect = RuntimeError("GPIO busy")  # rpi-lgpio's text for a claimed line
    with pytest.raises(BackendError, match=r"GPIO20 \(Import\) is in use by another process"):
        open_backend("rpi", CHANNELS).start(Sink())


@pytest.mark.skipif(
    Path("/proc/device-tree/system/linux,revision").exists(), reason="this is a Raspberry Pi"
)
def test_rpi_refusing_to_load_off_a_pi_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real rpi-lgpio module, imported afresh without the override, refuses to load."""
    monkeypatch.delenv("RPI_LGPIO_REVISION", raising=False)
    with mock.patch.dict(sys.modules):
        sys.modules.pop("RPi.GPIO", None)
        with pytest.raises(
            BackendError,
            match=r"RPi.GPIO refuses to load \(This module can only be run on a Raspberry Pi!\)",
        ):
            open_backend("rpi", CHANNELS)


# -- auto ------------------------------------------------------------------------------------------


def test_auto_prefers_gpiod(dev: FakeDev, lines: FakeLines, rpi: Any) -> None:
    _pi5(dev)
    assert open_backend("auto", CHANNELS).name == "gpiod"


def test_auto_uses_rpigpio_when_gpiod_is_missing(
    rpi: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with mock.patch.dict(sys.modules, {"gpiod": None}):
        backend = open_backend("auto", CHANNELS)
    assert backend.name == "rpi"
    assert "gpiod is not usable (the gpiod module is not installed); using RPi.GPIO" in caplog.text


def test_auto_uses_rpigpio_when_no_chip_opens(dev: FakeDev, lines: FakeLines, rpi: Any) -> None:
    assert open_backend("auto", CHANNELS).name == "rpi"


def test_auto_with_nothing_usable_lists_reasons_and_fixes(no_rpi: None) -> None:
    with mock.patch.dict(sys.modules, {"gpiod": None}), pytest.raises(BackendError) as caught:
        open_backend("auto", CHANNELS)
    text = str(caught.value)
    assert 'backend = "auto" found no usable GPIO library' in text
    assert "gpiod: the gpiod module is not installed" in text
    assert "RPi.GPIO: RPi.GPIO is not installed" in text
    assert "pip install 'telegraf-bridge[gpio]'" in text
    assert "sudo apt install python3-libgpiod" in text
    assert "sudo usermod -aG gpio USER" in text


def test_auto_never_simulates(dev: FakeDev, lines: FakeLines, no_rpi: None) -> None:
    """gpiod installed, no chip, no RPi.GPIO: an error, not a simulated meter."""
    with pytest.raises(BackendError, match=r"gpiod: no GPIO chip found.*RPi.GPIO: RPi.GPIO is not"):
        open_backend("auto", CHANNELS)


def test_sim_and_unknown_kinds_are_not_open_backends_business() -> None:
    with pytest.raises(ValueError, match="built by the plugin"):
        open_backend("sim", CHANNELS)
    with pytest.raises(ValueError, match="unknown GPIO backend 'pigpio'"):
        open_backend("pigpio", CHANNELS)
    assert backend_mod.KINDS == ("auto", "gpiod", "rpi")
