"""RFC 3339 to integer nanoseconds and back, exactly (``datetime`` stops at microseconds).

One implementation for every place that meets these timestamps: NDJSON records, taptap's
reports, and InfluxDB's answers (Go's RFC3339Nano from v2, naive UTC from v3).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

NS = 1_000_000_000
# Digits past the ninth are dropped (no instant finer than a nanosecond is representable).
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9})\d*)?(Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_rfc3339_ns(text: str, *, assume_utc: bool = False) -> int:
    """Integer nanoseconds since the epoch; raises ValueError for anything else.

    A time without an offset is ambiguous and refused, unless ``assume_utc`` says the source
    writes naive UTC (InfluxDB 3's JSON).
    """
    match = _RFC3339.match(text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text[:64]!r}")
    date, clock, fraction, offset = match.groups()
    if offset is None:
        if not assume_utc:
            raise ValueError(f"timestamp without UTC offset is ambiguous: {text[:64]!r}")
        offset = "Z"
    offset = "+00:00" if offset in ("Z", "z") else offset
    if ":" not in offset:
        offset = offset[:3] + ":" + offset[3:]
    hours, minutes, seconds = int(clock[:2]), int(clock[3:5]), int(clock[6:8])
    if hours > 23 or minutes > 59 or seconds > 59:  # leap seconds are not representable
        raise ValueError(f"invalid time of day in {text[:64]!r}")
    nanos = int((fraction or "0").ljust(9, "0"))
    day_start = _day_start(date, offset)
    return (day_start + hours * 3600 + minutes * 60 + seconds) * NS + nanos


@functools.lru_cache(maxsize=64)
def _day_start(date: str, offset: str) -> int:
    """Epoch seconds of local midnight on ``date`` at UTC ``offset`` (one parse per day)."""
    return int(datetime.fromisoformat(f"{date}T00:00:00{offset}").astimezone(UTC).timestamp())


def format_rfc3339_ns(time_ns: int) -> str:
    """UTC with trailing zeros of the fraction trimmed (none when zero), as Go's RFC3339Nano."""
    seconds, frac = divmod(time_ns, NS)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + ("." + f"{frac:09d}".rstrip("0") if frac else "") + "Z"
