"""What every admin backend offers, and the report rows the commands print."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from telegraf_bridge.cli.tiers import Layout

StepStatus = Literal["present", "create", "mismatch", "unsupported"]


class AdminError(Exception):
    """The server cannot be used (unreachable, bad credentials, missing rights).

    ``next_steps`` are printed as a numbered list under the message.
    """

    def __init__(self, message: str, next_steps: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.next_steps = next_steps


@dataclass(frozen=True)
class Step:
    """One thing ``setup-influxdb`` checks and, when missing, creates.

    ``apply`` is set only for status "create"; it performs the creation and returns a note
    for the report (e.g. where a new token was written), never a secret.
    """

    what: str
    status: StepStatus
    detail: str = ""
    apply: Callable[[], str] | None = None


@dataclass(frozen=True)
class Check:
    """One row of ``verify``'s table; ``ok`` None means skipped (an earlier check failed)."""

    name: str
    ok: bool | None
    detail: str
    next_step: str = ""


@dataclass(frozen=True)
class TierUsage:
    """What ``delete-buckets`` shows before it asks."""

    name: str
    exists: bool
    points: int | None  # None when the server cannot count cheaply
    detail: str = ""


class AdminBackend(Protocol):
    """One sink's administration. Implementations never print or log a token."""

    kind: str

    def target(self) -> str:
        """Where this backend points, for report headers (URL, org/database; no secrets)."""

    def connect(self) -> None:
        """Check the server answers and the credentials work; raises :class:`AdminError`."""

    def plan(self, layout: Layout, secrets_dir: Path) -> list[Step]:
        """Everything setup-influxdb would do, without changing anything."""

    def checks(self, layout: Layout) -> list[Check]:
        """The server-side rows of ``verify`` (tiers, downsampling, a real test write)."""

    def usage(self, layout: Layout) -> list[TierUsage]:
        """Each tier, whether it exists and how many points it holds."""

    def delete_tier(self, layout: Layout, name: str) -> None:
        """Delete one tier (bucket, retention policy's data, database)."""
