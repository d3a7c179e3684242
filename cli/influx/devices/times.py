"""The arguments of ``query`` and ``delete-data``: a device or measurement name, and times.

Validated before any query is built, so a name that can match nothing (empty, a control
character) or a time the user did not mean is refused with the forms that are accepted.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from telegraf_bridge.plugins.common import format_rfc3339_ns, parse_rfc3339_ns


def validate_name(value: str, what: str) -> str:
    """``value`` unchanged if it is usable as a tag value or measurement name.

    Non-empty (not only blanks) and free of control characters: line protocol cannot carry a
    newline in a tag, so such a value can match nothing, and in a terminal it could hide what
    a confirmation prompt says.
    """
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    for ch in value:
        if unicodedata.category(ch) == "Cc":
            raise ValueError(f"{what} must not contain control characters (found {ch!r})")
    return value


_RELATIVE = re.compile(r"^-\s*((?:\d+(?:ns|us|µs|ms|s|m|h|d|w)\s*)+)$")
_RELATIVE_PART = re.compile(r"(\d+)(ns|us|µs|ms|s|m|h|d|w)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_time_arg(text: str, now_ns: int) -> int:
    """Integer ns for a ``--start``/``--stop`` value; ValueError with the accepted forms.

    ``now`` (or ``now()``, IoTFlow's spelling), a duration before now as in Flux (``-1h``,
    ``-30m``, ``-7d``, ``-1h30m``; units ns us ms s m h d w), an RFC 3339 time with an offset
    (``2024-01-01T12:00:00Z``, ``...+02:00``) or a date (``2024-01-01``, midnight UTC).
    """
    value = text.strip()
    if value in ("now", "now()"):
        return now_ns
    match = _RELATIVE.match(value)
    if match:
        total = sum(int(n) * _UNIT_NS[unit] for n, unit in _RELATIVE_PART.findall(match[1]))
        return now_ns - total
    if _DATE_ONLY.match(value):
        value += "T00:00:00Z"
    try:
        return parse_rfc3339_ns(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use now, a duration before now such as -1h, -30m or -7d, "
            "or an RFC 3339 time such as 2024-01-01T12:00:00Z"
        ) from None


@dataclass(frozen=True)
class Window:
    """A half-open time range in integer ns: ``start <= time < stop``."""

    start_ns: int
    stop_ns: int

    def __post_init__(self) -> None:
        if self.stop_ns <= self.start_ns:
            raise ValueError(
                f"the stop time ({format_rfc3339_ns(self.stop_ns)}) must be after the start "
                f"time ({format_rfc3339_ns(self.start_ns)})"
            )
