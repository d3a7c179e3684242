"""The HTTP listener's request counters and the reasons it refuses a request.

Why counters and not log lines: a misbehaving device must not flood Telegraf's log, yet no
refusal may be silent; every reason is counted for the status row (and the console), and
logged only at its 1st, 10th, 100th ... occurrence.
"""

from __future__ import annotations

import logging
import threading

from telegraf_bridge.plugins.common import worth_logging, worth_logging_between
from telegraf_bridge.plugins.iotflow import payload

log = logging.getLogger("telegraf_bridge.plugins.iotflow.http")

# Why a request was refused at the HTTP level (payload reasons come from payload.py).
HTTP_REASONS = (
    "unauthorized",
    "too_large",
    "length_required",
    "unsupported_media_type",
    "not_found",
    "method_not_allowed",
    "bad_request_line",
    "incomplete_body",
    "timeout",
    "tls_handshake",
    "clock_unsynchronised",
    "output_unavailable",
    "buffer_full",
    "internal",
)
REASONS = HTTP_REASONS + payload.PAYLOAD_REASONS


class Stats:
    """Request counters for the status row.

    Every rejection is counted by reason and logged sparingly (the 1st, 10th, 100th ...
    occurrence of each reason), so a misbehaving device cannot flood Telegraf's log.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.accepted_requests = 0
        self.accepted_points = 0
        self.dropped_keys = 0
        self.rejected = dict.fromkeys(REASONS, 0)

    def request(self) -> None:
        """Count one request, whatever its fate."""
        with self._lock:
            self.requests += 1

    def accepted(self, points: int, dropped_keys: int) -> None:
        """Count a request whose points were written (and the owned keys it had dropped)."""
        with self._lock:
            self.accepted_requests += 1
            self.accepted_points += points
            self.dropped_keys += dropped_keys
            dropped_total = self.dropped_keys
        if dropped_keys and worth_logging_between(dropped_total - dropped_keys, dropped_total):
            log.warning(
                "dropped payload key(s) the bundle sets itself (device_id, device_name, "
                "device_type, location, topic, timestamp in data/metadata): %d so far",
                dropped_total,
            )

    def reject(self, reason: str, client: str, detail: str = "") -> None:
        """Count and (sparingly) log one refusal; ``detail`` never holds the API key."""
        with self._lock:
            n = self.rejected.get(reason, 0) + 1
            self.rejected[reason] = n
        if worth_logging(n):
            suffix = f": {detail}" if detail else ""
            log.warning(
                "refused a request from %s: %s (occurrence %d)%s", client, reason, n, suffix
            )

    def snapshot(self) -> dict[str, int]:
        """Every counter, flat, for the status row."""
        with self._lock:
            out = {
                "requests": self.requests,
                "accepted_requests": self.accepted_requests,
                "accepted_points": self.accepted_points,
                "dropped_keys": self.dropped_keys,
                "rejected_requests": sum(self.rejected.values()),
            }
            out.update({f"rejected_{reason}": n for reason, n in self.rejected.items()})
        return out
