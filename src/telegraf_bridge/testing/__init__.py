"""Test helpers, shipped so plugin tests and downstream users can reuse them.

Real servers where they can be installed or built (InfluxDB 1.x, InfluxDB 2.x, Telegraf),
loopback fakes following the official HTTP APIs where they cannot (InfluxDB Cloud's own answers,
InfluxDB 3), and a strict line-protocol reader.
"""

from telegraf_bridge.testing._fake_influx import FakeInfluxV2, FakeInfluxV3, WriteRequest
from telegraf_bridge.testing._influxd import InfluxD1, find_influxd
from telegraf_bridge.testing._influxd2 import InfluxD2, find_influxd2, parse_annotated_csv
from telegraf_bridge.testing._lineprotocol import (
    LineProtocolError,
    ParsedPoint,
    parse_line,
    parse_lines,
)
from telegraf_bridge.testing._mosquitto import Mosquitto, find_mosquitto
from telegraf_bridge.testing._ports import free_port, wait_for
from telegraf_bridge.testing._telegraf import TelegrafProcess

__all__ = [
    "FakeInfluxV2",
    "FakeInfluxV3",
    "InfluxD1",
    "InfluxD2",
    "LineProtocolError",
    "Mosquitto",
    "ParsedPoint",
    "TelegrafProcess",
    "WriteRequest",
    "find_influxd",
    "find_influxd2",
    "find_mosquitto",
    "free_port",
    "parse_annotated_csv",
    "parse_line",
    "parse_lines",
    "wait_for",
]
