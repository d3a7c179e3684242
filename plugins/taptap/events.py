"""``taptap observe`` output lines, in both of taptap's formats, to typed events.

Released taptap (0.1.x on crates.io) prints one JSON object per power report with nested
``gateway: {id, address?}`` and ``node: {id, address?, barcode?}``. Newer taptap (unreleased,
a breaking change) prints ``{"event_type": "power_report", "gateway": 4609, "node": 116, ...}``
and, whenever its persistent state changes, an ``infrastructure_report`` with every known
gateway's and node's address and barcode. Both are accepted; a line that is neither is a
counted skip with its reason, never a crash and never a guessed point.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from telegraf_bridge.plugins.common import parse_rfc3339_ns
from telegraf_bridge.plugins.taptap.identity import (
    NodeIdentity,
    barcode_of,
    format_address,
    parse_address,
)

# taptap's ids: a gateway id is 15 bits, a node id 16 bits.
MAX_GATEWAY_ID = 0x7FFF
MAX_NODE_ID = 0xFFFF
REPORT_NUMBERS = ("voltage_in", "voltage_out", "current", "dc_dc_duty_cycle", "temperature")


class BadLine(ValueError):
    """A line that yields nothing; ``reason`` is the skip counter's key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class PowerReport:
    """One optimiser's report, with the identities the line itself carried (0.1.x format)."""

    gateway_id: int
    node_id: int
    time_ns: int
    voltage_in: float
    voltage_out: float
    current: float
    duty_cycle: float
    temperature: float
    rssi: int
    gateway_address: str | None = None
    node: NodeIdentity | None = None


@dataclass(frozen=True)
class InfrastructureReport:
    """Every gateway's address and every node table taptap knows (newer format)."""

    gateways: dict[int, str]
    node_tables: dict[int, dict[int, NodeIdentity]]


Event = PowerReport | InfrastructureReport


def _id(value: Any, what: str, maximum: int) -> int:
    if type(value) is not int or not 0 <= value <= maximum:
        raise BadLine("invalid_report", f"{what} is {value!r}, expected 0..{maximum}")
    return value


def _id_key(key: str, what: str, maximum: int) -> int:
    if not key.isdigit():
        raise BadLine("invalid_infrastructure", f"{what} key {key[:20]!r} is not a number")
    return _id(int(key), what, maximum)


def _number(doc: dict[str, Any], key: str) -> float:
    value = doc.get(key)
    if value is None:
        raise BadLine("invalid_report", f"field {key!r} is missing")
    if type(value) not in (int, float):
        raise BadLine("invalid_report", f"field {key!r} is {type(value).__name__}, not a number")
    number = float(value)
    if not math.isfinite(number):
        raise BadLine("invalid_report", f"field {key!r} is {value!r}")
    return number


def _node_identity(address: Any, barcode: Any) -> NodeIdentity | None:
    raw = parse_address(address)
    if raw is None:
        return None
    label = barcode if isinstance(barcode, str) and barcode else barcode_of(raw)
    return NodeIdentity(format_address(raw), label)


def _power_report(doc: dict[str, Any]) -> PowerReport:
    gateway = doc.get("gateway")
    node = doc.get("node")
    gateway_address: str | None = None
    node_identity: NodeIdentity | None = None
    if isinstance(gateway, dict):  # 0.1.x: nested objects with optional identities
        gateway_id = _id(gateway.get("id"), "gateway id", MAX_GATEWAY_ID)
        raw = parse_address(gateway.get("address"))
        gateway_address = format_address(raw) if raw is not None else None
    else:
        gateway_id = _id(gateway, "gateway id", MAX_GATEWAY_ID)
    if isinstance(node, dict):
        node_id = _id(node.get("id"), "node id", MAX_NODE_ID)
        node_identity = _node_identity(node.get("address"), node.get("barcode"))
    else:
        node_id = _id(node, "node id", MAX_NODE_ID)
    stamp = doc.get("timestamp")
    if not isinstance(stamp, str):
        raise BadLine("invalid_report", "timestamp is missing")
    try:
        time_ns = parse_rfc3339_ns(stamp)
    except ValueError as exc:
        raise BadLine("invalid_timestamp", str(exc)) from None
    voltage_in, voltage_out, current, duty, temperature = (_number(doc, k) for k in REPORT_NUMBERS)
    rssi = doc.get("rssi")
    if type(rssi) is float and rssi.is_integer():
        rssi = int(rssi)
    if type(rssi) is not int or not 0 <= rssi <= 255:
        raise BadLine("invalid_report", f"rssi is {rssi!r}, expected 0..255")
    return PowerReport(
        gateway_id=gateway_id,
        node_id=node_id,
        time_ns=time_ns,
        voltage_in=voltage_in,
        voltage_out=voltage_out,
        current=current,
        duty_cycle=duty,
        temperature=temperature,
        rssi=rssi,
        gateway_address=gateway_address,
        node=node_identity,
    )


def _infrastructure(doc: dict[str, Any]) -> InfrastructureReport:
    gateways_doc = doc.get("gateways")
    nodes_doc = doc.get("nodes")
    if not isinstance(gateways_doc, dict) or not isinstance(nodes_doc, dict):
        raise BadLine("invalid_infrastructure", "'gateways' and 'nodes' must be objects")
    gateways: dict[int, str] = {}
    for key, entry in gateways_doc.items():
        gateway_id = _id_key(key, "gateway id", MAX_GATEWAY_ID)
        raw = parse_address(entry.get("address")) if isinstance(entry, dict) else None
        if raw is not None:
            gateways[gateway_id] = format_address(raw)
    tables: dict[int, dict[int, NodeIdentity]] = {}
    for key, table in nodes_doc.items():
        gateway_id = _id_key(key, "gateway id", MAX_GATEWAY_ID)
        if not isinstance(table, dict):
            raise BadLine("invalid_infrastructure", f"node table of gateway {key} is no object")
        nodes: dict[int, NodeIdentity] = {}
        for node_key, entry in table.items():
            node_id = _id_key(node_key, "node id", MAX_NODE_ID)
            if not isinstance(entry, dict):
                continue
            identity = _node_identity(entry.get("address"), entry.get("barcode"))
            if identity is not None:
                nodes[node_id] = identity
        tables[gateway_id] = nodes
    return InfrastructureReport(gateways, tables)


def parse_line(line: bytes | str) -> Event:
    """One stdout line of ``taptap observe``; raises :class:`BadLine` for anything else."""
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError) as exc:
        text = line if isinstance(line, str) else line.decode("utf-8", "replace")
        raise BadLine("not_json", f"{exc}: {text[:80]!r}") from None
    if not isinstance(doc, dict):
        raise BadLine("not_json", f"a JSON {type(doc).__name__}, not an object")
    kind = doc.get("event_type")
    if kind is None or kind == "power_report":
        return _power_report(doc)
    if kind == "infrastructure_report":
        return _infrastructure(doc)
    raise BadLine("unknown_event_type", f"event_type {str(kind)[:40]!r}")
