"""Clock sanity guard and bounded backoff."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from telegraf_bridge.plugins.common import Backoff, ClockGuard, retry
from telegraf_bridge.plugins.common._clock import kernel_clock_synchronised, parse_time_floor

FLOOR = parse_time_floor("2026-01-01T00:00:00Z")


def test_floor_parsing() -> None:
    assert FLOOR == 1_767_225_600 * 10**9
    assert parse_time_floor("2026-01-01T01:00:00+01:00") == FLOOR


def test_clock_before_floor_is_held_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    now = {"ns": 0}  # a Pi Zero that booted without RTC: 1970
    guard = ClockGuard(floor_ns=FLOOR, probe=lambda: True, now_ns=lambda: now["ns"])
    with caplog.at_level(logging.INFO):
        assert guard.is_sane() is False
        assert guard.is_sane() is False
        now["ns"] = FLOOR + 1
        assert guard.is_sane() is True
    messages = [r.getMessage() for r in caplog.records]
    assert sum("holding data" in m for m in messages) == 1
    assert sum("sane again" in m for m in messages) == 1


def test_unsynchronised_kernel_clock_holds_only_when_required() -> None:
    strict = ClockGuard(floor_ns=FLOOR, probe=lambda: False, now_ns=lambda: FLOOR + 10)
    relaxed = ClockGuard(
        floor_ns=FLOOR, require_sync=False, probe=lambda: False, now_ns=lambda: FLOOR + 10
    )
    unknown = ClockGuard(floor_ns=FLOOR, probe=lambda: None, now_ns=lambda: FLOOR + 10)
    assert strict.reason_unsane() is not None and "unsynchronised" in strict.reason_unsane()  # type: ignore[operator]
    assert relaxed.is_sane() and unknown.is_sane()


def test_kernel_probe_answers_on_linux() -> None:
    assert kernel_clock_synchronised() in (True, False)


def test_kernel_probe_starts_no_process() -> None:
    """Plugins probe at every gather: no `ldconfig -p` child (ctypes.util.find_library) each time."""
    code = (
        "import sys\n"
        "events = []\n"
        "sys.addaudithook(lambda e, a: events.append(e) if e.startswith(('subprocess', 'os.fork',"
        " 'os.posix_spawn', 'os.exec')) else None)\n"
        "from telegraf_bridge.plugins.common._clock import kernel_clock_synchronised as probe\n"
        "print(probe(), probe(), events)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    answer = kernel_clock_synchronised()
    assert result.stdout.split() == [str(answer), str(answer), "[]"]


def test_backoff_grows_to_maximum_within_jitter() -> None:
    backoff = Backoff(initial=1, maximum=8, factor=2, jitter=0.1)
    delays = [backoff.next_delay() for _ in range(6)]
    for got, base in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert base * 0.9 <= got <= min(8, base * 1.1)
    backoff.reset()
    assert backoff.next_delay() <= 1.1


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=0)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1.5)


def test_retry_is_bounded_and_reraises_last_error() -> None:
    calls = {"n": 0}
    slept: list[float] = []

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise OSError("device busy")
        return "ok"

    assert retry(flaky, attempts=3, sleep=slept.append) == "ok"
    assert len(slept) == 2

    def broken() -> str:
        raise OSError("gone")

    with pytest.raises(OSError, match="gone"):
        retry(broken, attempts=4, sleep=slept.append)
    assert len(slept) == 5
