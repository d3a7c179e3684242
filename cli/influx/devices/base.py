"""What ``query`` and ``delete-data`` ask of a sink, and which implementation answers.

One subclass per InfluxDB version (:mod:`.v1`, :mod:`.v2`, :mod:`.v3`), chosen by
:data:`telegraf_bridge.cli.influx.versions.VERSIONS` (imported on first use).
"""

from __future__ import annotations

from telegraf_bridge.cli.influx.client import Client
from telegraf_bridge.cli.influx.devices.results import LatestValue, RangeResult
from telegraf_bridge.cli.influx.devices.times import Window
from telegraf_bridge.cli.influx.versions import VERSIONS

# The tag every IoTFlow point carries; queries and deletes select by it.
DEVICE_TAG = "device_id"


class DeleteNotSupported(Exception):
    """The sink cannot delete points by device and time range (InfluxDB 3)."""


class DeviceQueries:
    """What ``bridge-cli query`` and ``delete-data`` ask of a sink, in its own language."""

    # What a confirmation prompt adds about the delete's reach ("" when nothing).
    delete_note: str = ""
    # Why this sink cannot delete by device and time ("" when it can).
    delete_refusal: str = ""

    def __init__(self, query: Client) -> None:
        self.query = query

    def describe(self) -> str:
        """Where the queries go (never a secret)."""
        return self.query.describe()

    def latest(self, device: str, measurement: str | None, window: Window) -> list[LatestValue]:
        """The newest value of every field of the device per measurement within ``window``."""
        raise NotImplementedError

    def range(
        self, device: str, measurement: str | None, window: Window, limit: int
    ) -> RangeResult:
        """The device's first ``limit`` points of ``window``, in time order."""
        raise NotImplementedError

    def count(self, device: str, measurement: str | None, window: Window) -> int:
        """How many points of the device lie in ``window``, streamed (memory stays flat)."""
        raise NotImplementedError

    def delete(self, device: str, measurement: str | None, window: Window) -> None:
        """Delete the device's points in ``window``; :class:`DeleteNotSupported` if impossible."""
        raise NotImplementedError


def device_queries(query: Client) -> DeviceQueries:
    """The implementation for ``query``'s InfluxDB version (:data:`.versions.VERSIONS`)."""
    implementation: type[DeviceQueries] = VERSIONS[query.kind].load("devices")
    return implementation(query)
