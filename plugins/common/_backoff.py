"""Bounded exponential backoff, for devices that must not be hammered when they fail."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("telegraf_bridge.backoff")


@dataclass
class Backoff:
    """Delays that grow by ``factor`` from ``initial`` up to ``maximum``, with jitter.

    Jitter spreads reconnects of a fleet that lost the same link at the same moment.
    """

    initial: float = 1.0
    maximum: float = 300.0
    factor: float = 2.0
    jitter: float = 0.1
    attempt: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("backoff jitter must be in [0, 1)")

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one failure."""
        base = min(self.maximum, self.initial * self.factor ** min(self.attempt, 64))
        self.attempt += 1
        spread = base * self.jitter
        return max(0.0, min(self.maximum, base + self._rng.uniform(-spread, spread)))

    def reset(self) -> None:
        """Start again from ``initial`` after a success."""
        self.attempt = 0


def retry(
    func: Callable[[], T],
    *,
    attempts: int,
    backoff: Backoff | None = None,
    retry_on: tuple[type[BaseException], ...] = (OSError,),
    sleep: Callable[[float], None] = time.sleep,
    what: str = "operation",
) -> T:
    """Call ``func`` up to ``attempts`` times, sleeping between failures; re-raise the last."""
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    policy = backoff or Backoff()
    for attempt in range(1, attempts + 1):
        try:
            result = func()
        except retry_on as exc:
            if attempt == attempts:
                raise
            delay = policy.next_delay()
            log.debug("%s failed (%s); retry %d/%d in %.1fs", what, exc, attempt, attempts, delay)
            sleep(delay)
        else:
            policy.reset()
            return result
    raise AssertionError("unreachable")  # pragma: no cover
