"""Former home of the query clients, now in :mod:`telegraf_bridge.cli.influx`: names kept.

Why it still exists: ``commands/install_systemd.py`` and the InfluxDB 2 test server helper
(``telegraf_bridge.testing._influxd2``) import from here and are being reworked on other
branches at the same time; they switch to :mod:`telegraf_bridge.cli.influx` and this module
goes. Nothing new imports it.
"""

from __future__ import annotations

from telegraf_bridge.cli.influx.flux import flux_string
from telegraf_bridge.cli.influx.sinks import QUERYABLE_TYPES, select_sink
from telegraf_bridge.cli.influx.transport import SinkError

__all__ = ["QUERYABLE_TYPES", "SinkError", "flux_string", "select_sink"]
