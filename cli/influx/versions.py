"""The one place an InfluxDB version is chosen: a sink's ``type`` -> its client and backends.

Adding an InfluxDB version is adding one client class (and, for ``query``/``delete-data`` and
the admin commands, its device-query and admin classes) and one row here. The device-query and
admin classes are named by import path and imported on first use: the monitoring commands run
from a systemd timer on a Pi Zero and should not import the admin code they never use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from telegraf_bridge.cli.config_model import Sink
from telegraf_bridge.cli.influx.client import Client
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.cli.influx.v1 import InfluxV1Client
from telegraf_bridge.cli.influx.v2 import InfluxV2Client
from telegraf_bridge.cli.influx.v3 import InfluxV3Client

_PACKAGE = "telegraf_bridge.cli.influx"


@dataclass(frozen=True)
class Version:
    """One InfluxDB version: its client class, and where its device queries and admin live."""

    client: type[Client]
    devices: str  # "module:Class" under cli/influx
    admin: str

    def load(self, which: str) -> Any:
        """The class named by ``devices`` or ``admin``, imported now."""
        module, _, name = str(getattr(self, which)).partition(":")
        return getattr(importlib.import_module(f"{_PACKAGE}.{module}"), name)


VERSIONS: dict[str, Version] = {
    "influxdb_v1": Version(InfluxV1Client, "devices.v1:V1DeviceQueries", "admin.v1:InfluxV1Admin"),
    "influxdb_v2": Version(InfluxV2Client, "devices.v2:V2DeviceQueries", "admin.v2:InfluxV2Admin"),
    "influxdb_v3": Version(InfluxV3Client, "devices.v3:V3DeviceQueries", "admin.v3:InfluxV3Admin"),
}


def version_of(sink: Sink) -> Version:
    """The version of a sink; a sink of another type is a ``config_error``."""
    if sink.type not in VERSIONS:
        raise SinkError("config_error", f"sink {sink.name!r} ({sink.type}) cannot be queried")
    return VERSIONS[sink.type]
