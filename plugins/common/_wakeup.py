"""A late-bound "gather now" callback, so event sources can wake the runner built after them."""

from __future__ import annotations

from collections.abc import Callable


class Wakeup:
    """Calls the runner's request_gather once it is bound; a no-op before that."""

    def __init__(self) -> None:
        self._target: Callable[[], None] | None = None

    def bind(self, target: Callable[[], None]) -> None:
        """Attach the runner's request_gather."""
        self._target = target

    def __call__(self) -> None:
        if self._target is not None:
            self._target()
