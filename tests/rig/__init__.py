"""The servers the bundle's tests run against; test code only, never installed.

Real servers where they can be installed or built (InfluxDB 1.x, InfluxDB 2.x, Mosquitto,
Telegraf), loopback fakes following the official HTTP APIs where they cannot (InfluxDB Cloud's
own answers, InfluxDB 3). A plugin author's helpers are in :mod:`telegraf_bridge.testing`.
"""

from rig.fake_influx import FakeInfluxV2, FakeInfluxV3, WriteRequest
from rig.influxd import InfluxD1, find_influxd
from rig.influxd2 import InfluxD2, find_influxd2, parse_annotated_csv
from rig.mosquitto import Mosquitto, find_mosquitto
from rig.ports import free_port, wait_for
from rig.telegraf import TelegrafProcess

__all__ = [
    "FakeInfluxV2",
    "FakeInfluxV3",
    "InfluxD1",
    "InfluxD2",
    "Mosquitto",
    "TelegrafProcess",
    "WriteRequest",
    "find_influxd",
    "find_influxd2",
    "find_mosquitto",
    "free_port",
    "parse_annotated_csv",
    "wait_for",
]
