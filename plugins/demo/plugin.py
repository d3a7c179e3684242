"""Demo source: a simulated PV string whose values are a pure function of the timestamp.

Why deterministic: the delivery promise relies on replays being idempotent, so the demo must
produce byte-identical points when a window is emitted twice. Power follows a daylight curve of
the (UTC) time of day; the energy counter is persisted and advanced only when a new interval
window starts, so a restart never resets it to zero and a replayed window never adds twice.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from telegraf_bridge.plugins.common import (
    Emit,
    FieldType,
    PluginContext,
    PluginSpec,
    Point,
    StateFile,
)
from telegraf_bridge.plugins.demo import options

log = logging.getLogger("telegraf_bridge.plugins.demo")

NS = 1_000_000_000
DAY_S = 86_400


def power_at(time_ns: int, peak_w: float, device: int) -> float:
    """Simulated AC power at ``time_ns``: a half sine from 06:00 to 18:00 UTC, 0 at night."""
    seconds = (time_ns // NS) % DAY_S
    phase = (seconds - 6 * 3600) / (12 * 3600)
    if not 0.0 < phase < 1.0:
        return 0.0
    scale = 1.0 - 0.05 * device
    return round(peak_w * scale * math.sin(math.pi * phase), 3)


class DemoSource:
    """Emits one ``demo`` point per simulated device per interval window."""

    def __init__(self, ctx: PluginContext) -> None:
        opts = options.parse(ctx.config)
        self.measurement = opts.measurement
        self.site = opts.site
        self.devices = opts.devices
        self.peak_w = opts.peak_power_w
        self.ndjson_dir = opts.ndjson_dir
        self.interval_ns = round(ctx.interval_s * NS)
        ctx.serializer.field_types = {
            "power_w": FieldType.FLOAT,
            "energy_wh": FieldType.INTEGER,
            "state": FieldType.STRING,
            "online": FieldType.BOOLEAN,
        }
        self.clock = ctx.clock_guard
        self.state = StateFile(ctx.state_path(), min_interval_s=60.0)
        saved = self.state.load() or {}
        self.energy_mwh: dict[str, int] = {
            str(k): int(v) for k, v in dict(saved.get("energy_mwh", {})).items()
        }
        self.last_window_ns = int(saved.get("last_window_ns", 0))

    def _device_name(self, index: int) -> str:
        return f"{self.site}-{index + 1}"

    def gather(self, emit: Emit) -> None:
        """Emit the current window's points, advancing counters once per new window."""
        window_ns = (time.time_ns() // self.interval_ns) * self.interval_ns
        new_window = window_ns > self.last_window_ns
        for index in range(self.devices):
            device = self._device_name(index)
            power = power_at(window_ns, self.peak_w, index)
            if new_window:
                step_mwh = round(power * self.interval_ns / NS / 3600 * 1000)
                self.energy_mwh[device] = self.energy_mwh.get(device, 0) + step_mwh
            emit(
                Point(
                    measurement=self.measurement,
                    tags={"device": device, "site": self.site},
                    fields={
                        "power_w": power,
                        "energy_wh": self.energy_mwh.get(device, 0) // 1000,
                        "state": "producing" if power > 0 else "idle",
                        "online": True,
                    },
                    time_ns=window_ns,
                )
            )
        if new_window:
            if self.ndjson_dir is not None:
                self._append_ndjson(window_ns)
            self.last_window_ns = window_ns
            self.state.save_if_due(self._state())

    def _append_ndjson(self, window_ns: int) -> None:
        """Write SmartSolar-shaped records, as the SmartSolar app does, for ndjson_tail."""
        moment = datetime.fromtimestamp(window_ns // NS, UTC)
        path = self.ndjson_dir / f"data_{moment.date().isoformat()}.ndjson"  # type: ignore[operator]
        lines = []
        for index in range(self.devices):
            power = power_at(window_ns, self.peak_w / 10, index)
            voltage = round(12.6 + power / 400, 2) if power > 0 else 12.4
            record = {
                "timestamp": moment.isoformat(timespec="microseconds"),
                "device_name": f"SmartSolar {self.site.upper()}{index + 1:02d}",
                "device_address": f"DE:MO:00:00:00:{index + 1:02X}",
                "parsed_data": {
                    "battery_voltage": voltage,
                    "battery_charging_current": round(power / voltage, 1),
                    "charge_state": "BULK" if power > 0 else "OFF",
                    "charger_error": "NO_ERROR",
                    "external_device_load": 0.0,
                    "model_id": 41043,
                    "solar_power": round(power),
                    "yield_today": self.energy_mwh.get(self._device_name(index), 0) // 10_000,
                },
            }
            lines.append(json.dumps(record, separators=(",", ":")) + "\n")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write("".join(lines))
        except OSError as exc:
            log.warning("cannot write simulated NDJSON to %s: %s", path, exc)

    def _state(self) -> dict[str, object]:
        return {"energy_mwh": self.energy_mwh, "last_window_ns": self.last_window_ns}

    def close(self) -> None:
        """Persist the counters so a restart continues them."""
        self.state.save(self._state())


SPEC = PluginSpec("demo", DemoSource)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``bridge-demo`` and ``python -m telegraf_bridge.plugins.demo``."""
    return SPEC.main(argv)
