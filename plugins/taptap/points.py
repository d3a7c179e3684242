"""The seed's ``tigo_power_report`` point, and the plugin's own status point.

Field names, tag names and the two computed fields are tigo-ingest's, so its dashboards and
queries keep working; the timestamp is taptap's own, to the nanosecond (tigo-ingest went
through a float and lost the last digits).
"""

from __future__ import annotations

from telegraf_bridge.plugins.common import FieldType, FieldValue, Point
from telegraf_bridge.plugins.taptap.events import Event, InfrastructureReport, PowerReport
from telegraf_bridge.plugins.taptap.identity import Identities

REPORT_FIELD_TYPES: dict[str, FieldType] = {
    "voltage_in_v": FieldType.FLOAT,
    "voltage_out_v": FieldType.FLOAT,
    "current_in_a": FieldType.FLOAT,
    "current_out_a": FieldType.FLOAT,
    "power_w": FieldType.FLOAT,
    "duty_cycle": FieldType.FLOAT,
    "temperature_c": FieldType.FLOAT,
    "rssi": FieldType.INTEGER,
}
STATUS_FIELD_TYPES: dict[str, FieldType] = {
    "running": FieldType.BOOLEAN,
    "stale": FieldType.BOOLEAN,
    "restarts": FieldType.INTEGER,
    "reports": FieldType.INTEGER,
    "skipped_lines": FieldType.INTEGER,
    "last_report_age_s": FieldType.FLOAT,
}


def learn_identities(event: Event, identities: Identities) -> None:
    """Remember the identities an event carries, before its point is made."""
    if isinstance(event, InfrastructureReport):
        for gateway_id, address in event.gateways.items():
            identities.learn_gateway(gateway_id, address)
        for gateway_id, table in event.node_tables.items():
            identities.replace_node_table(gateway_id, table.items())
        return
    if event.gateway_address:
        identities.learn_gateway(event.gateway_id, event.gateway_address)
    if event.node is not None:
        identities.learn_node(
            event.gateway_id, event.node_id, event.node.address, event.node.barcode
        )


def report_point(report: PowerReport, identities: Identities, measurement: str) -> Point:
    """The seed's point; ``current_out_a`` is left out at 0 V out (bypass, or off).

    ``power_w`` = input voltage x current and ``current_out_a`` = power / output voltage, with
    Python's float arithmetic, so the values equal tigo-ingest's to the last digit.
    """
    power = report.voltage_in * report.current
    fields: dict[str, FieldValue] = {
        "voltage_in_v": report.voltage_in,
        "voltage_out_v": report.voltage_out,
        "current_in_a": report.current,
        "power_w": power,
        "duty_cycle": report.duty_cycle,
        "temperature_c": report.temperature,
        "rssi": report.rssi,
    }
    if report.voltage_out != 0:
        fields["current_out_a"] = power / report.voltage_out
    tags = {
        "src": "tigo",
        "gateway_id": str(report.gateway_id),
        "node_id": str(report.node_id),
        **identities.tags(report.gateway_id, report.node_id),
    }
    return Point(measurement, tags, fields, report.time_ns)
