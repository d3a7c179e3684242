"""IoTFlow-shaped telemetry for the per-device query and delete tests, on any sink kind.

The points follow issue 7's data model: measurement = telemetry type, tags ``device_id``,
``device_name``, ``device_type``, ``location``, payload keys as fields (numbers as floats,
one declared integer, a boolean, a string).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from _sink_rig import Backend, ago
from click.testing import CliRunner, Result
from telegraf_bridge.cli.commands import delete_data, query

DEVICE = "esp32_001"
OTHER = "esp32_002"
# A device ID with every character the query languages treat specially: ' " and a backslash
# (followed by n: a literal backslash-n, never a newline).
NASTY = "o'b\"r\\n"
TAGS = "device_name=Office\\ Sensor,device_type=sensor,location=office"


@dataclass
class Seeded:
    """Timestamps (ns) of the points written, by name."""

    env_50: int
    env_30: int
    status_20: int
    env_10: int
    old_120: int
    other_5: int
    nasty_15: int


def seed(backend: Backend) -> Seeded:
    """Four points of DEVICE in the last hour, one older, one of OTHER, one of NASTY."""
    s = Seeded(
        env_50=ago(50),
        env_30=ago(30),
        status_20=ago(20),
        env_10=ago(10),
        old_120=ago(120),
        other_5=ago(5),
        nasty_15=ago(15),
    )
    env = f"environmental,device_id={DEVICE},{TAGS}"
    backend.write(
        [
            f"{env} temperature=24.5,humidity=60,battery_level=85,rssi=-70i {s.env_50}",
            f"{env} temperature=25,humidity=58,battery_level=84,rssi=-67i {s.env_30}",
            f'status,device_id={DEVICE},{TAGS} online=true,firmware="1.2.3" {s.status_20}',
            # The newest environmental point has no battery_level: latest must take it from
            # the point before.
            f"{env} temperature=25.5,humidity=57,rssi=-66i {s.env_10}",
            f"{env} temperature=20,humidity=70,battery_level=90,rssi=-80i {s.old_120}",
            f"environmental,device_id={OTHER},{TAGS} temperature=19,humidity=40 {s.other_5}",
            f"environmental,device_id={NASTY},location=lab temperature=1 {s.nasty_15}",
        ]
    )
    return s


def run_query(backend: Backend, tmp_path: Path, *args: str, input: str | None = None) -> Result:
    """``bridge-cli query ARGS`` against ``backend`` (the group invoked directly)."""
    return CliRunner().invoke(
        query.command,
        [args[0], "--config", str(backend.config(tmp_path)), *args[1:]],
        input=input,
        catch_exceptions=False,
    )


def run_delete(backend: Backend, tmp_path: Path, *args: str, input: str | None = None) -> Result:
    """``bridge-cli delete-data ARGS`` against ``backend``."""
    return CliRunner().invoke(
        delete_data.command,
        ["--config", str(backend.config(tmp_path)), *args],
        input=input,
        catch_exceptions=False,
    )
